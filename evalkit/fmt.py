"""Layer 2, format: does the output parse as JSON, and does it match the schema, with and without structured outputs.

This module owns the format layer. It loads the JSON tasks (the extraction set in data/format, each item with a
JSON Schema, and the IFEval prompts that ask for JSON, picked from data/ifeval at run time), checks every schema
with ``jsonschema`` before anything runs, and writes ONE promptfooconfig.yaml in which each item appears once
per mode: "plain" (the prompt alone) and "structured" (the same prompt with a vLLM structured-outputs
constraint). promptfoo judges every output with two ``is-json`` assertions, named ``json_parse`` (parses) and
``schema`` (parses and matches the schema), so both rates come from promptfoo's own ``out.json``.
:func:`check_format` runs it with :func:`evalkit.promptfoo.run_promptfoo` and returns a :class:`FormatResult`.

Whitespace under a grammar: with ``response_format: json_schema`` vLLM 0.32 compiles a grammar that allows any
whitespace between JSON tokens, and a small model can then emit newlines until ``max_tokens``. vLLM only turns
that off server-wide (``--structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'``;
with the default backend "auto" the flag is refused); the per-request ``disable_any_whitespace`` and
``whitespace_pattern`` fields are accepted but ignored. So by default
(``whitespace="compact"``) evalkit sends the grammar itself: xgrammar's grammar of the schema without free
whitespace (what that server flag would compile), as ``structured_outputs.grammar``. ``whitespace="any"`` sends
the plain ``response_format: json_schema`` and lets the server decide.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd
import yaml

from evalkit.errors import ConfigError, ContextLengthError, TaskFileError, ToolError, ToolMissingError
from evalkit.promptfoo import check_config_file, eval_stats, parse_output, provider, run_promptfoo, write_config
from evalkit.runs import FRACTION, LayerResult, Metric, catalog_metric, new_run_dir, rate
from evalkit.settings import get_settings

SETS = ("extraction", "ifeval")
MODES = ("plain", "structured")
IFEVAL_JSON = "detectable_format:json_format"
IFEVAL_SCHEMA = {"type": "object"}  # the constraint for IFEval's free-form "wrap it in JSON" prompts
PARSE_METRIC, SCHEMA_METRIC = "json_parse", "schema"
# IFEval's own json_format check strips a Markdown code fence before json.loads; the same rule in JavaScript.
IFEVAL_STRIP_FENCE = "output.trim().replace(/^```(json|Json|JSON)?/, '').replace(/```$/, '').trim()"
EXTRACTION_PROMPT = "{instruction}\nText: {text}\nAnswer with JSON only, in this shape: {shape}\nJSON:"

Structured = bool | Literal["both"]
Whitespace = Literal["compact", "any"]

F = FRACTION
METRICS: dict[str, dict] = {
    "json_parse_rate_plain": {"unit": F, "direction": "higher", "doc": "outputs that parse as JSON, no constraint"},
    "json_parse_rate_structured": {"unit": F, "direction": "higher",
                                   "doc": "outputs that parse as JSON, with structured outputs"},
    "schema_pass_rate_plain": {"unit": F, "direction": "higher",
                               "doc": "outputs that match their JSON Schema, no constraint"},
    "schema_pass_rate_structured": {"unit": F, "direction": "higher",
                                    "doc": "outputs that match their JSON Schema, with structured outputs"},
    "extraction_json_parse_rate_plain": {"unit": F, "direction": "higher", "doc": "extraction set: parse, plain"},
    "extraction_json_parse_rate_structured": {"unit": F, "direction": "higher",
                                              "doc": "extraction set: parse, structured"},
    "ifeval_json_parse_rate_plain": {"unit": F, "direction": "higher",
                                     "doc": "IFEval JSON prompts: parse (code fence stripped, as IFEval), plain"},
    "ifeval_json_parse_rate_structured": {"unit": F, "direction": "higher",
                                          "doc": "IFEval JSON prompts: parse, structured"},
    "truncated_rate_structured": {"unit": F, "direction": "lower",
                                  "doc": "structured outputs that hit max_tokens (runaway whitespace or values)"},
}

# keywords JSON Schema defines without a validation rule; promptfoo's Ajv (strict) accepts these as well
ANNOTATIONS = {"$schema", "$id", "id", "$ref", "$comment", "$defs", "definitions", "title", "description", "default",
               "examples", "readOnly", "writeOnly", "deprecated", "format", "contentMediaType", "contentEncoding",
               "contentSchema", "$anchor", "$dynamicAnchor", "$dynamicRef", "$vocabulary", "$recursiveRef",
               "$recursiveAnchor", "nullable"}
SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("additionalProperties", "additionalItems", "not", "if", "then", "else", "contains", "propertyNames",
              "unevaluatedItems", "unevaluatedProperties", "items", "contentSchema")


# --- data ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FormatItem:
    """One JSON task: the prompt, and the schema its answer must match (None: any JSON, e.g. IFEval)."""

    set: str
    item: str
    prompt: str
    schema: dict | None = None
    schema_file: str | None = None
    expected: Any = None
    meta: dict = field(default_factory=dict)

    @property
    def constraint(self) -> dict:
        """The schema the structured-outputs grammar is built from."""
        return self.schema if self.schema is not None else IFEVAL_SCHEMA


def format_dir() -> Path:
    return get_settings().data_dir / "format"


def validate_schema(schema: Any, where: str) -> dict:
    """Check that ``schema`` is a valid JSON Schema, also for promptfoo's strict checker; return it.

    Draft 7 applies unless the schema names another with ``$schema`` (Ajv, promptfoo's checker, defaults to
    draft 7 too). Unknown keywords (a typo such as ``maxlenght``) are refused: ``jsonschema`` ignores them, but
    promptfoo's Ajv rejects them in strict mode and the check would error in the middle of a run.

    Raises:
        TaskFileError: naming ``where`` and the ``jsonschema`` message.
    """
    from jsonschema import Draft7Validator, exceptions, validators

    if not isinstance(schema, dict):
        raise TaskFileError(f"{where}: a JSON Schema must be a JSON object, not {type(schema).__name__}.",
                            fix='write it as an object, e.g. {"type": "object", "properties": {...}}.')
    checker = validators.validator_for(schema, default=Draft7Validator)
    try:
        checker.check_schema(schema)
    except exceptions.SchemaError as exc:
        at = "/".join(str(p) for p in exc.path) or "(top level)"
        raise TaskFileError(f"{where}: not a valid JSON Schema: {exc.message} (at {at}).",
                            fix="correct the schema there; see https://json-schema.org/understanding-json-schema.") \
            from None
    known = set(checker.VALIDATORS) | ANNOTATIONS
    for path, keyword in _keywords(schema, ""):
        if keyword not in known:
            at = path or "(top level)"
            raise TaskFileError(f"{where}: not a valid JSON Schema: unknown keyword {keyword!r} (at {at}).",
                                fix="correct the spelling (e.g. maxLength, minimum, required, enum).")
    return schema


def _keywords(schema, path: str):
    """(path, keyword) for every keyword of every subschema."""
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        yield path, key
        here = f"{path}/{key}" if path else key
        if key in SCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                yield from _keywords(sub, f"{here}/{name}")
        elif key in SCHEMA_LISTS and isinstance(value, list) or key == "items" and isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _keywords(sub, f"{here}/{i}")
        elif key in SCHEMA_ONE:
            yield from _keywords(value, here)


def read_schema(path: Path) -> dict:
    """Load and validate one schema file (a JSON object)."""
    try:
        schema = json.loads(Path(path).read_text())
    except OSError:
        raise TaskFileError(f"Schema file {path} does not exist.", fix="check the name in the `schema` field.") \
            from None
    except json.JSONDecodeError as exc:
        raise TaskFileError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}).", fix="correct the JSON there.") \
            from None
    return validate_schema(schema, str(path))


def shape(schema: dict) -> str:
    """A short, human-readable sketch of a schema for the prompt, e.g. ``{"name": string, "age": integer}``.

    The full schema would not fit: the embedded model's 512-token context holds about 1,000 characters of JSON.
    """
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return "{" + ", ".join(f'"{k}": {shape(v)}' for k, v in schema["properties"].items()) + "}"
    if kind == "array":
        return "[" + shape(schema.get("items") or {}) + ", ...]"
    return kind if isinstance(kind, str) else "any"


def load_extraction(path: Path | None = None, schemas_dir: Path | None = None) -> list[FormatItem]:
    """The extraction set: one JSON object a line with id, schema (a file in schemas/), instruction, text, expected.

    Raises:
        TaskFileError: a line that is not JSON or lacks a field, a missing schema file, an invalid schema.
    """
    path = Path(path or format_dir() / "extraction.jsonl")
    schemas_dir = Path(schemas_dir or path.parent / "schemas")
    if not path.exists():
        raise TaskFileError(f"The extraction set {path} does not exist.", fix="restore data/format/ from git.")
    items, cache = [], {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskFileError(f"{path}, line {number}: not valid JSON ({exc.msg}).", fix="correct that line.") \
                from None
        missing = [k for k in ("id", "schema", "instruction", "text") if not row.get(k)] if isinstance(row, dict) \
            else ["id", "schema", "instruction", "text"]
        if missing:
            raise TaskFileError(f"{path}, line {number}: missing {', '.join(missing)}.",
                                fix="each line needs id, schema, instruction and text (expected is optional).")
        name = row["schema"]
        if name not in cache:
            cache[name] = read_schema(schemas_dir / name)
        schema = cache[name]
        prompt = EXTRACTION_PROMPT.format(instruction=row["instruction"], text=row["text"], shape=shape(schema))
        items.append(FormatItem("extraction", row["id"], prompt, schema, name, row.get("expected"),
                                {"text": row["text"]}))
    return items


def load_ifeval(path: Path | None = None) -> list[FormatItem]:
    """The IFEval prompts whose instructions include ``detectable_format:json_format`` (17 of 541): any JSON."""
    path = Path(path or get_settings().data_dir / "ifeval" / "input_data.jsonl")
    if not path.exists():
        raise TaskFileError(f"IFEval data {path} does not exist.", fix="restore data/ifeval/ from git.")
    items = []
    for line in path.read_text().splitlines():
        row = json.loads(line) if line.strip() else {}
        if IFEVAL_JSON in row.get("instruction_id_list", []):
            items.append(FormatItem("ifeval", str(row["key"]), row["prompt"], None, None, None,
                                    {"instructions": row["instruction_id_list"]}))
    return items


def load_items(sets=SETS, *, limit: int | None = None, schema: str | None = None) -> list[FormatItem]:
    """The items of ``sets`` (extraction, ifeval), the first ``limit`` of each; ``schema`` keeps one schema file.

    Raises:
        ConfigError: an unknown set or a bad limit.
    """
    sets = (sets,) if isinstance(sets, str) else tuple(sets)
    unknown = [s for s in sets if s not in SETS]
    if unknown or not sets:
        raise ConfigError(f"Unknown format set(s): {', '.join(unknown) or '(none given)'}.",
                          fix=f"use some of: {', '.join(SETS)}.")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, not {limit}.", fix="pass a positive number, or None for all.")
    items = []
    for name in sets:
        chosen = load_extraction() if name == "extraction" else load_ifeval()
        if schema is not None:
            chosen = [i for i in chosen if i.schema_file == schema]
        items += chosen[:limit]
    return items


def items_table(items: list[FormatItem]) -> pd.DataFrame:
    """The items as a table: set, item, schema file, prompt, expected."""
    return pd.DataFrame([{"set": i.set, "item": i.item, "schema": i.schema_file, "prompt": i.prompt,
                          "expected": i.expected} for i in items], columns=["set", "item", "schema", "prompt",
                                                                            "expected"])


def with_schema(items: list[FormatItem], schema: dict | str, name: str = "edited") -> list[FormatItem]:
    """The same items with another schema (a dict or JSON text), validated first; the prompt's shape follows."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise TaskFileError(f"schema {name}, line {exc.lineno}: not valid JSON ({exc.msg}).",
                                fix="correct the JSON there.") from None
    validate_schema(schema, f"schema {name}")
    out = []
    for item in items:
        prompt = item.prompt
        if item.set == "extraction" and item.schema is not None:
            prompt = prompt.replace(shape(item.schema), shape(schema))
        out.append(replace(item, schema=schema, schema_file=name, prompt=prompt))
    return out


