"""The pyramid's layers in one table: everything that lists the layers reads it.

The scorecard (which results count and in which order), the pipeline (which notebook writes which run sub-folder),
the report (its pyramid and its sections), the command line (which modules add a sub-command) and the package's
exports all come from :data:`LAYERS`. Adding a layer is its package plus one entry here;
``tests/unit/test_layers.py`` checks that every entry has its notebook, profile entries, metrics, report section,
panel and command.

The layers' modules are imported only when asked for, so this table can be read anywhere without import cycles.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from evalkit.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Layer:
    """One layer of the pyramid.

    Attributes:
        name: the layer's one name: its tag in result.json, its run sub-folder, its key in thresholds.yaml, its
            ``evalkit`` command (performance also answers to ``evalkit perf``).
        order: position from the bottom of the pyramid (1 = the base).
        notebook: the notebook that runs it (``notebooks/<notebook>.ipynb``).
        module: where its code lives, the package ``evalkit.<module>`` (and ``plots.<module>``, ``widgets.<module>``):
            an import path, short where the name is long or a Python builtin (``perf``, ``fmt``).
        result: the class name of its result in that package (a :class:`~evalkit.runs.LayerResult`).
        args: the class name of its run arguments in that package (a :class:`~evalkit.args.RunArgs`).
        run: the name of the function in that package that runs the layer (its defaults come from ``args``).
        title: the heading of its section in the report.
        exports: names of its package that ``import evalkit`` offers at the top level (the result class is one).
    """

    name: str
    order: int
    notebook: str
    module: str
    result: str
    args: str
    run: str
    title: str
    exports: tuple[str, ...] = ()

    def package(self) -> ModuleType:
        return importlib.import_module(f"evalkit.{self.module}")

    def result_class(self):
        return getattr(self.package(), self.result)

    def args_class(self):
        return getattr(self.package(), self.args)

    def metrics(self) -> dict:
        """The layer's metric catalogue: ``{metric: MetricSpec(unit, direction, doc)}`` (its result's ``catalog``)."""
        return dict(self.result_class().catalog)

    def report_sections(self, result) -> list:
        """Figures and tables of one result for the report, from ``evalkit.plots.<module>.report_sections``."""
        return importlib.import_module(f"evalkit.plots.{self.module}").report_sections(result)


LAYERS: tuple[Layer, ...] = (
    Layer(name="performance", order=1, notebook="01_performance", module="perf", result="PerfResult", args="PerfArgs",
          run="sweep", title="Performance",
          exports=("PRICES", "SLO", "TokenGridResult", "cold_start", "knee", "slo_capacity", "sweep", "token_grid")),
    Layer(name="format", order=2, notebook="02_format", module="fmt", result="FormatResult", args="FormatArgs",
          run="check_format", title="Format", exports=("check_format",)),
    Layer(name="accuracy", order=3, notebook="03_accuracy", module="accuracy", result="AccuracyResult",
          args="AccuracyArgs", run="evaluate", title="Accuracy", exports=("task_from_table",)),
    Layer(name="safety", order=4, notebook="04_safety", module="safety", result="SafetyResult", args="SafetyArgs",
          run="check_safety", title="Safety",
          exports=("check_safety", "checks_from_file", "find_refusal")),
)
# notebooks that belong to no layer: the server first, the gates last ("" = they write into the run folder)
FIRST_NOTEBOOK, LAST_NOTEBOOK = ("00_serve", "serve"), ("05_ci", "")


def names() -> list[str]:
    """The layers' names, bottom-up."""
    return [layer.name for layer in sorted(LAYERS, key=lambda la: la.order)]


def get(name: str) -> Layer:
    """The layer called ``name``; a :class:`ConfigError` listing the layers otherwise."""
    for layer in LAYERS:
        if layer.name == name:
            return layer
    raise ConfigError(f"Unknown layer {name!r}.", fix=f"use one of: {', '.join(names())}.")


def notebooks() -> dict[str, str]:
    """Every notebook of a run in order, and the run sub-folder it writes into."""
    ordered = sorted(LAYERS, key=lambda la: la.order)
    return dict([FIRST_NOTEBOOK, *((layer.notebook, layer.name) for layer in ordered), LAST_NOTEBOOK])
