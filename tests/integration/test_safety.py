"""The safety layer for real: promptfoo against the session server, the grader pre-flight, the CLI, the panel."""

import json

import pandas as pd
import pytest

from evalkit import errors
from evalkit.cli import main
from evalkit.promptfoo import parse_output
from evalkit.safety import METRICS, SafetyResult, check_safety
from evalkit.settings import get_settings

BANK_YAML = get_settings().data_dir / "safety" / "bank_faq.yaml"


def test_small_run_on_every_set(server, run_dir):
    result = check_safety(server, sample=2, seed=1, bbq_categories=["Age"], custom=BANK_YAML, run_dir=run_dir,
                          echo=False)
    counts = result.df["set"].value_counts().to_dict()
    assert counts == {"advbench": 2, "harmbench": 2, "xstest_safe": 2, "xstest_unsafe": 2, "bbq": 2, "custom": 6}
    assert (result.df["output"].str.len() > 0).all() and (result.df["error"] == "").all()
    assert result.promptfoo["returncode"] == 100  # the story model fails most checks: a result, not a crash
    # every refusal-set answer was judged by the rules inside promptfoo; every BBQ answer was read
    judged = result.df[result.df["set"].isin(["advbench", "harmbench", "xstest_safe", "xstest_unsafe"])]
    assert judged["refused"].notna().all()
    assert result.df[result.df["set"] == "bbq"]["reason"].str.contains("expected=").all()
    # the custom checks were sent as chat messages with the app's system prompt
    raw = parse_output(run_dir / "out.json")
    custom_prompts = raw[raw["description"].str.startswith("custom:")]["prompt"]
    assert custom_prompts.str.contains('"role":"system"').all() and custom_prompts.str.contains("Riverbank").all()
    # saved for the scorecard, and loads back
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["layer"] == "safety" and saved["params"]["sample"] == 2
    loaded = SafetyResult.load(run_dir)
    names = [m.metric for m in loaded.metrics()]
    assert set(names) <= set(METRICS) and "harmful_refusal_rate" in names and "custom_pass_rate" in names
    assert loaded.tool_versions["promptfoo"] == "0.123.1"


def test_same_seed_same_prompts(server, run_dir):
    a = check_safety(server, sets=["xstest_safe"], sample=3, seed=5, run_dir=run_dir / "a", echo=False)
    b = check_safety(server, sets=["xstest_safe"], sample=3, seed=5, run_dir=run_dir / "b", echo=False)
    assert list(a.df["id"]) == list(b.df["id"]) and list(a.df["output"]) == list(b.df["output"])


def test_unreachable_grader_stops_before_promptfoo(server, run_dir):
    with pytest.raises(errors.ServerUnreachableError) as info:
        check_safety(server, sets=["advbench"], sample=1, grader_url="http://127.0.0.1:9/v1", run_dir=run_dir,
                     echo=False)
    assert "http://127.0.0.1:9/v1" in str(info.value) and "Fix:" in str(info.value)
    assert not (run_dir / "out.json").exists() and not (run_dir / "promptfooconfig.yaml").exists()


def test_tiny_grader_gives_no_verdict(server, run_dir):
    result = check_safety(server, sets=["advbench"], sample=1, grader_url=server.base_url, run_dir=run_dir,
                          echo=False)
    row = result.df.iloc[0]
    assert not pd.isna(row["refused"]) and pd.isna(row["grader_refused"])
    assert "maximum context length" in row["grader_reason"]  # promptfoo's grading prompt exceeds 512 tokens
    metrics = {m.metric: m for m in result.metrics()}
    assert metrics["grader_verdict_rate"].value == 0.0 and metrics["harmful_refusal_rate_grader"].value is None


def test_malformed_custom_file_stops_before_promptfoo(server, run_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("checks:\n  - prompt: hi\n    expect: {contians: x}\n")
    with pytest.raises(errors.TaskFileError, match="line 2 .*unknown expectation `contians`"):
        check_safety(server, sets=["custom"], custom=bad, run_dir=run_dir, echo=False)
    assert not (run_dir / "out.json").exists()


def test_cli(server, run_dir, capsys):
    code = main(["safety", "--sets", "advbench", "--sample", "1", "--base-url", server.base_url,
                 "--run-dir", str(run_dir)])
    assert code == 0
    out = capsys.readouterr().out
    assert "harmful_refusal_rate" in out and f"saved {run_dir / 'result.json'}" in out
    assert main(["safety", "--sets", "advbench", "--grader-url", "http://127.0.0.1:9/v1", "--base-url",
                 server.base_url, "--run-dir", str(run_dir / "x")]) == 2
    assert "ServerUnreachableError" in capsys.readouterr().err


def test_panel_reruns_and_redraws(server, run_dir):
    from evalkit.widgets.safety import safety_panel

    panel = safety_panel(server, run_dir=run_dir, sets=("advbench",), sample=1)
    panel.button.click()
    first = panel.result
    assert first is not None and first.df["set"].tolist() == ["advbench"]
    panel.sets.value = ("xstest_safe",)
    panel.sample.value = 2
    panel.button.click()
    assert panel.result is not first and panel.result.df["set"].tolist() == ["xstest_safe", "xstest_safe"]
    assert len(list(run_dir.glob("*-panel*"))) == 2 and not panel.button.disabled
    panel.grader.value = "http://127.0.0.1:9/v1"
    panel.button.click()  # the error shows in the panel (its message in the output area); no exception
    assert "ServerUnreachableError" in panel.status.value and not panel.button.disabled
