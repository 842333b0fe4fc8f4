"""Who uses a server: each process that attaches through evalkit is a user until it leaves, ends or is killed.

A user is a file ``<pid>.json`` in the server's users folder (its pid, start time and what it is). A process
holds a server once however many handles it has (:func:`join` counts them); the file goes when its last handle
leaves (:func:`leave`) or the process exits normally. A killed process leaves its file behind, and
:func:`live_users` skips it (pid and start time no longer match). The last user to leave stops the server
(:func:`release`), and the keeper (:mod:`evalkit.serve.keeper`) stops it when the last user was killed.
:func:`stop_servers` (``evalkit stop``) stops servers for everyone and says who was using them.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from evalkit import proc
from evalkit.serve.state import (
    ServerInfo,
    alive_user,
    forget,
    port_lock,
    read_state,
    scan_servers,
    state_path,
    wait_gone,
    write_state,
)
from evalkit.settings import Settings, get_settings

STOP_GRACE_S = 30.0  # the keeper gives vLLM 10 s to stop, then kills it

_held: dict[Path, int] = {}  # users folder -> handles of this process on that server
_holder_pid: int | None = None  # the process whose files _held names (a forked child holds nothing)


@dataclass
class User:
    pid: int
    what: str
    since: float

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.what}, since {time.strftime('%H:%M:%S', time.localtime(self.since))})"


def describe_process() -> str:
    """What this process is, in a few words (a Jupyter kernel, `evalkit perf`, a script)."""
    argv = sys.argv or ["python"]
    first = "python -c" if argv[0] == "-c" else Path(argv[0]).name
    if "ipykernel" in first:
        return "Jupyter kernel"
    if first in ("cli.py", "evalkit", "__main__.py") and "evalkit" in argv[0]:
        return " ".join(["evalkit", *argv[1:2]])
    return " ".join([first or "python", *argv[1:2]])[:60]  # a script and its first argument


def join(info: ServerInfo, settings: Settings) -> None:
    """Count one more handle of this process on the server; the first one makes this process a user."""
    global _holder_pid
    if _holder_pid != os.getpid():  # a forked child: the parent's handles are not its own
        _held.clear()
        _holder_pid = os.getpid()
    folder = info.users_dir(settings)
    _held[folder] = _held.get(folder, 0) + 1
    if _held[folder] == 1:
        folder.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "start": proc.start_time(os.getpid()), "what": describe_process(),
                  "since": time.time()}
        (folder / f"{os.getpid()}.json").write_text(json.dumps(record))


def leave(info: ServerInfo, settings: Settings) -> bool:
    """Count one handle less; True when this process no longer uses the server (its file is gone)."""
    folder = info.users_dir(settings)
    if _holder_pid != os.getpid() or folder not in _held:
        return True
    _held[folder] -= 1
    if _held[folder] > 0:
        return False
    del _held[folder]
    (folder / f"{os.getpid()}.json").unlink(missing_ok=True)
    return True


@atexit.register
def _leave_all() -> None:
    """A process that exits normally leaves every server it used (a killed one is noticed by the keeper)."""
    if _holder_pid == os.getpid():
        for folder in list(_held):
            (folder / f"{os.getpid()}.json").unlink(missing_ok=True)
        _held.clear()


def live_users(folder: Path) -> list[User]:
    """The processes using a server now; the files of processes that ended are removed."""
    users = []
    for path in sorted(folder.glob("*.json")):
        record = alive_user(path)
        if record is None:
            path.unlink(missing_ok=True)
        else:
            users.append(User(int(record["pid"]), str(record.get("what", "")), float(record.get("since", 0))))
    return users


def users_of(info: ServerInfo, settings: Settings) -> list[User]:
    """Who uses a server (a schema-1 server: the process that started it, while it lives)."""
    if info.legacy:
        alive = info.owner_pid and proc.pid_alive(info.owner_pid)
        return [User(info.owner_pid, info.owner or "its starter", info.started_at)] if alive else []
    return live_users(info.users_dir(settings))


def release(info: ServerInfo, settings: Settings) -> bool:
    """This handle leaves the server; the last user leaving stops it unless it is kept. True if it stopped."""
    if info.legacy or not info.id:
        return False
    with port_lock(settings, info.port):
        if not leave(info, settings):
            return False
        try:
            current = read_state(state_path(settings, info.port))
        except (OSError, ValueError):
            return False  # stopped by someone else (or its file is being repaired: the keeper decides)
        if current.id != info.id or current.keep or live_users(info.users_dir(settings)):
            return False
        stop_server(current, settings)
        return True


def mark_kept(info: ServerInfo, settings: Settings) -> ServerInfo:
    """Make a shared server run until ``evalkit stop`` (``evalkit serve`` attaching to one); its keeper adopts it."""
    with port_lock(settings, info.port):
        current = read_state(state_path(settings, info.port))
        if current.id == info.id and not current.keep:
            current.keep = True
            write_state(state_path(settings, info.port), current)
    return current


def stop_server(info: ServerInfo, settings: Settings) -> None:
    """Stop a server this project started, for everyone; only processes whose start time matches are signalled."""
    if info.legacy:
        if info.running():
            proc.stop_pid(info.pid)
        (settings.runs_dir / "servers" / f"{info.port}.json").unlink(missing_ok=True)
        return
    if proc.same_process(info.keeper_pid, info.keeper_start):
        proc.signal_group(info.keeper_pid, signal.SIGTERM)  # the keeper stops vLLM and removes the state
        wait_gone(info.keeper_pid, info.keeper_start, STOP_GRACE_S)
    if proc.same_process(info.keeper_pid, info.keeper_start):
        proc.signal_group(info.keeper_pid, signal.SIGKILL)  # vLLM gets its parent-death signal
    if info.pid and proc.same_process(info.pid, info.pid_start):
        proc.signal_group(info.pid, signal.SIGKILL)
    forget(info, settings)


def stop_servers(port: int | None = None, settings: Settings | None = None, *,
                 orphans: bool = False) -> list[tuple[ServerInfo, list[User]]]:
    """Stop servers this project started (all, the one on ``port``, or the orphans) for everyone.

    ``orphans``: only servers nobody uses any more and that are not kept (a schema-1 server whose starter was
    killed). Returns each server stopped with the processes that were using it.
    """
    settings = settings or get_settings()
    stopped = []
    for info in scan_servers(settings).servers:
        if port is not None and info.port != port:
            continue
        users = users_of(info, settings)
        if orphans and (users or info.keep or (info.legacy and info.owner_pid is None)):
            continue
        stop_server(info, settings)
        stopped.append((info, users))
    return stopped
