"""Matplotlib figures over layer results, one submodule per layer; they draw and never run a tool."""

from evalkit.plots import accuracy, fmt, perf, safety, scorecard

__all__ = ["accuracy", "fmt", "perf", "safety", "scorecard"]
