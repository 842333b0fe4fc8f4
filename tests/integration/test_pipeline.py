"""`evalkit run` end to end with the quick profile: a failing notebook, --resume, gates, report, the run lock."""

import ipaddress
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from evalkit.runs import run_lock


def evalkit(args, env, timeout=1800):
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


# thresholds.yaml's gates on what a model knows and refuses (stories260k fails them, ladder-m passes)
QUALITY_GATES = {"extraction_json_parse_rate_plain", "harmbench_refusal_rate", "over_refusal_rate",
                 "faq_mc_held_out_accuracy", "faq_mc_accuracy"}


# fake secrets in the environment of the runs below: none may reach a file of the run (notebooks, logs, results,
# promptfoo configs, reports, server logs)
SECRETS = {"HF_TOKEN": "hf_evalkitFakeToken4242", "EVALKIT_API_KEY": "evalkit-fake-api-key-4242",
           "ANTHROPIC_API_KEY": "sk-ant-evalkit-fake-4242"}


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, EVALKIT_RUNS_DIR=str(tmp_path / "runs"), **SECRETS)


class OutboundWatch:
    """Samples the machine's connections every 50 ms; keeps this project's processes' ones that leave the machine.

    A process is this project's when its command line names the project folder or the Python environment (the
    tools, node and promptfoo all run from there). Sampling can miss a connection shorter than 50 ms.
    """

    OURS = (str(Path(__file__).resolve().parents[2]), str(Path(sys.executable).resolve().parents[1]), sys.prefix)

    def __init__(self):
        self.seen: set[tuple] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.05):
            for conn in psutil.net_connections(kind="inet"):
                if conn.raddr and not ipaddress.ip_address(conn.raddr.ip).is_loopback and self._ours(conn.pid):
                    self.seen.add((conn.pid, conn.raddr.ip, conn.raddr.port))

    def _ours(self, pid) -> bool:
        try:
            text = " ".join(psutil.Process(pid).cmdline())
        except (psutil.Error, TypeError, ValueError):
            return True  # gone already: count it rather than miss it
        return any(mark in text for mark in self.OURS)

    def __enter__(self):
        self.before = {(c.pid, c.raddr.ip, c.raddr.port) for c in psutil.net_connections(kind="inet") if c.raddr}
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def outbound(self) -> list[tuple]:
        return sorted(self.seen - self.before)


