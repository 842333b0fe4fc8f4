"""Matplotlib figures over layer results: one submodule per layer plus the scorecard's.

The layers' submodules are named by :mod:`evalkit.layers`; they draw and never run a tool.
"""

from evalkit.layers import LAYERS
from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    **{layer.module: (".",) for layer in LAYERS},
    "scorecard": (".",),
})
