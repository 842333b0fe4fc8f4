"""The format panel: pick or edit a JSON Schema, set max tokens, structured outputs on/off and whitespace, run.

It arranges inputs and outputs and calls :func:`evalkit.fmt.check_format`; each click runs promptfoo again into
a new subfolder of the notebook's run folder and redraws the rates, the outputs and the chart. An edited schema
is validated first; errors (an invalid schema, a server that stopped) are shown in the panel, with their fix,
instead of breaking the notebook.
"""

from __future__ import annotations

import json
from pathlib import Path

import ipywidgets as widgets
import pandas as pd
from IPython.display import display

from evalkit import fmt
from evalkit.runs import new_run_dir
from evalkit.settings import get_settings
from evalkit.widgets._panel import Panel

IFEVAL = "IFEval JSON prompts (any JSON, no schema)"


def _schema_choices() -> list[str]:
    return [*sorted(p.name for p in (fmt.format_dir() / "schemas").glob("*.json")), IFEVAL]


D = fmt.FormatArgs.defaults()  # the run arguments' defaults (the panel checks 2 items for quick turns)


class FormatPanel(Panel):
    """Widgets around :func:`check_format` (a :class:`~evalkit.widgets._panel.Panel`); ``.button.click()`` reruns.

    ``.figures`` holds the figures of the latest run.
    """

    busy = "running promptfoo ..."

    def __init__(self, srv, *, run_dir: Path | str, schema: str = "character.json", max_tokens: int | None =
                 None, structured=D.structured, whitespace: str = D.whitespace, limit: int = 2,
                 concurrency: int | None = D.concurrency):
        super().__init__(srv, label="Run promptfoo")
        self.run_dir, self.concurrency = Path(run_dir), concurrency
        self.figures: list = []  # the figures of the latest run (what the panel shows)
        self.schema = widgets.Dropdown(options=_schema_choices(), value=schema, description="schema")
        self.editor = widgets.Textarea(rows=12, layout=widgets.Layout(width="46em"),
                                       description="JSON Schema", style={"description_width": "initial"})
        top = max(64, (srv.max_model_len or 512) - 256)
        max_tokens = max_tokens or get_settings().format_max_tokens
        self.max_tokens = widgets.IntSlider(value=min(max_tokens, top), min=8, max=top, step=8,
                                            description="max tokens")
        self.structured = widgets.ToggleButtons(options=[("off", False), ("on", True), ("both", "both")],
                                                value=structured, description="structured")
        self.whitespace = widgets.ToggleButtons(options=["compact", "any"], value=whitespace,
                                                description="whitespace",
                                                tooltips=["grammar without free whitespace (evalkit's default)",
                                                          "plain response_format: the server's grammar"])
        self.limit = widgets.IntSlider(value=limit, min=1, max=17, description="items")
        self.schema.observe(self._load_schema, names="value")
        self._load_schema()
        self.layout([self.schema, self.editor, self.max_tokens, self.structured, self.whitespace, self.limit])

    def _load_schema(self, _change=None) -> None:
        """Show the chosen schema file in the editor (IFEval has none: the editor is disabled)."""
        if self.schema.value == IFEVAL:
            self.editor.value, self.editor.disabled = json.dumps(fmt.IFEVAL_SCHEMA), True
            return
        path = fmt.format_dir() / "schemas" / self.schema.value
        self.editor.value, self.editor.disabled = path.read_text(), False

    def items(self) -> list[fmt.FormatItem]:
        """The items the next run checks: the chosen schema's items, with the edited schema if it was changed."""
        if self.schema.value == IFEVAL:
            return fmt.load_items("ifeval", limit=self.limit.value)
        items = fmt.load_items("extraction", limit=self.limit.value, schema=self.schema.value)
        original = json.loads((fmt.format_dir() / "schemas" / self.schema.value).read_text())
        try:
            edited = json.loads(self.editor.value)
        except json.JSONDecodeError:
            edited = None  # with_schema names the line
        if edited != original:
            items = fmt.with_schema(items, self.editor.value, name=f"edited {self.schema.value}")
        return items

    def work(self):
        """Check the items with the current settings into a new subfolder and redraw rates, outputs and chart."""
        from evalkit.plots.fmt import lengths, rates

        items = self.items()
        folder = new_run_dir("panel", root=self.run_dir)
        result = fmt.check_format(
            self.srv, items=items, structured=self.structured.value, max_tokens=self.max_tokens.value,
            whitespace=self.whitespace.value, concurrency=self.concurrency, run_dir=folder, echo=False)
        with self.output:
            display(result.summary())
            with pd.option_context("display.max_colwidth", 90):
                display(result.df[["item", "structured", "output", "parsed", "schema_ok", "completion_tokens"]])
            self.figures = [rates(result), lengths(result)]
            for fig in self.figures:
                display(fig)
        self.status.value = (f"{len(result.rows)} tests in {result.promptfoo['duration_s']:.0f} s"
                             f" &rarr; {folder.name}")
        return result


def format_panel(srv, *, run_dir: Path | str, **defaults) -> FormatPanel:
    """The interactive format panel for ``srv``; each run goes to a new subfolder of ``run_dir``."""
    return FormatPanel(srv, run_dir=run_dir, **defaults)
