"""Prompts rendered the way lm-eval renders them (same Jinja settings, delimiters and few-shot layout).

The context filter counts tokens of these prompts, so the count is exact for Jinja-only tasks.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Sequence

import jinja2

LETTERS = "ABCDEFGHIJ"


def _regex_replace(string, pattern, repl, count: int = 0):
    return re.sub(pattern, repl, string, count=count)


_ENV = jinja2.Environment(loader=jinja2.BaseLoader(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_ENV.filters["regex_replace"] = _regex_replace


@functools.lru_cache(maxsize=512)
def _template(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


def _render(text: str, doc: dict) -> str:
    return _template(text).render(**doc)


def doc_text(cfg: dict, doc: dict, spec=None) -> str:
    """The question text of one document (lm-eval's doc_to_text for a field name or a Jinja template)."""
    spec = cfg.get("doc_to_text") if spec is None else spec
    if isinstance(spec, int):
        return spec
    if spec in doc:
        return doc[spec]
    return _render(spec, doc)


def doc_choices(cfg: dict, doc: dict, spec=None) -> list[str]:
    """The answer options of one document (lm-eval's doc_to_choice)."""
    spec = cfg.get("doc_to_choice") if spec is None else spec
    if isinstance(spec, list):
        return spec
    if isinstance(spec, dict):
        return list(spec.values())
    if spec in doc:
        return doc[spec]
    return ast.literal_eval(_render(spec, doc))


def doc_target(cfg: dict, doc: dict, spec=None):
    """The gold answer of one document: an option index (multiple choice) or a string (lm-eval's doc_to_target)."""
    spec = cfg.get("doc_to_target") if spec is None else spec
    if isinstance(spec, (int, list)):
        return spec
    if spec in doc:
        return doc[spec]
    text = _render(spec, doc)
    if text.isdigit() and cfg.get("doc_to_choice") is not None:
        return int(text)
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            return text
    return text


def _fewshot_settings(cfg: dict) -> dict:
    fs = dict(cfg.get("fewshot_config") or {})
    for key in ("doc_to_text", "doc_to_choice", "doc_to_target"):
        fs.setdefault(key, cfg.get(key))
    fs.setdefault("target_delimiter", cfg.get("target_delimiter", " "))
    fs.setdefault("fewshot_delimiter", cfg.get("fewshot_delimiter", "\n\n"))
    return fs


def _fewshot_turns(cfg: dict, fewshot_docs: Sequence[dict]) -> list[tuple[str, str]]:
    fs = _fewshot_settings(cfg)
    turns = []
    for fdoc in fewshot_docs:
        question = doc_text(cfg, fdoc, fs["doc_to_text"])
        answer = doc_target(cfg, fdoc, fs["doc_to_target"])
        if isinstance(answer, int) and fs.get("doc_to_choice") is not None:
            answer = doc_choices(cfg, fdoc, fs["doc_to_choice"])[answer]
        elif isinstance(answer, list):
            answer = answer[0]
        turns.append((question, str(answer)))
    return turns


def render_context(cfg: dict, doc: dict, fewshot_docs: Sequence[dict] = ()) -> str:
    """The plain-text prompt lm-eval builds for ``doc``: description, few-shot examples, then the question."""
    fs = _fewshot_settings(cfg)
    parts = [_render(cfg["description"], doc) if cfg.get("description") else ""]
    for question, answer in _fewshot_turns(cfg, fewshot_docs):
        parts.append(question + fs["target_delimiter"] + answer + fs["fewshot_delimiter"])
    parts.append(doc_text(cfg, doc))
    return "".join(parts)


def render_messages(cfg: dict, doc: dict, fewshot_docs: Sequence[dict] = ()) -> list[dict]:
    """The chat messages lm-eval sends with ``--apply_chat_template`` (few-shot examples as turns)."""
    messages = []
    if cfg.get("description"):
        messages.append({"role": "system", "content": _render(cfg["description"], doc)})
    for question, answer in _fewshot_turns(cfg, fewshot_docs):
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": doc_text(cfg, doc)})
    return messages


def requests_for(cfg: dict, doc: dict, fewshot_docs: Sequence[dict] = ()) -> tuple[str, list[str]]:
    """The context and the continuations lm-eval scores for a multiple-choice document."""
    context = render_context(cfg, doc, fewshot_docs)
    delimiter = cfg.get("target_delimiter", " ")
    return context, [delimiter + str(choice) for choice in doc_choices(cfg, doc)]
