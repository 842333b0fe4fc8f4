"""The vLLM server: attach to a running endpoint or start one, and stop only what was started.

``with serve("stories260k") as srv:`` gives ``srv.base_url`` (OpenAI style, ending in ``/v1``) and ``srv.model``.
Order of preference: an explicit base URL (any OpenAI-compatible endpoint: a vLLM deployment, a cluster
router); a server this project already started for the same model (state files under ``runs/servers``); a
server answering on the chosen port with the same model; otherwise a new ``python -m
vllm.entrypoints.openai.api_server`` (on a CPU through :mod:`~evalkit.serve.vllm_fork`, which starts in half
the time) bound to 127.0.0.1, watched while it starts, with its log kept, once :mod:`~evalkit.serve.memory`
found room for it. A server that ``serve()`` starts is shared: every process that attaches to it through
evalkit is one of its users, and a keeper process (:mod:`~evalkit.serve.keeper`) stops it when the last user
has left or ended, however it ended, so a killed kernel or job leaves nothing running and closing the notebook
that started it does not stop a run in another; one started by ``evalkit serve`` (``keep=True``) runs until
``evalkit stop``. ``evalkit status`` shows who uses each server; ``evalkit stop`` stops it for everyone.
:func:`prestart` starts the next model's server without waiting for it (``evalkit run --models``).

The package is split by concern: :mod:`~evalkit.serve.client` (requests to an endpoint, ports),
:mod:`~evalkit.serve.resolve` (which model), :mod:`~evalkit.serve.state` (the servers this project started),
:mod:`~evalkit.serve.sharing` (who uses them, leaving, stopping), :mod:`~evalkit.serve.keeper`,
:mod:`~evalkit.serve.server` (:class:`Server`, :func:`attach`), :mod:`~evalkit.serve.command` (the vLLM command
line, built without side effects) and :mod:`~evalkit.serve.start` (:func:`serve`: start or reuse, and wait).
"""

from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "client": ("http_json", "list_models"),
    "resolve": ("resolve_model",),
    "server": ("Server", "attach"),
    "start": ("Starting", "prestart", "serve", "serve_beside"),
    "sharing": ("stop_servers",),
})
