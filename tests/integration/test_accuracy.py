"""evalkit.accuracy against the session's real server: real lm-eval runs, a few questions each."""

from __future__ import annotations

import json

from evalkit.accuracy import AccuracyResult, evaluate, read_samples
from evalkit.widgets.accuracy import AccuracyPanel


def test_multiple_choice_numbers_come_from_lm_evals_files(server, run_dir):
    result = evaluate(server, ["mmlu_pro_mc", "faq_mc"], limit={"mmlu_pro_mc": 1, "faq_mc": 4}, run_dir=run_dir,
                      echo=False)
    raw = json.loads((run_dir / result.results_files["completions"]).read_text())
    frame = result.df.set_index("task")
    assert frame.loc["mmlu_pro_mc", "accuracy"] == raw["results"]["mmlu_pro_mc"]["acc,none"]
    assert frame.loc["faq_mc", "accuracy"] == raw["results"]["faq_mc"]["acc,none"]
    assert frame.loc["faq_mc", "n"] == raw["n-samples"]["faq_mc"]["effective"] == 4
    assert frame.loc["mmlu_pro_mc", "n"] + frame.loc["mmlu_pro_mc", "dropped"] == 14  # 1 per category considered
    assert frame.loc["faq_mc", "chance"] == 0.25 and frame.loc["mmlu_pro_mc", "over_context"] == 0
    samples = result.samples("faq_mc")
    raw_samples = read_samples(run_dir / result.samples_files["faq_mc"])
    assert len(samples) == 4 and list(samples["correct"]) == [bool(s["acc"]) for s in raw_samples]
    assert len(result.by_category("mmlu_pro_mc")) == 14
    assert AccuracyResult.load(run_dir).df.equals(result.df)  # result.json written and readable
    assert {"mmlu_pro_mc_accuracy", "faq_mc_accuracy"} <= {m.metric for m in result.metrics()}

    # a rerun with the same settings in the same folder is answered from lm-eval's request cache
    again = evaluate(server, ["faq_mc"], limit={"faq_mc": 4}, run_dir=run_dir, echo=False)
    assert list(again.samples("faq_mc")["pick"]) == list(samples["pick"])
    log = (run_dir / "lm-eval.log").read_text()
    assert "Cached requests: 16, Requests remaining: 0" in log  # 4 questions x 4 options


def test_generative_task_runs_on_the_chat_endpoint(server, run_dir):
    result = evaluate(server, ["faq_open"], limit=2, max_gen_toks=8, run_dir=run_dir, echo=False)
    assert result.commands[0][3] == "local-chat-completions" and "--apply_chat_template" in result.commands[0]
    raw = json.loads((run_dir / result.results_files["chat"]).read_text())
    assert result.df.loc[0, "accuracy"] == raw["results"]["faq_open"]["exact_match,strip"]
    samples = result.samples("faq_open")
    assert len(samples) == 2 and samples["response"].map(lambda r: isinstance(r, str)).all()


def test_widget_run_button_really_reruns(server, tmp_path):
    panel = AccuracyPanel(server, tasks=["faq_mc"], limit=2, run_root=tmp_path)
    panel.button.click()
    assert panel.error is None, panel.error
    assert (tmp_path / "widget-1" / "result.json").exists() and panel.result.df.loc[0, "n"] == 2
    assert panel.figure is not None and "done" in panel.status.value
