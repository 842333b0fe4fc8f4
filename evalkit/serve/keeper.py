"""The keeper of a server evalkit starts: it runs vLLM and stops it when the last process using it has gone.

``serve()`` starts ``python -m evalkit.serve.keeper STATE_FILE`` in a session of its own (the server's
description in ``EVALKIT_SERVER_SPEC``), so the server outlives the process that started it while others use
it: closing notebook 00 does not stop the sweep running in notebook 01. The keeper starts vLLM as its child
with a parent-death signal (a killed keeper leaves no vLLM), writes the state file, and then, every second:

- ends when vLLM ends (removing the state file and the users folder);
- stops vLLM when no user is left, unless the server is kept (``evalkit serve``): users that were killed
  count as gone, since their pid and start time no longer match (:func:`evalkit.serve.sharing.live_users`);
- stops vLLM on SIGTERM (``evalkit stop``, or the last user leaving);
- rewrites the state file when it was removed, cut short or its identity edited by hand.

It writes what it does to the server's log, lines starting with ``[evalkit keeper]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from evalkit import proc
from evalkit.serve.sharing import join, live_users
from evalkit.serve.state import ServerInfo, forget, port_lock, read_state, state_path, write_state
from evalkit.settings import Settings

SPEC_ENV = "EVALKIT_SERVER_SPEC"
CHECK_EVERY_S = 1.0
IDENTITY = ("model", "base_url", "port", "pid", "pid_start", "keeper_pid", "keeper_start", "id")  # kept by hand


def _log(text: str) -> None:
    print(f"[evalkit keeper] {time.strftime('%H:%M:%S')} {text}", flush=True)


def _exit_code(code: int) -> int:
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell reports it


def keep(state_file: Path, info: ServerInfo) -> int:
    """Run the server ``info`` describes until it ends, is stopped, or (unless kept) has no user left."""
    settings = Settings(runs_dir=state_file.parent.parent.parent)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    vllm = proc.spawn(info.command, log_path=Path(info.log_path), env=dict(os.environ), die_with_parent=True)
    info.pid, info.pid_start = vllm.pid, proc.start_time(vllm.pid)
    info.keeper_pid, info.keeper_start = os.getpid(), proc.start_time(os.getpid())
    write_state(state_file, info)
    _log(f"pid {os.getpid()} keeps vLLM pid {vllm.pid} on port {info.port} "
         + ("until `evalkit stop`" if info.keep else "while a process uses it"))
    users = info.users_dir(settings)
    with contextlib.ExitStack() as held:
        try:
            while True:
                try:
                    code = vllm.wait(CHECK_EVERY_S)
                except subprocess.TimeoutExpired:
                    code = None
                if code is not None:
                    _log(f"vLLM exited with code {code}")
                    forget(info, settings)
                    return _exit_code(code)
                if stop.is_set():
                    reason = "asked to stop"
                    break
                info = _guard(state_file, info)
                if not info.keep and not live_users(users) and _locked_unused(settings, info.port, users, held):
                    reason = "its last user has gone"
                    break
            _log(f"stopping vLLM: {reason}")
            proc.stop_group(vllm)
            forget(info, settings)
            return 0
        finally:
            if vllm.poll() is None:  # an error in the keeper itself: vLLM does not outlive it
                proc.stop_group(vllm)


def _locked_unused(settings: Settings, port: int, users: Path, held: contextlib.ExitStack) -> bool:
    """Whether no one uses the server, checked again under the port's lock (taken only if free).

    True leaves the lock held in ``held``, so no one attaches while the server stops.
    """
    if held.enter_context(port_lock(settings, port, wait=False)) and not live_users(users):
        return True
    held.close()
    return False


def _guard(state_file: Path, info: ServerInfo) -> ServerInfo:
    """The state as evalkit last wrote it: changes by evalkit are taken over, damage by hand is repaired."""
    try:
        current = read_state(state_file)
        if all(getattr(current, name) == getattr(info, name) for name in IDENTITY):
            return current
        what = "its identity was edited"
    except OSError:
        what = "it was removed"
    except ValueError as exc:
        what = f"it was damaged ({exc})"
    _log(f"rewrote {state_file}: {what}")
    write_state(state_file, info)
    return info


def launch(info: ServerInfo, settings: Settings, env: dict[str, str]):
    """Start the keeper of a new server (which starts ``info.command``); this process is its first user.

    Returns the keeper's process; ``info`` gets its pid and start time. ``env`` is the server's environment.
    """
    join(info, settings)  # before the keeper looks for users
    keeper = proc.spawn([sys.executable, "-m", "evalkit.serve.keeper", str(state_path(settings, info.port))],
                        log_path=Path(info.log_path), env={**env, SPEC_ENV: json.dumps(asdict(info))})
    info.keeper_pid, info.keeper_start = keeper.pid, proc.start_time(keeper.pid)
    return keeper


def main(argv: list[str]) -> int:
    spec = os.environ.pop(SPEC_ENV, "")
    if len(argv) != 1 or not spec:
        print("usage: EVALKIT_SERVER_SPEC='{...}' python -m evalkit.serve.keeper STATE_FILE "
              "(serve() starts it)", file=sys.stderr)
        return 2
    return keep(Path(argv[0]), ServerInfo.from_dict(json.loads(spec)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
