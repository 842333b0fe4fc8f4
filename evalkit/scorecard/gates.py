"""Thresholds and gates: ``thresholds.yaml`` sets a ``min`` or ``max`` per metric; :func:`gate` applies it.

It writes JUnit XML and a Markdown summary and says whether CI should pass. A threshold on a metric that a run
did not produce fails: "not measured" is not a pass.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pandas as pd
import yaml

from evalkit.errors import ConfigError
from evalkit.runs import resolve_run_dir
from evalkit.scorecard.collect import Row, Scorecard, collect, metric_catalog
from evalkit.settings import get_settings

JUNIT_FILE, SUMMARY_FILE = "gates.junit.xml", "summary.md"


def default_thresholds_path() -> Path:
    return get_settings().project_dir / "thresholds.yaml"


def load_thresholds(path: Path | str | None = None, catalog: dict | None = None) -> dict[str, dict[str, dict]]:
    """Read and check a thresholds file: ``{layer: {metric: {min|max: number, why: text}}}``.

    Raises:
        ConfigError: unknown layer or metric (the valid ones are listed), or a bound that is not a number.
    """
    path = Path(path) if path else default_thresholds_path()
    if not path.exists():
        raise ConfigError(f"Thresholds file {path} does not exist.", fix="pass --thresholds FILE or restore "
                          "thresholds.yaml.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", fix="correct the YAML.") from None
    catalog = catalog if catalog is not None else metric_catalog()
    for layer, metrics in data.items():
        if layer not in catalog:
            raise ConfigError(f"{path}: unknown layer {layer!r}.", fix=f"valid layers: {', '.join(catalog)}.")
        for metric, spec in (metrics or {}).items():
            if metric not in catalog[layer]:
                raise ConfigError(
                    f"{path}: layer {layer!r} has no metric {metric!r}.",
                    fix=f"valid metrics of {layer}: {', '.join(sorted(catalog[layer]))}.",
                )
            bounds = [k for k in ("min", "max") if k in (spec or {})]
            if len(bounds) != 1 or not isinstance(spec[bounds[0]], (int, float)) or isinstance(spec[bounds[0]], bool):
                raise ConfigError(f"{path}: {layer}.{metric} needs exactly one numeric `min:` or `max:`.",
                                  fix="for example `min: 0.5`.")
    return data


def apply_thresholds(card: Scorecard, thresholds: dict[str, dict[str, dict]]) -> Scorecard:
    """Set threshold/bound/passed on the rows the thresholds name; add failing rows for unmeasured metrics."""
    rows = [r.model_copy(update={"threshold": None, "bound": None, "passed": None}) for r in card.rows]
    found = set()
    for row in rows:
        spec = thresholds.get(row.layer, {}).get(row.metric)
        if not spec:
            continue
        bound = "min" if "min" in spec else "max"
        row.bound, row.threshold = bound, float(spec[bound])
        row.passed = row.value is not None and (row.value >= row.threshold if bound == "min"
                                                else row.value <= row.threshold)
        found.add((row.layer, row.metric))
    for layer, metrics in thresholds.items():
        for metric, spec in (metrics or {}).items():
            if (layer, metric) not in found:
                bound = "min" if "min" in spec else "max"
                rows.append(Row(run_id=card.run_id, time=datetime.now().isoformat(timespec="seconds"), model="",
                                layer=layer, metric=metric, value=None, bound=bound, threshold=float(spec[bound]),
                                passed=False, note="not measured: the layer did not run or failed"))
    return card.model_copy(update={"rows": rows})


def _verdict(row: pd.Series) -> str:
    if row["value"] is None or pd.isna(row["value"]):
        return "not measured"
    op = ">=" if row["bound"] == "min" else "<="
    return f"{row['value']:.4g} {op} {row['threshold']:.4g}" if row["passed"] else \
        f"{row['value']:.4g} is not {op} {row['threshold']:.4g}"


def junit_xml(card: Scorecard) -> str:
    """One JUnit test case per gate (classname = layer), failures carry the verdict."""
    gates = card.gates()
    failures = int((~gates["passed"].astype(bool)).sum())
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="evalkit gates" tests="{len(gates)}" failures="{failures}" errors="0">']
    for _, row in gates.iterrows():
        name = f'classname={quoteattr(row["layer"])} name={quoteattr(row["metric"])}'
        if row["passed"]:
            lines.append(f"  <testcase {name}/>")
        else:
            lines.append(f"  <testcase {name}><failure message={quoteattr(_verdict(row))}>"
                         f"{escape(str(row['note']))}</failure></testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


def markdown_summary(card: Scorecard) -> str:
    """The gates as a Markdown table, for a CI job summary or a pull-request comment."""
    gates = card.gates()
    verdict = "PASSED" if card.passed else "FAILED"
    out = [f"## evalkit gates: {verdict} ({int(gates['passed'].sum())}/{len(gates)} passed, run {card.run_id})", "",
           "| layer | metric | value | gate | result |", "|---|---|---|---|---|"]
    for _, row in gates.iterrows():
        value = "not measured" if row["value"] is None or pd.isna(row["value"]) else f"{row['value']:.4g} {row['unit']}"
        gate = f"{'>=' if row['bound'] == 'min' else '<='} {row['threshold']:.4g}"
        out.append(f"| {row['layer']} | {row['metric']} | {value} | {gate} | {'pass' if row['passed'] else 'FAIL'} |")
    return "\n".join(out) + "\n"


def gate(run: Path | str | None, thresholds: Path | str | dict | None = None,
         out_dir: Path | None = None) -> Scorecard:
    """Collect a run's scorecard, apply thresholds, and write scorecard.json/.csv, JUnit XML and summary.md.

    Args:
        run: a run folder (None: the newest result of each layer).
        thresholds: a thresholds file, an already-loaded dict, or None for the repository's thresholds.yaml.
        out_dir: where to write (default: the run folder).
    """
    spec = thresholds if isinstance(thresholds, dict) else load_thresholds(thresholds)
    card = apply_thresholds(collect(run), spec)
    out = Path(out_dir) if out_dir else (resolve_run_dir(run) if run else get_settings().runs_dir / "latest-gate")
    card.save(out)
    (out / JUNIT_FILE).write_text(junit_xml(card))
    (out / SUMMARY_FILE).write_text(markdown_summary(card))
    return card
