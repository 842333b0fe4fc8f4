"""Scorecard, thresholds, gates, JUnit/Markdown, compare: on small hand-made layer results."""

import json
import sys
import types
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from evalkit import errors, layers, scorecard
from evalkit.result import LayerResult, Metric, MetricSpec
from evalkit.scorecard.collect import newest_results


class FakePerf(LayerResult):
    layer = "performance"
    tps: float = 100.0
    ttft: float = 50.0

    def frame(self):
        import pandas as pd

        return pd.DataFrame([{"tps": self.tps, "ttft": self.ttft}])

    def metrics(self):
        return [Metric(layer="performance", metric="output_tokens_per_s", value=self.tps, unit="tok/s"),
                Metric(layer="performance", metric="ttft_p99_ms", value=self.ttft, unit="ms", direction="lower")]


class FakeSafety(LayerResult):
    layer = "safety"
    refusal: float | None = 0.0

    def frame(self):
        import pandas as pd

        return pd.DataFrame([{"refusal": self.refusal}])

    def metrics(self):
        return [Metric(layer="safety", metric="harmful_refusal_rate", value=self.refusal, unit="fraction", n=10)]


CATALOG = {"performance": {"output_tokens_per_s": MetricSpec("tok/s", "higher", "throughput"),
                           "ttft_p99_ms": MetricSpec("ms", "lower", "time to first token")},
           "safety": {"harmful_refusal_rate": MetricSpec("fraction", "higher", "harmful asks refused")}}
FakePerf.catalog, FakeSafety.catalog = CATALOG["performance"], CATALOG["safety"]


@pytest.fixture(autouse=True)
def fake_layers(monkeypatch):
    for name, cls in [("fake_perf", FakePerf), ("fake_safety", FakeSafety)]:
        module = types.ModuleType(f"evalkit.{name}")
        module.Result = cls
        monkeypatch.setitem(sys.modules, f"evalkit.{name}", module)
    monkeypatch.setattr(layers, "LAYERS", (
        layers.Layer(name="performance", order=1, notebook="01_performance", module="fake_perf", result="Result",
                     args="Args", run="run", title="Performance"),
        layers.Layer(name="safety", order=4, notebook="04_safety", module="fake_safety", result="Result", args="Args",
                     run="run", title="Safety"),
    ))


def make_run(root, name, tps=100.0, ttft=50.0, refusal=0.0):
    run = root / name
    FakePerf(run_dir=str(run / "performance"), model="stories260k", tps=tps, ttft=ttft,
             env={"device": "cpu", "cpu": "x86", "cpu_cores": 2, "guidellm": "0.8.1"}).save()
    FakeSafety(run_dir=str(run / "safety"), model="stories260k", refusal=refusal).save()
    return run


def thresholds_file(tmp_path, text):
    path = tmp_path / "thresholds.yaml"
    path.write_text(text)
    return path


def test_collect_rows_have_the_schema(tmp_path):
    card = scorecard.collect(make_run(tmp_path, "r1"))
    frame = card.frame()
    assert list(frame["metric"]) == ["output_tokens_per_s", "ttft_p99_ms", "harmful_refusal_rate"]
    row = frame.iloc[0]
    assert row["run_id"] == "r1" and row["preset"] == "stories260k" and row["hardware"] == "CPU: x86 (2 cores)"
    assert row["tool_versions"] == {"guidellm": "0.8.1"}
    for column in ["time", "parameters", "layer", "value", "unit", "direction", "threshold", "passed"]:
        assert column in frame


def test_gates_pass_fail_and_not_measured(tmp_path):
    card = scorecard.collect(make_run(tmp_path, "r1", tps=100, ttft=50))
    spec = {"performance": {"output_tokens_per_s": {"min": 80}, "ttft_p99_ms": {"max": 40}},
            "safety": {"harmful_refusal_rate": {"min": 0.0}}}
    gated = scorecard.apply_thresholds(card, spec)
    gates = gated.gates().set_index("metric")
    assert gates.loc["output_tokens_per_s", "passed"] and not gates.loc["ttft_p99_ms", "passed"]
    assert gates.loc["harmful_refusal_rate", "passed"]  # 0.0 >= 0.0
    assert not gated.passed
    spec["performance"]["ttft_p99_ms"] = {"max": 60}
    assert scorecard.apply_thresholds(card, spec).passed


