"""Running promptfoo offline against the model endpoint, and reading its JSON output.

promptfoo is a Node program installed into the project's ``node_modules`` (``make setup``) and run with the
Node from the Python environment. :func:`run_promptfoo` runs ``promptfoo eval`` on a config file with
telemetry, update checks, sharing and remote generation switched off and its config/cache/database folder
inside the run folder; exit code 100 means "some assertions failed" and is a result, not a crash.
:func:`parse_output` turns promptfoo's ``-o out.json`` into one row per test. The format and safety layers
build configs from data with :func:`provider` and :func:`write_config`; a learner can also pass their own
promptfooconfig.yaml. With ``audit_network=True`` a small Node preload records every socket connection and DNS
lookup promptfoo makes, which is how the tests prove a run stays on this machine.

The package: :mod:`~evalkit.promptfoo.config` (providers, configs), :mod:`~evalkit.promptfoo.run` (the command,
its environment, :func:`run_promptfoo`) and :mod:`~evalkit.promptfoo.output` (reading what promptfoo wrote).
"""

from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ("SAFE_DUMPER", "SAFE_LOADER", "check_config_file", "provider", "recorded_runs", "write_config"),
    "output": ("eval_stats", "parse_output"),
    "run": ("promptfoo_command", "promptfoo_env", "run_promptfoo"),
})
