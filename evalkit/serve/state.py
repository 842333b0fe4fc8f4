"""The servers this project started: one state file each under ``runs/servers``, found, listed and stopped."""

from __future__ import annotations

import contextlib
import fcntl
import json
from dataclasses import dataclass, field
from pathlib import Path

from evalkit import proc
from evalkit.settings import Settings, get_settings


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
    owner_pid: int | None = None  # the process whose end ends the server; None: it runs until `evalkit stop`
    owner: str = ""

    def owner_alive(self) -> bool | None:
        """Whether the owner still runs (None: the server has no owner, it was started to outlive its command)."""
        return None if self.owner_pid is None else proc.pid_alive(self.owner_pid)


def _state_dir(settings: Settings) -> Path:
    return settings.runs_dir / "servers"


def state_path(settings: Settings, port: int) -> Path:
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
def port_lock(settings: Settings, port: int):
    """Serialize start-ups on one port across processes (a second caller then attaches)."""
    folder = _state_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{port}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def stop_servers(port: int | None = None, settings: Settings | None = None, *,
                 orphans: bool = False) -> list[ServerInfo]:
    """Stop servers this project started (all, the one on ``port``, or the orphans); return what was stopped.

    ``orphans``: only servers whose owner process has ended (a kernel or an ``evalkit run`` that was killed).
    """
    settings = settings or get_settings()
    stopped = []
    for info in project_servers(settings):
        if orphans and info.owner_alive() is not False:
            continue
        if port is None or info.port == port:
            proc.stop_pid(info.pid)
            state_path(settings, info.port).unlink(missing_ok=True)
            stopped.append(info)
    return stopped
