"""The format layer's data: the extraction set (data/format, each item with a JSON Schema) and IFEval's JSON prompts.

Every schema is checked with ``jsonschema`` before anything runs; :func:`with_schema` pairs a learner's own schema
with the items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.envreport import package_version
from evalkit.errors import ConfigError, TaskFileError
from evalkit.memo import remembered
from evalkit.settings import get_settings

if TYPE_CHECKING:  # pandas loads when a function needs it: the command line starts quickly
    import pandas as pd

SETS = ("extraction", "ifeval")
IFEVAL_JSON = "detectable_format:json_format"
IFEVAL_SCHEMA = {"type": "object"}  # the constraint for IFEval's free-form "wrap it in JSON" prompts
EXTRACTION_PROMPT = "{instruction}\nText: {text}\nAnswer with JSON only, in this shape: {shape}\nJSON:"

# keywords JSON Schema defines without a validation rule; promptfoo's Ajv (strict) accepts these as well
ANNOTATIONS = {"$schema", "$id", "id", "$ref", "$comment", "$defs", "definitions", "title", "description", "default",
               "examples", "readOnly", "writeOnly", "deprecated", "format", "contentMediaType", "contentEncoding",
               "contentSchema", "$anchor", "$dynamicAnchor", "$dynamicRef", "$vocabulary", "$recursiveRef",
               "$recursiveAnchor", "nullable"}
SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("additionalProperties", "additionalItems", "not", "if", "then", "else", "contains", "propertyNames",
              "unevaluatedItems", "unevaluatedProperties", "items", "contentSchema")

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
    if not isinstance(schema, dict):
        raise TaskFileError(f"{where}: a JSON Schema must be a JSON object, not {type(schema).__name__}.",
                            fix='write it as an object, e.g. {"type": "object", "properties": {...}}.')
    # a schema found valid once is not checked again in a later process (importing jsonschema takes seconds)
    key = f"jsonschema {package_version('jsonschema')}\n{json.dumps(schema, sort_keys=True)}"
    remembered("valid-schemas", key, lambda: _check_schema(schema, where))
    return schema


def _check_schema(schema: dict, where: str) -> str:
    from jsonschema import Draft7Validator, exceptions, validators

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
    return "valid"


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
    import pandas as pd

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
