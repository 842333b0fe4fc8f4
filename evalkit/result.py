"""The typed result every layer's result extends, its scorecard rows, and reading ``result.json``.

A layer's result (:class:`LayerResult`) saves to and loads from ``result.json`` with a schema version and a kind;
it turns into scorecard rows (:class:`Metric`) with :meth:`LayerResult.metrics`, each named in the layer's
catalogue of metrics (``METRICS``: name -> :class:`MetricSpec`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Literal

import pandas as pd
from pydantic import BaseModel, Field

from evalkit.errors import ResultFileError, RunNotFoundError

RESULT_FILE = "result.json"
SCHEMA_VERSION = 1  # of result.json; files written before the field existed have the same shape (version 1)

Direction = Literal["higher", "lower"]
FRACTION = "fraction"  # the unit of every rate


def rate(flags: pd.Series) -> tuple[float | None, int]:
    """The share of true flags among the judged ones (None = not judged) and how many were judged."""
    judged = flags.dropna()
    return (float(judged.astype(bool).mean()) if len(judged) else None), int(len(judged))


@dataclass(frozen=True)
class MetricSpec:
    """What a metric of a layer's catalogue is: its unit, which direction is better, and one line on its meaning."""

    unit: str
    direction: Direction
    doc: str


@dataclass(frozen=True)
class ToolRun:
    """One tool command a result ran (its argument list, secrets redacted) and how long it ran (None: unknown)."""

    command: list[str]
    duration_s: float | None = None


class Metric(BaseModel):
    """One number a layer reports; the scorecard adds run context, threshold and verdict."""

    layer: str
    metric: str
    value: float | None
    unit: str = ""
    direction: Direction = "higher"
    n: int | None = None
    note: str = ""


def catalog_metric(layer: str, catalog: dict[str, MetricSpec], name: str, value, n: int | None = None,
                   note: str = "", *, unit: str | None = None, direction: Direction | None = None) -> Metric:
    """A :class:`Metric` whose unit and direction come from a layer's ``METRICS`` catalogue.

    ``unit`` and ``direction`` are used for a name the catalogue lacks (a learner's own task); a missing value
    (None or NaN) stays None: the scorecard shows it as not measured.
    """
    spec = catalog.get(name) or MetricSpec(unit or "", direction or "higher", "")
    missing = value is None or bool(pd.isna(value))
    return Metric(layer=layer, metric=name, value=None if missing else float(value), unit=spec.unit,
                  direction=spec.direction, n=n, note=note)


class LayerResult(BaseModel):
    """Fields every layer's result has; subclasses add their own and implement :meth:`frame` and :meth:`metrics`.

    Every result speaks the same words: ``df`` (its rows), ``metrics()`` (its scorecard rows),
    ``metrics_table()`` (those rows with what each metric means) and ``summary()`` (the table a reader looks at
    first), all DataFrames except ``metrics()``.

    ``layer`` is the pyramid layer a result belongs to (its scorecard rows and thresholds); ``kind`` names the
    result type and is unique per class (a layer's main result has the layer's name as its kind), so a scan for
    a layer's newest result never takes another type's file.
    """

    layer: ClassVar[str] = "layer"
    kind: ClassVar[str] = ""
    catalog: ClassVar[dict[str, MetricSpec]] = {}  # the layer's METRICS

    run_dir: str
    model: str
    base_url: str = ""
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    params: dict = Field(default_factory=dict)
    env: dict = Field(default_factory=dict)
    tool_versions: dict = Field(default_factory=dict)

    @classmethod
    def result_kind(cls) -> str:
        return cls.kind or cls.layer

    @property
    def path(self) -> Path:
        return Path(self.run_dir)

    def save(self, path: Path | None = None) -> Path:
        """Write the result as JSON (default: ``<run_dir>/result.json``)."""
        path = Path(path) if path else self.path / RESULT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"schema": SCHEMA_VERSION, "kind": self.result_kind(), "layer": self.layer,
                **self.model_dump(mode="json")}
        path.write_text(json.dumps(data, indent=2))
        return path

    @classmethod
    def load(cls, path: Path | str):
        """Read a result saved by :meth:`save` (a file, or a run folder holding result.json).

        Raises:
            RunNotFoundError: there is no result.json.
            ResultFileError: it is cut short, of another kind, or of an unknown schema version.
        """
        path = Path(path)
        if path.is_dir():
            path = path / RESULT_FILE
        if not path.exists():
            raise RunNotFoundError(f"{path} does not exist: that run did not finish this layer.",
                                   fix="rerun the layer, or pick another run folder.")
        data = read_result(path)
        kind = data.get("kind") or cls.result_kind()  # files older than the field: the layer's own class reads them
        if kind != cls.result_kind() or data["layer"] != cls.layer:
            raise ResultFileError(f"{path} holds a {kind!r} result, not a {cls.result_kind()!r} one.",
                                  fix=f"load it with the class for {kind!r}, or pick another file.")
        for key in ("schema", "kind", "layer"):
            data.pop(key, None)
        return cls.model_validate(data)

    def frame(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def df(self) -> pd.DataFrame:
        """The main table of this result."""
        return self.frame()

    def metrics(self) -> list[Metric]:  # pragma: no cover - abstract
        raise NotImplementedError

    def metrics_table(self) -> pd.DataFrame:
        """The scorecard rows of this result with what each metric means (from its layer's ``METRICS``)."""
        rows = [{**m.model_dump(exclude={"layer"}), "what": spec.doc if (spec := self.catalog.get(m.metric)) else ""}
                for m in self.metrics()]
        return pd.DataFrame(rows, columns=["metric", "value", "unit", "direction", "n", "what", "note"])

    def summary(self) -> pd.DataFrame:
        """The table a reader looks at first (here: all rows; layers narrow it)."""
        return self.df

    def tool_runs(self) -> list[ToolRun]:
        """The tool commands this result ran, in order (the by-hand cells and the benchmarks replay them)."""
        return []


def read_result(path: Path) -> dict:
    """The JSON of a result file, checked for a layer and a known schema; :class:`ResultFileError` otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResultFileError(f"{path} cannot be read as a result: {exc}. It may have been cut short by a crash "
                              "or a full disk.", fix="rerun the layer that wrote it (`evalkit run --resume` for a "
                              "run), or delete the file.") from None
    if not isinstance(data, dict) or not isinstance(data.get("layer"), str):
        raise ResultFileError(f"{path} is not a result file (no layer named in it).",
                              fix="pick a result.json that an evalkit layer wrote.")
    version = data.get("schema", 1)
    if version != SCHEMA_VERSION:
        raise ResultFileError(f"{path} has result schema version {version!r}; this evalkit reads version "
                              f"{SCHEMA_VERSION}.", fix="read it with the evalkit version that wrote it, or rerun "
                              "the layer to write it again.")
    return data


def kind_of(data: dict) -> str:
    """The result kind of a result file's contents (files older than the field: their layer's name)."""
    return data.get("kind") or data["layer"]


