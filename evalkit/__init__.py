"""evalkit: evaluate an LLM bottom-up through the evaluation pyramid against one OpenAI-compatible endpoint.

This module is the whole public surface a notebook needs; the submodules own one concern each
(serve, perf, fmt, accuracy, safety, scorecard) and are re-exported here once.
"""

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
from evalkit.models import PRESETS, ModelPreset, estimate_memory, get_preset, presets_table
from evalkit.runs import LayerResult, Metric, new_run_dir
from evalkit.serve import Server, attach, serve, stop_servers
from evalkit.settings import Settings, get_settings

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "ConfigError",
    "ContextLengthError",
    "EvalkitError",
    "LayerResult",
    "Metric",
    "ModelPreset",
    "PortInUseError",
    "RunLockedError",
    "RunNotFoundError",
    "Server",
    "ServerDiedError",
    "ServerStartError",
    "ServerUnreachableError",
    "Settings",
    "TaskFileError",
    "ToolError",
    "ToolMissingError",
    "UnknownModelError",
    "attach",
    "env_report",
    "env_table",
    "estimate_memory",
    "get_preset",
    "get_settings",
    "new_run_dir",
    "presets_table",
    "serve",
    "stop_servers",
]
