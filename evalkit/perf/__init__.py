"""Layer 1, performance: GuideLLM load tests against the served model, what they mean, and their typed results.

The package is split by concern: :mod:`~evalkit.perf.args` (what a run may be asked, checked before it starts),
:mod:`~evalkit.perf.guidellm` (the adapter: the only module that knows GuideLLM's command line and report),
:mod:`~evalkit.perf.result` (:class:`PerfResult`, :class:`TokenGridResult`, :data:`METRICS`),
:mod:`~evalkit.perf.run` (:func:`sweep`, :func:`token_grid`), :mod:`~evalkit.perf.workloads` (use-case
presets), :mod:`~evalkit.perf.analysis` (capacity at an SLO, the knee), :mod:`~evalkit.perf.cost` (cost per
million tokens) and :mod:`~evalkit.perf.cli` (``evalkit perf``).
"""

from evalkit.perf.analysis import SLO, Capacity, Knee, as_slo, knee, measured, slo_capacity
from evalkit.perf.args import ENDPOINTS, PROFILES, PerfArgs
from evalkit.perf.cost import PRICES, cost_at_capacity, cost_per_million_output_tokens, hourly_price
from evalkit.perf.guidellm import LOG, REPORT_HTML, REPORT_JSON, build_command, default_workers, parse_report
from evalkit.perf.result import COLUMNS, METRICS, PerfResult, TokenGridResult
from evalkit.perf.run import command_for, run_workloads, sweep, token_grid, workload_table
from evalkit.perf.workloads import WORKLOADS, fit_workload, workload_presets

__all__ = [
    "PerfArgs",
    "COLUMNS",
    "ENDPOINTS",
    "LOG",
    "METRICS",
    "PRICES",
    "PROFILES",
    "REPORT_HTML",
    "REPORT_JSON",
    "SLO",
    "Capacity",
    "Knee",
    "PerfResult",
    "TokenGridResult",
    "as_slo",
    "build_command",
    "command_for",
    "cost_at_capacity",
    "cost_per_million_output_tokens",
    "default_workers",
    "hourly_price",
    "knee",
    "measured",
    "parse_report",
    "slo_capacity",
    "sweep",
    "token_grid",
    "WORKLOADS",
    "fit_workload",
    "run_workloads",
    "workload_table",
    "workload_presets",
]
