"""GuideLLM's report, evalkit's command, the checks before a run, and failures during one.

The report is a real sweep's (tests/fixtures/guidellm, made by scripts/make_perf_fixture.py); the command is
checked by GuideLLM's own parser; a fake guidellm executable and a fake server stand in only for failure paths.
"""

import gzip
import json
import math
import sys
import textwrap
import typing
from pathlib import Path

import pandas as pd
import pytest

from evalkit import errors, perf
from evalkit.perf import knee, slo_capacity

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "guidellm" / "sweep.json.gz"


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


@pytest.fixture
def report(tmp_path, raw) -> Path:
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture
def result(report) -> perf.PerfResult:
    rows, meta = perf.guidellm.parse_report(report)
    return perf.PerfResult(run_dir=str(report.parent), model="stories260k", profile="sweep", benchmarks=rows,
                           tool_versions={"guidellm": meta["guidellm_version"]}, warnings=meta["warnings"])


# ---------------------------------------------------------------- parsing the real report


def test_fixture_is_a_real_guidellm_sweep(raw):
    assert raw["metadata"]["guidellm_version"] == "0.8.1"
    assert raw["config"]["spec"]["profile"]["kind"] == "sweep"
    assert len(raw["benchmarks"]) == 4


def test_one_row_per_benchmark_with_the_report_numbers(report, raw):
    rows, meta = perf.guidellm.parse_report(report)
    assert meta["version"] == 2 and len(rows) == len(raw["benchmarks"])
    for row, bench in zip(rows, raw["benchmarks"], strict=True):
        m = bench["metrics"]
        assert row["strategy"] == bench["config"]["strategy"]["type_"]
        assert row["successful"] == m["request_totals"]["successful"] > 0
        assert row["errored"] == m["request_totals"]["errored"]
        assert row["incomplete"] == m["request_totals"]["incomplete"]
        assert row["requests_per_s"] == m["requests_per_second"]["successful"]["mean"]
        assert row["output_tokens_per_s"] == m["output_tokens_per_second"]["successful"]["mean"]
        assert row["total_tokens_per_s"] == m["tokens_per_second"]["successful"]["mean"]
        ttft = m["time_to_first_token_ms"]["successful"]
        assert (row["ttft_mean_ms"], row["ttft_p50_ms"], row["ttft_p90_ms"], row["ttft_p99_ms"]) == (
            ttft["mean"], ttft["percentiles"]["p50"], ttft["percentiles"]["p90"], ttft["percentiles"]["p99"])
        assert row["itl_p99_ms"] == m["inter_token_latency_ms"]["successful"]["percentiles"]["p99"]
        assert row["tpot_p50_ms"] == m["time_per_output_token_ms"]["successful"]["percentiles"]["p50"]
        assert row["latency_p99_s"] == m["request_latency"]["successful"]["percentiles"]["p99"]
        assert row["output_tokens_mean"] == 32 and row["prompt_tokens_mean"] == 64  # the requested token counts


def test_labels_and_load_order(result):
    df = result.df.sort_values("load_order")
    labels = list(df["benchmark"])
    assert labels[0] == "synchronous" and labels[-1] == "throughput@8"
    assert all(label.startswith("constant@") for label in labels[1:-1])
    rates = df["rate"].iloc[1:-1]
    assert rates.is_monotonic_increasing and rates.notna().all()
    assert df["concurrency"].iloc[0] == 1 and df["concurrency"].iloc[-1] == 8


def test_a_load_without_completed_requests_has_no_numbers(tmp_path, raw):
    broken = json.loads(json.dumps(raw))
    broken["benchmarks"][0]["metrics"]["request_totals"].update(successful=0, incomplete=3)
    path = tmp_path / "b.json"
    path.write_text(json.dumps(broken))
    rows, _ = perf.guidellm.parse_report(path)
    assert rows[0]["successful"] == 0
    assert rows[0]["requests_per_s"] is None and rows[0]["ttft_p99_ms"] is None  # not GuideLLM's zeros


def test_reports_that_are_not_guidellm_08(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"metadata": {"version": 1}, "benchmarks": []}))
    with pytest.raises(errors.ToolError, match="not a GuideLLM 0.8 report"):
        perf.guidellm.parse_report(tmp_path / "other.json")
    with pytest.raises(errors.ToolError, match="Cannot read"):
        perf.guidellm.parse_report(tmp_path / "missing.json")
    (tmp_path / "odd.json").write_text(json.dumps({"metadata": {"version": 2}, "benchmarks": [{"config": {}}]}))
    with pytest.raises(errors.ToolError, match="lacks an expected field"):
        perf.guidellm.parse_report(tmp_path / "odd.json")


def test_result_saves_and_loads(result):
    result.slo = {"ttft_p99_ms": 500.0, "itl_p99_ms": 50.0, "max_error_rate": 0.0}
    path = result.save()
    again = perf.PerfResult.load(path.parent)
    pd.testing.assert_frame_equal(again.df, result.df)
    assert again.slo == result.slo and perf.PerfResult.layer == "performance"
    assert list(again.summary().columns)[:2] == ["requests_per_s", "output_tokens_per_s"]


