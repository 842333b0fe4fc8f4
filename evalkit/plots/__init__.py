"""Matplotlib figures over layer results, one submodule per layer; they draw and never run a tool."""

from evalkit.plots import scorecard

__all__ = ["scorecard"]
