"""The subprocess helper: output, exit codes, timeouts, stops and errors."""

import os
import signal
import subprocess
import sys
import time

import pytest

from evalkit import proc
from evalkit.errors import ToolMissingError


def test_run_streams_and_keeps_tail(tmp_path):
    seen = []
    log = tmp_path / "x.log"
    code = "import sys\nfor i in range(100): print(i)\nsys.exit(3)"
    result = proc.run([sys.executable, "-c", code], echo=seen.append, log_path=log)
    assert result.returncode == 3 and not result.ok
    assert result.tail.splitlines()[-1] == "99" and len(result.tail.splitlines()) == proc.TAIL_LINES
    assert "".join(seen).split() == [str(i) for i in range(100)]
    assert log.read_text().startswith("$ ") and "99" in log.read_text()


def test_run_refuses_shell_strings():
    with pytest.raises(TypeError):
        proc.run("echo hi")


def test_missing_tool_is_a_clear_error(tmp_path):
    with pytest.raises(ToolMissingError) as info:
        proc.run([str(tmp_path / "nope")])
    assert "make setup" in str(info.value)
    with pytest.raises(ToolMissingError):
        proc.run(["no-such-tool-evalkit"])


def test_timeout_stops_the_whole_group():
    code = "import subprocess,sys,time\nsubprocess.Popen([sys.executable,'-c','import time; time.sleep(60)'])\n" \
           "print('started', flush=True)\ntime.sleep(60)"
    start = time.monotonic()
    result = proc.run([sys.executable, "-c", code], timeout_s=2, echo=False)
    assert result.timed_out and time.monotonic() - start < 30
    assert "started" in result.tail


def test_watch_stops_a_command():
    calls = []

    def watch():
        calls.append(1)
        return "the server died" if len(calls) >= 2 else None

    result = proc.run([sys.executable, "-c", "import time; time.sleep(60)"], echo=False, watch=watch, watch_every_s=1)
    assert result.returncode != 0 and result.tail.endswith("the server died")