def test_metrics_names_units_directions(result):
    base = {m.metric: m for m in result.metrics()}
    assert {name: (m.unit, m.direction) for name, m in base.items()} == {
        "max_output_tokens_per_s": ("tok/s", "higher"),
        "max_requests_per_s": ("req/s", "higher"),
        "ttft_p99_ms_at_lowest_load": ("ms", "lower"),
        "ttft_p50_ms_at_lowest_load": ("ms", "lower"),
        "itl_p99_ms_at_lowest_load": ("ms", "lower"),
        "request_latency_p99_s_at_lowest_load": ("s", "lower"),
        "error_rate": ("fraction", "lower"),
    }
    df = result.df
    assert base["max_output_tokens_per_s"].value == df["output_tokens_per_s"].max()
    sync = df[df["benchmark"] == "synchronous"].iloc[0]
    assert base["ttft_p99_ms_at_lowest_load"].value == sync["ttft_p99_ms"]
    assert base["error_rate"].value == 0.0 and all(m.layer == "performance" for m in base.values())

    limit = float(df["ttft_p99_ms"].sort_values().iloc[1])  # the two lowest loads meet it
    result.slo = {"ttft_p99_ms": limit}
    result.price_per_hour = 0.36
    extra = {m.metric: m for m in result.metrics()}
    cap = slo_capacity(result)
    assert extra["slo_capacity_requests_per_s"].value == cap.measured_requests_per_s
    assert extra["slo_capacity_requests_per_s"].direction == "higher"
    assert extra["cost_per_million_output_tokens_usd"].value == pytest.approx(
        0.36 / (cap.measured_output_tokens_per_s * 3600) * 1e6)
    assert extra["cost_per_million_output_tokens_usd"].direction == "lower"

    result.slo = {"ttft_p99_ms": 1.0}  # no load is that fast: no capacity, no cost, and a note saying so
    none = {m.metric: m for m in result.metrics()}
    assert none["slo_capacity_requests_per_s"].value is None
    assert none["cost_per_million_output_tokens_usd"].value is None
    assert "No measured load meets the SLO" in none["slo_capacity_requests_per_s"].note


def test_capacity_and_knee_on_the_real_sweep(result):
    df = result.df.sort_values("load_order")
    limit = (df["ttft_p99_ms"].iloc[1] + df["ttft_p99_ms"].iloc[2]) / 2
    cap = slo_capacity(result, ttft_p99_ms=limit)
    assert cap.met and cap.measured_benchmark == df["benchmark"].iloc[1]
    low, high = df["requests_per_s"].iloc[1], df["requests_per_s"].iloc[2]
    assert low < cap.interpolated_requests_per_s < high
    assert not slo_capacity(result, ttft_p99_ms=df["ttft_p99_ms"].min() / 2).met
    k = knee(result)
    assert k.found == (k.benchmark is not None)


# ---------------------------------------------------------------- the command


class FakeServer:
    """Stands in for a Server where no tool must reach it (checks before the start, failure paths)."""

    model = "stories260k"
    base_url = "http://127.0.0.1:9/v1"
    root_url = "http://127.0.0.1:9"
    tokenizer = "/nowhere/tokenizer"
    max_model_len = 512

    def __init__(self, problems=()):
        self.problems = list(problems)

    def problem(self):
        return self.problems.pop(0) if self.problems else None


def _params(**changes):
    p = dict(profile="sweep", rates=None, prompt_tokens=64, output_tokens=32, prompt_tokens_stdev=0,
             output_tokens_stdev=0, data=None, max_seconds=5, max_requests=None, endpoint="completions",
             sweep_size=4, max_concurrency=None, workers=None, request_samples=0, html=True)
    p.update(changes)
    return perf.args.check_params(p, 512, "stories260k")


def _parse_with_guidellm(command, monkeypatch):
    import guidellm.entrypoints as entry
    from guidellm.cli.run import run as guidellm_run

    seen = {}

    async def capture(args, progress, console):
        seen["args"] = args

    monkeypatch.setattr(entry, "benchmark_generative_text", capture)
    guidellm_run.main(args=command[2:], standalone_mode=False)
    return seen["args"]


@pytest.mark.parametrize("profile, rates, expected", [
    ("sweep", None, None), ("synchronous", None, None), ("throughput", None, None),
    ("concurrent", [1, 2, 4], [[1], [2], [4]]), ("constant", [0.5, 2], [[0.5], [2.0]]), ("poisson", [3], [[3.0]]),
])
def test_guidellm_accepts_the_command(profile, rates, expected, tmp_path, monkeypatch):
    p = _params(profile=profile, rates=rates, max_requests=20, prompt_tokens_stdev=8, endpoint="chat")
    command = perf.build_command(p, target="http://127.0.0.1:8000", model="stories260k", tokenizer="/models/s",
                                 run_dir=tmp_path)
    assert command[1] == "run" and "--disable-progress" in command
    args = _parse_with_guidellm(command, monkeypatch)
    spec = args.spec
    assert spec.profile.kind == profile
    assert spec.backend.target == "http://127.0.0.1:8000" and spec.backend.request_format == "/v1/chat/completions"
    assert spec.tokenizer.model == "/models/s"
    data = spec.data[0]
    assert (data.prompt_tokens, data.prompt_tokens_stdev, data.prompt_tokens_min, data.prompt_tokens_max) == (
        64, 8, 40, 88)
    assert data.output_tokens == 32 and data.output_tokens_stdev is None
    assert {c.kind for c in spec.constraints} == {"max_duration", "max_requests"}
    assert [str(o.path) for o in spec.outputs] == [str(tmp_path / "benchmarks.json"), str(tmp_path / "benchmarks.html")]
    if expected:
        field = "streams" if profile == "concurrent" else "rate"
        assert [getattr(b.profile, field) for b in args.get_benchmarks()] == expected
    if profile == "sweep":
        assert (spec.profile.sweep_size, spec.profile.max_concurrency) == (4, 512)


