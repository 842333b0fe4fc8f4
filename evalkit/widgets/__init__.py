"""ipywidgets panels for the notebooks: one submodule per layer plus the scorecard's.

The layers' submodules are named by :mod:`evalkit.layers`; they arrange inputs and outputs and call evalkit.
"""

import importlib

from evalkit.layers import LAYERS
from evalkit.widgets import scorecard

for _layer in LAYERS:
    globals()[_layer.module] = importlib.import_module(f"evalkit.widgets.{_layer.module}")

__all__ = [*(layer.module for layer in LAYERS), "scorecard"]
