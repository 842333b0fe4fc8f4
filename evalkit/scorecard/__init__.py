"""One scorecard across the pyramid: a results schema, thresholds, gates, an exit code.

Every layer's saved result (``<layer>/result.json``) turns into rows of one schema (:mod:`~evalkit.scorecard.collect`);
``thresholds.yaml`` sets a ``min`` or ``max`` per metric and :func:`gate` applies it, writes JUnit XML and a
Markdown summary, and says whether CI should pass (:mod:`~evalkit.scorecard.gates`); :func:`compare` sets two runs
side by side with paired tests (:mod:`~evalkit.scorecard.compare`); :mod:`~evalkit.scorecard.cli` adds
``evalkit scorecard``, ``gate`` and ``compare``. Which layers exist comes from :mod:`evalkit.layers`.
"""

from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "collect": ("COLUMNS", "Scorecard", "collect", "load_layer_result", "result_class", "with_result"),
    "compare": ("compare",),
    "gates": ("apply_thresholds", "gate", "junit_xml", "load_thresholds", "markdown_summary"),
})
