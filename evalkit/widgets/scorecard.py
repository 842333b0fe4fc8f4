"""A threshold editor for notebook 05: pick a gate, move its bound, and watch the verdict and exit code."""

from __future__ import annotations

import copy

import ipywidgets as w
from IPython.display import display

from evalkit.scorecard import apply_thresholds
from evalkit.widgets._panel import with_static_view


class ThresholdPanel:
    """The panel's widget (``widget``), shown with a static list of its inputs for readers without a kernel."""

    def __init__(self, widget: w.VBox):
        self.widget = widget

    def _ipython_display_(self):
        display(with_static_view(self.widget, "Threshold panel"), raw=True)


def threshold_panel(card, thresholds: dict) -> ThresholdPanel:
    """Dropdown of gated metrics, a bound field and a Gate button that re-gates ``card`` and redraws."""
    names = [f"{layer}.{metric}" for layer, metrics in thresholds.items() for metric in (metrics or {})]
    choice = w.Dropdown(options=names, description="gate")
    bound = w.FloatText(description="bound")
    run = w.Button(description="Gate", button_style="primary")
    out = w.Output()
    out.add_class("evalkit-gate-output")

    def current(_=None):
        layer, metric = choice.value.split(".", 1)
        spec = thresholds[layer][metric]
        bound.value = float(spec.get("min", spec.get("max")))

    def regate(_=None):
        layer, metric = choice.value.split(".", 1)
        edited = copy.deepcopy(thresholds)
        key = "min" if "min" in edited[layer][metric] else "max"
        edited[layer][metric][key] = bound.value
        gated = apply_thresholds(card, edited)
        out.clear_output()
        with out:
            verdict = "PASS (exit code 0)" if gated.passed else "FAIL (exit code 1)"
            print(f"{layer}.{metric} {'>=' if key == 'min' else '<='} {bound.value:g} -> gates {verdict}")
            display(gated.gates()[["layer", "metric", "value", "bound", "threshold", "passed"]])

    choice.observe(current, names="value")
    run.on_click(regate)
    if names:
        current()
    return ThresholdPanel(w.VBox([w.HBox([choice, bound, run]), out]))
