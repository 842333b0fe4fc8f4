"""The servers this project started: their state files, found, checked and listed.

Everything lives under ``runs/servers``:

- ``live/<port>.json``: a server's state (:class:`ServerInfo`), written by its keeper
  (:mod:`evalkit.serve.keeper`, which rewrites it when it was edited or cut short by hand);
- ``live/<port>.<id>.users/<pid>.json``: one file per process using that server (:mod:`evalkit.serve.sharing`);
- ``<port>.lock``: serialises starting, attaching and the last user's leaving on one port;
- ``<port>.json`` directly in ``servers``: a server started by an evalkit from before shared servers (schema 1:
  it ends with the process that started it); listed, attached to and stopped, never adopted;
- the servers' logs.

A process is recognised by its pid *and* its start time, so a pid that another program took over after the
server ended is never signalled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evalkit import proc
from evalkit.settings import Settings, get_settings

SCHEMA = 2  # what this version writes; a newer evalkit's servers are listed but not touched


@dataclass
class ServerInfo:
    """What evalkit knows about a server; saved as ``runs/servers/live/<port>.json`` for servers it started."""

    model: str
    base_url: str
    tokenizer: str
    source: str = ""
    pid: int | None = None  # the vLLM server process (leader of its process group)
    port: int | None = None
    command: list[str] = field(default_factory=list)
    log_path: str = ""
    started_at: float = 0.0
    ready_s: float | None = None
    device: str = ""
    max_model_len: int | None = None
    owner: str = ""  # who started it, in words
    id: str = ""  # names this server's users folder; a new server on the same port gets a new one
    pid_start: int | None = None  # the start time of `pid` (proc.start_time)
    keeper_pid: int | None = None  # the keeper: stops the server when its last user has gone
    keeper_start: int | None = None
    keep: bool = False  # runs until `evalkit stop`, used or not
    schema: int = SCHEMA
    evalkit: str = ""  # the version that started it
    owner_pid: int | None = None  # schema 1 only: the process whose end ended the server

    @classmethod
    def from_dict(cls, data: dict) -> ServerInfo:
        """A state read from JSON; fields this version does not know are ignored, a file without ``schema`` is 1.

        Raises:
            ValueError: not a server's state (a field missing or of the wrong type).
        """
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        info = cls(**{"schema": 1, **{k: v for k, v in data.items() if k in known}})
        if not (isinstance(info.model, str) and isinstance(info.base_url, str) and isinstance(info.port, int)
                and isinstance(info.schema, int)):
            raise ValueError("model, base_url or port missing")
        for name in ("pid", "pid_start", "keeper_pid", "keeper_start", "owner_pid"):
            if not isinstance(getattr(info, name), (int, type(None))):
                raise ValueError(f"{name} is not a number")
        return info

    @property
    def legacy(self) -> bool:
        """Started by an evalkit from before shared servers: it ends with the process that started it."""
        return self.schema < 2

    def running(self) -> bool:
        """Whether the server this state describes still runs (checked by pid and start time, not pid alone)."""
        if self.legacy:
            return bool(self.pid) and proc.pid_alive(self.pid) and _is_vllm(self.pid)
        return proc.same_process(self.keeper_pid, self.keeper_start)

    def users_dir(self, settings: Settings) -> Path:
        return state_dir(settings) / f"{self.port}.{self.id}.users"


def _is_vllm(pid: int) -> bool:
    """Whether ``pid`` runs vLLM (a schema-1 state has no start time to check the pid against)."""
    import psutil

    try:
        return any("vllm" in part for part in psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # not ours to read: trust the pid
        return True


def servers_dir(settings: Settings) -> Path:
    return settings.runs_dir / "servers"


def state_dir(settings: Settings) -> Path:
    return servers_dir(settings) / "live"


def state_path(settings: Settings, port: int) -> Path:
    return state_dir(settings) / f"{port}.json"


def write_state(path: Path, info: ServerInfo) -> None:
    """Write a state file whole (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.write_text(json.dumps(asdict(info), indent=2))
    os.replace(staging, path)


def read_state(path: Path) -> ServerInfo:
    """The state in ``path``. Raises ValueError (damaged) or OSError (gone)."""
    return ServerInfo.from_dict(json.loads(path.read_text()))


@dataclass
class Scan:
    """What :func:`scan_servers` found: the running servers, and a sentence for each state file it could not use."""

    servers: list[ServerInfo]
    notes: list[str]


def scan_servers(settings: Settings | None = None) -> Scan:
    """Every running server this project started, with notes on damaged, foreign or stale state files.

    Stale files (the server has ended, or its pid now belongs to another program) are removed; a damaged file
    is removed only when nothing listens on its port (a running keeper rewrites it within a second), and a
    newer evalkit's file is left alone.
    """
    settings = settings or get_settings()
    found, notes = [], []
    paths = sorted(state_dir(settings).glob("*.json")) + sorted(servers_dir(settings).glob("*.json"))
    for path in paths:
        try:
            info = read_state(path)
        except OSError:
            continue  # removed meanwhile
        except ValueError as exc:
            port = path.stem
            if port.isdigit() and not _listening(settings.host, int(port)):
                path.unlink(missing_ok=True)
                notes.append(f"{path} was not a server's state ({exc}: edited or cut short by hand?) and nothing "
                             f"listens on port {port}: removed.")
            else:
                notes.append(f"{path} is not a server's state ({exc}: edited or cut short by hand?). evalkit "
                             f"leaves whatever listens on port {port} alone; the keeper of a server evalkit "
                             "started rewrites the file within a second.")
            continue
        if info.schema > SCHEMA:
            notes.append(f"{path} was written by a newer evalkit ({info.evalkit or 'schema ' + str(info.schema)}) "
                         f"for {info.model} at {info.base_url}: this version attaches to it by URL only and does "
                         "not stop it; use that version's `evalkit stop`.")
            continue
        if info.running():
            found.append(info)
            continue
        path.unlink(missing_ok=True)
        if not info.legacy:
            remove_users(info, settings)
            if info.pid and proc.same_process(info.pid, info.pid_start):  # the keeper died, vLLM did not
                proc.stop_pid(info.pid)
    live = {(str(i.port), i.id) for i in found if not i.legacy}
    for folder in state_dir(settings).glob("*.users"):
        port, _, rest = folder.name.partition(".")
        # a users folder without its state: its server has ended, or its state file is being repaired (then
        # its users are alive and stay)
        if (port, rest.removesuffix(".users")) not in live and not any(
                alive_user(path) for path in folder.glob("*.json")):
            shutil.rmtree(folder, ignore_errors=True)
    return Scan(found, notes)


def alive_user(path: Path) -> dict | None:
    """The record in a user's file (pid, start, what, since) if that process still runs, else None."""
    try:
        record = json.loads(path.read_text())
        alive = proc.same_process(int(record["pid"]), record.get("start"))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # damaged by hand: whoever it named is counted again at its next attach
    return record if alive else None


def project_servers(settings: Settings | None = None) -> list[ServerInfo]:
    """Servers this project started that still run (stale state files are removed)."""
    return scan_servers(settings).servers


def remove_users(info: ServerInfo, settings: Settings) -> None:
    shutil.rmtree(info.users_dir(settings), ignore_errors=True)


def forget(info: ServerInfo, settings: Settings) -> None:
    """Remove a stopped server's state file (unless it describes a newer server on the port) and its users."""
    path = state_path(settings, info.port)
    try:
        if read_state(path).id == info.id:
            path.unlink(missing_ok=True)
    except OSError:
        pass
    except ValueError:
        path.unlink(missing_ok=True)  # damaged, and its server has stopped
    remove_users(info, settings)


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


_lock_threads = threading.local()  # the lock files a thread holds: a nested port_lock on one port does not block


@contextlib.contextmanager
def port_lock(settings: Settings, port: int, wait: bool = True):
    """Serialise starting, attaching and leaving on one port across processes (nested calls in a thread are free).

    ``wait=False`` yields False at once when another process holds the lock (the keeper, which must not block).
    """
    folder = servers_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{port}.lock"
    held = _lock_threads.__dict__.setdefault("held", {})
    if held.get(path):
        held[path] += 1
        try:
            yield True
        finally:
            held[path] -= 1
        return
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        held[path] = 1
        try:
            yield True
        finally:
            held[path] = 0
            fcntl.flock(fh, fcntl.LOCK_UN)


def wait_gone(pid: int, started: int | None, timeout_s: float) -> bool:
    """Wait until the process (pid and start time) has ended; True if it did within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while proc.same_process(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
