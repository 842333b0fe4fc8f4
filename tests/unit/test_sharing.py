"""Shared servers without vLLM: the real keeper runs a stand-in server (``sleep``) and real processes use it.

Who uses a server, the last user leaving or being killed, kept servers, ``evalkit stop``, and state files
damaged, edited, left by an earlier evalkit or written by a newer one, or naming a pid another program took.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from evalkit import proc
from evalkit.serve.keeper import launch
from evalkit.serve.server import Server, hold
from evalkit.serve.sharing import live_users, stop_servers, users_of
from evalkit.serve.state import ServerInfo, read_state, scan_servers, state_path, write_state
from evalkit.settings import Settings

USER = """
import sys, time
from evalkit.serve.server import hold
from evalkit.serve.state import read_state
from evalkit.settings import Settings
settings = Settings(runs_dir=sys.argv[1])
srv = hold(read_state(settings.runs_dir / "servers" / "live" / (sys.argv[2] + ".json")), settings)
print("joined" if srv else "gone", flush=True)
line = sys.stdin.readline()
if line.strip() == "leave":
    srv.stop()
    print("left", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def settings(tmp_path):
    return Settings(runs_dir=tmp_path / "runs")


def start(settings: Settings, port: int, keep: bool = False) -> Server:
    """A stand-in server (``sleep``) under a real keeper; this process is its first user."""
    info = ServerInfo(model="stand-in", base_url=f"http://127.0.0.1:{port}/v1", tokenizer="t", port=port,
                      command=["sleep", "600"], log_path=str(settings.runs_dir / "servers" / f"{port}.log"),
                      started_at=time.time(), owner="the test", id=secrets.token_hex(4), keep=keep)
    keeper = launch(info, settings, dict(os.environ))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            written = read_state(state_path(settings, port))
            if written.keeper_pid == keeper.pid and written.pid:
                return Server(written, process=keeper, started=True, settings=settings, holding=True)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    pytest.fail(f"the keeper wrote no state; its log:\n{open(info.log_path).read()}")


def user(settings: Settings, port: int) -> subprocess.Popen:
    """Another process that attaches to the server on ``port`` (stdin: "leave" leaves, closing it exits)."""
    process = subprocess.Popen([sys.executable, "-c", USER, str(settings.runs_dir), str(port)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "joined"
    return process


def gone_within(srv: Server, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not proc.same_process(srv.info.pid, srv.info.pid_start) and srv.process.poll() is not None:
            return not state_path(srv.settings, srv.info.port).exists()
        time.sleep(0.1)
    return False


def test_the_starter_leaving_last_stops_the_server_at_once(settings):
    srv = start(settings, 9201)
    assert [u.pid for u in live_users(srv.info.users_dir(settings))] == [os.getpid()]
    began = time.monotonic()
    srv.stop()
    assert gone_within(srv, 0.5), "the last user's stop() returns once the server has gone"
    assert time.monotonic() - began < 15
    assert not srv.info.users_dir(settings).exists() and scan_servers(settings).servers == []


@pytest.mark.parametrize("ending", ["leaves", "exits", "SIGKILL", "SIGTERM"])
def test_the_server_lives_while_another_user_does_and_stops_when_the_last_one_goes(settings, ending):
    srv = start(settings, 9202)
    other = user(settings, 9202)
    assert len(live_users(srv.info.users_dir(settings))) == 2
    srv.stop()  # the starter leaves (a notebook closed): the other user keeps it
    time.sleep(2.5)
    assert proc.same_process(srv.info.pid, srv.info.pid_start), "stopped while another process used it"
    ended = time.monotonic()
    if ending == "leaves":
        other.stdin.write("leave\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "left"
        assert gone_within(srv, 0.5)  # its stop() stopped it
    elif ending == "exits":
        other.communicate("\n", timeout=30)  # a normal exit without stop()
    else:
        other.send_signal(getattr(signal, ending))
    assert gone_within(srv, 15), f"still running 15 s after the last user {ending}"
    other.kill()
    other.wait(10)
    assert time.monotonic() - ended < 15


def test_two_handles_in_one_process_count_once_and_leave_one_at_a_time(settings):
    srv = start(settings, 9203)
    again = hold(srv.info, settings)
    assert len(live_users(srv.info.users_dir(settings))) == 1
    again.stop()
    time.sleep(1.5)
    assert proc.same_process(srv.info.pid, srv.info.pid_start)
    srv.stop()
    assert gone_within(srv, 0.5)


def test_a_kept_server_outlives_its_users_and_stop_says_who_used_it(settings):
    srv = start(settings, 9204, keep=True)
    other = user(settings, 9204)
    srv.stop()
    time.sleep(1.5)
    assert proc.same_process(srv.info.pid, srv.info.pid_start)
    stopped = stop_servers(settings=settings)
    assert [(info.port, [u.pid for u in users]) for info, users in stopped] == [(9204, [other.pid])]
    assert gone_within(srv, 1)
    other.communicate("\n", timeout=30)


def test_a_truncated_or_edited_state_file_is_repaired_and_nothing_innocent_is_signalled(settings):
    srv = start(settings, 9205)
    path = state_path(settings, 9205)
    innocent = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        path.write_text(path.read_text()[:40])  # cut short by hand
        notes = scan_servers(settings).notes  # (nothing listens on the stand-in's port: the file is removed)
        assert any("not a server's state" in n for n in notes), notes
        time.sleep(1.5)
        assert read_state(path).keeper_pid == srv.info.keeper_pid  # the keeper rewrote it
        edited = json.loads(path.read_text()) | {"pid": innocent.pid}
        path.write_text(json.dumps(edited))  # another program's pid written in by hand
        time.sleep(1.5)
        assert read_state(path).pid == srv.info.pid
        path.write_text(json.dumps(edited))
        stop_servers(settings=settings)  # stops the server it started, by its recorded start times
        assert innocent.poll() is None, "evalkit stop signalled a process it did not start"
        assert gone_within(srv, 1)
    finally:
        innocent.kill()
        innocent.wait()


def test_a_state_naming_pids_that_other_programs_now_have_is_dropped_without_a_signal(settings):
    innocent = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        info = ServerInfo(model="m", base_url="http://127.0.0.1:9206/v1", tokenizer="t", port=9206,
                          pid=innocent.pid, pid_start=1, keeper_pid=innocent.pid, keeper_start=1, id="old")
        write_state(state_path(settings, 9206), info)  # the server ended long ago; its pids were reused
        assert scan_servers(settings).servers == [] and not state_path(settings, 9206).exists()
        assert stop_servers(settings=settings) == [] and innocent.poll() is None
    finally:
        innocent.kill()
        innocent.wait()


def test_an_earlier_evalkits_server_is_listed_and_stopped_by_pid_and_a_newer_ones_left_alone(settings, tmp_path):
    folder = settings.runs_dir / "servers"
    folder.mkdir(parents=True)
    fake_vllm = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "vllm"],
                                 start_new_session=True)
    not_vllm = subprocess.Popen(["sleep", "60"], start_new_session=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        legacy = {"model": "old", "base_url": "http://127.0.0.1:9207/v1", "tokenizer": "t", "port": 9207,
                  "pid": fake_vllm.pid, "owner_pid": gone.pid, "owner": "pid 1 (a kernel)"}
        (folder / "9207.json").write_text(json.dumps(legacy))  # schema 1: no `schema`, no keeper
        (folder / "9208.json").write_text(json.dumps(legacy | {"port": 9208, "pid": not_vllm.pid}))
        newer = legacy | {"port": 9209, "schema": 99, "evalkit": "9.0", "future_field": 1}
        write_state(state_path(settings, 9209), ServerInfo.from_dict(newer))
        (state_path(settings, 9209)).write_text(json.dumps(newer))
        scan = scan_servers(settings)
        assert [(i.port, i.legacy) for i in scan.servers] == [(9207, True)]
        assert not (folder / "9208.json").exists() and not_vllm.poll() is None  # a pid now of another program
        assert any("newer evalkit (9.0)" in n for n in scan.notes) and state_path(settings, 9209).exists()
        assert users_of(scan.servers[0], settings) == []  # its owner has gone: an orphan
        stopped = stop_servers(settings=settings, orphans=True)
        assert [i.port for i, _ in stopped] == [9207] and fake_vllm.wait(15) is not None
        assert state_path(settings, 9209).exists()
    finally:
        for process in (fake_vllm, not_vllm):
            process.kill()
            process.wait()
