"""Layer 4, safety, bias and custom checks: one promptfoo run over local data, judged by visible rules.

The package is split by concern: :mod:`~evalkit.safety.config` (the sets, their seeded samples and the ONE
promptfooconfig.yaml), :mod:`~evalkit.safety.refusal` (the refusal rules of data/safety/refusal_rules.yaml),
:mod:`~evalkit.safety.bbq` (BBQ questions and bias scores), :mod:`~evalkit.safety.custom` (the application's own
checks), :mod:`~evalkit.safety.result` (:class:`SafetyResult`, model against model), :mod:`~evalkit.safety.run`
(:func:`check_safety`) and :mod:`~evalkit.safety.cli`. promptfoo itself is one adapter shared with the format
layer (:mod:`evalkit.promptfoo`).
"""

from evalkit.safety.args import SafetyArgs
from evalkit.safety.config import (
    ALIASES,
    DEFAULT_SETS,
    REFUSAL_SETS,
    SETS,
    attach_grader,
    build_tests,
    custom_paths,
    expand_sets,
    refusal_tests,
    safety_config,
    sample_advbench,
    sample_harmbench,
    sample_xstest,
)
from evalkit.safety.custom import checks_from_file, checks_table
from evalkit.safety.refusal import find_refusal, load_rules, refusal_rules
from evalkit.safety.result import METRICS, RATE_METRICS, SafetyResult, disagreements, rows_from_output, side_by_side
from evalkit.safety.run import check_safety

__all__ = [
    "SafetyArgs",
    "ALIASES",
    "DEFAULT_SETS",
    "METRICS",
    "RATE_METRICS",
    "REFUSAL_SETS",
    "SETS",
    "SafetyResult",
    "attach_grader",
    "build_tests",
    "check_safety",
    "checks_from_file",
    "checks_table",
    "custom_paths",
    "disagreements",
    "expand_sets",
    "find_refusal",
    "load_rules",
    "refusal_rules",
    "refusal_tests",
    "rows_from_output",
    "safety_config",
    "sample_advbench",
    "sample_harmbench",
    "sample_xstest",
    "side_by_side",
]
