"""The accuracy panel: pick tasks, questions per task, few-shot and model, press Run, see the figure redrawn.

It arranges inputs and outputs and calls :func:`evalkit.accuracy.evaluate`; every press writes a new folder
under ``run_root`` (``widget-1``, ``widget-2``, ...) so exploratory runs never overwrite the notebook's main result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display

from evalkit.accuracy.args import AccuracyArgs
from evalkit.errors import ConfigError
from evalkit.widgets._panel import Panel


def _task_choices() -> list[str]:
    """Top-level tasks: groups, and tasks that no group lists."""
    from evalkit.accuracy.taskfiles import task_index

    index = task_index()
    members = {sub for e in index.values() if e.kind == "group" for sub in e.subtasks}
    return sorted(n for n, e in index.items() if e.kind == "group" or n not in members)


D = AccuracyArgs.defaults()  # the run arguments' defaults (the panel asks 2 questions per task for quick turns)


class AccuracyPanel(Panel):
    """Widgets around :func:`evalkit.accuracy.evaluate` (a :class:`~evalkit.widgets._panel.Panel`).

    Args:
        srv: the server to evaluate (:func:`evalkit.serve`).
        tasks: tasks selected at first (default: ``["faq_mc"]``).
        limit: questions per task (each MMLU-Pro category) at first.
        num_fewshot: few-shot examples at first.
        run_root: folder for the runs of this panel (default: a new folder under runs/).
        evaluate: the function called on Run (default :func:`evalkit.accuracy.evaluate`; tests pass a stub).
    """

    def __init__(self, srv, *, tasks: list[str] | None = None, limit: int = 2, num_fewshot: int = D.num_fewshot,
                 run_root: Path | str | None = None, evaluate: Callable | None = None):
        from evalkit.accuracy import evaluate as default_evaluate
        from evalkit.runs import new_run_dir

        super().__init__(srv, label="Run", ready="Pick tasks and press Run.")
        self._evaluate = evaluate or default_evaluate
        self.run_root = Path(run_root) if run_root else new_run_dir(f"accuracy-widget-{srv.model}")
        self.figure = None  # the last figure drawn (kept for tests and for saving)
        choices = _task_choices()
        self.tasks = W.SelectMultiple(options=choices, value=tuple(t for t in (tasks or ["faq_mc"]) if t in choices),
                                      description="tasks", rows=min(6, len(choices)))
        self.limit = W.IntSlider(value=limit, min=1, max=20, description="per task",
                                 tooltip="questions per task (per MMLU-Pro category)")
        self.num_fewshot = W.IntSlider(value=num_fewshot, min=0, max=5, description="few-shot")
        self.model = W.Dropdown(options=self._models(), value=srv.model, description="model")
        self.layout([self.tasks, self.limit, self.num_fewshot, self.model])

    def _models(self) -> list[str]:
        from evalkit.serve import list_models

        try:
            served = [m["id"] for m in list_models(self.srv.base_url)]
        except (OSError, ValueError):
            served = []
        from evalkit.models import PRESETS

        ladder = [name for name, p in PRESETS.items() if p.embedded]
        return list(dict.fromkeys([self.srv.model, *served, *ladder]))

    def _server(self):
        """The current server, another model it serves, or (an embedded model) that model's own server."""
        from evalkit.serve import attach, list_models, serve

        if self.model.value == self.srv.model:
            return self.srv
        try:
            served = [m["id"] for m in list_models(self.srv.base_url)]
        except (OSError, ValueError):
            served = []
        if self.model.value in served:
            return attach(self.srv.base_url, self.model.value)
        return serve(self.model.value)

    def busy_text(self) -> str:
        return f"running {', '.join(self.tasks.value)} ({self.limit.value} per task) ..."

    def work(self):
        """Evaluate with the current choices into ``widget-N`` and redraw the figure and the table."""
        from evalkit.plots import accuracy as figures

        if not self.tasks.value:
            raise ConfigError("No task picked.", fix="pick at least one task.")
        run_dir = self.run_root / f"widget-{self.runs + 1}"
        result = self._evaluate(self._server(), list(self.tasks.value), limit=self.limit.value,
                                num_fewshot=self.num_fewshot.value, run_dir=run_dir, echo=False)
        with self.output:
            groups = [t for t in result.tasks if not result.by_category(t).empty]
            fig, axes = plt.subplots(1, 1 + len(groups[:1]), figsize=(14 if groups else 7, 5), squeeze=False)
            figures.tasks(result, ax=axes[0][0])
            if groups:
                figures.by_category(result, groups[0], ax=axes[0][1])
            fig.tight_layout()
            display(fig)
            plt.close(fig)
            display(result.df.round(3))
        self.figure = fig
        self.status.value = f"done: {run_dir}"
        return result


def panel(srv, **kwargs) -> AccuracyPanel:
    """Build an :class:`AccuracyPanel`; display ``panel.widget`` (or just the panel in a notebook cell)."""
    return AccuracyPanel(srv, **kwargs)
