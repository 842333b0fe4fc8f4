"""The shape every panel shares: its inputs, a run button, a one-line status, an output area, and ``run()``.

A layer's panel subclasses :class:`Panel`, builds its input widgets, calls :meth:`Panel.layout` with them, and
implements :meth:`Panel.work` (run the layer with the current values, draw into ``output``, return the result).
:meth:`Panel.run` wraps the work in :func:`~evalkit.widgets._press.pressed`: the button is disabled while it runs,
an error ends in the status line (never a panel stuck on "running"), and ``result``/``error`` say how it ended.
"""

from __future__ import annotations

import html

import ipywidgets as W
from IPython.display import display

from evalkit.widgets._press import pressed


class Panel:
    """A panel: ``button`` runs :meth:`work`; ``status``, ``output``, ``result``, ``error`` and ``runs`` report."""

    busy = "running ..."  # the status while a run is going on

    def __init__(self, srv, *, label: str = "Run", ready: str = ""):
        self.srv = srv
        self.result = None
        self.error: BaseException | None = None  # what ended the latest run, if it failed
        self.runs = 0  # runs that finished
        self.button = W.Button(description=label, button_style="primary", icon="play")
        self.button.on_click(lambda _button: self.run())
        self.status = W.HTML(ready)
        self.output = W.Output()
        self.widget = W.VBox([])

    def layout(self, controls: list, *below) -> None:
        """Arrange the inputs, the button with the status line, the output area and any widgets ``below`` it."""
        self.widget.children = [W.VBox([*controls, W.HBox([self.button, self.status])]), self.output, *below]

    def busy_text(self) -> str:
        """The status shown while a run is going on (subclasses may name what runs)."""
        return self.busy

    def work(self):  # pragma: no cover - abstract
        """Run the layer with the current values, show the outcome, return the result."""
        raise NotImplementedError

    def run(self):
        """Run once with the current values; returns the result, or None when the run failed (see ``error``)."""
        self.output.clear_output(wait=True)
        with pressed(self.button, self.status, self.busy_text(), output=self.output) as press:
            result = self.work()
            self.result = result
            self.runs += 1
        self.error = press.error
        return None if press.error else self.result

    def _ipython_display_(self):
        display(with_static_view(self.widget, type(self).__name__), raw=True)


def controls(widget) -> list[tuple[str, str]]:
    """(label, value) of every input inside ``widget``, in display order (buttons by their label)."""
    found = []
    if isinstance(widget, W.Button):
        found.append(("button", widget.description))
    elif isinstance(widget, W.ValueWidget) and not isinstance(widget, (W.HTML, W.Label, W.Output, W.Image)):
        value = widget.value
        shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        found.append((getattr(widget, "description", "") or type(widget).__name__, shown))
    for child in getattr(widget, "children", ()):
        found += controls(child)
    return found


def with_static_view(widget, title: str) -> dict:
    """``widget``'s display bundle, with a text and HTML list of its inputs in place of ``VBox(children=...)``.

    JupyterLab draws the live widget from the bundle's widget view; a reader of the saved notebook without a
    kernel (a static copy, a diff) sees which knobs the panel has and their values.
    """
    bundle = widget._repr_mimebundle_()
    items = controls(widget)
    bundle["text/plain"] = f"{title} (an interactive panel; run the notebook to use it): " + "; ".join(
        f"{label} = {value}" for label, value in items)
    rows = "".join(f"<li><b>{html.escape(label)}</b>: {html.escape(value)}</li>" for label, value in items)
    bundle["text/html"] = (f"<div><i>{html.escape(title)}: an interactive panel (run the notebook in JupyterLab "
                           f"to use it). Its inputs:</i><ul>{rows}</ul></div>")
    return bundle