def test_prompts_file_command(tmp_path, monkeypatch):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Once upon a time"}\n')
    p = _params(profile="synchronous", data=str(prompts), output_tokens=16)
    command = perf.build_command(p, target="http://h:1", model="m", tokenizer="t", run_dir=tmp_path)
    spec = _parse_with_guidellm(command, monkeypatch).spec
    assert spec.data[0].kind == "json_file" and str(spec.data[0].path) == str(prompts)
    assert spec.backend.max_tokens == 16


def test_values_that_need_json_form():
    kv = perf.guidellm._kv
    assert kv(kind="huggingface_auto", model="/a,b/model") == '{"kind":"huggingface_auto","model":"/a,b/model"}'
    assert perf.guidellm._kv(kind="json", path="/runs/x/benchmarks.json") == "kind=json,path=/runs/x/benchmarks.json"


# ---------------------------------------------------------------- checks before a run


@pytest.mark.parametrize("changes, error, words", [
    (dict(prompt_tokens=481), errors.ContextLengthError, ["481 prompt + 32 output", "max_model_len = 512"]),
    (dict(prompt_tokens=430, prompt_tokens_stdev=20), errors.ContextLengthError, ["490 prompt", "3 standard dev"]),
    (dict(profile="concurrent", rates=[1, 0]), errors.ConfigError, ["rates (stream count)=0", "> 0"]),
    (dict(profile="concurrent", rates=[1.5]), errors.ConfigError, ["whole number"]),
    (dict(profile="constant", rates=[-1]), errors.ConfigError, ["rates=-1"]),
    (dict(profile="constant"), errors.ConfigError, ["needs rates"]),
    (dict(profile="sweep", rates=[1]), errors.ConfigError, ["takes no rates"]),
    (dict(profile="warp"), errors.ConfigError, ["Unknown profile", "sweep"]),
    (dict(endpoint="embeddings"), errors.ConfigError, ["Unknown endpoint"]),
    (dict(max_seconds=0), errors.ConfigError, ["max_seconds=0"]),
    (dict(max_seconds=None), errors.ConfigError, ["Nothing would stop"]),
    (dict(max_requests=-3), errors.ConfigError, ["max_requests=-3"]),
    (dict(output_tokens=0), errors.ConfigError, ["output_tokens=0"]),
    (dict(sweep_size=1), errors.ConfigError, ["at least 2"]),
    (dict(data="/no/such/prompts.jsonl"), errors.ConfigError, ["does not exist"]),
])
def test_bad_parameters_are_refused_before_anything_starts(changes, error, words, tmp_path):
    srv = FakeServer(problems=["must not be asked"])
    with pytest.raises(error) as info:
        perf.sweep(srv, run_dir=tmp_path / "never", echo=False, **{"max_seconds": 5, **changes})
    for word in words:
        assert word in str(info.value)
    assert info.value.fix
    assert not (tmp_path / "never").exists() and srv.problems  # no folder, no request


def test_the_exact_context_fits():
    assert _params(prompt_tokens=480, output_tokens=32)["prompt_tokens"] == 480  # 512 = the limit, accepted


def test_a_grid_cell_that_measured_nothing_keeps_its_place_as_nan(tmp_path):
    # the 128-token column finished no request in its time: a ratio across the grid must be NaN, not the ratio
    # of the one column left with itself (1.0)
    cells = [{"prompt_tokens": p, "output_tokens": o, "cell_dir": str(tmp_path / f"p{p}_o{o}"),
              "successful": 2 if o == 16 else 0, "latency_p50_s": 1.8 if o == 16 else None}
             for p in (32, 256) for o in (16, 128)]
    grid = perf.TokenGridResult(run_dir=str(tmp_path), model="m", profile="synchronous", prompt_tokens=[32, 256],
                                output_tokens=[16, 128], cells=cells)
    latency = grid.pivot("latency_p50_s")
    assert list(latency.columns) == [16, 128] and list(latency.index) == [32, 256]
    assert math.isnan(latency.iloc[0, -1] / latency.iloc[0, 0])


def test_token_grid_refuses_cells_beyond_the_context(tmp_path):
    with pytest.raises(errors.ContextLengthError, match="256\\+300") as info:
        perf.token_grid(FakeServer(), [16, 256], [8, 300], run_dir=tmp_path / "g", echo=False)
    assert "max_model_len = 512" in str(info.value) and not (tmp_path / "g").exists()


def test_a_target_that_does_not_answer(tmp_path):
    srv = FakeServer(problems=["The server at http://127.0.0.1:9/v1 stopped answering."])
    with pytest.raises(errors.ServerUnreachableError, match="GuideLLM was not started") as info:
        perf.sweep(srv, run_dir=tmp_path / "never", echo=False)
    assert "evalkit serve" in info.value.fix and not (tmp_path / "never").exists()


# ---------------------------------------------------------------- failures during a run (fake guidellm)


def fake_guidellm(tmp_path, monkeypatch, body: str) -> None:
    script = tmp_path / "fake-guidellm"
    script.write_text(f"#!{sys.executable}\nimport sys, time, pathlib, shutil\n" + textwrap.dedent(body))
    script.chmod(0o755)
    monkeypatch.setattr(perf.guidellm, "guidellm_executable", lambda: str(script))


