"""evalkit: evaluate an LLM bottom-up through the evaluation pyramid against one OpenAI-compatible endpoint.

This module is the whole public surface a notebook needs; the submodules own one concern each
(serve, perf, fmt, accuracy, safety, scorecard) and are re-exported here once.
"""

from evalkit import accuracy, fmt, perf, plots, widgets
from evalkit.accuracy import AccuracyResult, task_from_table
from evalkit.envreport import env_report, env_table
from evalkit.errors import (
    ConfigError,
    ContextLengthError,
    EvalkitError,
    PortInUseError,
    RunLockedError,
    RunNotFoundError,
    ServerDiedError,
    ServerStartError,
    ServerUnreachableError,
    TaskFileError,
    ToolError,
    ToolMissingError,
    UnknownModelError,
)
from evalkit.fmt import FormatResult, check_format
from evalkit.models import PRESETS, ModelPreset, estimate_memory, get_preset, presets_table
from evalkit.perf import PRICES, SLO, PerfResult, TokenGridResult, knee, slo_capacity, sweep, token_grid
from evalkit.runs import LayerResult, Metric, new_run_dir
from evalkit.safety import SafetyResult, check_safety, checks_from_file, find_refusal
from evalkit.scorecard import Scorecard, apply_thresholds, compare, gate, load_thresholds
from evalkit.scorecard import collect as collect_scorecard
from evalkit.scorecard import junit_xml as scorecard_junit
from evalkit.scorecard import markdown_summary as scorecard_markdown
from evalkit.serve import Server, attach, serve, stop_servers
from evalkit.settings import Settings, get_settings

__version__ = "0.1.0"

__all__ = [
    "AccuracyResult",
    "PRESETS",
    "PRICES",
    "PerfResult",
    "SLO",
    "TokenGridResult",
    "ConfigError",
    "ContextLengthError",
    "EvalkitError",
    "FormatResult",
    "LayerResult",
    "Metric",
    "ModelPreset",
    "PortInUseError",
    "RunLockedError",
    "RunNotFoundError",
    "SafetyResult",
    "Scorecard",
    "Server",
    "ServerDiedError",
    "ServerStartError",
    "ServerUnreachableError",
    "Settings",
    "TaskFileError",
    "ToolError",
    "ToolMissingError",
    "UnknownModelError",
    "accuracy",
    "apply_thresholds",
    "attach",
    "compare",
    "env_report",
    "env_table",
    "estimate_memory",
    "find_refusal",
    "fmt",
    "gate",
    "get_preset",
    "get_settings",
    "knee",
    "load_thresholds",
    "new_run_dir",
    "perf",
    "plots",
    "presets_table",
    "check_format",
    "check_safety",
    "checks_from_file",
    "collect_scorecard",
    "scorecard_junit",
    "scorecard_markdown",
    "serve",
    "slo_capacity",
    "stop_servers",
    "sweep",
    "task_from_table",
    "token_grid",
    "widgets",
]