# --- structured outputs ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _grammar(schema_json: str) -> str:
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


# --- reading promptfoo's output ----------------------------------------------------------------------------------

def _judgement(named: dict, components: list[dict]) -> tuple[bool | None, bool | None]:
    """(parsed, schema_ok) from the named metrics, else from whatever is-json assertions the test has."""
    if PARSE_METRIC in named or SCHEMA_METRIC in named:
        parsed = bool(named[PARSE_METRIC] >= 1) if PARSE_METRIC in named else None
        schema_ok = bool(named[SCHEMA_METRIC] >= 1) if SCHEMA_METRIC in named else None
        return parsed, schema_ok
    parsed = schema_ok = None
    for comp in components:
        assertion = comp.get("assertion") or {}
        if assertion.get("type") != "is-json":
            continue
        ok = bool(comp.get("pass"))
        if assertion.get("value") is None:
            parsed = ok if parsed is None else parsed and ok
        else:
            schema_ok = ok if schema_ok is None else schema_ok and ok
            conforms = "does not conform" in str(comp.get("reason", ""))
            parsed = (ok or conforms) if parsed is None else parsed and (ok or conforms)
    return parsed, schema_ok


def rows_from_output(out_path: Path, *, max_tokens: int | None = None, items: list[FormatItem] | None = None,
                     structured_labels: set[str] | None = None) -> list[dict]:
    """One row per promptfoo result: set, item, structured, prompt, output, parsed, schema_ok, reason, latency, ...

    Args:
        out_path: promptfoo's ``out.json``.
        max_tokens: the output limit, to flag outputs that hit it (``truncated``).
        items: the items the config was built from (adds ``expected`` and ``schema_file``).
        structured_labels: provider labels that mean "structured" (for configs without evalkit's metadata).
    """
    table = parse_output(out_path)
    known = {(i.set, i.item): i for i in items or []}
    rows = []
    for _, row in table.iterrows():
        meta = row["metadata"] or {}
        parsed, schema_ok = _judgement(row["named_scores"], row["components"])
        error = str(row["error"] or "")
        item = known.get((meta.get("set"), meta.get("item")))
        if error:  # the request failed: nothing parsed, and a schema that was to be checked did not pass
            has_schema = meta.get("schema_file") is not None or (item is not None and item.schema is not None)
            parsed, schema_ok = False, (False if has_schema or schema_ok is not None else None)
        structured = meta.get("structured")
        if structured is None:
            structured = bool(structured_labels and row["provider"] in structured_labels)
        tokens = row["completion_tokens"]
        rows.append({
            "set": meta.get("set") or "custom",
            "item": str(meta.get("item") or row["description"] or f"test {row['test_idx']}"),
            "structured": bool(structured),
            "whitespace": meta.get("whitespace"),
            "prompt": row["prompt"],
            "output": row["output"],
            "parsed": parsed,
            "schema_ok": schema_ok,
            "reason": row["reason"],
            "error": error,
            "latency_ms": row["latency_ms"],
            "completion_tokens": None if pd.isna(tokens) else int(tokens),
            "truncated": bool(max_tokens and not pd.isna(tokens) and tokens >= max_tokens),
            "schema_file": meta.get("schema_file"),
            "expected": item.expected if item else None,
            "test_idx": int(row["test_idx"]) if not pd.isna(row["test_idx"]) else None,
        })
    return rows


