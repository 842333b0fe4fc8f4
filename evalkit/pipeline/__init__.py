"""The main job: ``evalkit run`` executes every notebook of the pyramid against one server, then gates.

One run folder per run (``runs/<time>-<profile>/``): ``run.json`` (what ran, each notebook's status and time),
``notebooks/`` (the executed notebooks), one folder per layer with its tool outputs and ``result.json``, then
the scorecard, the gate files and ``report.html``. A notebook that fails is recorded and the others still
run; ``evalkit run --resume RUN`` reruns only what did not finish. Parameters come from a named profile in
``profiles.yaml`` (``quick``: minutes on a CPU; ``full``: the workshop on an L4). One run at a time per project.
"""

from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "profiles": ("NOTEBOOKS", "load_profiles", "profile_parameters"),
    "kernel": ("kernel_config",),
})
