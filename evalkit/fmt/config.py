"""The format layer's promptfoo config: each item once per mode, "plain" (the prompt alone) and "structured".

promptfoo judges every output with two ``is-json`` assertions, named ``json_parse`` (parses) and ``schema``
(parses and matches the schema), so both rates come from promptfoo's own ``out.json``.

Whitespace under a grammar: with ``response_format: json_schema`` vLLM 0.32 compiles a grammar that allows any
whitespace between JSON tokens, and a small model can then emit newlines until ``max_tokens``. vLLM only turns
that off server-wide (``--structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'``;
with the default backend "auto" the flag is refused); the per-request ``disable_any_whitespace`` and
``whitespace_pattern`` fields are accepted but ignored. So by default (``whitespace="compact"``) evalkit sends the
grammar itself: xgrammar's grammar of the schema without free whitespace (what that server flag would compile),
as ``structured_outputs.grammar``. ``whitespace="any"`` sends the plain ``response_format: json_schema`` and lets
the server decide.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Literal

from evalkit.envreport import package_version
from evalkit.errors import ConfigError, TaskFileError, ToolMissingError
from evalkit.fmt.items import FormatItem
from evalkit.memo import remembered
from evalkit.promptfoo import provider
from evalkit.settings import get_settings

MODES = ("plain", "structured")
PARSE_METRIC, SCHEMA_METRIC = "json_parse", "schema"
# IFEval's own json_format check strips a Markdown code fence before json.loads; the same rule in JavaScript.
IFEVAL_STRIP_FENCE = "output.trim().replace(/^```(json|Json|JSON)?/, '').replace(/```$/, '').trim()"

Structured = bool | Literal["both"]
Whitespace = Literal["compact", "any"]

@functools.lru_cache(maxsize=256)
def _grammar(schema_json: str) -> str:
    # kept on disk: importing xgrammar takes seconds in every new kernel or command
    key = f"xgrammar {package_version('xgrammar')}\n{schema_json}"
    return remembered("grammars", key, lambda: _make_grammar(schema_json))


def _make_grammar(schema_json: str) -> str:
    try:
        import xgrammar
    except ImportError:
        raise ToolMissingError(
            "xgrammar (vLLM's grammar library) is not installed here, and whitespace='compact' needs it.",
            fix="install vLLM (`make setup`) or `pip install xgrammar`; or pass whitespace='any'.") from None
    try:
        grammar = xgrammar.Grammar.from_json_schema(schema_json, any_whitespace=False, separators=(",", ":"))
    except Exception as exc:  # xgrammar raises RuntimeError/ValueError with its own message
        raise TaskFileError(f"xgrammar cannot turn this schema into a grammar: {str(exc).splitlines()[0][:300]}",
                            fix="simplify the schema, or pass whitespace='any' to let the server compile it.") \
            from None
    return str(grammar)


def compact_grammar(schema: dict) -> str:
    """The schema's grammar without free whitespace (xgrammar EBNF, compact separators).

    It is the grammar vLLM's default backend compiles for ``response_format: json_schema`` when the server runs
    with ``--structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'`` (checked: both
    give the embedded model the same answer, token for token).
    """
    return _grammar(json.dumps(schema))  # key order matters: the grammar emits properties in schema order


def structured_request(schema: dict, whitespace: Whitespace = "compact", name: str = "answer") -> dict:
    """The request fields that constrain one answer to ``schema`` (sent by promptfoo as ``passthrough``).

    Args:
        schema: the JSON Schema.
        whitespace: "compact": a grammar with no free whitespace (``structured_outputs.grammar``); "any":
            ``response_format: json_schema`` as the OpenAI API defines it (whitespace as the server allows).
        name: the schema's name in ``response_format``.
    """
    if whitespace == "compact":
        return {"structured_outputs": {"grammar": compact_grammar(schema)}}
    if whitespace == "any":
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "answer"
        return {"response_format": {"type": "json_schema", "json_schema": {"name": safe, "schema": schema}}}
    raise ConfigError(f"whitespace must be 'compact' or 'any', not {whitespace!r}.",
                      fix="'compact' (default) constrains whitespace; 'any' shows the endless-whitespace problem.")


def modes_of(structured: Structured) -> tuple[bool, ...]:
    """``False`` -> (False,), ``True`` -> (True,), ``"both"`` -> (False, True); also accepts on/off strings."""
    choices = {False: (False,), True: (True,), "both": (False, True), "off": (False,), "on": (True,)}
    if isinstance(structured, str):
        structured = structured.lower()
    if structured not in choices:
        raise ConfigError(f"structured must be True, False or 'both', not {structured!r}.", fix="pick one of those.")
    return choices[structured]


def assertions(item: FormatItem) -> list[dict]:
    """The two promptfoo checks of one item: ``json_parse`` (is-json) and, with a schema, ``schema``."""
    parse = {"type": "is-json", "metric": PARSE_METRIC}
    if item.set == "ifeval":
        parse["transform"] = IFEVAL_STRIP_FENCE
    checks = [parse]
    if item.schema is not None:
        # a copy per test, so the YAML shows each schema in full instead of an alias (&id001 / *id001)
        checks.append({"type": "is-json", "value": copy.deepcopy(item.schema), "metric": SCHEMA_METRIC})
    return checks


def format_config(srv, items: list[FormatItem], *, structured: Structured = "both", max_tokens: int | None = None,
                  whitespace: Whitespace = "compact", temperature: float = 0.0) -> dict:
    """The promptfoo config: each item once per mode; structured tests carry their own provider with the constraint.

    Plain tests use the top-level provider (``srv``'s chat endpoint). A structured test has a test-level
    ``provider``: the same endpoint plus ``passthrough`` request fields from :func:`structured_request`.
    Greedy decoding (temperature 0) makes a rerun give the same outputs.
    """
    max_tokens = max_tokens or get_settings().format_max_tokens
    modes = modes_of(structured)
    plain = provider(srv, endpoint="chat", max_tokens=max_tokens, temperature=temperature, label=srv.model)
    tests = []
    for item in items:
        for on in modes:
            test = {
                "description": f"{item.set}/{item.item} ({MODES[on]})",
                "vars": {"prompt": item.prompt},
                "metadata": {"set": item.set, "item": item.item, "structured": on,
                             "whitespace": whitespace if on else None, "schema_file": item.schema_file},
                "assert": assertions(item),
            }
            if on:
                request = structured_request(copy.deepcopy(item.constraint), whitespace,
                                             name=item.schema_file or item.set)
                test["provider"] = provider(srv, endpoint="chat", max_tokens=max_tokens, temperature=temperature,
                                            label=f"{srv.model} structured", passthrough=request)
            tests.append(test)
    sets = sorted({i.set for i in items})
    return {
        "description": f"evalkit format check: {', '.join(sets)}; {' and '.join(MODES[m] for m in modes)}",
        "prompts": [{"raw": "{{prompt}}", "label": "prompt"}],
        "providers": [plain],
        "tests": tests,
    }
