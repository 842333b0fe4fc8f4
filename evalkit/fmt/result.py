"""The typed result of layer 2: :class:`FormatResult`, read from promptfoo's output rows.

:data:`METRICS` lists the scorecard metrics (parse and schema pass rates per mode and set).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pandas as pd

from evalkit.fmt.config import MODES, PARSE_METRIC, SCHEMA_METRIC
from evalkit.fmt.items import SETS, FormatItem
from evalkit.promptfoo import parse_output, recorded_runs
from evalkit.result import FRACTION, LayerResult, Metric, MetricSpec, ToolRun, catalog_metric, rate

F = FRACTION
METRICS: dict[str, MetricSpec] = {
    "json_parse_rate_plain": MetricSpec(F, "higher", "outputs that parse as JSON, no constraint"),
    "json_parse_rate_structured": MetricSpec(F, "higher", "outputs that parse as JSON, with structured outputs"),
    "schema_pass_rate_plain": MetricSpec(F, "higher", "outputs that match their JSON Schema, no constraint"),
    "schema_pass_rate_structured": MetricSpec(F, "higher",
                                              "outputs that match their JSON Schema, with structured outputs"),
    "extraction_json_parse_rate_plain": MetricSpec(F, "higher", "extraction set: parse, plain"),
    "extraction_json_parse_rate_structured": MetricSpec(F, "higher", "extraction set: parse, structured"),
    "ifeval_json_parse_rate_plain": MetricSpec(F, "higher",
                                               "IFEval JSON prompts: parse (code fence stripped, as IFEval), plain"),
    "ifeval_json_parse_rate_structured": MetricSpec(F, "higher", "IFEval JSON prompts: parse, structured"),
    "truncated_rate_structured": MetricSpec(F, "lower",
                                            "structured outputs that hit max_tokens (runaway whitespace or values)"),
}

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

    catalog: ClassVar[dict[str, MetricSpec]] = METRICS

    sets: list[str]
    rows: list[dict]
    promptfoo: dict = {}

    def frame(self) -> pd.DataFrame:
        """One row per test: set, item, structured, prompt, output, parsed, schema_ok, reason, latency_ms, ..."""
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def tool_runs(self) -> list[ToolRun]:
        return recorded_runs(self.promptfoo)

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

    def failures(self, structured: bool | None = None) -> pd.DataFrame:
        """The rows that did not parse or did not match their schema (optionally of one mode)."""
        df = self.df
        bad = (df["parsed"] == False) | (df["schema_ok"] == False)  # noqa: E712 - None means "not checked"
        if structured is not None:
            bad &= df["structured"] == structured
        return df[bad][["set", "item", "structured", "output", "reason", "completion_tokens", "error"]]


def side_by_side(results: Mapping[str, FormatResult], by=("set", "structured")) -> pd.DataFrame:
    """Summaries of several results side by side (e.g. per concurrency level or per model), keyed by label."""
    frames = []
    for label, result in results.items():
        table = result.summary(by)
        table.insert(0, "model", result.model)
        table.insert(0, "run", label)
        table.insert(2, "concurrency", result.params.get("concurrency"))
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
