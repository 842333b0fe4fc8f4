"""No orphans: however a server's owner, a tool run, a kernel or `evalkit run` ends, nothing it started stays.

Each test takes a census of the tool processes and listening ports before its fault and checks, after it, that
everything the fault left behind ended within a bounded time (see conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from evalkit import perf, proc
from evalkit.accuracy.lmeval import cache_answers
from evalkit.promptfoo.output import finished_rows
from evalkit.serve import attach, serve
from evalkit.serve.sharing import users_of
from evalkit.serve.state import project_servers
from evalkit.settings import Settings

CYCLES = int(os.environ.get("EVALKIT_FAULT_CYCLES", "4"))  # each ending once (8: twice); the rooms add more
ENDINGS = ("owner stops it", "owner gets SIGTERM", "owner gets SIGKILL", "evalkit stop")
OWNER = """
import sys
from evalkit.serve import serve
from evalkit.settings import Settings
srv = serve(sys.argv[3], settings=Settings(runs_dir=sys.argv[1], port=int(sys.argv[2])), echo=False)
print(srv.base_url, srv.info.pid, flush=True)
sys.stdin.readline()
srv.stop()
"""


def test_start_attach_stop_cycles(faults, figures, tmp_path):
    """However the owner of a server ends, the server stays while this process uses it and goes when it leaves.

    `evalkit stop` instead stops it at once, for everyone, and says who was using it.
    """
    runs, port = tmp_path / "runs", 8790
    settings = Settings(runs_dir=runs, port=port)
    for cycle in range(CYCLES):
        before = faults.census()
        ending = ENDINGS[cycle % len(ENDINGS)]
        owner = subprocess.Popen([sys.executable, "-c", OWNER, str(runs), str(port), "ladder-s"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        url, pid = owner.stdout.readline().split()
        # attach twice: by URL, and by model (serve() finds the running server instead of starting one)
        first = attach(url, settings=settings)
        again = serve("ladder-s", settings=settings, echo=False)
        assert first.model == "ladder-s" and not again.started and again.info.pid == int(pid)
        [info] = project_servers(settings)
        assert sorted(u.pid for u in users_of(info, settings)) == sorted([owner.pid, os.getpid()])
        if ending == "evalkit stop":
            done = subprocess.run([sys.executable, "-m", "evalkit.cli", "stop", "--port", str(port)],
                                  env={**os.environ, "EVALKIT_RUNS_DIR": str(runs)}, capture_output=True,
                                  text=True, timeout=60)
            assert done.returncode == 0 and "ladder-s" in done.stdout, done.stdout + done.stderr
            assert f"pid {owner.pid} " in done.stdout and f"pid {os.getpid()} " in done.stdout  # who used it
            owner.communicate("\n", timeout=60)
        else:
            if ending == "owner stops it":
                owner.communicate("\n", timeout=60)
            elif ending == "owner gets SIGTERM":
                owner.send_signal(signal.SIGTERM)
            else:
                owner.kill()
            owner.wait(60)
            time.sleep(2)  # the keeper looks once a second
            assert again.healthy(), f"cycle {cycle + 1}: the server stopped when its owner ({ending}) while used"
            first.stop()
            assert again.healthy()  # this process still holds it through the second handle
            ended = time.monotonic()
            again.stop()  # the last user leaves: the server stops before stop() returns
            figures["seconds to stop after last user"] = max(figures["seconds to stop after last user"],
                                                                 round(time.monotonic() - ended))
        owner.wait(60)
        figures["cycles run"] += 1
        figures["faults injected"] += ending in ("owner gets SIGTERM", "owner gets SIGKILL")
        before.clean()
        assert project_servers(settings) == [], f"cycle {cycle + 1} ({ending})"


@pytest.mark.parametrize(("layer", "args", "kind"), [
    ("perf", ["--profile", "constant", "--rate", "2", "--max-seconds", "120"], "guidellm"),
    ("accuracy", ["--tasks", "mmlu_pro_mc", "--limit", "200"], "lm-eval"),
    ("format", ["--concurrency", "1"], "promptfoo"),
], ids=["sweep", "lmeval", "promptfoo-eval"])
def test_ctrl_c_during_a_tool_run_stops_it_and_keeps_its_log(server, faults, figures, tmp_path, layer, args, kind):
    before = faults.census()
    run_dir = tmp_path / "run"
    running = faults.evalkit([layer, "--base-url", server.base_url, "--run-dir", str(run_dir), *args])
    faults.wait_for(running, kind)
    time.sleep(2)  # well into the run
    code, out, err = faults.signal_and_wait(running, signal.SIGINT)
    figures["faults injected"] += 1
    assert code == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == f"evalkit {layer}: interrupted; results written so far are kept."
    assert "Traceback" not in err
    before.clean()
    assert any(run_dir.glob("*.log")), sorted(p.name for p in run_dir.iterdir())  # the tool's log is kept


def test_evalkit_perf_killed_mid_sweep_leaves_no_guidellm_worker(server, faults, figures, tmp_path):
    before = faults.census()
    running = faults.evalkit(["perf", "--base-url", server.base_url, "--profile", "concurrent", "--rate", "2",
                              "--max-seconds", "120", "--run-dir", str(tmp_path / "run")])
    faults.wait_for(running, "guidellm")
    time.sleep(8)  # its workers are running requests
    running.kill()  # kill -9 of evalkit itself: nothing of GuideLLM may stay
    running.communicate(timeout=60)
    figures["faults injected"] += 1
    before.clean()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_evalkit_run_ended_by_a_signal_leaves_nothing_and_resumes(faults, figures, tmp_path, sig):
    before = faults.census()
    env = {"EVALKIT_RUNS_DIR": str(tmp_path / "runs"), "EVALKIT_PORT": "8791"}
    running = faults.evalkit(["run", "--model", "ladder-s", "--only", "00_serve,02_format"], env)
    # its own server (started by `evalkit run`), kernel, promptfoo: all must end with it
    faults.wait_for(running, "promptfoo")  # its own server is up, 00 is done, 02 is running
    code, out, err = faults.signal_and_wait(running, sig)
    figures["faults injected"] += 1
    before.clean()  # its server, its kernel, promptfoo and node
    run = next((tmp_path / "runs").glob("*-quick"))
    state = json.loads((run / "run.json").read_text())
    assert state["notebooks"]["00_serve"]["status"] == "ok"
    if sig == signal.SIGTERM:  # a terminal's kill, or CI's first warning: one line, no traceback
        assert code == 130 and err.strip().splitlines()[-1] == ("evalkit run: interrupted; results written so "
                                                                "far are kept."), err[-3000:]
        assert "Traceback" not in err and state["notebooks"]["02_format"]["status"] == "interrupted"
    resumed = subprocess.run([sys.executable, "-m", "evalkit.cli", "run", "--resume", str(run), "--only",
                              "00_serve,02_format"], env={**os.environ, **env}, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode in (0, 1), resumed.stderr[-3000:]  # 1: a gate failed, which is a result
    state = json.loads((run / "run.json").read_text())
    assert {n: r["status"] for n, r in state["notebooks"].items()} == {"00_serve": "ok", "02_format": "ok"}
    assert (run / "format" / "result.json").exists() and (run / "report.html").exists()
    before.clean()  # the resumed run's server, kernels and tools ended with it too


KERNEL_SETUP = """
from evalkit.serve import serve
from evalkit.settings import Settings
from evalkit.widgets.perf import SweepPanel
srv = serve("ladder-s", settings=Settings(runs_dir={runs!r}, port=8792), echo=False)
panel = SweepPanel(srv, run_dir={runs!r} + "/panel", profile="constant", rates="2", max_seconds=120)
"""


def test_kernel_interrupt_and_restart_while_a_panel_runs(faults, figures, tmp_path):
    from jupyter_client.manager import start_new_kernel

    before = faults.census()
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        reply = client.execute_interactive(KERNEL_SETUP.format(runs=str(tmp_path / "runs")), timeout=300)
        assert reply["content"]["status"] == "ok", reply["content"]
        kernel = manager.provisioner.process
        during = faults.census()
        client.execute("panel.run()")
        faults.wait_for(kernel, "guidellm")
        manager.interrupt_kernel()  # the Interrupt button
        figures["faults injected"] += 1
        during.clean()  # GuideLLM stopped; the kernel and its server stay
        reply = client.execute_interactive("print(type(panel.error).__name__, srv.healthy())", timeout=60)
        assert reply["content"]["status"] == "ok"
        client.execute("panel.run()")
        faults.wait_for(kernel, "guidellm")
        manager.restart_kernel(now=True)  # Restart Kernel: the old kernel is killed
        figures["faults injected"] += 1
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    before.clean()  # the old kernel's server and GuideLLM ended with it


def test_papermill_failing_mid_notebook_leaves_nothing(faults, figures, tmp_path, monkeypatch):
    from evalkit.pipeline.kernel import execute_notebook

    monkeypatch.setenv("EVALKIT_RUNS_DIR", str(tmp_path / "runs"))  # the kernel's settings
    monkeypatch.setenv("EVALKIT_PORT", "8795")
    before = faults.census()
    values = {"MODEL": "ladder-s", "BASE_URL": None, "RUN_DIR": str(tmp_path / "format"), "LIMIT": 1,
              "STRUCTURED": "sometimes"}  # the notebook serves ladder-s, then its check refuses STRUCTURED
    record = execute_notebook("02_format", tmp_path / "notebooks", values, echo=False)
    figures["faults injected"] += 1
    assert record["status"] == "failed" and "structured" in record["error"], record
    assert (tmp_path / "notebooks" / "02_format.ipynb").exists()  # the executed notebook shows where it stopped
    before.clean()


def test_hung_server_is_detected_within_a_bounded_time(faults, figures, tmp_path):
    before = faults.census()
    settings = Settings(runs_dir=tmp_path / "runs", port=8793)
    with serve("ladder-s", settings=settings, echo=False) as srv:
        running = faults.evalkit(["perf", "--base-url", srv.base_url, "--profile", "constant", "--rate", "2",
                                   "--max-seconds", "300", "--run-dir", str(tmp_path / "perf")])
        faults.wait_for(running, "guidellm")
        time.sleep(2)
        os.killpg(srv.info.pid, signal.SIGSTOP)  # the server hangs: alive, answering nothing
        stopped = time.monotonic()
        figures["faults injected"] += 1
        try:
            out, err = running.communicate(timeout=120)
            noticed = time.monotonic() - stopped
        finally:
            os.killpg(srv.info.pid, signal.SIGCONT)
        assert running.returncode == 2 and "stopped answering" in err, err[-3000:]
        figures["seconds to notice a hung server"] = max(figures["seconds to notice a hung server"], round(noticed))
        assert noticed < 60, f"the hang was noticed after {noticed:.0f} s"
    before.clean()


@pytest.mark.parametrize(("layer", "args", "kind", "log", "kept"), [
    ("perf", ["--profile", "constant", "--rate", "2", "--max-seconds", "120"], "guidellm", "guidellm.log",
     r"finished no benchmark, so none was kept"),
    ("accuracy", ["--tasks", "mmlu_pro_mc", "--limit", "200"], "lm-eval", "lm-eval.log",
     r"the (\d+) answers it had received of the \d+ it had to send are kept in its request cache"),
    ("format", ["--concurrency", "1"], "promptfoo", "promptfoo.log",
     r"the (\d+) of \d+ test\(s\) it had finished are kept in its database"),
], ids=["mid-sweep", "mid-lmeval", "mid-promptfoo"])
def test_server_killed_in_the_middle_of_a_tool_run(faults, figures, tmp_path, layer, args, kind, log, kept):
    before = faults.census()
    settings = Settings(runs_dir=tmp_path / "runs", port=8794)
    srv = serve("ladder-s", settings=settings, echo=False)
    try:
        running = faults.evalkit([layer, "--base-url", srv.base_url, "--run-dir", str(tmp_path / "run"), *args],
                                 {"EVALKIT_RUNS_DIR": str(tmp_path / "runs")})  # it finds the server's log
        faults.wait_for(running, kind)
        time.sleep(2)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not {  # lm-eval's first answers, promptfoo's first finished test
            "accuracy": lambda: any(cache_answers(str(db).removesuffix("_rank0.db"))
                                    for db in (tmp_path / "run").rglob("*_rank0.db")),
            "format": lambda: finished_rows(tmp_path / "run"),
        }.get(layer, lambda: True)():
            time.sleep(0.5)
        proc.stop_pid(srv.info.pid, grace_s=0)  # kill -9 of the server's whole group
        figures["faults injected"] += 1
        out, err = running.communicate(timeout=120)
        assert running.returncode == 2 and "ServerDiedError" in err and srv.info.log_path in err, err[-3000:]
        assert (tmp_path / "run" / log).exists()  # what the tool wrote so far is kept
        said = re.search(kept, " ".join(err.split()))  # the message says what was kept, and where
        assert said and (not said.groups() or int(said.group(1)) > 0), err[-3000:]
    finally:
        srv.stop()
    with serve("ladder-s", settings=settings, echo=False) as fresh:  # the next serve() starts a fresh one
        assert fresh.started and fresh.healthy()
    before.clean()


def test_a_server_killed_under_a_sweep_keeps_the_benchmarks_it_finished(faults, figures, tmp_path):
    before = faults.census()
    settings = Settings(runs_dir=tmp_path / "runs", port=8794)
    run = tmp_path / "sweep"
    srv = serve("ladder-s", settings=settings, echo=False)
    try:
        running = faults.evalkit(["perf", "--base-url", srv.base_url, "--profile", "concurrent", "--rate", "1,2,4",
                                  "--max-seconds", "6", "--run-dir", str(run)],
                                 {"EVALKIT_RUNS_DIR": str(settings.runs_dir)})
        deadline = time.monotonic() + 240
        while not (run / "benchmarks.partial.json").exists() and running.poll() is None:
            assert time.monotonic() < deadline, "no benchmark finished within 240 s"
            time.sleep(0.2)
        proc.stop_pid(srv.info.pid, grace_s=0)  # kill -9 of the server after its first benchmark
        figures["faults injected"] += 1
        out, err = running.communicate(timeout=120)
        assert running.returncode == 2 and "ServerDiedError" in err, err[-3000:]
        assert "of 3 benchmark(s) it had finished are kept in result.json" in err, err[-3000:]
        kept = perf.PerfResult.load(run)
        assert kept.complete is False and 1 <= len(kept.benchmarks) < 3 and kept.df["successful"].min() > 0
        figures["benchmarks kept from killed sweeps"] += len(kept.benchmarks)
    finally:
        srv.stop()
    before.clean()


def test_server_killed_while_it_starts(faults, figures, tmp_path):
    before = faults.census()
    starting = faults.evalkit(["serve", "--model", "ladder-s", "--port", "8794"],
                              {"EVALKIT_RUNS_DIR": str(tmp_path / "runs")})
    vllm = faults.wait_for(starting, "vllm")
    time.sleep(3)
    os.killpg(vllm.pid, signal.SIGKILL)
    figures["faults injected"] += 1
    out, err = starting.communicate(timeout=120)
    assert starting.returncode == 2 and "exited with code" in err, err[-3000:]
    before.clean()