def test_spawn_and_stop_pid(tmp_path):
    p = proc.spawn([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                   log_path=tmp_path / "s.log")
    assert proc.pid_alive(p.pid)
    proc.stop_group(p, grace_s=5)
    assert not proc.pid_alive(p.pid)
    assert "$ " in (tmp_path / "s.log").read_text()


def test_a_process_is_known_by_its_pid_and_start_time():
    me = os.getpid()
    started = proc.start_time(me)
    assert started and proc.start_time(me) == started  # stable between reads
    stat = f"/proc/{me}/stat"
    if os.path.exists(stat):  # the kernel's own unit, as state files written before psutil read it hold
        with open(stat) as fh:
            assert started == int(fh.read().rsplit(")", 1)[1].split()[19])
    assert proc.same_process(me, started) and not proc.same_process(me, started + 1)  # a reused pid is not it
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while proc.pid_alive(child.pid) and time.monotonic() < deadline:  # ended, not yet reaped: a zombie
        time.sleep(0.05)
    assert not proc.pid_alive(child.pid) and proc.start_time(child.pid) is None
    child.wait()
    assert not proc.same_process(child.pid, None) and not proc.same_process(None, started)


def _parent_that_spawns(tmp_path, die_with_parent: bool) -> tuple[subprocess.Popen, int]:
    """A Python process that starts `sleep 60` through proc.spawn, prints its pid, then waits to be killed."""
    code = ("import sys, time; from pathlib import Path; from evalkit import proc\n"
            f"p = proc.spawn(['sleep', '60'], log_path=Path({str(tmp_path / 'child.log')!r}), "
            f"die_with_parent={die_with_parent})\n"
            "print(p.pid, flush=True); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return parent, int(parent.stdout.readline())


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not proc.pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is a Linux feature")
def test_a_child_tied_to_its_parent_ends_when_the_parent_is_killed(tmp_path):
    parent, child = _parent_that_spawns(tmp_path, die_with_parent=True)
    parent.kill()  # SIGKILL: no cleanup code of the parent runs
    parent.wait()
    assert _gone_within(child, 5)


def test_an_untied_child_outlives_its_parent(tmp_path):
    parent, child = _parent_that_spawns(tmp_path, die_with_parent=False)
    try:
        parent.kill()
        parent.wait()
        assert not _gone_within(child, 1)  # what `evalkit serve` relies on
    finally:
        proc.stop_pid(child)


def test_a_quiet_tool_gets_heartbeat_lines_and_a_talkative_one_none(capsys):
    beats = []

    def beat(elapsed):
        beats.append(elapsed)
        return f"still running after {elapsed:.1f} s"

    quiet = proc.run([sys.executable, "-c", "import time; time.sleep(2.6)"], echo=False, heartbeat=beat,
                     heartbeat_s=1.0)
    assert quiet.ok and len(beats) >= 2 and all(b >= 0.9 for b in beats)
    assert "[evalkit] still running after" in capsys.readouterr().out
    beats.clear()
    talking = [sys.executable, "-u", "-c", "import time\nfor i in range(10):\n    print(i)\n    time.sleep(0.25)"]
    assert proc.run(talking, echo=True, heartbeat=beat, heartbeat_s=1.0).ok
    assert beats == []  # it printed every 0.25 s: nothing to add
    assert proc.run(talking, echo=lambda text: False, heartbeat=beat, heartbeat_s=1.0).ok
    assert beats  # a filtering sink that showed nothing: the heartbeat speaks


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is a Linux feature")
def test_node_run_by_a_killed_parent_ends_with_it(tmp_path):
    # promptfoo runs in the node evalkit finds: it must be node itself, not a launcher that runs node as its child
    from evalkit.settings import get_settings

    node = get_settings().node_bin()
    pid_file = tmp_path / "node.pid"
    script = f"require('fs').writeFileSync({str(pid_file)!r}, String(process.pid)); setInterval(() => {{}}, 1000)"
    code = ("from evalkit import proc\n"
            f"proc.run([{str(node)!r}, '-e', {script!r}], timeout_s=60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and parent.poll() is None, "node did not start"
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    parent.kill()  # SIGKILL: a kernel or job killed mid-run
    parent.wait()
    try:
        assert _gone_within(pid, 5), f"node (pid {pid}) outlived the process that ran it"
    finally:
        if proc.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_tool_s_echo_drops_terminal_escape_codes_and_its_log_keeps_them(tmp_path, capsys):
    coloured = "print('\\x1b[1;32mPASS\\x1b[0m 3 of 3'); print('\\x1b[2Kdone')"
    ran = proc.run([sys.executable, "-c", coloured], echo=True, log_path=tmp_path / "tool.log")
    assert ran.ok
    shown = capsys.readouterr().out
    assert "PASS 3 of 3\ndone" in shown and "\x1b" not in shown
    assert "\x1b[1;32mPASS" in (tmp_path / "tool.log").read_text()  # the log is the tool's own output


def test_in_a_notebook_the_heartbeat_is_one_line_updated_in_place(monkeypatch):
    from IPython.display import DisplayHandle

    shown, updated = [], []
    monkeypatch.setattr("evalkit.console.in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj, display_id=None: shown.append(obj.data)
                        or DisplayHandle("x"))
    monkeypatch.setattr(DisplayHandle, "update", lambda self, obj: updated.append(obj.data))
    beats = iter(range(100))
    assert proc.run([sys.executable, "-c", "import time; time.sleep(2.6)"], echo=True,
                    heartbeat=lambda elapsed: f"beat {next(beats)}", heartbeat_s=1.0).ok
    assert shown == ["[evalkit] beat 0"] and updated[:1] == ["[evalkit] beat 1"]  # one display, then updates
