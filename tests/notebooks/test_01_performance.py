"""papermill runs notebook 01 with a tiny sweep and grid against the session server."""

import json

from evalkit.perf import PerfResult, TokenGridResult


def _outputs(path):
    cells = json.loads(path.read_text())["cells"]
    texts, mimes = [], set()
    for cell in cells:
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            texts.append("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")))
            mimes |= set(out.get("data", {}))
    return "\n".join(texts), mimes


def test_notebook_01(execute, tmp_path):
    out = execute(
        "01_performance.ipynb", PROFILE="concurrent", RATES=[1, 2], MAX_REQUESTS=4, MAX_SECONDS=60.0,
        TTFT_P99_MS=5000.0,
        ITL_P99_MS=500.0, GRID_PROMPT_TOKENS=[16], GRID_OUTPUT_TOKENS=[8, 24], GRID_REQUESTS=2,
        WORKLOADS=["chat", "rag"], WORKLOAD_RATES=[1], WORKLOAD_REQUESTS=2, WORKLOAD_SECONDS=60.0,
        WORKLOAD_TOKENS=128, GOODPUT_MAX_STREAMS=1,
    )
    text, mimes = _outputs(out)
    run_dir = tmp_path / "results"
    result = PerfResult.load(run_dir)  # the main sweep's result.json, where the scorecard looks
    assert [b["benchmark"] for b in result.benchmarks] == ["concurrent@1", "concurrent@2"]
    assert result.slo["ttft_p99_ms"] == 5000.0 and (run_dir / "benchmarks.json").exists()
    assert "guidellm run --backend" in text and "[guidellm] Benchmark 2 (concurrent@2): completed" in text
    assert all(0 < b["successful"] <= 4 for b in result.benchmarks)  # GuideLLM may process fewer than it created
    assert "Measured capacity at p99 TTFT <= 5000 ms" in text
    assert "A knee needs at least three loads" in text  # two loads: the notebook says so instead of guessing
    assert "max_output_tokens_per_s" in text and "usd_per_million_output_tokens" in text
    searched = PerfResult.load(run_dir / "goodput")  # GuideLLM's own search at the same SLO, one stream at most
    assert searched.profile == "goodput" and [p["streams"] for p in searched.goodput().probes] == [1]
    assert result.goodput_search["streams"] == searched.goodput().streams  # kept beside the sweep for the scorecard
    assert "Capacity at the SLO: evalkit's sweep" in text
    grid = TokenGridResult.load(run_dir / "grid")
    assert grid.pivot("latency_p50_s").shape == (1, 2)
    for name in ("chat", "rag"):  # each workload ran, fitted to the token budget and saying so
        workload = PerfResult.load(run_dir / "workloads" / name)
        assert workload.params["workload"] == name and workload.benchmarks[0]["successful"] > 0
        assert workload.params["prompt_tokens"] + workload.params["output_tokens"] <= 128
    assert "do not fit the budget of 128 tokens per request" in text and "runs_with" in text
    assert "application/vnd.jupyter.widget-view+json" in mimes  # the panel was built (and, unclicked, not run)
    assert not (run_dir / "panel").exists()
    assert "image/png" in mimes
    # by hand: GuideLLM's own command for this server, run again into by-hand/ with its console tables
    assert "guidellm run --backend kind=openai_http" in text and "[evalkit] guidellm exited with code 0" in text
    assert (run_dir / "by-hand" / "benchmarks.json").exists()
    assert "not compared: the figure was measured with" in text  # small parameters: shown beside the figures