def _json_path_code():
    return ("args = sys.argv\nout = [a.split('path=')[1] for a in args if a.startswith('kind=json')][0]\n")


def test_guidellm_failing_mid_run_keeps_the_folder_and_says_what_failed(tmp_path, monkeypatch, capsys):
    fake_guidellm(tmp_path, monkeypatch, """
        print("26-01-01 10:00:00|INFO |guidellm.benchmark.progress:_log_update:420 - Benchmark 1 (synchronous): "
              "started | elapsed=0.0s", flush=True)
        print("RuntimeError: Backend validation request failed.", flush=True)
        sys.exit(1)
    """)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "result.json").write_text("{}")  # an earlier run's result must not survive a failed rerun
    with pytest.raises(errors.ToolError) as info:
        perf.sweep(FakeServer(), run_dir=run_dir, max_seconds=1)
    message = str(info.value)
    assert "exit code 1" in message and "Backend validation request failed" in message
    assert "finished no benchmark, so none was kept" in message and info.value.kept == run_dir
    assert "Benchmark 1 (synchronous): started" in (run_dir / "guidellm.log").read_text()
    assert not (run_dir / "result.json").exists()
    assert "[guidellm] Benchmark 1 (synchronous): started" in capsys.readouterr().out  # progress was shown


def test_a_report_written_before_a_failure_is_kept(tmp_path, monkeypatch, report):
    fake_guidellm(tmp_path, monkeypatch, _json_path_code() + f"""
shutil.copyfile({str(report)!r}, out)
print("OSError: cannot write the html report", flush=True)
sys.exit(2)
""")
    run_dir = tmp_path / "run"
    with pytest.raises(errors.ToolError, match="read into result.json") as info:
        perf.sweep(FakeServer(), run_dir=run_dir, max_seconds=1, echo=False)
    assert info.value.kept == run_dir
    partial = perf.PerfResult.load(run_dir)
    assert partial.complete is False and len(partial.benchmarks) == 4


def test_the_benchmarks_finished_before_the_server_died_are_kept(tmp_path, monkeypatch, report):
    fake_guidellm(tmp_path, monkeypatch, f"""
shutil.copyfile({str(report)!r}, "benchmarks.partial.json")  # what guidellm_partial.py writes as it goes
time.sleep(60)
""")
    srv = FakeServer(problems=[None, "The vLLM server process (pid 1) for stories260k exited during the run."])
    run_dir = tmp_path / "run"
    with pytest.raises(errors.ServerDiedError) as info:
        perf.sweep(srv, run_dir=run_dir, profile="concurrent", rates=[1, 2, 4, 8, 16], max_seconds=1, echo=False)
    assert "The 4 of 5 benchmark(s) it had finished are kept in result.json" in str(info.value)
    kept = perf.PerfResult.load(run_dir)
    assert kept.complete is False and len(kept.benchmarks) == 4
    assert kept.warnings[0].startswith("GuideLLM was stopped after 4 of 5 benchmark(s)")


def test_a_guidellm_that_fails_on_a_dead_server_before_the_watch_looks_is_a_server_death(tmp_path, monkeypatch,
                                                                                          report):
    # GuideLLM starts its next benchmark's workers, finds no server and exits 1 within the watch's interval
    fake_guidellm(tmp_path, monkeypatch, f"""
shutil.copyfile({str(report)!r}, "benchmarks.partial.json")
print("RuntimeError: Worker process group startup failed: error_event is set", flush=True)
sys.exit(1)
""")
    srv = FakeServer(problems=[None, "The vLLM server process (pid 1) for stories260k exited during the run."])
    run_dir = tmp_path / "run"
    with pytest.raises(errors.ServerDiedError, match="exited during the run") as info:
        perf.sweep(srv, run_dir=run_dir, profile="concurrent", rates=[1, 2, 4, 8, 16], max_seconds=1, echo=False)
    assert "The 4 of 5 benchmark(s) it had finished are kept in result.json" in str(info.value)
    assert not srv.problems  # asked again after the exit


def test_the_launcher_runs_guidellm_itself_and_leaves_other_executables_alone():
    from evalkit.perf.guidellm import PARTIAL_LAUNCHER, launch_command

    assert launch_command(["/x/.venv/bin/guidellm", "run", "--profile", "kind=sweep"]) == [
        sys.executable, str(PARTIAL_LAUNCHER), "run", "--profile", "kind=sweep"]
    assert launch_command(["/tmp/fake-guidellm", "run"]) == ["/tmp/fake-guidellm", "run"]


def test_server_dying_during_the_run(tmp_path, monkeypatch):
    fake_guidellm(tmp_path, monkeypatch, "time.sleep(60)\n")
    srv = FakeServer(problems=[None, "The vLLM server process (pid 1) for stories260k exited during the run."])
    with pytest.raises(errors.ServerDiedError, match="exited during the run") as info:
        perf.sweep(srv, run_dir=tmp_path / "run", max_seconds=1, echo=False)
    assert info.value.kept == tmp_path / "run" and "evalkit serve" in info.value.fix


def test_a_guidellm_that_hangs_silently_is_stopped_and_rerun_once(tmp_path, monkeypatch):
    fake_guidellm(tmp_path, monkeypatch, """
        print("26-01-01|INFO |x:1 - Benchmark 4 (constant@8.40): active | elapsed=10.5s", flush=True)
        time.sleep(120)
    """)
    with pytest.raises(errors.ToolError, match="made no progress in 2 runs") as info:
        perf.sweep(FakeServer(), run_dir=tmp_path / "run", max_seconds=1, stall_timeout_s=2, echo=False)
    assert "guidellm#431" in str(info.value) and "constant@8.40" in str(info.value)
    assert info.value.kept == tmp_path / "run"
    assert (tmp_path / "run" / "guidellm.stalled-1.log").exists() and (tmp_path / "run" / "guidellm.log").exists()


