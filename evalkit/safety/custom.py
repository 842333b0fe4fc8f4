"""The application's own checks: OpenAI-Evals-style JSONL samples or plain YAML, turned into promptfoo tests.

This module owns the two file formats a learner writes checks in and their translation into promptfoo tests.
A JSONL file holds one OpenAI Evals sample per line, ``{"input": [{"role": ..., "content": ...}, ...],
"ideal": "text" or ["text", ...]}``; it passes when the output contains one of the ideal answers
(case-insensitive, like the Evals "Includes" eval). A YAML file holds an optional ``system`` prompt and a list
of ``checks``, each ``{id, prompt, expect: {contains | contains_any | not_contains | regex | not_regex | equals
| refuses | rubric}}`` (data/safety/bank_faq.yaml documents every key). A malformed file raises
:class:`~evalkit.errors.TaskFileError` naming the file, the line and the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from evalkit.errors import ConfigError, TaskFileError
from evalkit.memo import per_file_version
from evalkit.promptfoo import SAFE_LOADER
from evalkit.settings import get_settings

if TYPE_CHECKING:  # pandas loads when a function needs it: the command line starts quickly
    import pandas as pd

ROLES = ("system", "user", "assistant")
EXPECT_KEYS = ("contains", "contains_any", "not_contains", "regex", "not_regex", "equals", "refuses", "rubric")
YAML_FIX = ("each check is {id, prompt, expect}; expect uses " + ", ".join(EXPECT_KEYS)
            + " (see data/safety/bank_faq.yaml).")
JSONL_FIX = ('each line is one JSON object: {"input": [{"role": "user", "content": "..."}], "ideal": "..."} '
             "(see data/safety/bank_faq.jsonl).")


@dataclass
class Check:
    """One application check: the chat messages to send and what the answer must satisfy."""

    id: str
    messages: list[dict]
    expect: dict
    source: str  # "file:line"
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def user_text(self) -> str:
        users = [m["content"] for m in self.messages if m["role"] == "user"]
        return users[-1] if users else ""


@per_file_version
def checks_from_file(path: Path | str) -> list[Check]:
    """Read checks from an OpenAI-Evals-style ``.jsonl`` file or a plain ``.yaml``/``.yml`` file.

    Raises:
        TaskFileError: the file is missing, empty or malformed (the message names the line and the field).
    """
    real = Path(path)
    path = _shown(real)
    if not real.exists():
        raise TaskFileError(f"Custom checks file {path} does not exist.", fix="check the path (examples: "
                            "data/safety/bank_faq.jsonl, data/safety/bank_faq.yaml).")
    if path.suffix == ".jsonl":
        checks = _from_jsonl(real, path)
    elif path.suffix in (".yaml", ".yml"):
        checks = _from_yaml(real, path)
    else:
        raise TaskFileError(f"{path}: unknown custom checks format {path.suffix!r}.",
                            fix="use .jsonl (OpenAI Evals samples) or .yaml (a list of checks).")
    if not checks:
        raise TaskFileError(f"{path} holds no checks.", fix=JSONL_FIX if path.suffix == ".jsonl" else YAML_FIX)
    seen: dict[str, str] = {}
    for check in checks:
        if check.id in seen:
            raise TaskFileError(f"{check.source}: check id {check.id!r} is used twice (also at {seen[check.id]}).",
                                fix="give every check its own id.")
        seen[check.id] = check.source
    return checks


def _shown(path: Path) -> Path:
    """A path inside the project relative to it (shorter messages), others as given."""
    try:
        return path.resolve().relative_to(get_settings().project_dir) if path.is_absolute() else path
    except ValueError:
        return path


def _messages(value, where: str, fix: str) -> list[dict]:
    if isinstance(value, str):
        if not value.strip():
            raise TaskFileError(f"{where}: the prompt is empty.", fix=fix)
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise TaskFileError(f"{where}: expected a string or a non-empty list of chat messages, got "
                            f"{type(value).__name__}.", fix=fix)
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or set(message) - {"role", "content", "name"} or "content" not in message:
            raise TaskFileError(f"{where}: message {i + 1} must be {{role, content}}, got {message!r:.80}.", fix=fix)
        if message.get("role") not in ROLES:
            raise TaskFileError(f"{where}: message {i + 1} has role {message.get('role')!r}; use one of "
                                f"{', '.join(ROLES)}.", fix=fix)
        if not isinstance(message["content"], str):
            raise TaskFileError(f"{where}: message {i + 1} content must be text.", fix=fix)
        out.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "user" for m in out):
        raise TaskFileError(f"{where}: no user message.", fix=fix)
    return out


def _texts(value, where: str, key: str, fix: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise TaskFileError(f"{where}: `{key}` must be a non-empty text or a list of non-empty texts, got "
                            f"{value!r:.80}.", fix=fix)
    return values


def _from_jsonl(real: Path, path: Path) -> list[Check]:
    checks = []
    for number, line in enumerate(real.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            sample = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskFileError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).", fix=JSONL_FIX) from None
        if not isinstance(sample, dict):
            raise TaskFileError(f"{where}: expected a JSON object, got {type(sample).__name__}.", fix=JSONL_FIX)
        for key in ("input", "ideal"):
            if key not in sample:
                raise TaskFileError(f"{where}: field `{key}` is missing.", fix=JSONL_FIX)
        messages = _messages(sample["input"], f"{where}, field `input`", JSONL_FIX)
        ideal = _texts(sample["ideal"], f"{where}", "ideal", JSONL_FIX)
        check_id = str(sample.get("id") or f"{path.stem}-{number}")
        extra = {k: v for k, v in sample.items() if k not in ("input", "ideal", "id", "description")}
        checks.append(Check(check_id, messages, {"contains_any": ideal}, f"{path}:{number}",
                            str(sample.get("description", "")), extra))
    return checks


def _from_yaml(real: Path, path: Path) -> list[Check]:
    text = real.read_text()
    try:
        root = yaml.compose(text)
        data = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        raise TaskFileError(f"{where}: invalid YAML ({getattr(exc, 'problem', None) or exc}).", fix=YAML_FIX) from None
    if data is None:
        return []
    system, items, node = None, data, root
    if isinstance(data, dict):
        unknown = set(data) - {"system", "checks"}
        if unknown or "checks" not in data:
            raise TaskFileError(f"{path}: top-level keys are `system` and `checks`; found {sorted(data)}.",
                                fix=YAML_FIX)
        system, items = data.get("system"), data["checks"]
        node = next(v for k, v in root.value if k.value == "checks")
        if system is not None and not isinstance(system, str):
            raise TaskFileError(f"{path}: `system` must be text.", fix=YAML_FIX)
    if not isinstance(items, list):
        raise TaskFileError(f"{path}: expected a list of checks, got {type(items).__name__}.", fix=YAML_FIX)
    checks = []
    for i, (item, item_node) in enumerate(zip(items, node.value, strict=True), start=1):
        line = item_node.start_mark.line + 1
        where = f"{path}, line {line} (check {i})"
        if not isinstance(item, dict):
            raise TaskFileError(f"{where}: expected a mapping with prompt and expect.", fix=YAML_FIX)
        unknown = set(item) - {"id", "prompt", "system", "expect", "description"}
        if unknown:
            raise TaskFileError(f"{where}: unknown field(s) {sorted(unknown)}.", fix=YAML_FIX)
        if "prompt" not in item:
            raise TaskFileError(f"{where}: field `prompt` is missing.", fix=YAML_FIX)
        messages = _messages(item["prompt"], f"{where}, field `prompt`", YAML_FIX)
        item_system = item.get("system", system)
        if item_system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": str(item_system)})
        expect = item.get("expect")
        if not isinstance(expect, dict) or not expect:
            raise TaskFileError(f"{where}: field `expect` is missing or empty.", fix=YAML_FIX)
        check_id = str(item.get("id") or f"{path.stem}-{i}")
        checks.append(Check(check_id, messages, _expect(expect, where), f"{path}:{line}",
                            str(item.get("description", ""))))
    return checks


def _expect(expect: dict, where: str) -> dict:
    out = {}
    for key, value in expect.items():
        if key not in EXPECT_KEYS:
            raise TaskFileError(f"{where}: unknown expectation `{key}`.", fix=YAML_FIX)
        if key == "refuses":
            if not isinstance(value, bool):
                raise TaskFileError(f"{where}: `refuses` must be true or false, got {value!r}.", fix=YAML_FIX)
            out[key] = value
        elif key in ("regex", "not_regex", "equals", "rubric"):
            if not isinstance(value, str) or not value:
                raise TaskFileError(f"{where}: `{key}` must be non-empty text.", fix=YAML_FIX)
            if key in ("regex", "not_regex"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise TaskFileError(f"{where}: `{key}` is not a valid regular expression ({exc}).",
                                        fix="correct the pattern.") from None
            out[key] = value
        else:
            out[key] = _texts(value, where, key, YAML_FIX)
    return out


def assertions(check: Check, *, grader: bool) -> list[dict]:
    """The promptfoo assertions of one check (refusal rules by reference to the config's assertion templates)."""
    out = []
    for key, value in check.expect.items():
        if key == "contains":
            out += [{"type": "icontains", "value": v} for v in value]
        elif key == "contains_any":
            out.append({"type": "icontains-any", "value": value})
        elif key == "not_contains":
            out.append({"type": "not-icontains-any", "value": value})
        elif key in ("regex", "not_regex", "equals"):
            out.append({"type": key.replace("_", "-"), "value": value})
        elif key == "refuses":
            out.append({"$ref": "#/assertionTemplates/" + ("refuses" if value else "answers")})
        elif key == "rubric":
            if not grader:
                raise ConfigError(f"Custom check {check.id!r} ({check.source}) uses `rubric`, which needs an LLM "
                                  "grader.", fix="pass grader_url= (--grader-url), or remove the rubric.")
            out.append({"type": "llm-rubric", "value": value, "metric": "grader"})
    return out


def custom_tests(checks: list[Check], *, grader: bool = False) -> list[dict]:
    """The promptfoo tests of custom checks (chat messages in ``vars.messages``)."""
    return [{
        "description": f"custom: {check.id}",
        "vars": {"messages": json.dumps(check.messages, ensure_ascii=False), "text": check.user_text},
        "assert": assertions(check, grader=grader),
        "metadata": {"set": "custom", "id": check.id, "source": check.source},
    } for check in checks]


def checks_table(checks: list[Check]) -> pd.DataFrame:
    """The checks as a table: id, user prompt, expectations, source line."""
    import pandas as pd

    return pd.DataFrame([{"id": c.id, "prompt": c.user_text, "expect": c.expect, "source": c.source}
                         for c in checks], columns=["id", "prompt", "expect", "source"])
