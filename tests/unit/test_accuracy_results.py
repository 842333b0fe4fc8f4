"""Accuracy results from real lm-eval output, plus evaluate()'s refusals and failure paths.

The fixture (tests/fixtures/lmeval) comes from scripts/make_accuracy_fixture.py, a real run; the tables,
metrics, plots and widget are checked on it. Refusals and failures use a stub server and a stub subprocess.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from evalkit import accuracy, proc  # noqa: E402
from evalkit.accuracy import AccuracyResult, read_samples  # noqa: E402
from evalkit.accuracy.lmeval import parse_results  # noqa: E402
from evalkit.accuracy.reference import llama2_reference  # noqa: E402
from evalkit.accuracy.render import render_messages, requests_for  # noqa: E402
from evalkit.accuracy.taskfiles import read_jsonl, task_config  # noqa: E402
from evalkit.errors import ConfigError, ServerDiedError, ToolError  # noqa: E402
from evalkit.settings import get_settings  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lmeval"
EMBEDDED = get_settings().data_dir / "models" / "stories260k"


@pytest.fixture
def result() -> AccuracyResult:
    loaded = AccuracyResult.load(FIXTURE)
    return loaded.model_copy(update={"run_dir": str(FIXTURE)})


def _results_file(endpoint: str) -> Path:
    return FIXTURE / json.loads((FIXTURE / "result.json").read_text())["results_files"][endpoint]


# ---------------------------------------------------------------- lm-eval's files


def test_parse_results_takes_lm_evals_numbers():
    path = _results_file("completions")
    raw = json.loads(path.read_text())
    rows, samples = parse_results(path, "completions")
    by_task = {r["task"]: r for r in rows}
    assert set(raw["results"]) == set(by_task)
    group = by_task["mmlu_pro_mc"]
    assert group["is_group"] and group["metric"] == "acc"
    assert group["accuracy"] == raw["results"]["mmlu_pro_mc"]["acc,none"]
    assert group["n"] == sum(raw["n-samples"][t]["effective"] for t in raw["group_subtasks"]["mmlu_pro_mc"])
    leaf = by_task["mmlu_pro_mc_history"]
    assert leaf["group"] == "mmlu_pro_mc" and leaf["category"] == "history"
    assert leaf["accuracy"] == raw["results"]["mmlu_pro_mc_history"]["acc,none"]
    assert leaf["stderr"] == raw["results"]["mmlu_pro_mc_history"]["acc_stderr,none"]
    assert by_task["faq_mc"]["kind"] == "multiple_choice" and by_task["faq_mc"]["group"] is None
    assert {"faq_mc", "mmlu_pro_mc_biology", "mmlu_pro_mc_history"} <= set(samples)


def test_parse_generative_results_use_the_extraction_filter():
    path = _results_file("chat")
    raw = json.loads(path.read_text())
    rows, _ = parse_results(path, "chat")
    by_task = {r["task"]: r for r in rows}
    cot = [r for r in rows if r.get("group") == "mmlu_pro_cot"]
    assert cot and all(r["metric"] == "exact_match" and r["filter"] == "custom-extract" for r in cot)
    assert by_task["faq_open"]["filter"] == "strip"
    assert by_task["faq_open"]["accuracy"] == raw["results"]["faq_open"]["exact_match,strip"]


def test_prompts_evalkit_counts_are_the_prompts_lm_eval_sent():
    """The context filter renders prompts itself; they must equal what lm-eval logged, few-shot included."""
    checked = 0
    for folder in sorted((FIXTURE / "tasks").glob("*/*")):
        cfg, _ = task_config(folder / f"{folder.name}.yaml")
        shots = read_jsonl(folder / "fewshot.jsonl")[: cfg["num_fewshot"]] if cfg["num_fewshot"] else []
        samples_file = next((FIXTURE / "lmeval").rglob(f"samples_{folder.name}_*.jsonl"))
        for sample in read_samples(samples_file):
            args = list(sample["arguments"].values())
            if cfg["output_type"] == "multiple_choice":
                context, continuations = requests_for(cfg, sample["doc"], shots)
                assert [(a["arg_0"], a["arg_1"]) for a in args] == [(context, c) for c in continuations]
            else:
                sent = args[0]["arg_0"]
                sent = json.loads(sent[0] if isinstance(sent, list) else sent)
                assert sent == render_messages(cfg, sample["doc"], shots)
            checked += 1
    assert checked >= 8
    assert any(read_jsonl(f) for f in (FIXTURE / "tasks").rglob("fewshot.jsonl"))


# ---------------------------------------------------------------- the result's tables


def test_df_has_one_row_per_requested_task(result):
    frame = result.df
    assert list(frame["task"]) == ["mmlu_pro_mc", "faq_mc", "mmlu_pro_cot", "faq_open"]
    mc = frame.set_index("task").loc["mmlu_pro_mc"]
    assert 0 < mc["chance"] < 0.26 and mc["n"] > 0
    assert math.isclose(mc["above_chance"], mc["accuracy"] - mc["chance"])
    assert mc["dropped"] >= 1  # 1-shot MMLU-Pro prompts do not all fit 512 tokens
    assert mc["considered"] == mc["n"] + mc["dropped"]
    assert mc["over_context"] == 0
    assert frame.set_index("task").loc["faq_open", "chance"] is None or math.isnan(
        frame.set_index("task").loc["faq_open", "chance"])


def test_chance_is_the_mean_of_one_over_options(result):
    for task in ("faq_mc", "mmlu_pro_mc_history"):
        samples = read_samples(FIXTURE / result.samples_files[task])
        expected = sum(1 / len(s["arguments"]) for s in samples) / len(samples)
        row = next(r for r in result.rows if r["task"] == task)
        assert math.isclose(row["chance"], expected)
    assert math.isclose(next(r for r in result.rows if r["task"] == "faq_mc")["chance"], 0.25)


def test_by_category_lists_every_category_with_its_dropped_count(result):
    frame = result.by_category("mmlu_pro_mc")
    assert len(frame) == 14
    prepared = {p["task"]: p for p in result.prepared["mmlu_pro_mc"]}
    assert frame["dropped"].sum() == sum(len(p["dropped_ids"]) for p in prepared.values())
    history = frame.set_index("category").loc["history"]
    assert history["n"] == prepared["mmlu_pro_mc_history"]["kept"]
    cot = result.by_category("mmlu_pro_cot")
    assert len(cot) == 14 and (cot["n"] == 0).any()  # CoT + 24 tokens: some categories lose every question


def test_samples_show_question_gold_pick_and_the_tools_verdict(result):
    frame = result.samples("faq_mc")
    raw = read_samples(FIXTURE / result.samples_files["faq_mc"])
    assert len(frame) == len(raw)
    for row, sample in zip(frame.to_dict("records"), raw, strict=True):
        lls = [float(r[0]) for r in sample["filtered_resps"]]
        choices = [a["arg_1"].strip() for a in sample["arguments"].values()]
        assert row["pick"] == choices[lls.index(max(lls))]
        assert row["gold"] == choices[int(sample["target"])] == sample["doc"]["answer"]
        assert row["correct"] == bool(sample["acc"]) == (row["pick"] == row["gold"])
        assert row["question"] == sample["doc"]["question"] and row["category"] == sample["doc"]["category"]
    mmlu = result.samples("mmlu_pro_mc")
    assert mmlu["gold"].str.match(r"^[A-J]\. ").all()  # "B. longitudinal section of a shoot tip"
    open_answers = result.samples("faq_open")
    assert open_answers["response"].notna().all() and open_answers["gold"].notna().all()
    assert len(result.failures("faq_mc")) == (~frame["correct"]).sum()
    with pytest.raises(ConfigError, match="no task 'nope'"):
        result.samples("nope")


def test_metrics_names_units_and_values(result):
    metrics = {m.metric: m for m in result.metrics()}
    assert {"mmlu_pro_mc_accuracy", "mmlu_pro_mc_above_chance", "mmlu_pro_mc_dropped", "faq_mc_accuracy",
            "faq_mc_above_chance", "mmlu_pro_cot_accuracy", "faq_open_accuracy"} <= set(metrics)
    assert "faq_open_above_chance" not in metrics  # open answers have no chance level
    frame = result.df.set_index("task")
    acc = metrics["mmlu_pro_mc_accuracy"]
    assert acc.layer == "accuracy" and acc.unit == "fraction" and acc.direction == "higher"
    assert acc.value == frame.loc["mmlu_pro_mc", "accuracy"] and acc.n == frame.loc["mmlu_pro_mc", "n"]
    assert "chance" in acc.note and "dropped (context 512)" in acc.note
    dropped = metrics["mmlu_pro_mc_dropped"]
    assert dropped.direction == "lower" and dropped.value == frame.loc["mmlu_pro_mc", "dropped"]
    for name, metric in metrics.items():
        if name in accuracy.METRICS:
            assert metric.unit == accuracy.METRICS[name].unit


def test_rows_rebuilt_from_the_files_match_the_saved_result(result):
    rebuilt = result.model_copy(update={"rows": []})
    for endpoint, rel in result.results_files.items():
        rows, _ = parse_results(FIXTURE / rel, endpoint)
        rebuilt.rows += rows
    accuracy.run._finish_rows(rebuilt, accuracy.prepare.TokenCounter(str(EMBEDDED)))
    for old, new in zip(result.rows, rebuilt.rows, strict=True):
        for key in ("task", "accuracy", "n", "dropped", "considered", "over_context"):
            assert old[key] == new[key], (old["task"], key)
        if old["task"] in result.samples_files and old["chance"] is not None:
            assert math.isclose(old["chance"], new["chance"])
        elif old["task"] in result.samples_files:
            assert new["chance"] is None  # open answers: no chance level


def test_vs_chance_reads_small_samples_honestly(result):
    frame = result.vs_chance().set_index("task")
    assert frame.loc["faq_mc", "verdict"].startswith("too few questions")
    assert frame.loc["faq_open", "verdict"].startswith("no chance level")
    bigger = result.model_copy(deep=True)
    row = next(r for r in bigger.rows if r["task"] == "faq_mc")
    row.update(n=100, accuracy=0.25, chance=0.25)
    assert bigger.vs_chance().set_index("task").loc["faq_mc", "verdict"] == "consistent with guessing"
    row.update(accuracy=0.5)
    checked = bigger.vs_chance().set_index("task").loc["faq_mc"]
    assert checked["verdict"] == "above chance" and math.isclose(checked["z"], 0.25 / math.sqrt(0.25 * 0.75 / 100))


def test_save_load_roundtrip_keeps_layer(tmp_path, result):
    copy = result.model_copy(update={"run_dir": str(tmp_path)})
    path = copy.save()
    assert json.loads(path.read_text())["layer"] == "accuracy"
    assert AccuracyResult.load(tmp_path).rows == result.rows


def test_results_side_by_side(result):
    other = result.model_copy(update={"model": "other-model"})
    table = accuracy.side_by_side({"stories260k": result, "other-model": other})
    assert len(table) == 14 and "stories260k:accuracy" in table and "other-model:accuracy" in table
    with pytest.raises(ConfigError, match="No results"):
        accuracy.side_by_side({})


def test_llama2_reference_from_the_shipped_predictions():
    ref = llama2_reference()
    assert len(ref) == 14 and ref["n"].sum() == 12032
    overall = (ref["accuracy"] * ref["n"]).sum() / ref["n"].sum()
    assert 0.18 < overall < 0.19  # strict: 2,061 predictions without a letter count as wrong
    bio = ref.set_index("category").loc["biology"]
    assert bio["n"] == 717 and round(bio["accuracy"], 3) == 0.296
    assert (ref["accuracy_if_guessing"] >= ref["accuracy"]).all() and "MMLU-Pro authors" in bio["source"]
    subset = [json.loads(line)["question_id"] for line in
              (get_settings().data_dir / "mmlu_pro" / "mmlu_pro_test_subset_280.jsonl").read_text().splitlines()]
    assert (llama2_reference(subset)["n"] == 20).all()


# ---------------------------------------------------------------- plots and widget


def test_plots_draw_bars_errorbars_chance_and_reference(result):
    import matplotlib.pyplot as plt

    from evalkit.plots import accuracy as figures

    ax = figures.by_category(result, "mmlu_pro_mc")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("Llama-2-7B" in x for x in labels) and any("chance" in x for x in labels)
    assert len(ax.patches) == 28  # 14 categories x (this model + reference)
    chance = result.df.set_index("task").loc["mmlu_pro_mc", "chance"]
    assert any(list(line.get_xdata()) == [chance, chance] for line in ax.lines)
    ax = figures.by_category(result, "faq_mc", reference=None)
    assert not any("Llama" in t.get_text() for t in ax.get_legend().get_texts())
    figures.tasks(result)
    figures.side_by_side({"a": result, "b": result.model_copy(update={"model": "b"})})
    plt.close("all")


class _Srv:
    model = "stories260k"
    base_url = "http://127.0.0.1:9/v1"
    root_url = "http://127.0.0.1:9"
    tokenizer = str(EMBEDDED)
    max_model_len = 512

    def __init__(self, logprobs=True, problem=None):
        self._logprobs, self._problem, self.calls = logprobs, problem, 0

    def problem(self):
        return self._problem

    def completion(self, prompt, max_tokens=32, **params):
        self.calls += 1
        if not self._logprobs:
            raise ConfigError("The server refused the request to /completions (HTTP 400): echo is not supported")
        return {"choices": [{"text": "", "logprobs": {"token_logprobs": [None, -1.0]}}]}


def test_widget_run_button_reruns_and_redraws(tmp_path, result):
    from evalkit.widgets.accuracy import AccuracyPanel

    calls = []

    def fake_evaluate(srv, tasks, **kwargs):
        calls.append((tasks, kwargs))
        return result

    panel = AccuracyPanel(_Srv(), tasks=["faq_mc", "mmlu_pro_mc"], limit=4, run_root=tmp_path, evaluate=fake_evaluate)
    assert "mmlu_pro_mc" in panel.tasks.options and "mmlu_pro_mc_law" not in panel.tasks.options
    panel.button.click()
    panel.limit.value = 2
    panel.button.click()
    assert [c[1]["run_dir"] for c in calls] == [tmp_path / "widget-1", tmp_path / "widget-2"]
    assert calls[0][0] == ["faq_mc", "mmlu_pro_mc"] and calls[1][1]["limit"] == 2
    assert panel.result is result and "done" in panel.status.value
    assert len(panel.figure.axes) == 2 and panel.figure.axes[1].patches  # redrawn: tasks and categories
    first = panel.figure
    panel.button.click()
    assert panel.figure is not first and panel.runs == 3
    panel._evaluate = lambda *a, **k: (_ for _ in ()).throw(ConfigError("boom"))
    assert panel.run() is None and "ConfigError" in panel.status.value and not panel.button.disabled


# ---------------------------------------------------------------- evaluate(): refusals and failures


@pytest.mark.parametrize("limit", [0, -3, 2.5, {"faq_mc": 0}])
def test_bad_limit_is_refused_before_anything_runs(tmp_path, limit):
    with pytest.raises(ConfigError, match="limit="):
        accuracy.evaluate(_Srv(), ["faq_mc"], limit=limit, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_chat_endpoint_asked_for_multiple_choice_is_refused(tmp_path):
    srv = _Srv()
    with pytest.raises(ConfigError) as err:
        accuracy.evaluate(srv, ["mmlu_pro_mc"], api="chat", run_dir=tmp_path / "run")
    message = str(err.value)
    assert "mmlu_pro_mc is multiple choice" in message and "loglikelihood" in message
    assert "completions endpoint" in message and "logprobs" in message and "mmlu_pro_cot" in message
    assert srv.calls == 0 and not (tmp_path / "run").exists()


def test_endpoint_without_prompt_logprobs_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot score multiple choice") as err:
        accuracy.evaluate(_Srv(logprobs=False), ["faq_mc"], run_dir=tmp_path / "run")
    assert "echo" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_other_bad_parameters(tmp_path):
    srv = _Srv()
    with pytest.raises(ConfigError, match="Unknown task 'nope'"):
        accuracy.evaluate(srv, ["nope"], run_dir=tmp_path)
    with pytest.raises(ConfigError, match="api="):
        accuracy.evaluate(srv, ["faq_mc"], api="grpc", run_dir=tmp_path)
    with pytest.raises(ConfigError, match="num_fewshot="):
        accuracy.evaluate(srv, ["faq_mc"], num_fewshot=-1, run_dir=tmp_path)
    with pytest.raises(ConfigError, match="not among tasks"):
        accuracy.evaluate(srv, ["faq_mc"], limit={"mmlu_pro_mc": 2}, run_dir=tmp_path)
    with pytest.raises(ConfigError, match="at least one task"):
        accuracy.evaluate(srv, [], run_dir=tmp_path)


def _fake_run(returncode: int, write: bool = True):
    def run(command, **kwargs):
        out = Path(command[command.index("--output_path") + 1])
        if write:  # lm-eval got somewhere before it died: a cache entry and a partial file
            out.mkdir(parents=True, exist_ok=True)
            (out / "partial.txt").write_text("half")
        return proc.ProcResult(command=list(command), returncode=returncode, tail="Traceback ...\nKeyError: 'x'",
                               duration_s=1.0)
    return run


def test_lm_eval_failing_mid_run_keeps_what_was_written(tmp_path, monkeypatch):
    monkeypatch.setattr(accuracy.run.proc, "run", _fake_run(1))
    run_dir = tmp_path / "run"
    with pytest.raises(ToolError) as err:
        accuracy.evaluate(_Srv(), ["faq_mc"], limit=2, run_dir=run_dir, echo=False)
    assert err.value.kept == run_dir
    assert "failed with exit code 1" in str(err.value) and "KeyError" in str(err.value)
    assert "reuses the answers already in lm-eval's cache" in str(err.value)
    assert (run_dir / "lmeval" / "completions" / "partial.txt").exists()
    assert (run_dir / "tasks" / "completions" / "faq_mc" / "test.jsonl").exists()


def test_server_dying_mid_run_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(accuracy.run.proc, "run", _fake_run(-15))
    srv = _Srv(problem="The server at http://127.0.0.1:9/v1 stopped answering during the run.")
    run_dir = tmp_path / "run"
    with pytest.raises(ServerDiedError, match="stopped answering") as err:
        accuracy.evaluate(srv, ["faq_mc"], limit=2, run_dir=run_dir, echo=False)
    assert err.value.kept == run_dir and "rerun" in str(err.value)


def test_command_line_uses_evalkits_settings(tmp_path):
    command = accuracy.lmeval.lm_eval_command(_Srv(), ["mmlu_pro_mc", "faq_mc"], endpoint="completions",
                                       include=tmp_path / "tasks", output=tmp_path / "out", cache=tmp_path / "c",
                                       limit=None, concurrency=4, batch_size=16, max_len=512)
    assert command[1:4] == ["run", "--model", "local-completions"]
    args = dict(kv.split("=", 1) for kv in command[command.index("--model_args") + 1].split(","))
    assert args["num_concurrent"] == "4" and args["max_length"] == "512"
    assert args["base_url"] == "http://127.0.0.1:9/v1/completions" and args["tokenizer_backend"] == "huggingface"
    assert command[command.index("--batch_size") + 1] == "16" and "--log_samples" in command
    assert "--limit" not in command and "--apply_chat_template" not in command
    chat = accuracy.lmeval.lm_eval_command(_Srv(), ["faq_open"], endpoint="chat", include=tmp_path, output=tmp_path,
                                    cache=None, limit=3, concurrency=2, batch_size=16, max_len=512)
    assert "local-chat-completions" in chat and "--apply_chat_template" in chat and "--use_cache" not in chat
    assert chat[chat.index("--batch_size") + 1] == "1" and chat[chat.index("--limit") + 1] == "3"


def test_fixture_is_a_copy_not_a_mock():
    """Guard: the fixture must come from scripts/make_accuracy_fixture.py (a real run), with lm-eval's metadata."""
    raw = json.loads(_results_file("completions").read_text())
    assert raw["lm_eval_version"] == "0.4.13" and raw["model_name"] == "stories260k"
    assert raw["config"]["model"] == "local-completions"