COLUMNS = ["set", "item", "structured", "whitespace", "prompt", "output", "parsed", "schema_ok", "reason", "error",
           "latency_ms", "completion_tokens", "truncated", "schema_file", "expected", "test_idx"]


class FormatResult(LayerResult):
    """Result of :func:`check_format`: one row per promptfoo test (item x structured on/off)."""

    layer: ClassVar[str] = "format"

    sets: list[str]
    rows: list[dict]
    promptfoo: dict = {}

    def frame(self) -> pd.DataFrame:
        """One row per test: set, item, structured, prompt, output, parsed, schema_ok, reason, latency_ms, ..."""
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def summary(self, by=("set", "structured")) -> pd.DataFrame:
        """Parse rate and schema pass rate per group (default: per set and structured on/off).

        Columns: the ``by`` keys, n, parse_rate, schema_n (items with a schema), schema_pass_rate,
        truncated_rate (outputs that hit max_tokens), errors (requests that failed), latency_ms (mean),
        completion_tokens (mean). Request errors count as not parsed.
        """
        by = [by] if isinstance(by, str) else list(by)
        df = self.df
        out = []
        for key, group in (df.groupby(by, sort=False) if len(df) else []):
            key = key if isinstance(key, tuple) else (key,)
            parse, n_parse = rate(group["parsed"])
            schema, n_schema = rate(group["schema_ok"])
            out.append({**dict(zip(by, key, strict=True)), "n": len(group), "parse_rate": parse, "schema_n": n_schema,
                        "schema_pass_rate": schema, "truncated_rate": float(group["truncated"].mean()),
                        "errors": int((group["error"] != "").sum()),
                        "latency_ms": float(pd.to_numeric(group["latency_ms"]).mean()),
                        "completion_tokens": float(pd.to_numeric(group["completion_tokens"]).mean())})
        return pd.DataFrame(out, columns=[*by, "n", "parse_rate", "schema_n", "schema_pass_rate", "truncated_rate",
                                          "errors", "latency_ms", "completion_tokens"])

    def items(self) -> dict[str, dict[str, bool | None]]:
        """Per-item verdicts behind the rate metrics (``set:item`` -> parsed / schema ok), for paired tests."""
        df = self.df
        out: dict[str, dict[str, bool | None]] = {}
        for on in (False, True):
            part = df[df["structured"] == on] if len(df) else df
            for row in part.itertuples():
                key = f"{row.set}:{row.item}"
                out.setdefault(f"json_parse_rate_{MODES[on]}", {})[key] = bool(row.parsed)
                if row.schema_ok is not None and not pd.isna(row.schema_ok):
                    out.setdefault(f"schema_pass_rate_{MODES[on]}", {})[key] = bool(row.schema_ok)
        return out

    def metrics(self) -> list[Metric]:
        """Scorecard rows, named in :data:`METRICS`; only the modes and sets that ran appear."""
        df = self.df
        out: list[Metric] = []

        def add(name: str, values: pd.Series, note: str = "") -> None:
            out.append(catalog_metric(self.layer, METRICS, name, *rate(values), note))

        for on in (False, True):
            part = df[df["structured"] == on] if len(df) else df
            if part.empty:
                continue
            mode = MODES[on]
            errors = int((part["error"] != "").sum())
            note = f"{errors} request errors counted as not parsed" if errors else ""
            add(f"json_parse_rate_{mode}", part["parsed"], note)
            if part["schema_ok"].notna().any():
                add(f"schema_pass_rate_{mode}", part["schema_ok"], note)
            for name in SETS:
                subset = part[part["set"] == name]
                if len(subset):
                    extra = "code fence stripped before parsing, as IFEval does" if name == "ifeval" else ""
                    add(f"{name}_json_parse_rate_{mode}", subset["parsed"], "; ".join(x for x in (extra, note) if x))
            if on and self.params.get("max_tokens"):  # a learner's config may set several: not judged then
                add("truncated_rate_structured", part["truncated"],
                    f"hit max_tokens={self.params.get('max_tokens')}; whitespace={self.params.get('whitespace')}")
        return out

    def table(self) -> pd.DataFrame:
        """The metrics as a table with what each one means."""
        rows = [{**m.model_dump(exclude={"layer"}), "what": METRICS[m.metric]["doc"]} for m in self.metrics()]
        return pd.DataFrame(rows, columns=["metric", "value", "unit", "direction", "n", "what", "note"])

    def failures(self, structured: bool | None = None) -> pd.DataFrame:
        """The rows that did not parse or did not match their schema (optionally of one mode)."""
        df = self.df
        bad = (df["parsed"] == False) | (df["schema_ok"] == False)  # noqa: E712 - None means "not checked"
        if structured is not None:
            bad &= df["structured"] == structured
        return df[bad][["set", "item", "structured", "output", "reason", "completion_tokens", "error"]]