def test_a_stall_followed_by_a_good_rerun_gives_the_result_with_a_warning(tmp_path, monkeypatch, report):
    fake_guidellm(tmp_path, monkeypatch, _json_path_code() + f"""
counter = pathlib.Path({str(tmp_path / "calls")!r})
calls = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(calls))
print("26-01-01|INFO |x:1 - Benchmark 1 (synchronous): started | elapsed=0.0s", flush=True)
if calls == 1:
    time.sleep(120)
shutil.copyfile({str(report)!r}, out)
""")
    result = perf.sweep(FakeServer(), run_dir=tmp_path / "run", max_seconds=1, stall_timeout_s=2, echo=False)
    assert (tmp_path / "calls").read_text() == "2" and result.complete and len(result.benchmarks) == 4
    assert "GuideLLM was rerun" in result.warnings[0] and "guidellm.stalled-1.log" in result.warnings[0]
    assert "started" in (tmp_path / "run" / "guidellm.stalled-1.log").read_text()


LOST = ('print("ValueError: Cannot compile GenerativeMetrics: No measurement start or end times available.", '
        'flush=True)\nsys.exit(1)\n')


def test_a_run_that_lost_its_timings_is_rerun_once(tmp_path, monkeypatch, report):
    fake_guidellm(tmp_path, monkeypatch, _json_path_code() + f"""
counter = pathlib.Path({str(tmp_path / "calls")!r})
calls = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(calls))
if calls == 1:
{textwrap.indent(LOST, "    ")}
shutil.copyfile({str(report)!r}, out)
""")
    result = perf.sweep(FakeServer(), run_dir=tmp_path / "run", max_seconds=1, echo=False)
    assert (tmp_path / "calls").read_text() == "2" and result.complete
    assert "lost a benchmark's request timings" in result.warnings[0] and "guidellm.failed-1.log" in result.warnings[0]
    assert "No measurement start" in (tmp_path / "run" / "guidellm.failed-1.log").read_text()


def test_a_run_that_keeps_losing_its_timings_fails_after_the_rerun_naming_a_load_with_nothing_to_measure(
        tmp_path, monkeypatch):
    fake_guidellm(tmp_path, monkeypatch, LOST)
    with pytest.raises(errors.ToolError, match="failed 2 times at benchmark 1 of 4: it had no request to measure") \
            as info:
        perf.sweep(FakeServer(), run_dir=tmp_path / "run", max_seconds=1, output_tokens=32, echo=False)
    assert "finish after a warm-up of its first 0.3 s and within its 1 s" in str(info.value)
    assert "of 32 output tokens" in str(info.value) and "max_seconds" in info.value.fix
    assert info.value.kept == tmp_path / "run" and (tmp_path / "run" / "guidellm.failed-1.log").exists()


def test_other_failures_are_not_rerun(tmp_path, monkeypatch):
    fake_guidellm(tmp_path, monkeypatch, 'print("RuntimeError: boom", flush=True)\nsys.exit(1)\n')
    with pytest.raises(errors.ToolError, match="failed with exit code 1"):
        perf.sweep(FakeServer(), run_dir=tmp_path / "run", max_seconds=1, echo=False)
    assert not (tmp_path / "run" / "guidellm.failed-1.log").exists()


def test_no_rerun_when_stall_retries_is_zero(tmp_path, monkeypatch):
    fake_guidellm(tmp_path, monkeypatch, "time.sleep(120)\n")
    with pytest.raises(errors.ToolError, match="made no progress: "):
        perf.sweep(FakeServer(), run_dir=tmp_path / "run", max_seconds=1, stall_timeout_s=2, stall_retries=0,
                   echo=False)
    assert not (tmp_path / "run" / "guidellm.stalled-1.log").exists()


def test_progress_filter_joins_split_lines():
    seen = []
    progress = perf.guidellm.GuideLLMProgress(seen.append)
    progress("noise\n26-01-01|INFO |x:1 - Benchmark 2 (concurrent@4): comp")
    progress("leted | elapsed=3.0s\n┃ table ┃\nValueError: bad\n\x1b[2K✔ Benchmarking complete, generated 2\x1b[0m\n")
    assert seen == ["[guidellm] Benchmark 2 (concurrent@4): completed | elapsed=3.0s\n", "[guidellm] ValueError: bad\n",
                    "[guidellm] Benchmarking complete, generated 2\n"]


def test_guidellm_warnings_are_printed_and_kept(tmp_path, monkeypatch, report, capsys):
    fake_guidellm(tmp_path, monkeypatch, _json_path_code() + f"shutil.copyfile({str(report)!r}, out)\n")
    result = perf.sweep(FakeServer(), run_dir=tmp_path / "run", max_seconds=1)
    printed = [line for line in capsys.readouterr().out.splitlines() if "GuideLLM warning" in line]
    assert len(printed) == len(result.warnings) == 4
    assert printed[0].startswith("[evalkit] GuideLLM warning: synchronous: mean generation delay")


# ---------------------------------------------------------------- use-case workloads


