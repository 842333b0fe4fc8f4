"""evalkit: evaluate an LLM bottom-up through the evaluation pyramid against one OpenAI-compatible endpoint.

This module is the whole public surface a notebook needs; the submodules own one concern each
(serve, the layers, scorecard) and are re-exported here once. Each layer's package, its result class and the
names its registry entry lists (:mod:`evalkit.layers`) come from the registry. Every name loads on first use
(:mod:`evalkit.lazy`): ``import evalkit as ek`` is quick, and ``ek.plots`` imports matplotlib only when a plot is
asked for.
"""

from evalkit.layers import LAYERS
from evalkit.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    **{f"evalkit.{layer.module}": (".", layer.result, *layer.exports) for layer in LAYERS},
    "envreport": ("env_report", "env_table"),
    "errors": ("ConfigError", "ContextLengthError", "EvalkitError", "PortInUseError", "RunLockedError",
               "RunNotFoundError", "ServerDiedError", "ServerStartError", "ServerUnreachableError", "TaskFileError",
               "ToolError", "ToolMissingError", "UnknownModelError"),
    "figures": ("expect",),
    "models": ("PRESETS", "ModelPreset", "estimate_memory", "get_preset", "presets_table"),
    "result": ("LayerResult", "Metric", "MetricSpec"),
    "runs": ("new_run_dir",),
    "scorecard": ("Scorecard", "apply_thresholds", "compare", "gate", "load_thresholds", "collect_scorecard=collect",
                  "scorecard_junit=junit_xml", "scorecard_markdown=markdown_summary"),
    "serve": ("Server", "attach", "serve", "serve_beside", "stop_servers"),
    "settings": ("Settings", "get_settings"),
    "plots": (".",),
    "widgets": (".",),
})