def compare(results: dict[str, FormatResult], by=("set", "structured")) -> pd.DataFrame:
    """Summaries of several results side by side (e.g. per concurrency level or per model), keyed by label."""
    frames = []
    for label, result in results.items():
        table = result.summary(by)
        table.insert(0, "model", result.model)
        table.insert(0, "run", label)
        table.insert(2, "concurrency", result.params.get("concurrency"))
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --- the run ---------------------------------------------------------------------------------------------------

def check_format(
    srv,
    *,
    sets=SETS,
    structured: Structured = "both",
    max_tokens: int | None = None,
    limit: int | None = None,
    concurrency: int | None = None,
    whitespace: Whitespace = "compact",
    items: list[FormatItem] | None = None,
    config: str | Path | None = None,
    run_dir: str | Path | None = None,
    echo: bool = True,
    timeout_s: float | None = None,
) -> FormatResult:
    """Run the format layer with promptfoo against ``srv`` and save ``<run_dir>/result.json``.

    Args:
        srv: the model server (:class:`evalkit.serve.Server`).
        sets: some of "extraction" (data/format, with schemas) and "ifeval" (IFEval's JSON prompts, parse only).
        structured: False (prompt only), True (with structured outputs) or "both" ("off"/"on" work too).
        max_tokens: output tokens per answer; also the safety net that ends a runaway output (default: the
            ``format_max_tokens`` setting, 192).
        limit: the first ``limit`` items of each set (None: all).
        concurrency: promptfoo's parallel requests, ``-j`` (default: the ``promptfoo_concurrency`` setting, 32).
        whitespace: "compact" (evalkit sends a grammar without free whitespace) or "any" (plain
            ``response_format: json_schema``; on a default vLLM server a small model may emit whitespace until
            ``max_tokens``).
        items: run these items instead of ``sets``/``limit`` (see :func:`load_items`, :func:`with_schema`).
        config: run a promptfooconfig.yaml of your own instead; its ``is-json`` checks (or assertions with
            ``metric: json_parse`` / ``metric: schema``) give the rates, its test ``metadata`` the set/item.
        run_dir: folder for the config, promptfoo's files and result.json (default: a new one under runs/).
        echo: stream promptfoo's output.
        timeout_s: stop promptfoo after this long.

    Raises:
        ConfigError: an unknown set or structured/whitespace value, a bad limit or concurrency.
        ContextLengthError: ``max_tokens`` does not fit the model's context, or prompts were refused as too long.
        TaskFileError: an invalid JSON Schema (file and jsonschema message named), a malformed data or config file.
        ServerDiedError, ToolError, ToolMissingError: from the promptfoo run.
    """
    from evalkit.envreport import env_report, node_version, promptfoo_version

    max_tokens = get_settings().format_max_tokens if max_tokens is None else max_tokens
    if max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1, not {max_tokens}.", fix="pass a positive number.")
    if srv.max_model_len and max_tokens >= srv.max_model_len:
        raise ContextLengthError(f"max_tokens={max_tokens} leaves no room for the prompt in {srv.model}'s context of "
                                 f"{srv.max_model_len} tokens.", fix=f"use max_tokens well below {srv.max_model_len}.")
    if concurrency is not None and concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}.", fix="pass a positive number.")
    concurrency = concurrency or get_settings().promptfoo_concurrency
    modes = modes_of(structured)
    if whitespace not in ("compact", "any"):
        structured_request({}, whitespace)  # raises the ConfigError
    labels: set[str] = set()
    if config is not None:
        config_path = Path(config).resolve()
        labels = _check_own_config(config_path)
        items = []
        chosen_sets = ["custom"]
    else:
        items = list(items) if items is not None else load_items(sets, limit=limit)
        if not items:
            raise ConfigError("No items to check.", fix="check `sets`, `limit` and `schema`.")
        for item in items:
            if item.schema is not None:
                validate_schema(item.schema, f"{item.set} item {item.item} ({item.schema_file})")
        chosen_sets = sorted({i.set for i in items}, key=lambda s: SETS.index(s) if s in SETS else len(SETS))
    run_dir = Path(run_dir) if run_dir else new_run_dir("format")
    run_dir.mkdir(parents=True, exist_ok=True)
    if config is None:
        config_path = write_config(format_config(srv, items, structured=structured, max_tokens=max_tokens,
                                                 whitespace=whitespace), run_dir / "promptfooconfig.yaml")
    run = run_promptfoo(config_path, run_dir=run_dir, max_concurrency=concurrency, srv=srv, echo=echo,
                        timeout_s=timeout_s)
    rows = rows_from_output(run.output_path, max_tokens=max_tokens if config is None else None, items=items,
                            structured_labels=labels)
    _raise_request_errors(rows, run_dir, max_tokens)
    result = FormatResult(
        run_dir=str(run_dir), model=srv.model, base_url=srv.base_url, sets=chosen_sets, rows=rows,
        params={"sets": chosen_sets, "structured": [MODES[m] for m in modes] if config is None else None,
                "max_tokens": max_tokens if config is None else None, "limit": limit, "concurrency": concurrency,
                "whitespace": whitespace if config is None else None,
                "config": str(config_path) if config is not None else None, "items": len(items) or None},
        env=env_report(), tool_versions={"promptfoo": promptfoo_version(), "node": node_version()},
        promptfoo={"returncode": run.returncode, "duration_s": round(run.duration_s, 2), "config": config_path.name,
                   "output": run.output_path.name, **eval_stats(run.output_path)},
    )
    result.save()
    return result


