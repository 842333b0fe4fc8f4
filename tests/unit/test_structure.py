"""The code's shape: imports run one way, no private name crosses a module, exports are used, a fifth layer fits.

The import graph is read from the source (every ``import`` and ``from ... import`` of an evalkit module, at module
level or inside a function, and the names a package's ``lazy_exports`` table loads), so a cycle hidden in a
function body counts too. The order of the tiers is the one CONTRIBUTING.md writes down.
"""

import ast
import importlib
import re
import sys
import types
from pathlib import Path

import pytest

from evalkit import layers

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "evalkit"

# bottom-up; a module belongs to the tier of its longest listed prefix, and imports only from its tier or below
TIERS = [
    ["evalkit.errors", "evalkit.settings", "evalkit.stats", "evalkit.memo", "evalkit.lazy", "evalkit.layers",
     "evalkit.args", "evalkit.result", "evalkit.console", "evalkit.proc", "evalkit.envreport", "evalkit.figures",
     "evalkit.plan.hardware"],
    ["evalkit.ladder.specs", "evalkit.ladder.tokenizer", "evalkit.ladder.train", "evalkit.ladder.corpus.reading",
     "evalkit.ladder.corpus.chat", "evalkit.ladder.corpus.heldout", "evalkit.tune.fetch", "evalkit.tune.train",
     "evalkit.models"],
    ["evalkit.serve"],
    ["evalkit.runs", "evalkit.promptfoo", "evalkit.commands"],
    [f"evalkit.{layer.module}" for layer in layers.LAYERS],
    ["evalkit.scorecard", "evalkit.report", "evalkit.byhand", "evalkit.ladder", "evalkit.tune"],
    ["evalkit.plots", "evalkit.widgets"],
    ["evalkit.pipeline", "evalkit.plan", "evalkit.cli", "evalkit"],
]
LAYER_PACKAGES = {f"evalkit.{layer.module}" for layer in layers.LAYERS}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _target(name: str) -> str:
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> list[tuple[str, str, int]]:
    """``(imported module, name, line)`` for every evalkit import in ``module``, lazy-export tables included."""
    tree = ast.parse(MODULES[module].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("evalkit"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.append((full if full in MODULES else _target(node.module), alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(_target(a.name), "", node.lineno) for a in node.names if a.name.startswith("evalkit")]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_exports":
            table = node.args[1]
            for key in table.keys if isinstance(table, ast.Dict) else []:
                if isinstance(key, ast.Constant):
                    name = key.value if key.value.startswith("evalkit.") else f"{module}.{key.value}"
                    out.append((_target(name), "", node.lineno))
    return [(target, name, line) for target, name, line in out if target != module]


GRAPH = {module: _imports(module) for module in MODULES}


def _tier(module: str) -> int:
    best, tier = "", None
    for i, prefixes in enumerate(TIERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, tier = prefix, i
    assert tier is not None, f"{module} is in no tier: add it to TIERS here and to CONTRIBUTING.md"
    return tier


def _layer_package(module: str) -> str | None:
    return next((p for p in LAYER_PACKAGES if module == p or module.startswith(p + ".")), None)


def test_the_import_graph_has_no_cycle():
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for target, _, _ in GRAPH[module]:
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_go_down_the_tiers_and_no_layer_imports_another():
    wrong = []
    for module, imports in GRAPH.items():
        for target, _, line in imports:
            if _tier(target) > _tier(module):
                wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target} (a higher tier)")
            own, other = _layer_package(module), _layer_package(target)
            if own and other and own != other:
                wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports the layer {other}")
    assert not wrong, "\n".join(wrong)


def test_the_tiers_are_written_down_in_contributing():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("## Import order", 1)[1].split("\n## ", 1)[0]
    for prefixes in TIERS:
        for prefix in prefixes:
            if prefix.startswith("evalkit.") and prefix not in LAYER_PACKAGES:
                short = prefix.removeprefix("evalkit.")
                assert re.search(rf"(?<![\w.]){re.escape(short)}(?![\w])", section), f"{short} not in Import order"


def test_no_private_name_is_imported_across_modules():
    crossing = []
    for folder in ("evalkit", "benchmarks", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("evalkit"):
                    crossing += [f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{a.name}"
                                 for a in node.names if a.name.startswith("_")]
    assert not crossing, "\n".join(crossing)


def _exports(package: str) -> list[str]:
    return list(importlib.import_module(package).__all__)


@pytest.mark.parametrize("package", sorted([*LAYER_PACKAGES, "evalkit.scorecard", "evalkit.serve",
                                            "evalkit.pipeline"]))
def test_a_package_exports_only_what_is_used_outside_it(package):
    folder = PACKAGE.joinpath(*package.split(".")[1:])
    users = [p.read_text() for d in ("evalkit", "notebooks", "benchmarks", "scripts")
             for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".ipynb") and folder not in p.parents]
    unused = [name for name in _exports(package)
              if not any(re.search(rf"\b{re.escape(name)}\b", text) for text in users)]
    assert not unused, f"{package} exports names nothing outside it uses: {unused}"


def test_exports_resolve_and_a_submodule_import_does_not_hide_a_function():
    import evalkit

    for name in evalkit.__all__:
        assert getattr(evalkit, name) is not None, name
    importlib.import_module("evalkit.serve.start")
    importlib.import_module("evalkit.scorecard.compare")
    from evalkit import scorecard

    assert callable(evalkit.serve) and callable(scorecard.compare) and callable(scorecard.collect)
    assert isinstance(evalkit.plots, types.ModuleType) and callable(evalkit.plots.perf.report_sections)
    for layer in layers.LAYERS:  # a panel module that imports its layer's package is still the panel module
        for package in ("plots", "widgets"):
            assert getattr(getattr(evalkit, package), layer.module).__name__ == f"evalkit.{package}.{layer.module}"
        assert getattr(evalkit, layer.module).__name__ == f"evalkit.{layer.module}"
    from evalkit.widgets import fmt as panels

    assert callable(panels.format_panel)


def test_a_fifth_layer_needs_only_the_parts_contributing_lists(monkeypatch, tmp_path):
    """A throwaway layer, built from the parts CONTRIBUTING.md lists, shows up everywhere the registry reaches.

    Its package, registry entry, plots and widgets modules and a result with its metrics are enough for the layer
    list, the notebooks of a run, the command line, the metric catalogue, thresholds, the report and the pyramid.
    """
    from evalkit.result import LayerResult, Metric, MetricSpec

    class LatencyBudgetResult(LayerResult):
        layer = "budget"
        catalog = {"budget_met_rate": MetricSpec("fraction", "higher", "requests within the budget")}
        rate: float = 0.5

        def frame(self):
            import pandas as pd

            return pd.DataFrame([{"rate": self.rate}])

        def metrics(self):
            return [Metric(layer="budget", metric="budget_met_rate", value=self.rate, unit="fraction")]

    package = types.ModuleType("evalkit.budget")
    package.BudgetResult, package.check_budget, package.METRICS = LatencyBudgetResult, lambda srv: None, {}
    cli = types.ModuleType("evalkit.budget.cli")
    cli.register_cli = lambda sub: sub.add_parser("budget", help="a throwaway layer")
    plots = types.ModuleType("evalkit.plots.budget")
    plots.report_sections = lambda result: [("budget", result.df)]
    for module in (package, cli, plots, types.ModuleType("evalkit.widgets.budget")):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    fifth = layers.Layer(name="budget", order=5, notebook="05_budget", module="budget", result="BudgetResult",
                         args="BudgetArgs", run="check_budget", title="Latency budget")
    monkeypatch.setattr(layers, "LAYERS", (*layers.LAYERS, fifth))

    from evalkit.cli import build_parser
    from evalkit.plots.scorecard import pyramid
    from evalkit.scorecard import Scorecard, load_thresholds
    from evalkit.scorecard.collect import metric_catalog

    assert layers.names()[-1] == "budget" and list(layers.notebooks())[-2] == "05_budget"
    assert "budget" in build_parser()._subparsers._group_actions[0].choices
    assert "budget_met_rate" in metric_catalog()["budget"]
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text("budget:\n  budget_met_rate: {min: 0.9}\n")
    assert load_thresholds(thresholds)["budget"]["budget_met_rate"] == {"min": 0.9}
    assert fifth.report_sections(LatencyBudgetResult(run_dir=str(tmp_path), model="m"))
    card = Scorecard(run_id="r", rows=[])
    figure = pyramid(card)
    assert any(t.get_text().startswith("budget:") for t in figure.axes[0].texts)
