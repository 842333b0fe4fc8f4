"""Layer 4, safety, bias and custom checks: one promptfoo run over local data, judged by visible rules.

The package is split by concern: :mod:`~evalkit.safety.config` (the sets, their seeded samples and the ONE
promptfooconfig.yaml), :mod:`~evalkit.safety.refusal` (the refusal rules of data/safety/refusal_rules.yaml),
:mod:`~evalkit.safety.bbq` (BBQ questions and bias scores), :mod:`~evalkit.safety.custom` (the application's own
checks), :mod:`~evalkit.safety.result` (:class:`SafetyResult`, model against model), :mod:`~evalkit.safety.run`
(:func:`check_safety`), :mod:`~evalkit.safety.show` (answers folded behind a content note) and
:mod:`~evalkit.safety.cli`. promptfoo itself is one adapter shared with the format
layer (:mod:`evalkit.promptfoo`).
"""

from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "args": ("SafetyArgs",),
    "config": ("SETS", "build_tests", "custom_paths", "refusal_tests", "safety_config", "sample_xstest"),
    "custom": ("checks_from_file",),
    "refusal": ("find_refusal", "load_rules", "refusal_rules"),
    "result": ("METRICS", "SafetyResult", "disagreements", "rows_from_output", "side_by_side"),
    "run": ("check_safety",),
    "show": ("hidden_answers",),
})