def _check_own_config(path: Path) -> set[str]:
    """Validate the JSON Schemas in a learner's config; return the labels of providers that constrain output."""
    data = check_config_file(path)
    for i, test in enumerate(data.get("tests") or [], start=1):
        if not isinstance(test, dict):
            continue
        for check in test.get("assert") or []:
            value = check.get("value") if isinstance(check, dict) else None
            if value is not None and check.get("type") in ("is-json", "contains-json"):
                if isinstance(value, str) and value.startswith("file://"):
                    value = read_schema(path.parent / value[len("file://"):])
                elif isinstance(value, str):
                    value = yaml.safe_load(value)
                validate_schema(value, f"{path}, test {i} ({test.get('description') or 'no description'})")
    labels = set()
    for entry in data.get("providers") or []:
        if isinstance(entry, dict):
            conf = entry.get("config") or {}
            passthrough = conf.get("passthrough") or {}
            if conf.get("response_format") or passthrough.get("response_format") or \
                    passthrough.get("structured_outputs"):
                labels.add(entry.get("label") or entry.get("id"))
    return labels


def _raise_request_errors(rows: list[dict], run_dir: Path, max_tokens: int) -> None:
    """Requests refused as too long raise ContextLengthError; a run where every request failed raises ToolError."""
    errors = [r["error"] for r in rows if r["error"]]
    if not errors:
        return
    too_long = [e for e in errors if re.search(r"context length|maximum context|too long|max_model_len", e, re.I)]
    if too_long:
        raise ContextLengthError(f"{len(too_long)} of {len(rows)} requests were refused as too long: "
                                 f"{too_long[0][:300]}", fix=f"lower max_tokens (now {max_tokens}) or use --limit / "
                                 "shorter prompts.", kept=run_dir)
    if len(errors) == len(rows):
        raise ToolError(f"Every request failed; the first: {errors[0][:400]}",
                        fix="check the server (`evalkit status`) and the request fields in promptfooconfig.yaml.",
                        kept=run_dir)


