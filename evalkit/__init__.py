"""evalkit: evaluate an LLM bottom-up through the evaluation pyramid against one OpenAI-compatible endpoint.

This module is the whole public surface a notebook needs; the submodules own one concern each
(serve, the layers, scorecard) and are re-exported here once. Each layer's package, its result class and the
names its registry entry lists (:mod:`evalkit.layers`) come from the registry.
"""

from evalkit import plots, widgets
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
from evalkit.figures import expect
from evalkit.layers import LAYERS
from evalkit.models import PRESETS, ModelPreset, estimate_memory, get_preset, presets_table
from evalkit.runs import LayerResult, Metric, new_run_dir
from evalkit.scorecard import Scorecard, apply_thresholds, compare, gate, load_thresholds
from evalkit.scorecard import collect as collect_scorecard
from evalkit.scorecard import junit_xml as scorecard_junit
from evalkit.scorecard import markdown_summary as scorecard_markdown
from evalkit.serve import Server, attach, serve, stop_servers
from evalkit.settings import Settings, get_settings

__version__ = "0.1.0"

_LAYER_EXPORTS = []
for _layer in LAYERS:
    _package = _layer.package()
    for _name in (_layer.module, _layer.result, *_layer.exports):
        globals()[_name] = _package if _name == _layer.module else getattr(_package, _name)
        _LAYER_EXPORTS.append(_name)

__all__ = [
    *_LAYER_EXPORTS,
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
    "apply_thresholds",
    "attach",
    "compare",
    "env_report",
    "env_table",
    "estimate_memory",
    "expect",
    "gate",
    "get_preset",
    "get_settings",
    "load_thresholds",
    "new_run_dir",
    "plots",
    "presets_table",
    "collect_scorecard",
    "scorecard_junit",
    "scorecard_markdown",
    "serve",
    "stop_servers",
    "widgets",
]
