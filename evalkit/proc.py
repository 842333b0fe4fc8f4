"""The one subprocess helper: argument lists, streamed output, clean stops.

Every tool (vLLM, GuideLLM, lm-eval, promptfoo) runs through :func:`run` (wait for it) or :func:`spawn`
(leave it running, output to a log file). Commands are argument lists, never shell strings. Each process gets
its own process group, so a stop ends the tool and every child it started: terminate, wait, then kill.
"""

from __future__ import annotations

import codecs
import collections
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.console import Beat
from evalkit.errors import EvalkitError, ServerDiedError, ToolError, ToolMissingError

TAIL_LINES = 40


@dataclass
class ProcResult:
    """What a finished (or stopped) command left behind."""

    command: list[str]
    returncode: int
    tail: str
    duration_s: float
    timed_out: bool = False
    log_path: Path | None = None
    stopped_because: str | None = None  # what the watch said when it stopped the command

    @property
    def command_line(self) -> str:
        return shlex.join(redacted(self.command))

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def redacted(command: Sequence[str]) -> list[str]:
    """A command line fit to save or show: every known secret (an API key in an argument) replaced by ``***``."""
    from evalkit.settings import redact

    return [redact(str(arg)) for arg in command]


# what tools print when their disk is full or read-only (Python, Node, SQLite, lm-eval's and GuideLLM's writers)
DISK_FULL = re.compile(r"No space left on device|ENOSPC|SQLITE_FULL|disk is full|Disk quota exceeded|EDQUOT")
READ_ONLY = re.compile(r"Read-only file system|EROFS|SQLITE_READONLY")


def disk_problem(text: str) -> str | None:
    """"No space left on device" or "Read-only file system" when a tool's output says so, else None."""
    if DISK_FULL.search(text):
        return "No space left on device"
    if READ_ONLY.search(text):
        return "Read-only file system"
    return None


def failure(ran: ProcResult, *, tool: str, kept: Path, server_problem: str | None = None, tail: str | None = None,
            detail: str = "", rerun_hint: str = "", fix_timeout: str = "shorten the run or pass a larger timeout_s.",
            fix_failed: str = "") -> EvalkitError:
    """The one error for a tool run that did not succeed, the most telling cause first.

    The server died (``server_problem``: what the server's check said), then the run timed out, then the tool
    exited non-zero. Every message names the command and its log; ``kept`` is where the files
    written so far stay. ``detail`` follows the first sentence; ``rerun_hint`` ends every fix.
    """
    last = textwrap.indent(tail if tail is not None else ran.tail, "    ")
    where = f"Command: {ran.command_line}" + (f"\nLog: {ran.log_path}" if ran.log_path else "")
    if server_problem:
        return ServerDiedError(f"{server_problem} {tool} was stopped after {ran.duration_s:.0f} s.{detail}\n{where}",
                               fix="restart the server with `evalkit serve`, then rerun." + rerun_hint, kept=kept)
    if ran.timed_out:
        return ToolError(f"{tool} did not finish within {ran.duration_s:.0f} s and was stopped.{detail} Last lines:\n"
                         f"{last}\n{where}", fix=fix_timeout + rerun_hint, kept=kept)
    disk = disk_problem(ran.tail)
    if disk:
        return ToolError(f"{tool} could not write its files: {disk} (in or under {kept}).{detail}\n{where}",
                         fix="free some space, or point EVALKIT_RUNS_DIR (or --run-dir) at a writable disk with "
                         "room; then rerun." + rerun_hint, kept=kept)
    log = f"read {ran.log_path} (its last lines name the cause)" if ran.log_path else "read the lines above"
    return ToolError(f"{tool} failed with exit code {ran.returncode} after {ran.duration_s:.0f} s.{detail} Last lines "
                     f"of its output:\n{last}\n{where}", fix=(fix_failed or f"{log}; rerun the command by hand to "
                                                               "experiment.") + rerun_hint, kept=kept)


def _check_command(command: Sequence[str]) -> list[str]:
    if isinstance(command, (str, bytes)):
        raise TypeError("commands are argument lists, not shell strings")
    command = [str(c) for c in command]
    exe = command[0]
    if os.sep not in exe:
        return command
    if not Path(exe).exists():
        raise ToolMissingError(f"{exe} does not exist.", fix="run `make setup` to install the tools.")
    return command


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> int:
    """Terminate a process group started by this module, wait up to ``grace_s``, then kill it."""
    if proc.poll() is None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # children of the leader may outlive it: end the rest of the group too
    signal_group(proc.pid, signal.SIGKILL)
    return proc.returncode


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group (nothing if it has gone)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_pid(pid: int, grace_s: float = 10.0) -> bool:
    """Stop a process group by the leader's pid (a server from an earlier Python process). True if it was alive."""
    if not pid_alive(pid):
        signal_group(pid, signal.SIGKILL)
        return False
    signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    signal_group(pid, signal.SIGKILL)
    return True


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True


def start_time(pid: int) -> int | None:
    """When the process ``pid`` started, in clock ticks since boot; None if it is gone or a zombie.

    A pid alone can be reused by another program once its process ended; the pair (pid, start time) cannot. The
    unit is the kernel's own (field 22 of ``/proc/<pid>/stat``, which psutil reads), so a server's state file and
    its keeper agree with every evalkit that wrote or reads them.
    """
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return round((process.create_time() - psutil.boot_time()) * os.sysconf("SC_CLK_TCK"))
    except psutil.Error:
        return None


