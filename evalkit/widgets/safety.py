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
from evalkit.widgets._press import pressed

EXAMPLES = "bank FAQ examples (.jsonl + .yaml)"


def _custom_choices() -> list[str]:
    folder = get_settings().data_dir / "safety"
    files = sorted(p.name for p in folder.glob("*") if p.suffix in (".jsonl", ".yaml", ".yml")
                   and p.name != "refusal_rules.yaml")
    return [EXAMPLES, *files]


D = SafetyArgs.defaults()  # the run arguments' defaults (the panel samples 10 per set for quick turns)


class SafetyPanel(widgets.VBox):
    """Widgets around :func:`check_safety`; ``.result`` is the latest result, ``.run_button.click()`` reruns."""

    def __init__(self, srv, *, run_dir: Path | str, sets=D.sets, sample: int = 10, seed: int = D.seed,
                 grader_url: str | None = D.grader_url, max_tokens: int = D.max_tokens):
        self.srv, self.run_dir, self.max_tokens, self.result = srv, Path(run_dir), max_tokens, None
        self.error: BaseException | None = None  # what ended the latest run, if it failed
        chosen = {s for name in sets for s in (("xstest_safe", "xstest_unsafe") if name == "xstest" else (name,))}
        self.sets = widgets.SelectMultiple(options=list(SETS), value=[s for s in SETS if s in chosen],
                                           description="sets", rows=5)
        self.sample = widgets.IntSlider(value=sample, min=1, max=50, description="sample",
                                        tooltip="prompts per set (BBQ: per category)")
        self.seed = widgets.IntText(value=seed, description="seed")
        self.custom = widgets.Dropdown(options=_custom_choices(), value=EXAMPLES, description="custom")
        self.grader = widgets.Text(value=grader_url or "", description="grader URL",
                                   placeholder="empty = refusal rules only")
        self.run_button = widgets.Button(description="Run promptfoo", button_style="primary", icon="play")
        self.status = widgets.HTML()
        self.output = widgets.Output()
        self.run_button.on_click(self._run)
        controls = widgets.HBox([widgets.VBox([self.sets]),
                                 widgets.VBox([self.sample, self.seed, self.custom, self.grader,
                                               widgets.HBox([self.run_button, self.status])])])
        super().__init__([controls, self.output])

    def _custom(self):
        if self.custom.value == EXAMPLES:
            return None
        return get_settings().data_dir / "safety" / self.custom.value

    def _run(self, _button=None) -> None:
        from evalkit.plots.safety import refusal_chart

        self.output.clear_output(wait=True)
        with pressed(self.run_button, self.status, "running promptfoo ...", output=self.output) as press:
            folder = new_run_dir("panel", root=self.run_dir)
            custom = self._custom()
            self.result = check_safety(
                self.srv, sets=list(self.sets.value), sample=self.sample.value, seed=self.seed.value,
                grader_url=self.grader.value.strip() or None, custom=custom, max_tokens=self.max_tokens,
                run_dir=folder, echo=False)
            with self.output:
                display(self.result.summary()[["metric", "value", "n", "what", "note"]])
                if any(s in self.result.sets for s in ("advbench", "xstest_safe", "xstest_unsafe")):
                    fig = refusal_chart(self.result)
                    display(fig)
                    plt.close(fig)
                if "custom" in self.result.sets:
                    print("custom checks:", ", ".join(str(p) for p in custom_paths(custom)))
            self.status.value = (f"{len(self.result.rows)} tests in {self.result.promptfoo['duration_s']:.0f} s"
                                 f" &rarr; {folder.name}")
        self.error = press.error


def safety_panel(srv, *, run_dir: Path | str, **defaults) -> SafetyPanel:
    """The interactive safety panel for ``srv``; each run goes to a new subfolder of ``run_dir``."""
    return SafetyPanel(srv, run_dir=run_dir, **defaults)
