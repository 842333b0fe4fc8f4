"""What the fault tests count: the processes of each tool and the ports held, before a fault and after it.

A :class:`Census` is taken before a fault; :meth:`Census.left` waits (bounded) until every server keeper, vLLM,
GuideLLM, lm-eval, promptfoo, node and kernel process that appeared since has ended and every port opened since is free,
and returns what is still there. Its count goes to the suite's "processes left" figure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types

import psutil
import pytest

KINDS = {
    "keeper": ("evalkit.serve.keeper",),  # first: its command line names its server's state file only
    "vllm": ("vllm_fork.py", "vllm.entrypoints", "VLLM::"),
    "guidellm": ("guidellm",),
    "lm-eval": ("lm_eval", "lm-eval"),
    "promptfoo": ("promptfoo",),
    "node": ("node ",),
    "kernel": ("ipykernel",),
}


def kind_of(process: psutil.Process) -> str | None:
    try:
        text = " ".join(process.cmdline()) + " " + process.name()
    except psutil.Error:
        return None
    if process.pid == os.getpid():
        return None
    for kind, marks in KINDS.items():
        if any(mark in text for mark in marks):
            return kind
    return None


def tool_processes() -> dict[int, str]:
    """``{pid: kind}`` of every live tool process on the machine (zombies excluded)."""
    found = {}
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        kind = kind_of(process)
        if kind:
            found[process.pid] = kind
    return found


def listening_ports() -> set[int]:
    return {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


class Census:
    """Tool processes and listening ports at one moment; :meth:`left` is what a fault added and did not end."""

    def __init__(self, figures):
        self.figures = figures
        self.processes = tool_processes()
        self.ports = listening_ports()

    def new(self) -> tuple[dict[int, str], set[int]]:
        now = tool_processes()
        return {pid: kind for pid, kind in now.items() if pid not in self.processes}, listening_ports() - self.ports

    def left(self, timeout_s: float = 30.0) -> dict:
        """Wait up to ``timeout_s`` for the new processes and ports to go; return those that stayed."""
        deadline = time.monotonic() + timeout_s
        while True:
            processes, ports = self.new()
            if (not processes and not ports) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.figures["processes left"] += len(processes)
        return {"processes": sorted(processes.values()), "ports": sorted(ports)}

    def clean(self, timeout_s: float = 30.0) -> None:
        left = self.left(timeout_s)
        assert left == {"processes": [], "ports": []}, left


def _foreground_signals() -> None:
    """Ctrl-C as a terminal's foreground job gets it.

    A suite started in the background (``make test &``) runs with SIGINT ignored, which every child would
    inherit; a learner's ``evalkit`` in a terminal never has that.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def evalkit_process(args: list[str], env: dict | None = None) -> subprocess.Popen:
    """``evalkit ARGS`` as a learner's terminal would run it, its output captured."""
    return subprocess.Popen([sys.executable, "-m", "evalkit.cli", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_foreground_signals)


def wait_for_descendant(parent: subprocess.Popen, kind: str, timeout_s: float = 300.0) -> psutil.Process:
    """The first process of ``kind`` below ``parent`` (fails when the parent ends first or time runs out)."""
    deadline = time.monotonic() + timeout_s
    root = psutil.Process(parent.pid)
    while time.monotonic() < deadline:
        if parent.poll() is not None:
            out, err = parent.communicate()
            pytest.fail(f"the command ended (code {parent.returncode}) before {kind} started:\n{out[-2000:]}"
                        f"\n{err[-2000:]}")
        try:
            for child in root.children(recursive=True):
                if kind_of(child) == kind:
                    return child
        except psutil.Error:
            pass
        time.sleep(0.2)
    pytest.fail(f"no {kind} process within {timeout_s:.0f} s")


def signal_and_wait(process: subprocess.Popen, sig: int, timeout_s: float = 60.0) -> tuple[int, str, str]:
    """Send ``sig`` to ``process`` (the process, not its group), wait; return exit code, stdout, stderr."""
    os.kill(process.pid, sig)
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"still running {timeout_s:.0f} s after {signal.Signals(sig).name}:\n{err[-2000:]}")
    return process.returncode, out, err


@pytest.fixture
def faults(figures):
    """The fault tests' helpers: ``census()``, ``evalkit``, ``wait_for``, ``signal_and_wait``."""
    return types.SimpleNamespace(census=lambda: Census(figures), evalkit=evalkit_process,
                                 wait_for=wait_for_descendant, signal_and_wait=signal_and_wait)
