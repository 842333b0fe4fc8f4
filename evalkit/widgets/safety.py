"""The safety panel: choose sets, sample size, seed, custom checks file and grader, run, and see the result.

It arranges inputs and outputs and calls :func:`evalkit.safety.check_safety`; each click runs promptfoo again
into a new subfolder of the notebook's run folder and redraws the summary and the refusal chart. Errors are
shown in the panel (their message names the fix) instead of breaking the notebook.
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from evalkit.runs import new_run_dir
from evalkit.safety import SETS, SafetyArgs, check_safety, custom_paths
from evalkit.settings import get_settings
from evalkit.widgets._panel import Panel

EXAMPLES = "bank FAQ examples (.jsonl + .yaml)"


def _custom_choices() -> list[str]:
    folder = get_settings().data_dir / "safety"
    files = sorted(p.name for p in folder.glob("*") if p.suffix in (".jsonl", ".yaml", ".yml")
                   and p.name != "refusal_rules.yaml")
    return [EXAMPLES, *files]


D = SafetyArgs.defaults()  # the run arguments' defaults (the panel samples 10 per set for quick turns)


class SafetyPanel(Panel):
    """Widgets around :func:`check_safety` (a :class:`~evalkit.widgets._panel.Panel`); ``.button.click()`` reruns."""

    busy = "running promptfoo ..."

    def __init__(self, srv, *, run_dir: Path | str, sets=D.sets, sample: int = 10, seed: int = D.seed,
                 grader_url: str | None = D.grader_url, max_tokens: int = D.max_tokens):
        super().__init__(srv, label="Run promptfoo")
        self.run_dir, self.max_tokens = Path(run_dir), max_tokens
        chosen = {s for name in sets for s in (("xstest_safe", "xstest_unsafe") if name == "xstest" else (name,))}
        self.sets = widgets.SelectMultiple(options=list(SETS), value=[s for s in SETS if s in chosen],
                                           description="sets", rows=5)
        self.sample = widgets.IntSlider(value=sample, min=1, max=50, description="sample",
                                        tooltip="prompts per set (BBQ: per category)")
        self.seed = widgets.IntText(value=seed, description="seed")
        self.custom = widgets.Dropdown(options=_custom_choices(), value=EXAMPLES, description="custom")
        self.grader = widgets.Text(value=grader_url or "", description="grader URL",
                                   placeholder="empty = refusal rules only")
        self.layout([widgets.HBox([self.sets, widgets.VBox([self.sample, self.seed, self.custom, self.grader])])])

    def _custom(self):
        if self.custom.value == EXAMPLES:
            return None
        return get_settings().data_dir / "safety" / self.custom.value

    def work(self):
        """Run the chosen sets into a new subfolder and show the metrics, the refusal chart and the custom files."""
        from evalkit.plots.safety import refusal_chart

        folder = new_run_dir("panel", root=self.run_dir)
        custom = self._custom()
        result = check_safety(
            self.srv, sets=list(self.sets.value), sample=self.sample.value, seed=self.seed.value,
            grader_url=self.grader.value.strip() or None, custom=custom, max_tokens=self.max_tokens,
            run_dir=folder, echo=False)
        with self.output:
            display(result.summary()[["metric", "value", "n", "what", "note"]])
            if any(s in result.sets for s in ("advbench", "xstest_safe", "xstest_unsafe")):
                fig = refusal_chart(result)
                display(fig)
                plt.close(fig)
            if "custom" in result.sets:
                print("custom checks:", ", ".join(str(p) for p in custom_paths(custom)))
        self.status.value = f"{len(result.rows)} tests in {result.promptfoo['duration_s']:.0f} s &rarr; {folder.name}"
        return result


def safety_panel(srv, *, run_dir: Path | str, **defaults) -> SafetyPanel:
    """The interactive safety panel for ``srv``; each run goes to a new subfolder of ``run_dir``."""
    return SafetyPanel(srv, run_dir=run_dir, **defaults)
