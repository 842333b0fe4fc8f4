"""The measured figures the notebooks, README and workshop.md quote, and the check of a run against them.

Every "what you should see" figure lives once, in ``docs/figures.yaml``: the words the text uses (``text``), the
interval those words stand for (``low``-``high``), the parameters it was measured with (``when``) and the value
the last recorded run measured (``measured``). A notebook calls :func:`expect` directly under the result a figure
describes: it prints the expectation beside this run's value and says whether the run agrees. With the
environment variable ``EVALKIT_FIGURES_LOG`` set (``make docs`` sets it), every check is also appended to that
file, and ``scripts/build_docs.py`` fails when a figure measured at the stated parameters left its interval.
``tests/unit/test_figures.py`` checks the other direction: every quoted ``text`` lies in its interval and
appears in the notebook (and the files) that cite it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from evalkit.errors import ConfigError

FIGURES_FILE = Path("docs") / "figures.yaml"
LOG_ENV = "EVALKIT_FIGURES_LOG"


@dataclass(frozen=True)
class Figure:
    """One measured figure: what it is, the words that quote it, its interval, and how it was measured."""

    key: str
    notebook: str
    what: str
    text: str
    low: float
    high: float
    when: dict = field(default_factory=dict)
    measured: float | None = None
    cited_in: tuple[str, ...] = ()
    gpu: dict = field(default_factory=dict)  # {hardware row: {text, source}}: expected there, not measured here

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high


def figures_path() -> Path:
    from evalkit.settings import get_settings

    return get_settings().project_dir / FIGURES_FILE


def load_figures(path: Path | None = None) -> dict[str, Figure]:
    """Every figure of ``docs/figures.yaml`` by key; a malformed entry is named with the fix."""
    path = Path(path) if path else figures_path()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the figures file {path}: {exc}", fix="restore docs/figures.yaml from git.") \
            from None
    figures = {}
    for key, entry in data.items():
        try:
            figures[key] = Figure(key=key, notebook=entry["notebook"], what=entry["what"], text=str(entry["text"]),
                                  low=float(entry["low"]), high=float(entry["high"]), when=entry.get("when") or {},
                                  measured=entry.get("measured"), cited_in=tuple(entry.get("cited_in") or ()),
                                  gpu=entry.get("gpu") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: figure {key!r} is malformed ({exc!r}).",
                              fix="give it notebook, what, text, low and high (and optionally when, measured, "
                              "cited_in).") from None
    return figures


@dataclass(frozen=True)
class Check:
    """The outcome of one :func:`expect`: the figure, this run's value, and whether the two can be compared."""

    figure: Figure
    value: float | None
    compared: bool
    differs: dict
    hardware: str = ""  # a GPU this run is on: the figure (measured on a CPU) is not compared

    @property
    def holds(self) -> bool | None:
        if not self.compared or self.value is None:
            return None
        return self.figure.holds(self.value)

    def sentence(self) -> str:
        fig = self.figure
        if self.hardware:
            return self._gpu_sentence()
        expected = f"Expected: {fig.text} ({fig.what}; interval {_num(fig.low)}-{_num(fig.high)})"
        if self.value is None:
            return f"{expected}. Measured here: nothing (the result has no value)."
        measured = f"Measured here: {_num(self.value)}"
        if not self.compared:
            changed = ", ".join(f"{k}={v!r}" for k, v in self.differs.items())
            return (f"{expected}. {measured}; not compared: the figure was measured with "
                    f"{', '.join(f'{k}={fig.when[k]!r}' for k in self.differs)}, this run used {changed}.")
        verdict = "as expected." if self.holds else ("OUTSIDE the interval: the text above no longer describes this "
                                                    "run (see docs/figures.yaml).")
        return f"{expected}. {measured}: {verdict}"

    def _gpu_sentence(self) -> str:
        fig, measured = self.figure, "nothing" if self.value is None else _num(self.value)
        row = next((fig.gpu[k] for k in fig.gpu if gpu_kind(self.hardware) == k), None)
        if row is None:
            return (f"On {self.hardware}: the text's figure ({fig.text}) was measured on a 2-core CPU, not compared. "
                    f"Measured here: {measured}.")
        kind = gpu_kind(self.hardware)
        return (f"Expected on {'an' if kind[0] in 'AEFHILMNORSX' else 'a'} {kind} (not "
                f"measured here): {row['text']} [{row['source']}]. Measured here: {measured}.")

    def __repr__(self) -> str:
        return self.sentence()

    def record(self) -> dict:
        return {"key": self.figure.key, "notebook": self.figure.notebook, "value": self.value,
                "compared": self.compared, "holds": self.holds, "differs": self.differs}


def expect(key: str, value, **parameters) -> Check:
    """Compare this run's ``value`` with the figure ``key`` that the text quotes, and print the comparison.

    Args:
        key: a key of docs/figures.yaml.
        value: what this run measured (a number; None when the result has none).
        **parameters: the parameters this run used that the figure depends on; where one differs from the
            figure's ``when``, the values are shown side by side but not compared.
    """
    figures = load_figures()
    if key not in figures:
        raise ConfigError(f"Unknown figure {key!r}.", fix=f"use one of: {', '.join(sorted(figures))}.")
    figure = figures[key]
    number = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    differs = {k: v for k, v in parameters.items() if k in figure.when and _norm(figure.when[k]) != _norm(v)}
    gpu = run_gpu()
    check = Check(figure, number, not differs and not gpu, differs, gpu)
    print(check.sentence(), flush=True)
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps(check.record()) + "\n")
    return check


def run_gpu() -> str:
    """The hardware row of the GPU this process runs on ("" on a CPU): the figures were measured on a CPU."""
    from evalkit.envreport import gpu_info

    gpus = gpu_info()
    if not gpus:
        return ""
    from evalkit.plan.hardware import match_gpus

    return match_gpus(gpus).name


def gpu_kind(row: str) -> str:
    """The GPU of a hardware row: ``2xL4`` -> ``L4``."""
    return row.split("x", 1)[1] if row[:1].isdigit() and "x" in row else row


def _norm(value):
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _num(value: float) -> str:
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:.0f}"
    if abs(value) < 0.01 and value != 0:
        return f"{value:.1e}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.3g}"
