"""Matplotlib figures over layer results: one submodule per layer plus the scorecard's.

The layers' submodules are named by :mod:`evalkit.layers`; they draw and never run a tool.
"""

import importlib

from evalkit.layers import LAYERS
from evalkit.plots import scorecard

for _layer in LAYERS:
    globals()[_layer.module] = importlib.import_module(f"evalkit.plots.{_layer.module}")

__all__ = [*(layer.module for layer in LAYERS), "scorecard"]
