"""Real GuideLLM runs against the session's vLLM server.

A tiny sweep, the exact context limit, the CLI, the token grid and the panel's run button.
"""

import json
import subprocess
import sys

import pytest

from evalkit import perf
from evalkit.errors import ConfigError
from evalkit.perf.goodput import compare_capacity
from evalkit.widgets.perf import SweepPanel


def test_tiny_concurrent_sweep(server, run_dir, monkeypatch):
    monkeypatch.chdir(run_dir.parent)  # a relative folder: GuideLLM runs inside it and must still write there
    result = perf.sweep(server, profile="concurrent", rates=[1, 2], max_requests=4, max_seconds=60, prompt_tokens=48,
                        output_tokens=16, slo={"ttft_p99_ms": 10000, "itl_p99_ms": 1000}, run_dir=run_dir.name)
    for name in ("benchmarks.json", "benchmarks.html", "guidellm.log", "result.json"):
        assert (run_dir / name).exists(), name
    df = result.df
    assert list(df["benchmark"]) == ["concurrent@1", "concurrent@2"]
    assert (df["successful"] > 0).all() and (df["errored"] == 0).all()
    assert (df["output_tokens_mean"] == 16).all() and (df["prompt_tokens_mean"] == 48).all()
    assert (df["ttft_p50_ms"] > 0).all() and (df["requests_per_s"] > 0).all()
    assert result.tool_versions["guidellm"] == "0.8.1" and result.complete
    again = perf.PerfResult.load(run_dir)
    assert again.benchmarks == result.benchmarks
    assert perf.slo_capacity(again).met  # limits a healthy server keeps even on a busy CPU


def test_prompt_plus_output_exactly_at_the_context_is_served(server, run_dir):
    limit = server.max_model_len
    result = perf.sweep(server, profile="synchronous", prompt_tokens=limit - 8, output_tokens=8, max_requests=1,
                        max_seconds=60, html=False, run_dir=run_dir, echo=False)
    row = result.df.iloc[0]
    assert row["successful"] == 1 and row["errored"] == 0 and row["prompt_tokens_mean"] == limit - 8