def test_unmeasured_metric_fails(tmp_path):
    run = tmp_path / "r"
    FakePerf(run_dir=str(run / "performance"), model="m").save()  # the safety layer never ran
    gated = scorecard.apply_thresholds(scorecard.collect(run), {"safety": {"harmful_refusal_rate": {"min": 0}}})
    gate = gated.gates().iloc[0]
    assert pd.isna(gate["value"]) and not gate["passed"] and "not measured" in gate["note"]
    assert not gated.passed


def test_missing_value_fails_its_gate(tmp_path):
    run = tmp_path / "r"
    FakeSafety(run_dir=str(run / "safety"), model="m", refusal=None).save()
    gated = scorecard.apply_thresholds(scorecard.collect(run), {"safety": {"harmful_refusal_rate": {"min": 0}}})
    assert not gated.passed


def test_thresholds_file_errors_list_the_valid_names(tmp_path):
    with pytest.raises(errors.ConfigError) as info:
        scorecard.load_thresholds(thresholds_file(tmp_path, "latency:\n  x: {max: 1}\n"), CATALOG)
    assert "unknown layer 'latency'" in str(info.value) and "performance, safety" in str(info.value)
    with pytest.raises(errors.ConfigError) as info:
        scorecard.load_thresholds(thresholds_file(tmp_path, "performance:\n  tps: {min: 1}\n"), CATALOG)
    assert "no metric 'tps'" in str(info.value) and "output_tokens_per_s, ttft_p99_ms" in str(info.value)
    with pytest.raises(errors.ConfigError, match="exactly one numeric"):
        scorecard.load_thresholds(thresholds_file(tmp_path, "performance:\n  ttft_p99_ms: {max: fast}\n"), CATALOG)
    with pytest.raises(errors.ConfigError, match="does not exist"):
        scorecard.load_thresholds(tmp_path / "nope.yaml", CATALOG)


def test_gate_writes_files_and_junit_is_valid(tmp_path):
    run = make_run(tmp_path, "r1", ttft=50)
    path = thresholds_file(tmp_path, "performance:\n  ttft_p99_ms: {max: 40, why: x}\n"
                                     "safety:\n  harmful_refusal_rate: {min: 0}\n")
    card = scorecard.gate(run, scorecard.load_thresholds(path, CATALOG))
    assert not card.passed
    for name in ["scorecard.json", "scorecard.csv", "gates.junit.xml", "summary.md"]:
        assert (run / name).exists()
    suite = ET.parse(run / "gates.junit.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='ttft_p99_ms']/failure")
    assert failure is not None and "50 is not <= 40" in failure.get("message")
    summary = (run / "summary.md").read_text()
    assert "FAILED (1/2 passed" in summary and "| performance | ttft_p99_ms | 50 ms | <= 40 | FAIL |" in summary
    assert scorecard.Scorecard.load(run).run_id == "r1"
    assert json.loads((run / "scorecard.json").read_text())["rows"][0]["layer"] == "performance"


def test_run_folder_errors(tmp_path):
    with pytest.raises(errors.RunNotFoundError, match="does not exist"):
        scorecard.collect(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.RunNotFoundError, match="incomplete"):
        scorecard.collect(tmp_path / "empty")


def test_newest_results(tmp_path, monkeypatch):
    import os
    import time

    make_run(tmp_path, "old", tps=1)
    time.sleep(0.01)
    make_run(tmp_path, "new", tps=2)
    os.utime(tmp_path / "old" / "performance" / "result.json", (1, 1))
    found = newest_results(tmp_path)
    assert found["performance"].parent.parent.name == "new"


def test_compare(tmp_path):
    a = make_run(tmp_path, "a", tps=100, ttft=50, refusal=0.0)
    b = make_run(tmp_path, "b", tps=150, ttft=80, refusal=0.0)
    table = scorecard.compare(a, b).set_index("metric")
    assert table.loc["output_tokens_per_s", "delta"] == 50 and table.loc["output_tokens_per_s", "better"] == "b"
    assert table.loc["ttft_p99_ms", "better"] == "a"  # lower is better
    assert table.loc["harmful_refusal_rate", "better"] == "same"


def test_the_results_read_by_collect_are_kept_for_the_report(tmp_path, monkeypatch):
    card = scorecard.collect(make_run(tmp_path, "r1"))

    def no_second_read(path):
        raise AssertionError(f"{path} read twice")

    monkeypatch.setattr(sys.modules["evalkit.scorecard.collect"], "load_layer_result", no_second_read)
    results = scorecard.apply_thresholds(card, {}).results()
    assert set(results) == {"performance", "safety"} and results["safety"].refusal == 0.0