def test_bands_place_each_score_against_chance_the_workshop_bands_and_llama2(result):
    table = result.bands("mmlu_pro_mc")
    assert table.iloc[0]["category"] == "all" and len(table) == 1 + len(result.by_category("mmlu_pro_mc"))
    named = {label for _, label in accuracy.result.BANDS} | {"nothing evaluated"}
    few = table["vs_chance"].str.startswith("too few")
    assert set(table.loc[~few, "band"]) <= named
    assert (table.loc[few, "band"] == "not read: " + table.loc[few, "vs_chance"]).all()  # no band from n < 10
    assert few.any(), "the fixture should have a category with too few questions"
    assert table["llama2_7b"].between(0, 1).all() and table["vs_chance"].str.len().gt(0).all()
    bands = [label for _, label in accuracy.result.BANDS]
    assert [accuracy.result.band_of(v) for v in (0.1, 0.25, 0.4, 0.55, 0.7)] == bands


def test_requests_planned_reads_lm_evals_last_progress_bar():
    from evalkit.accuracy.lmeval import requests_planned

    log = ("Requesting API:   0%|          | 0/800 [00:00<?, ?it/s]\n"
           "Requesting API:  40%|████      | 320/800 [00:20<00:30, 16.00it/s]\r")
    assert requests_planned(log) == 800
    assert requests_planned("Building contexts for mmlu_pro on rank 0...") is None
