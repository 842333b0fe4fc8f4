"""ipywidgets panels for the notebooks, one submodule per layer; they arrange inputs and outputs and call evalkit."""

from evalkit.widgets import accuracy, fmt, perf, safety, scorecard

__all__ = ["accuracy", "fmt", "perf", "safety", "scorecard"]