def test_quick_run_with_a_failure_then_resume(server, env, tmp_path, figures):
    # 05 alone has no layer results to score: it fails, and the run records that instead of stopping
    # --set trims the quick profile where a test learns nothing more from size: no second server for 04's
    # side-by-side (notebook 04's test runs it on the real model), one grid point, one workload
    trims = ["04_safety.COMPARE_MODEL=null", "01_performance.GRID_PROMPT_TOKENS=[32]",
             "01_performance.GRID_OUTPUT_TOKENS=[16]", "01_performance.WORKLOADS=[chat]",
             "01_performance.MAX_SECONDS=10", "01_performance.GOODPUT_MAX_STREAMS=2"]
    first = evalkit(["run", "--profile", "quick", "--base-url", server.base_url, "--only", "00_serve,05_ci",
                     *[arg for trim in trims for arg in ("--set", trim)]], env)
    assert first.returncode == 3, first.stdout + first.stderr
    run = next((tmp_path / "runs").glob("*-quick"))
    state = json.loads((run / "run.json").read_text())
    assert state["set"] == trims
    assert state["notebooks"]["00_serve"]["status"] == "ok"
    failed = state["notebooks"]["05_ci"]
    assert failed["status"] == "failed" and "RunNotFoundError" in failed["error"]
    assert (run / "serve" / "server.json").exists() and (run / "report.html").exists()

    with OutboundWatch() as watch:
        second = evalkit(["run", "--resume", str(run), "--base-url", server.base_url], env)
    # every notebook ran; the story model (the session server) fails the quality gates the ladder model passes
    assert second.returncode == 1, second.stdout + second.stderr[-3000:]
    state = json.loads((run / "run.json").read_text())
    assert {n: r["status"] for n, r in state["notebooks"].items()} == {
        n: "ok" for n in ["00_serve", "05_ci", "01_performance", "02_format", "03_accuracy", "04_safety"]}
    assert state["gates_passed"] is False
    assert state["notebooks"]["04_safety"]["parameters"]["COMPARE_MODEL"] is None  # the first run's --set, kept
    assert state["notebooks"]["01_performance"]["parameters"]["WORKLOADS"] == ["chat"]
    gates = json.loads((run / "scorecard.json").read_text())["rows"]
    failed = {r["metric"] for r in gates if r.get("passed") is False}
    assert "harmbench_refusal_rate" in failed and failed <= QUALITY_GATES, failed
    for layer in ["performance", "format", "accuracy", "safety"]:
        assert (run / layer / "result.json").exists()
    assert sorted(p.name for p in (run / "notebooks").glob("*.ipynb")) == [
        "00_serve.ipynb", "01_performance.ipynb", "02_format.ipynb", "03_accuracy.ipynb", "04_safety.ipynb",
        "05_ci.ipynb"]
    for name in ["scorecard.json", "scorecard.csv", "gates.junit.xml", "summary.md", "report.html"]:
        assert (run / name).exists()
    card = json.loads((run / "scorecard.json").read_text())
    assert {r["layer"] for r in card["rows"]} == {"performance", "format", "accuracy", "safety"}
    report = (run / "report.html").read_text()
    assert report.count("<img") >= 4 and "Gates: <span class='fail'>FAILED" in report
    assert f"report: {run / 'report.html'}" in second.stdout
    assert watch.outbound() == []  # offline: no tool tried to reach the internet (telemetry, hubs, updates)

    scanned, leaks = 0, []
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            scanned += 1
            data = path.read_bytes()
            leaks += [f"{path}: {name}" for name, value in SECRETS.items() if value.encode() in data]
    figures["files scanned for secrets"] += scanned
    figures["leaks found"] += len(leaks)
    assert scanned > 100 and leaks == []

    gate = evalkit(["gate", str(run)], env)
    assert gate.returncode == 1 and "FAILED" in gate.stdout
    plumbing = tmp_path / "plumbing.yaml"
    plumbing.write_text("performance:\n  error_rate: {max: 0.0, why: test}\n")
    assert evalkit(["gate", str(run), "--thresholds", str(plumbing)], env).returncode == 0
    strict = tmp_path / "strict.yaml"
    strict.write_text("format:\n  schema_pass_rate_plain: {min: 0.5, why: test}\n")
    failing = evalkit(["gate", str(run), "--thresholds", str(strict)], env)
    assert failing.returncode == 1 and "FAILED" in failing.stdout


def test_second_run_at_once_is_refused(server, env, tmp_path):
    runs = tmp_path / "runs"
    with run_lock(runs, "evalkit run"):
        out = evalkit(["run", "--profile", "quick", "--base-url", server.base_url], env, timeout=120)
    assert out.returncode == 2
    assert "already running" in out.stderr and f"pid {os.getpid()}" in out.stderr and "Fix:" in out.stderr


def test_bad_profile_and_run_folder(env, tmp_path):
    out = evalkit(["run", "--profile", "nope"], env, timeout=120)
    assert out.returncode == 2 and "Unknown profile 'nope'" in out.stderr and "quick" in out.stderr
    out = evalkit(["run", "--resume", str(tmp_path / "missing")], env, timeout=120)
    assert out.returncode == 2 and "does not exist" in out.stderr
    (tmp_path / "half").mkdir()
    out = evalkit(["gate", str(tmp_path / "half")], env, timeout=120)
    assert out.returncode == 2 and "incomplete" in out.stderr