def test_workload_presets_fit_the_context_with_the_same_ratio():
    assert list(perf.WORKLOADS) == list(typing.get_args(perf.PerfArgs.model_fields["workload"].annotation.__args__[0]))
    chat = perf.fit_workload("chat", 4096)
    assert (chat.prompt_tokens, chat.output_tokens, chat.scale) == (512, 256, 1.0)
    rag = perf.fit_workload("rag", 1024, "ladder-m")
    assert (rag.prompt_tokens, rag.output_tokens) == (910, 113) and rag.prompt_tokens + rag.output_tokens <= 1024
    assert abs(rag.prompt_tokens / rag.output_tokens - 4096 / 512) < 0.1
    assert "scaled by 0.222" in rag.note and "ladder-m" in rag.note
    assert rag.record() == {"workload": "rag", "workload_scale": 0.2222, "workload_note": rag.note}


@pytest.mark.parametrize("name, context, error, words", [
    ("video", 1024, errors.ConfigError, ["Unknown workload 'video'", "chat, rag, summarization, codegen"]),
    ("rag", 17, errors.ContextLengthError, ["cannot be scaled", "under 16"]),
])
def test_workloads_that_cannot_run_are_refused(name, context, error, words):
    with pytest.raises(error) as info:
        perf.fit_workload(name, context, "tiny")
    for word in words:
        assert word in str(info.value)
    assert info.value.fix


def test_a_workload_sets_the_tokens_and_guidellm_accepts_over_saturation(tmp_path, monkeypatch):
    srv = FakeServer()
    command = perf.command_for(srv, tmp_path, workload="rag", stop_over_saturation=True, max_seconds=5)
    spec = _parse_with_guidellm(command, monkeypatch).spec
    assert (spec.data[0].prompt_tokens, spec.data[0].output_tokens) == (455, 56)  # 512-token context
    assert {c.kind for c in spec.constraints} == {"max_duration", "over_saturation"}


def test_sweep_records_a_scaled_workload(tmp_path, monkeypatch, report, capsys):
    fake_guidellm(tmp_path, monkeypatch, _json_path_code() + f"shutil.copyfile({str(report)!r}, out)\n")
    result = perf.sweep(FakeServer(), workload="codegen", run_dir=tmp_path / "run", max_seconds=1)
    assert result.params["workload"] == "codegen" and result.params["workload_scale"] == 0.5
    assert (result.params["prompt_tokens"], result.params["output_tokens"]) == (256, 256)
    assert "scaled by 0.500" in capsys.readouterr().out


def test_a_distribution_with_nothing_in_the_measured_window_is_missing_not_zero(tmp_path, raw):
    # every first token of a load arrived during its warm-up: GuideLLM reports the TTFT distribution with count 0
    # and zeros, which must read as not measured (a 0 ms TTFT would pass any SLO)
    changed = json.loads(json.dumps(raw))
    ttft = changed["benchmarks"][1]["metrics"]["time_to_first_token_ms"]["successful"]
    ttft.update(count=0, mean=0.0, median=0.0, percentiles={k: 0.0 for k in ttft["percentiles"]})
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps(changed))
    rows, _ = perf.guidellm.parse_report(path)
    assert rows[1]["ttft_p99_ms"] is None and rows[1]["ttft_p50_ms"] is None
    assert rows[1]["itl_p99_ms"] and rows[0]["ttft_p99_ms"]  # the others are read as before


def test_a_p99_of_few_requests_says_it_is_about_the_slowest_one(result):
    from evalkit.perf.result import p99_words

    table = result.summary()
    assert list(table["p99_is"]) == [p99_words(n) for n in table["successful"]]
    assert (p99_words(6), p99_words(99), p99_words(100), p99_words(float("nan"))) == (
        "max of 6", "max of 99", "p99", "max of 0")


def test_every_benchmark_leaves_out_a_warm_up_through_guidellm_s_own_phase(tmp_path):
    from evalkit.perf.args import PerfArgs
    from evalkit.perf.guidellm import build_command, warmup_requests

    def command(**kw):
        p = PerfArgs.check(**kw).model_dump()
        cmd = build_command(p, target="http://x", model="m", tokenizer="t", run_dir=tmp_path)
        return json.loads(cmd[cmd.index("--profile") + 1]) if cmd[cmd.index("--profile") + 1].startswith("{") else {}

    # limited by time alone: the first 30 % of the seconds (GuideLLM counts a first token arriving after it)
    assert command(profile="synchronous", max_seconds=5)["warmup"] == {"mode": "duration", "percent": 0.3}
    assert command(profile="concurrent", rates=[1, 4], max_requests=40, max_seconds=5)["warmup"]["value"] == 7
    assert command(profile="synchronous", max_requests=8, max_seconds=5)["warmup"] == {"mode": "requests",
                                                                                       "value": 1}
    assert command(profile="concurrent", rates=[4], max_requests=8, max_seconds=None)["warmup"]["value"] == 2
    assert "warmup" not in command(profile="synchronous", max_seconds=5, warmup=0)
    assert warmup_requests({"warmup": 3, "profile": "sweep"}) == 3
    with pytest.raises(errors.ConfigError, match="none of the 4 requests"):
        PerfArgs.check(profile="synchronous", max_requests=4, warmup=4)


