"""One scorecard across the pyramid: a results schema, thresholds, gates, an exit code.

Every layer's saved result (``<layer>/result.json``) turns into rows of one schema (:mod:`~evalkit.scorecard.collect`);
``thresholds.yaml`` sets a ``min`` or ``max`` per metric and :func:`gate` applies it, writes JUnit XML and a
Markdown summary, and says whether CI should pass (:mod:`~evalkit.scorecard.gates`); :func:`compare` sets two runs
side by side with paired tests (:mod:`~evalkit.scorecard.compare`); :mod:`~evalkit.scorecard.cli` adds
``evalkit scorecard``, ``gate`` and ``compare``. Which layers exist comes from :mod:`evalkit.layers`.
"""

from evalkit.scorecard.collect import (
    COLUMNS,
    SCORECARD_CSV,
    SCORECARD_JSON,
    Row,
    Scorecard,
    collect,
    load_layer_result,
    metric_catalog,
    newest_results,
    result_class,
    rows_from_result,
    with_result,
)
from evalkit.scorecard.compare import compare, paired_tests
from evalkit.scorecard.gates import (
    JUNIT_FILE,
    SUMMARY_FILE,
    apply_thresholds,
    default_thresholds_path,
    gate,
    junit_xml,
    load_thresholds,
    markdown_summary,
)

__all__ = [
    "COLUMNS",
    "JUNIT_FILE",
    "SCORECARD_CSV",
    "SCORECARD_JSON",
    "SUMMARY_FILE",
    "Row",
    "Scorecard",
    "apply_thresholds",
    "collect",
    "compare",
    "default_thresholds_path",
    "gate",
    "junit_xml",
    "load_layer_result",
    "load_thresholds",
    "markdown_summary",
    "metric_catalog",
    "newest_results",
    "paired_tests",
    "result_class",
    "rows_from_result",
    "with_result",
]