def check_under_load(srv, *, concurrencies=None, run_dir: str | Path | None = None,
                     **kwargs) -> dict[str, FormatResult]:
    """The same check at several promptfoo concurrencies (one subfolder each), to see if compliance degrades.

    Args:
        srv: the model server.
        concurrencies: promptfoo ``-j`` values (default: 1 and the ``promptfoo_concurrency`` setting).
        run_dir: the parent folder of the runs (default: a new one under runs/).
        **kwargs: passed to :func:`check_format`.

    Returns:
        ``{"c1": result, "c16": result, ...}``; pass it to :func:`compare`.
    """
    concurrencies = concurrencies or (1, get_settings().promptfoo_concurrency)
    root = Path(run_dir) if run_dir else new_run_dir("format-load")
    return {f"c{c}": check_format(srv, concurrency=c, run_dir=root / f"c{c}", **kwargs) for c in concurrencies}


# --- command line ----------------------------------------------------------------------------------------------

def register_cli(subparsers) -> None:
    """``evalkit format``: JSON parse rate and schema pass rate, with and without structured outputs."""
    p = subparsers.add_parser("format", help="JSON parse and schema pass rates, structured outputs on/off (promptfoo)")
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS, metavar="SET",
                   help=f"some of {', '.join(SETS)} (default: both)")
    p.add_argument("--structured", choices=["on", "off", "both"], default="both",
                   help="structured outputs on, off, or both (default)")
    p.add_argument("--whitespace", choices=["compact", "any"], default="compact",
                   help="compact: a grammar without free whitespace (default); any: plain response_format")
    p.add_argument("--max-tokens", type=int, default=None,
                   help=f"output tokens per answer (default {get_settings().format_max_tokens})")
    p.add_argument("--limit", type=int, default=None, help="first N items of each set (default: all)")
    p.add_argument("--concurrency", type=int, default=None,
                   help=f"promptfoo -j (default {get_settings().promptfoo_concurrency})")
    p.add_argument("--config", default=None, help="run your own promptfooconfig.yaml instead")
    p.add_argument("--run-dir", default=None, help="folder for the results (default: a new one under runs/)")
    p.add_argument("--base-url", default=None, help="attach to this endpoint (default: settings, or start vLLM)")
    p.add_argument("--model", default=None)
    p.set_defaults(func=_cmd_format)


def _cmd_format(args) -> int:
    from evalkit.serve import serve

    with serve(args.model, base_url=args.base_url) as srv:
        result = check_format(srv, sets=args.sets, structured=args.structured, max_tokens=args.max_tokens,
                              limit=args.limit,
                              concurrency=args.concurrency, whitespace=args.whitespace, config=args.config,
                              run_dir=args.run_dir)
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(result.summary().to_string(index=False))
        print()
        print(result.table().to_string(index=False))
    print(f"saved {result.path / 'result.json'}")
    return 0