@pytest.mark.parametrize("limits, expected", [
    (dict(max_seconds=10), (3.0, None)),  # evalkit's choice for a time limit: the first 30 % of the seconds
    (dict(max_seconds=10, warmup=2), (None, 2)),  # requests asked for: counted against a limit that never binds
    (dict(max_seconds=10, max_requests=12), (None, 1)),
    (dict(max_seconds=None, max_requests=12), (None, 1)),
])
def test_guidellm_itself_sizes_the_warm_up_of_a_benchmark_limited_by_time_or_requests(tmp_path, limits, expected):
    # GuideLLM 0.8.1 computes a warm-up of N requests only against the benchmark's request limit: a benchmark
    # limited by time alone with {"mode": "requests"} left nothing out (warmup_duration 0.0 in its report)
    from guidellm.schemas.benchmark.transient import TransientPhaseConfig

    from evalkit.perf.args import PerfArgs
    from evalkit.perf.guidellm import build_command

    p = PerfArgs.check(profile="synchronous", **limits).model_dump()
    cmd = build_command(p, target="http://x", model="m", tokenizer="t", run_dir=tmp_path)
    warmup = TransientPhaseConfig.model_validate(json.loads(cmd[cmd.index("--profile") + 1])["warmup"])
    constraints = [dict(pair.split("=") for pair in cmd[i + 1].split(",")) for i, arg in enumerate(cmd)
                   if arg == "--constraint"]
    counts = [int(c["count"]) for c in constraints if c["kind"] == "max_requests"]
    assert warmup.compute_limits(max_requests=(counts or [None])[0], max_seconds=limits["max_seconds"]) == expected
    if expected[1]:  # a warm-up in requests has its request limit
        assert counts == [limits.get("max_requests") or 1_000_000]
        assert warmup.compute_limits(max_requests=None, max_seconds=10) == (None, None)  # what a time limit gave
    else:
        assert counts == []


def _searched(search: dict, rows: list[dict], attainment=0.99):
    benchmarks = [{"benchmark": f"concurrent@{r['streams']}", "strategy": "concurrent", "concurrency": r["streams"],
                   "successful": r.get("successful", 10), "errored": 0, "incomplete": 0,
                   "requests_per_s": r["rps"], "output_tokens_per_s": r["rps"] * 16} for r in rows]
    return perf.PerfResult(run_dir="/tmp/x", model="m", base_url="http://x/v1", profile="goodput",
                           params={"attainment": attainment}, benchmarks=benchmarks, search=search)


def _probe(streams, passed, resolved=True):
    return {"streams": streams, "attainment": 1.0 if passed else 0.5, "attainment_lower": 0.7,
            "attainment_upper": 1.0, "determined_requests": 10, "goodput": 1.0, "passed": passed,
            "resolved": resolved, "aborted": False}


def test_goodput_reads_guidellm_s_search_and_sets_it_beside_the_sweep(tmp_path):
    from evalkit.perf.args import PerfArgs
    from evalkit.perf.goodput import compare_capacity, goodput_objectives
    from evalkit.perf.guidellm import build_command

    p = {**PerfArgs.check(profile="goodput", max_seconds=5, max_concurrency=8, attainment=0.95).model_dump(),
         "goodput_slo": goodput_objectives(perf.SLO(ttft_p99_ms=900, itl_p99_ms=80))}
    cmd = build_command(p, target="http://x", model="m", tokenizer="t", run_dir=tmp_path)
    profile, metrics = (json.loads(cmd[cmd.index(flag) + 1]) for flag in ("--profile", "--metrics"))
    assert profile["kind"] == "goodput" and profile["initial_streams"] == 1 and profile["max_streams"] == 8
    assert profile["target_attainment"] == 0.95 and metrics["slo"] == {"ttft_ms": 900, "tpot_ms": 80}
    assert goodput_objectives(perf.SLO(ttft_p99_ms=900)) == {"ttft_ms": 900}
    with pytest.raises(errors.ConfigError, match="takes no rates"):
        PerfArgs.check(profile="goodput", rates=[1, 2])

    found = _searched({"probes": [_probe(1, True), _probe(2, True), _probe(4, False, resolved=False),
                                  _probe(3, True)], "best_passing_streams": 3, "lowest_failing_streams": 4,
                       "stop_reason": "converged"}, [{"streams": 1, "rps": 1.0}, {"streams": 2, "rps": 1.8},
                                                     {"streams": 4, "rps": 2.5}, {"streams": 3, "rps": 2.2}])
    good = found.goodput()
    assert good.met and good.streams == 3 and good.requests_per_s == 2.2 and good.output_tokens_per_s == 35.2
    assert "3 stream(s) keep the SLO for 99% of requests: 2.20 requests/s" in good.sentence
    assert "1 (pass), 2 (pass), 4 (fail), 3 (pass)" in good.sentence and "1 of 4 loads had too few" in good.sentence
    assert list(good.to_frame()["streams"]) == [1, 2, 4, 3]

    none = _searched({"probes": [_probe(1, False)], "best_passing_streams": None, "lowest_failing_streams": 1,
                      "stop_reason": "objectives_unmet_at_minimum"}, [{"streams": 1, "rps": 1.0}]).goodput()
    assert not none.met and none.requests_per_s is None and "even one stream at a time fails" in none.sentence

    sweep = perf.PerfResult(run_dir="/tmp/x", model="m", base_url="http://x/v1", profile="concurrent",
                            slo={"ttft_p99_ms": 900.0, "itl_p99_ms": 80.0, "max_error_rate": 0.0}, benchmarks=[
                                {"benchmark": f"concurrent@{c}", "strategy": "concurrent", "concurrency": c,
                                 "successful": 10, "errored": 0, "incomplete": 0, "requests_per_s": rps,
                                 "output_tokens_per_s": rps * 16, "ttft_p99_ms": ttft, "itl_p99_ms": 50.0}
                                for c, rps, ttft in ((1, 1.0, 300.0), (2, 2.0, 600.0), (4, 2.6, 1500.0))])
    both = compare_capacity(sweep, found)
    assert both.sweep_requests_per_s == 2.0 and round(both.ratio, 3) == round(2.0 / 2.2, 3)
    assert "evalkit's sweep 2.00 requests/s, GuideLLM's goodput search 2.20 requests/s (ratio 0.91" in both.sentence
    nothing = compare_capacity(sweep, _searched({"probes": [_probe(1, False)], "best_passing_streams": None,
                                                      "stop_reason": "objectives_unmet_at_minimum"},
                                                     [{"streams": 1, "rps": 1.0}]))
    assert nothing.ratio is None and "only evalkit's sweep found a capacity" in nothing.sentence
    with pytest.raises(errors.ConfigError, match="not GuideLLM's goodput search"):
        sweep.goodput()