def same_process(pid: int | None, started: int | None) -> bool:
    """Whether ``pid`` is still the process that had start time ``started`` (without one: whether it is alive)."""
    if not pid:
        return False
    if started is None:
        return pid_alive(pid)
    return start_time(pid) == started


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGTERM to this process when the thread that started it ends (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def spawn(
    command: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
    die_with_parent: bool = False,
) -> subprocess.Popen:
    """Start a long-running process in its own group with stdout and stderr appended to ``log_path``.

    ``die_with_parent``: the process gets SIGTERM when this process ends, however it ends (a kill -9 too), so it
    cannot be left behind as an orphan. Linux only (elsewhere it has no effect); only from the main thread, since
    the signal follows the thread that started the child.
    """
    command = _check_command(command)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"$ {shlex.join(redacted(command))}\n".encode())
        log.flush()
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
        )


def run(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
    log_path: Path | None = None,
    echo: bool | Callable[[str], None] = True,
    watch: Callable[[], str | None] | None = None,
    watch_every_s: float = 5.0,
    heartbeat: Callable[[float], str | None] | None = None,
    heartbeat_s: float = 5.0,
) -> ProcResult:
    """Run a command to the end, streaming its output.

    Args:
        command: argument list.
        env: environment (default: inherit).
        cwd: working directory.
        timeout_s: stop the command after this many seconds (``timed_out`` is then set).
        log_path: also append all output to this file.
        echo: True prints output as it comes (progress in a notebook), False keeps quiet, a callable receives it.
        watch: called every ``watch_every_s`` while the command runs; a returned string stops the command and
            is appended to the tail (used to stop a tool whose server died).
        watch_every_s: interval of ``watch``.
        heartbeat: called with the seconds elapsed whenever the tool has printed nothing for ``heartbeat_s``
            (echo on or off; with a callable ``echo``, since it last received output); the line it returns is
            printed, so a long quiet tool still shows progress.
        heartbeat_s: the silence after which ``heartbeat`` is called.

    Returns:
        The command, exit code, last lines of output and duration. A stopped command has a negative exit code.
    """
    command = _check_command(command)
    start = time.monotonic()
    log = open(log_path, "ab") if log_path else None
    if log:
        log.write(f"$ {shlex.join(redacted(command))}\n".encode())
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            # the calling thread waits for the tool, so the tool ends with it: a killed kernel or job leaves none
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    except FileNotFoundError as exc:
        if log:
            log.close()
        raise ToolMissingError(f"{command[0]} is not installed or not on PATH.", fix="run `make setup`.") from exc

    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    sink = echo if callable(echo) else (_print if echo else None)
    shown = [start]  # when output (or a heartbeat) was last shown

    def show(text: str) -> None:
        if sink(text) is not False:  # a filtering sink returns False when it showed nothing
            shown[0] = time.monotonic()

    beat = Beat()
    reader = threading.Thread(target=_pump, args=(proc, tail, show if sink else None, log), daemon=True)
    reader.start()
    timed_out = False
    stopped_because = None
    last_watch = start
    try:
        while not _ended(proc, reader, min(1.0, heartbeat_s) if heartbeat else 1.0):
            now = time.monotonic()
            if heartbeat is not None and now - shown[0] >= heartbeat_s:
                shown[0] = now
                line = heartbeat(now - start)
                if line:
                    beat.show(f"[evalkit] {line}")
            if timeout_s is not None and now - start > timeout_s:
                timed_out = True
                stop_group(proc)
                break
            if watch is not None and now - last_watch >= watch_every_s:
                last_watch = now
                stopped_because = watch()
                if stopped_because:
                    stop_group(proc)
                    break
    except BaseException:
        stop_group(proc)
        raise
    finally:
        reader.join(10)
        signal_group(proc.pid, signal.SIGKILL)
        if log:
            log.close()
    if stopped_because:
        tail.append(stopped_because)
    return ProcResult(
        command=command,
        returncode=proc.returncode if proc.returncode is not None else -1,
        tail="\n".join(tail),
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        log_path=log_path,
        stopped_because=stopped_because,
    )


def _ended(proc: subprocess.Popen, reader: threading.Thread, seconds: float) -> bool:
    """Whether the tool has ended, waiting up to ``seconds``.

    While the tool's output is open this waits on the thread that reads it, which wakes the moment the output
    closes (at exit), where ``Popen.wait`` would poll; a closed output is followed by the exit itself.
    """
    if reader.is_alive():
        reader.join(seconds)
        if reader.is_alive():
            return proc.poll() is not None
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


class Lines:
    """Splits a stream of text chunks into whole lines (a carriage return ends a line too), keeping the rest."""

    def __init__(self):
        self.partial = ""

    def feed(self, text: str) -> list[str]:
        """The lines that ``text`` completes; an unfinished last line waits for the next chunk."""
        lines = (self.partial + text).replace("\r", "\n").split("\n")
        self.partial = lines.pop()
        return lines


def output(command: Sequence[str], timeout_s: float = 20) -> str | None:
    """The output of a short command (a version, a device query), or None if it is missing, fails or hangs."""
    try:
        done = subprocess.run(_check_command(command), capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except (ToolMissingError, OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # terminal colours and cursor moves


def _print(text: str) -> None:
    """A tool's output as it comes, without terminal escape codes (a notebook shows them as noise)."""
    sys.stdout.write(ANSI.sub("", text))
    sys.stdout.flush()


def _pump(proc: subprocess.Popen, tail: collections.deque, sink, log) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    lines = Lines()
    fd = proc.stdout.fileno()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        if log:
            log.write(chunk)
            log.flush()
        text = decoder.decode(chunk)
        if sink:
            sink(text)
        tail.extend(line for line in lines.feed(text) if line.strip())
    if lines.partial.strip():
        tail.append(lines.partial)
    proc.stdout.close()
