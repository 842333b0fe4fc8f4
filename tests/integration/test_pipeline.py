"""`evalkit run` end to end with the quick profile: a failing notebook, --resume, gates, report, the run lock."""

import json
import os
import subprocess
import sys

import pytest

from evalkit.runs import run_lock


def evalkit(args, env, timeout=1800):
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


# thresholds.yaml's gates on what a model knows and refuses (stories260k fails them, ladder-m passes)
QUALITY_GATES = {"extraction_json_parse_rate_plain", "harmbench_refusal_rate", "over_refusal_rate",
                 "faq_mc_held_out_accuracy", "faq_mc_accuracy"}


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, EVALKIT_RUNS_DIR=str(tmp_path / "runs"))


def test_quick_run_with_a_failure_then_resume(server, env, tmp_path):
    # 05 alone has no layer results to score: it fails, and the run records that instead of stopping
    first = evalkit(["run", "--profile", "quick", "--base-url", server.base_url, "--only", "00_serve,05_ci"], env)
    assert first.returncode == 3, first.stdout + first.stderr
    run = next((tmp_path / "runs").glob("*-quick"))
    state = json.loads((run / "run.json").read_text())
    assert state["notebooks"]["00_serve"]["status"] == "ok"
    failed = state["notebooks"]["05_ci"]
    assert failed["status"] == "failed" and "RunNotFoundError" in failed["error"]
    assert (run / "serve" / "server.json").exists() and (run / "report.html").exists()

    second = evalkit(["run", "--resume", str(run), "--base-url", server.base_url], env)
    # every notebook ran; the story model (the session server) fails the quality gates the ladder model passes
    assert second.returncode == 1, second.stdout + second.stderr[-3000:]
    state = json.loads((run / "run.json").read_text())
    assert {n: r["status"] for n, r in state["notebooks"].items()} == {
        n: "ok" for n in ["00_serve", "05_ci", "01_performance", "02_format", "03_accuracy", "04_safety"]}
    assert state["gates_passed"] is False
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