def test_a_sweep_keeps_the_goodput_search_beside_it_and_the_scorecard_shows_both(tmp_path):
    sweep = perf.PerfResult(run_dir=str(tmp_path / "sweep"), model="m", base_url="http://x/v1", profile="concurrent",
                            slo={"ttft_p99_ms": 900.0, "itl_p99_ms": 80.0, "max_error_rate": 0.0}, benchmarks=[
                                {"benchmark": "concurrent@1", "strategy": "concurrent", "concurrency": 1,
                                 "successful": 10, "errored": 0, "incomplete": 0, "requests_per_s": 1.0,
                                 "output_tokens_per_s": 16.0, "ttft_p99_ms": 300.0, "itl_p99_ms": 50.0}])
    (tmp_path / "sweep").mkdir()
    assert "goodput_capacity_requests_per_s" not in {m.metric for m in sweep.metrics()}  # no search: no row
    found = _searched({"probes": [_probe(1, True), _probe(2, False)], "best_passing_streams": 1,
                       "lowest_failing_streams": 2, "stop_reason": "converged"},
                      [{"streams": 1, "rps": 0.9}, {"streams": 2, "rps": 1.5}])
    sweep.record_goodput(found)
    again = perf.PerfResult.load(tmp_path / "sweep")  # kept in the sweep's result.json
    assert again.goodput_search["streams"] == 1 and again.goodput_search["requests_per_s"] == 0.9
    row = next(m for m in again.metrics() if m.metric == "goodput_capacity_requests_per_s")
    assert row.value == 0.9 and row.unit == "req/s" and "GuideLLM's goodput search: 1 stream(s)" in row.note
    capacity = next(m for m in again.metrics() if m.metric == "slo_capacity_requests_per_s")
    assert capacity.value == 1.0  # evalkit's own reading stays the scorecard's capacity


def test_guidellm_s_knee_profile_is_built_checked_and_read(tmp_path):
    from guidellm.benchmark.analysis.knee import find_throughput_knee

    from evalkit.perf.args import PerfArgs
    from evalkit.perf.guidellm import build_command, warmup_requests

    p = PerfArgs.check(profile="knee", rates=[1, 2, 4, 8, 16], max_requests=8).model_dump()
    cmd = build_command(p, target="http://x", model="m", tokenizer="t", run_dir=tmp_path)
    assert json.loads(cmd[cmd.index("--profile") + 1])["initial_streams"] == [1, 2, 4, 8, 16]
    assert "--override" not in cmd and warmup_requests(p) == 2  # a quarter of 8: the first wave would be 31
    for bad in ([1, 2, 4, 8], [1, 4, 2, 8, 16], [1, 2, 2, 4, 8]):
        with pytest.raises(errors.ConfigError, match="at least five stream counts in rising order"):
            PerfArgs.check(profile="knee", rates=bad)

    streams, tps = [1, 2, 4, 8, 16], [10.0, 20.0, 38.0, 40.0, 41.0]
    fit = find_throughput_knee(streams, tps).model_dump()  # GuideLLM's own fit, as its report holds it
    rows = [{"benchmark": f"concurrent@{s}", "strategy": "concurrent", "concurrency": s, "successful": 8,
             "errored": 0, "incomplete": 0, "requests_per_s": t / 16, "output_tokens_per_s": t}
            for s, t in zip(streams, tps, strict=True)]
    result = perf.PerfResult(run_dir="/tmp/x", model="m", base_url="http://x/v1", profile="knee", benchmarks=rows,
                             search={"kind": "knee_detection", "final": {"throughput": fit}})
    found = result.guidellm_knee()
    assert found.found and found.benchmark == "concurrent@8" and found.output_tokens_per_s == 40.0
    assert "throughput stops rising at about 4.0 streams" in found.sentence
    linear = find_throughput_knee(streams, [10.0, 20.0, 30.0, 40.0, 50.0]).model_dump()
    none = perf.PerfResult(run_dir="/tmp/x", model="m", base_url="http://x/v1", profile="knee", benchmarks=rows,
                           search={"final": {"throughput": linear}}).guidellm_knee()
    assert not none.found and "No breakpoint satisfied the saturation thresholds" in none.sentence
    with pytest.raises(errors.ConfigError, match="not GuideLLM's knee profile"):
        perf.PerfResult(run_dir="/tmp/x", model="m", base_url="http://x/v1", profile="sweep").guidellm_knee()
