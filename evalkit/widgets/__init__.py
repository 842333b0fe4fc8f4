"""ipywidgets panels for the notebooks, one submodule per layer; they arrange inputs and outputs and call evalkit."""

from evalkit.widgets import scorecard

__all__ = ["scorecard"]
