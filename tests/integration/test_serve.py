"""The real vLLM server on the embedded model: requests, attach, CLI lifetime, start-up failure."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from evalkit import errors, proc
from evalkit.serve import prestart, serve
from evalkit.serve.state import project_servers


def group_members(pgid: int) -> list[int]:
    """Pids of live processes in a process group."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


def test_completion(server):
    reply = server.completion("Once upon a time", max_tokens=12, temperature=0)
    text = reply["choices"][0]["text"]
    assert text.startswith(", there was a little girl")
    assert reply["usage"]["completion_tokens"] == 12


def test_chat(server):
    reply = server.chat("Once upon a time", max_tokens=8, temperature=0)
    assert reply["choices"][0]["message"]["role"] == "assistant"
    assert reply["choices"][0]["message"]["content"].strip()
    assert server.max_model_len == 512


def test_second_serve_attaches_without_a_second_process(server, test_settings):
    if os.environ.get("EVALKIT_TEST_BASE_URL"):
        pytest.skip("the session attached to an outside server; nothing of ours to reuse")
    before = len(group_members(server.info.pid))
    with serve("stories260k", settings=test_settings, echo=False) as again:
        assert not again.started and again.info.pid == server.info.pid
        assert again.base_url == server.base_url
    assert server.healthy()  # leaving the attached context did not stop it
    assert len(group_members(server.info.pid)) == before


def test_cli_server_outlives_the_command_and_stop_ends_it(test_settings, tmp_path):
    # a runs folder of its own: with the session's, `serve` would find the session server and attach to it
    env = dict(os.environ, EVALKIT_RUNS_DIR=str(tmp_path / "cli-runs"), EVALKIT_PORT="8799")
    evalkit = [sys.executable, "-m", "evalkit.cli"]
    out = subprocess.run(evalkit + ["serve"], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout[out.stdout.index("{"):])
    pid = info["pid"]
    assert info["base_url"] == "http://127.0.0.1:8799/v1"  # a new server, not the session's
    try:
        assert proc.pid_alive(pid) and group_members(pid)
        status = subprocess.run(evalkit + ["status"], env=env, capture_output=True, text=True, timeout=60)
        assert "smollm2-135m" in status.stdout and "answering" in status.stdout  # the default model
        assert "kept: runs until `evalkit stop`" in status.stdout and "users (0): none" in status.stdout
        stop = subprocess.run(evalkit + ["stop"], env=env, capture_output=True, text=True, timeout=120)
        assert f"pid {pid}" in stop.stdout
        assert group_members(pid) == []
        assert not any(s.port == 8799 for s in project_servers(test_settings.model_copy(
            update={"runs_dir": tmp_path / "cli-runs"})))
    finally:
        proc.stop_pid(pid)


def test_server_dying_at_start_up_is_reported(test_settings, tmp_path):
    broken = tmp_path / "broken-model"  # tokenizer and weights present (checked before start), architecture unknown
    shutil.copytree(test_settings.data_dir / "models" / "stories260k", broken)
    (broken / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["NoSuchArch"]}))
    settings = test_settings.model_copy(update={"port": 8798})
    with pytest.raises(errors.ServerStartError) as info:
        serve(str(broken), settings=settings, echo=False)
    message = str(info.value)
    assert "exited with code" in message and "Last lines of its log" in message
    assert "vllm_fork.py" in message and "--model" in message
    log = message.split("Log: ")[1].split("\n")[0]
    assert os.path.exists(log)
    assert not any(s.port == 8798 for s in project_servers(settings))  # the session's own server is listed too
    deadline = time.monotonic() + 20  # killed processes can take a moment to disappear from /proc
    while processes_mentioning(str(broken)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not processes_mentioning(str(broken))


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if text.encode() in fh.read() and proc.pid_alive(int(entry)):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_next_model_starts_while_the_current_one_serves(test_settings, tmp_path):
    settings = test_settings.model_copy(update={"port": 8780, "runs_dir": tmp_path / "runs"})
    with serve("ladder-s", settings=settings, echo=False) as first:
        starting = prestart("stories260k", settings, echo=False)
        assert starting is not None  # two small servers fit in memory
        with starting:
            assert first.healthy()  # the current server keeps answering while the next one starts
            nxt = starting.ready()
        try:
            assert nxt.base_url != first.base_url and nxt.healthy() and first.healthy()
            assert sorted(s.model for s in project_servers(settings)) == ["ladder-s", "stories260k"]
            assert prestart("stories260k", settings, echo=False) is None  # already served: serve() attaches
        finally:
            nxt.stop()
    assert project_servers(settings) == []
