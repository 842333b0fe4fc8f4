"""ipywidgets panels for the notebooks: one submodule per layer plus the scorecard's.

The layers' submodules are named by :mod:`evalkit.layers`; they arrange inputs and outputs and call evalkit.
"""

from evalkit.layers import LAYERS
from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    **{layer.module: (".",) for layer in LAYERS},
    "scorecard": (".",),
})
