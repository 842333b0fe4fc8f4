"""A served model: :class:`Server` (its base URL, model, context and health) and :func:`attach` to any endpoint.

A handle on a server this project started makes its process one of the server's users (:func:`hold`);
:meth:`Server.stop` leaves, and the last user to leave stops the server unless it is kept.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, replace
from pathlib import Path

from evalkit import proc
from evalkit.errors import (
    ConfigError,
    PortInUseError,
    ServerDiedError,
    ServerUnreachableError,
)
from evalkit.serve.client import heartbeat, http_json, list_models, normalize_base_url
from evalkit.serve.resolve import ModelRef, pick_served, tokenizer_for
from evalkit.serve.sharing import join, release
from evalkit.serve.state import ServerInfo, port_lock, project_servers, read_state, state_path
from evalkit.settings import Settings, get_settings


class Server:
    """A running OpenAI-compatible endpoint; ``__exit__`` leaves it (the last user leaving stops it).

    ``started``: this handle's call started the server. ``holding``: this handle counts this process among the
    server's users (handles on servers this project started do; endpoints elsewhere have no users).
    """

    def __init__(self, info: ServerInfo, process=None, started: bool = False, settings: Settings | None = None,
                 holding: bool = False):
        self.info = info
        self.process = process  # the keeper, for the process that started the server
        self.started = started
        self.holding = holding
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

    def heartbeat(self, tool: str, total: int | None = None):
        """A progress line for a quiet tool (``proc.run(heartbeat=...)``).

        It says how long the tool has run and how many requests this server has finished since (from vLLM's
        ``/metrics``; other servers: the time alone).
        """
        return heartbeat(self.root_url, tool, total)

    def __repr__(self) -> str:
        how = "started" if self.started else "attached"
        return f"Server({self.model!r} at {self.base_url}, {how}, pid={self.info.pid})"

    def for_model(self, name: str) -> Server:
        """A handle on this server that sends requests to ``name``, another model it serves (a LoRA adapter).

        Raises:
            ConfigError: the server does not list ``name`` in /v1/models.
        """
        served = [m["id"] for m in list_models(self.base_url, self.settings.request_timeout_s,
                                               self.settings.api_key_value())]
        if name not in served:
            raise ConfigError(
                f"The server at {self.base_url} serves {', '.join(served)}, not {name}: it was started before "
                f"the adapter {name} existed, or without it.",
                fix="stop it (`evalkit stop`) and start it again: a server for a base model loads every adapter "
                    "found for it at start.")
        if self.holding:
            join(self.info, self.settings)  # one more handle of this process: each one leaves on its own
        return Server(replace(self.info, model=name), process=self.process, started=self.started,
                      settings=self.settings, holding=self.holding)

    # --- health
    def healthy(self, timeout: float | None = None) -> bool:
        try:
            list_models(self.base_url, timeout or self.settings.request_timeout_s, self.settings.api_key_value())
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
            return http_json(f"{self.base_url}/{path}", payload, timeout=120, api_key=self.settings.api_key_value())
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
        """Leave the server: when no other process (or handle) uses it and it is not kept, it stops.

        A handle on an endpoint this project did not start leaves nothing running and stops nothing.
        ``evalkit stop`` stops a server for everyone.
        """
        if self.holding:
            self.holding = False
            release(self.info, self.settings)
        if self.process is not None:
            self.process.poll()  # the keeper, once it has ended, is not left a zombie
        self.started = False

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def attach(base_url: str, model: str | None = None, settings: Settings | None = None) -> Server:
    """Attach to any OpenAI-compatible endpoint; ``model`` picks one of its models (default: the first)."""
    settings = settings or get_settings()
    url = normalize_base_url(base_url)
    try:
        served = list_models(url, settings.request_timeout_s, settings.api_key_value())
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise ServerUnreachableError(
                f"{url}/models answered HTTP 401: the server wants an API key"
                + (" and refused the one evalkit sent." if settings.api_key else "."),
                fix="set EVALKIT_API_KEY to the key the server was started with (vLLM's --api-key).",
            ) from None
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
    entry = pick_served(served, model, url)
    name = entry["id"]
    tokenizer = tokenizer_for(name, entry.get("root"))
    info = ServerInfo(model=name, base_url=url, tokenizer=tokenizer, source=entry.get("root") or name,
                      max_model_len=entry.get("max_model_len"))
    for known in project_servers(settings):
        if normalize_base_url(known.base_url) == url:
            held = hold(known, settings)
            if held is not None:  # the base's server answering for one of its adapters keeps that name
                held.info = replace(held.info, model=name)
                return held
    return Server(info, started=False, settings=settings)


def hold(info: ServerInfo, settings: Settings) -> Server | None:
    """A handle on a server this project started, this process among its users; None if it has stopped since.

    Joining happens under the port's lock, so a server whose last user is leaving is not joined as it stops.
    """
    if info.legacy:  # started before shared servers: it ends with its starter, whoever attaches
        return Server(info, settings=settings)
    with port_lock(settings, info.port):
        try:
            current = read_state(state_path(settings, info.port))
        except (OSError, ValueError):
            return None
        if current.id != info.id or not current.running():
            return None
        join(current, settings)
    return Server(current, settings=settings, holding=True)


def attach_same_model(url: str, ref: ModelRef, settings: Settings) -> Server:
    try:
        served = [m["id"] for m in list_models(url, settings.request_timeout_s, settings.api_key_value())]
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