def test_cli(server, run_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", "perf", "--profile", "constant", "--rate", "2", "--max-requests", "4",
         "--max-seconds", "60", "--prompt-tokens", "32", "--output-tokens", "8", "--run-dir", str(run_dir),
         "--base-url", server.base_url,
         "--ttft-p99-ms", "10000", "--accelerator", "CPU-2vCPU", "--quiet"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "constant@2.00" in proc.stdout and "Measured capacity" in proc.stdout
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["profile"] == "constant" and saved["accelerator"] == "CPU-2vCPU"
    bad = subprocess.run([sys.executable, "-m", "evalkit.cli", "perf", "--prompt-tokens", "600", "--base-url",
                          server.base_url], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "ContextLengthError" in bad.stderr and "512" in bad.stderr


def test_token_grid(server, run_dir):
    grid = perf.token_grid(server, [16], [8, 24], max_requests=2, run_dir=run_dir, echo=False)
    table = grid.pivot("output_tokens_mean")
    assert table.shape == (1, 2) and list(table.loc[16]) == [8, 24]
    assert (run_dir / "p16_o24" / "benchmarks.json").exists() and (run_dir / "result.json").exists()


def test_panel_button_runs_a_sweep_and_redraws(server, run_dir):
    panel = SweepPanel(server, run_dir, profile="synchronous", max_seconds=60, prompt_tokens=16, output_tokens=8,
                       max_requests=3)  # a count, not a short duration: a busy shared CPU can stall a few seconds
    panel.button.click()
    assert panel.result is not None, panel.status.value
    first = panel.table.value
    assert "evalkit-perf-results" in first and "synchronous" in first
    assert bytes(panel.plot.value).startswith(b"\x89PNG") and "Run 1" in panel.status.value
    panel.output_tokens.value = 24
    panel.button.click()
    assert panel.result.df["output_tokens_mean"].iloc[0] == 24 and "Run 2" in panel.status.value
    assert panel.table.value != first
    assert (run_dir / "run-02" / "result.json").exists()
    panel.rates.value = "1,x"
    panel.profile.value = "concurrent"
    assert panel.run() is None and "ConfigError" in panel.status.value  # shown, not raised


def test_the_warm_up_is_left_out_by_guidellm_itself(server, run_dir):
    """GuideLLM's warm-up phase drops the first finished requests from a benchmark's figures; 0 keeps them all."""
    kept = perf.sweep(server, profile="concurrent", rates=[2], max_requests=10, max_seconds=None, warmup=0,
                      prompt_tokens=32, output_tokens=8, html=False, run_dir=run_dir / "none", echo=False)
    warmed = perf.sweep(server, profile="concurrent", rates=[2], max_requests=10, max_seconds=None, warmup=3,
                        prompt_tokens=32, output_tokens=8, html=False, run_dir=run_dir / "three", echo=False)
    assert int(kept.df["successful"].iloc[0]) == 10
    assert int(warmed.df["successful"].iloc[0]) <= 8  # the first wave of two streams and more are not measured
    assert json.loads(warmed.command[warmed.command.index("--profile") + 1])["warmup"]["value"] == 3


def test_a_cold_start_is_one_plain_request_timed_to_its_first_token(server):
    server.completion("Once upon a time", max_tokens=2)  # so the server has answered before, whatever ran first
    cold = perf.cold_start(server, max_tokens=8)
    assert cold.ttft_ms > 0 and cold.latency_s * 1000 >= cold.ttft_ms and cold.output_tokens == 8
    assert cold.answered_before and cold.first_request is False
    assert "not a cold start" in cold.sentence()


def test_guidellms_knee_fit_and_evalkits_knee_read_one_concurrent_run(server, run_dir):
    """GuideLLM's knee profile (throughput against streams) and evalkit's knee (latency against throughput)."""
    searched = perf.sweep(server, profile="knee", rates=[1, 2, 4, 8, 16], prompt_tokens=32, output_tokens=8,
                          max_requests=16, max_seconds=60, html=False, echo=False, run_dir=run_dir)
    assert json.loads(searched.command[searched.command.index("--profile") + 1])["kind"] == "knee"
    assert [b["benchmark"] for b in searched.benchmarks] == [f"concurrent@{s}" for s in (1, 2, 4, 8, 16)]
    again = perf.PerfResult.load(run_dir)  # GuideLLM's conclusion is kept in result.json
    theirs, ours = again.guidellm_knee(), perf.knee(again)
    assert again.search["final"]["throughput"]["status"] in ("ok", "no_knee")
    assert theirs.sentence.startswith("GuideLLM's knee fit") and ours.sentence
    if theirs.found:
        assert theirs.benchmark in {b["benchmark"] for b in searched.benchmarks} and theirs.output_tokens_per_s > 0
    print(theirs.sentence, ours.sentence, sep="\n")


def test_guidellms_goodput_search_and_the_sweeps_reading_of_one_slo(server, run_dir):
    """GuideLLM's goodput profile and evalkit's reading of a sweep, on one server and one SLO, side by side."""
    slo = perf.SLO(ttft_p99_ms=10000, itl_p99_ms=1000)  # a healthy server keeps it at 1 and 2 streams, even busy
    shape = dict(prompt_tokens=32, output_tokens=8, max_requests=6, max_seconds=60, html=False, echo=False)
    with pytest.raises(ConfigError, match="none was given"):  # a search needs objectives: refused before GuideLLM
        perf.sweep(server, profile="goodput", run_dir=run_dir / "no-slo", **shape)
    swept = perf.sweep(server, profile="concurrent", rates=[1, 2], slo=slo, run_dir=run_dir / "sweep", **shape)
    searched = perf.sweep(server, profile="goodput", slo=slo, max_concurrency=2, run_dir=run_dir / "goodput", **shape)
    profile = json.loads(searched.command[searched.command.index("--profile") + 1])
    assert profile["kind"] == "goodput" and profile["max_streams"] == 2 and profile["target_attainment"] == 0.99
    metrics = json.loads(searched.command[searched.command.index("--metrics") + 1])
    assert metrics["slo"] == {"ttft_ms": 10000, "tpot_ms": 1000}  # vLLM's names, GuideLLM's objectives
    good = perf.PerfResult.load(run_dir / "goodput").goodput()  # the search's conclusion is kept in result.json
    assert [p["streams"] for p in good.probes] == [1, 2] and all(p["passed"] for p in good.probes)
    assert good.streams == 2 and good.stop_reason == "max_streams_reached" and good.requests_per_s > 0
    assert "the capacity is at least this" in good.sentence
    both = compare_capacity(swept, searched)
    assert both.sweep_requests_per_s > 0 and both.ratio > 0 and "ratio" in both.sentence
    print(both.sentence)

    never = perf.sweep(server, profile="goodput", slo=perf.SLO(ttft_p99_ms=0.001), run_dir=run_dir / "never", **shape)
    unmet = never.goodput()  # no load can keep 1 microsecond: no capacity is invented
    assert unmet.streams is None and unmet.requests_per_s is None and "found no load" in unmet.sentence
    assert [p["streams"] for p in unmet.probes] == [1] and unmet.stop_reason in ("objectives_unmet_at_minimum",
                                                                                "indeterminate_at_minimum")
