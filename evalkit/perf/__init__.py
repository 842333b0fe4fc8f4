"""Layer 1, performance: GuideLLM load tests against the served model, what they mean, and their typed results.

The package is split by concern: :mod:`~evalkit.perf.args` (what a run may be asked, checked before it starts),
:mod:`~evalkit.perf.guidellm` (the adapter: the only module that knows GuideLLM's command line and report),
:mod:`~evalkit.perf.result` (:class:`PerfResult`, :class:`TokenGridResult`, :data:`METRICS`),
:mod:`~evalkit.perf.run` (:func:`sweep`, :func:`token_grid`), :mod:`~evalkit.perf.workloads` (use-case
presets), :mod:`~evalkit.perf.analysis` (capacity at an SLO, the knee), :mod:`~evalkit.perf.goodput` (GuideLLM's own
capacity search beside it), :mod:`~evalkit.perf.cost` (cost per
million tokens), :mod:`~evalkit.perf.cold` (a server's cold start, apart from any load) and
:mod:`~evalkit.perf.cli` (``evalkit perf``).
"""

from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "analysis": ("SLO", "Capacity", "Knee", "as_slo", "knee", "measured", "slo_capacity"),
    "args": ("PROFILES", "PerfArgs"),
    "cold": ("cold_start",),
    "cost": ("PRICES", "cost_at_capacity"),
    "goodput": ("Goodput", "compare_capacity"),
    "guidellm": ("REPORT_JSON", "build_command", "default_workers"),
    "result": ("COLUMNS", "METRICS", "PerfResult", "TokenGridResult"),
    "run": ("command_for", "run_workloads", "sweep", "token_grid", "workload_table"),
    "workloads": ("WORKLOADS", "fit_workload", "workload_presets"),
})
