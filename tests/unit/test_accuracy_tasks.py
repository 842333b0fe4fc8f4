"""The task writer, task files and the context filter (evalkit.accuracy): no server, no lm-eval run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.accuracy.prepare import TokenCounter, prepare_tasks
from evalkit.accuracy.reference import mmlu_pro_categories
from evalkit.accuracy.render import render_context, requests_for
from evalkit.accuracy.tables import task_from_table
from evalkit.accuracy.taskfiles import list_tasks, read_yaml, resolve_tasks, task_config, task_index
from evalkit.errors import ConfigError, TaskFileError
from evalkit.settings import get_settings

EMBEDDED = get_settings().data_dir / "models" / "stories260k"
FAQ = get_settings().data_dir / "faq" / "faq.csv"


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- task_from_table


def test_multiple_choice_table_becomes_a_task(tmp_path):
    table = _csv(tmp_path, "id,topic,question,choices,answer\n"
                           "a1,billing,How many days to pay?,7 days | 30 days | 90 days,30 days\n"
                           "a2,billing,Which card is accepted?,Visa | Diners,A\n"
                           "a3,shipping,How fast?,slow | fast,1\n")
    path = task_from_table(table, name="my_mc", out_dir=tmp_path / "tasks")
    cfg = read_yaml(path)
    assert cfg["task"] == "my_mc" and cfg["output_type"] == "multiple_choice"
    assert cfg["dataset_kwargs"]["data_files"]["test"] == "my_mc.jsonl"
    assert cfg["metadata"]["source_table"] == "../t.csv"
    docs = [json.loads(line) for line in (tmp_path / "tasks" / "my_mc.jsonl").read_text().splitlines()]
    assert [d["answer_index"] for d in docs] == [1, 0, 1]  # text, letter, 0-based index
    assert docs[0]["choices"] == ["7 days", "30 days", "90 days"]
    assert docs[2]["category"] == "shipping" and docs[0]["id"] == "a1"
    # the prompt lm-eval will build, and the continuations it scores
    context, continuations = requests_for(cfg, docs[0])
    assert context == "Question: How many days to pay?\nAnswer:"
    assert continuations == [" 7 days", " 30 days", " 90 days"]


def test_open_answer_tables_exact_and_normalized(tmp_path):
    table = _csv(tmp_path, "question,answer,context\nWhen do we open?,7 am,We open at 7 am.\n", name="open.jsonl.csv")
    exact = read_yaml(task_from_table(table, name="open_exact", kind="exact", out_dir=tmp_path))
    norm = read_yaml(task_from_table(table, name="open_norm", kind="normalized", out_dir=tmp_path,
                                     description="About our shop."))
    assert exact["output_type"] == norm["output_type"] == "generate_until"
    assert exact["metric_list"] == [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}]
    assert norm["metric_list"][0]["ignore_case"] and norm["metric_list"][0]["ignore_punctuation"]
    assert exact["filter_list"][0]["filter"][0]["function"] == "remove_whitespace"
    doc = json.loads((tmp_path / "open_norm.jsonl").read_text())
    assert render_context(norm, doc) == "About our shop.\n\nWe open at 7 am.\nQuestion: When do we open?\nAnswer:"


def test_jsonl_table_with_list_choices(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"question": "2+2?", "choices": ["3", "4"], "answer": 1}) + "\n")
    task_from_table(path, name="sums", out_dir=tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "sums.jsonl").read_text())
    assert doc["choices"] == ["3", "4"] and doc["answer_index"] == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("question,choices,answer\nQ1?,a | b,a\nQ2?,a | b | c,5\n",
         ["row 2 (line 3)", "'answer'", "index 5", "3 choices"]),
        ("question,choices,answer\nQ1?,a | b,C\n", ["row 1", "'answer'", "letter C", "2 choices"]),
        ("question,choices,answer\nQ1?,a | b,-1\n", ["row 1", "'answer'", "index -1"]),
        ("question,choices,answer\nQ1?,a | b,zebra\n", ["row 1", "'answer'", "'zebra'", "a | b"]),
        ("question,choices,answer\nQ1?,only one,only one\n", ["row 1", "'choices'", "1 option"]),
        ("question,choices,answer\nQ1?,a | a,a\n", ["row 1", "'choices'", "same option twice"]),
        ("question,choices,answer\n,a | b,a\n", ["row 1", "'question' is empty"]),
        ("question,choices,answer\nQ1?,a | b,\n", ["row 1", "'answer' is empty"]),
        ("question,answer\nQ1?,a\n", ["no 'choices' column", "question, choices"]),
        ("question,choices,answer\nQ1?,a | b,a,extra\n", ["row 1 (line 2)", "more cells"]),
        ("id,question,choices,answer\nx,Q1?,a | b,a\nx,Q2?,a | b,b\n", ["row 2", "'id'", "earlier row"]),
    ],
)
def test_bad_table_names_row_and_column(tmp_path, text, words):
    with pytest.raises(TaskFileError) as err:
        task_from_table(_csv(tmp_path, text), name="bad", out_dir=tmp_path / "out")
    message = str(err.value)
    assert "t.csv" in message
    for word in words:
        assert word in message
    assert "Fix:" in message
    assert not (tmp_path / "out" / "bad.yaml").exists()


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"question": "a", "answer": "b"}\n{"question": "c", answer: d}\n')
    with pytest.raises(TaskFileError, match=r"t.jsonl, line 2 is not valid JSON"):
        task_from_table(path, name="bad", kind="exact", out_dir=tmp_path)


def test_missing_table_bad_name_bad_kind(tmp_path):
    with pytest.raises(TaskFileError, match="does not exist"):
        task_from_table(tmp_path / "nope.csv", name="x", out_dir=tmp_path)
    table = _csv(tmp_path, "question,answer\nQ?,A\n")
    with pytest.raises(ConfigError, match="not allowed"):
        task_from_table(table, name="has space", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="kind='fuzzy'"):
        task_from_table(table, name="x", kind="fuzzy", out_dir=tmp_path)
    with pytest.raises(TaskFileError, match=r"\.csv or \.jsonl"):
        task_from_table(_csv(tmp_path, "q", name="t.txt"), name="x", out_dir=tmp_path)


def test_the_shipped_faq_is_a_valid_table(tmp_path):
    path = task_from_table(FAQ, name="faq_check", out_dir=tmp_path)
    docs = [json.loads(line) for line in (tmp_path / "faq_check.jsonl").read_text().splitlines()]
    assert 40 <= len(docs) <= 60
    assert all(len(d["choices"]) == 4 and d["context"] and d["category"] for d in docs)
    assert read_yaml(path)["output_type"] == "multiple_choice"


# ---------------------------------------------------------------- task files


def test_index_has_the_project_tasks():
    index = task_index()
    assert index["mmlu_pro_mc"].kind == "group" and len(index["mmlu_pro_mc"].subtasks) == 14
    assert {"mmlu_pro_cot", "faq_mc", "faq_open"} <= set(index)
    assert len(mmlu_pro_categories()) == 14
    frame = list_tasks()
    assert frame.set_index("task").loc["faq_mc", "output_type"] == "multiple_choice"
    cfg, folders = task_config(index["mmlu_pro_mc_law"].path)  # include: merged, the leaf wins
    assert cfg["output_type"] == "multiple_choice" and cfg["task"] == "mmlu_pro_mc_law"
    assert len(folders) == 2


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        resolve_tasks(["hellaswag"], task_index())
    assert "Unknown task 'hellaswag'" in str(err.value) and "mmlu_pro_mc" in str(err.value)
    assert "offline" in str(err.value)


def test_malformed_yaml_names_file_and_line(tmp_path):
    (tmp_path / "broken.yaml").write_text("task: broken\ndoc_to_text: {{question}}\n  bad: [\n")
    with pytest.raises(TaskFileError) as err:
        task_index(tmp_path)
    assert "broken.yaml" in str(err.value) and "line 3, column" in str(err.value)
    (tmp_path / "broken.yaml").write_text("- just\n- a list\n")
    with pytest.raises(TaskFileError, match="mapping"):
        task_index(tmp_path)


def test_duplicate_task_name_and_missing_include_path(tmp_path):
    (tmp_path / "dup.yaml").write_text("task: faq_mc\n")
    with pytest.raises(TaskFileError, match="defined twice"):
        task_index(tmp_path)
    with pytest.raises(TaskFileError, match="does not exist"):
        task_index(tmp_path / "nope")


def test_missing_data_file_names_yaml_and_key(tmp_path):
    (tmp_path / "t.yaml").write_text("task: lost\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                     "    test: gone.jsonl\noutput_type: multiple_choice\n")
    counter = TokenCounter(str(EMBEDDED))
    with pytest.raises(TaskFileError) as err:
        prepare_tasks(["lost"], tmp_path / "out", counter=counter, max_len=512, include_path=tmp_path)
    assert "t.yaml" in str(err.value) and "data_files.test" in str(err.value) and "gone.jsonl" in str(err.value)


# ---------------------------------------------------------------- the context filter


def test_long_questions_are_dropped_and_counted_never_truncated(tmp_path):
    long_context = "The shop opens early. " * 120  # far more than 512 tokens
    table = _csv(tmp_path, "id,question,choices,answer,context\n"
                           "k1,Short one?,yes | no,yes,\n"
                           f"k2,Long one?,yes | no,no,{long_context}\n"
                           "k3,Another short?,red | blue,blue,\n")
    task_from_table(table, name="mixed", out_dir=tmp_path / "src")
    counter = TokenCounter(str(EMBEDDED))
    prepared, run_names = prepare_tasks(["mixed"], tmp_path / "out", counter=counter, max_len=512,
                                        include_path=tmp_path / "src")
    item = prepared["mixed"][0]
    assert (item.considered, item.kept, item.dropped_ids) == (3, 2, ["k2"])
    assert item.budget_tokens == 511 and 0 < item.longest_tokens <= 511
    assert "1 of 3 questions dropped" in item.note
    kept = [json.loads(line)["id"] for line in (tmp_path / "out" / "mixed" / "test.jsonl").read_text().splitlines()]
    assert kept == ["k1", "k3"]  # the long question is gone, not cut short
    cfg = read_yaml(Path(item.yaml))
    assert Path(cfg["dataset_kwargs"]["data_files"]["test"]).is_absolute() and cfg["num_fewshot"] == 0
    assert run_names == ["mixed"]


def test_limit_applies_before_the_filter_and_fewshot_fallback(tmp_path):
    counter = TokenCounter(str(EMBEDDED))
    prepared, _ = prepare_tasks(["faq_mc"], tmp_path, counter=counter, max_len=512, limit=3, num_fewshot=2)
    item = prepared["faq_mc"][0]
    assert (item.considered, item.kept, item.num_fewshot) == (3, 3, 0)
    assert "no few-shot split, ran 0-shot" in item.note


def test_group_keeps_only_subtasks_with_questions(tmp_path):
    counter = TokenCounter(str(EMBEDDED))
    prepared, run_names = prepare_tasks(["mmlu_pro_mc"], tmp_path, counter=counter, max_len=150, limit=2)
    items = prepared["mmlu_pro_mc"]
    assert len(items) == 14 and sum(i.dropped for i in items) > 0
    live = [i.task for i in items if i.kept]
    if live:
        assert run_names == ["mmlu_pro_mc"]
        assert read_yaml(tmp_path / "mmlu_pro_mc.yaml")["task"] == live
    else:
        assert run_names == []


def test_generation_budget_counts_for_generative_tasks(tmp_path):
    counter = TokenCounter(str(EMBEDDED))
    prepared, _ = prepare_tasks(["mmlu_pro_cot"], tmp_path, counter=counter, max_len=512, limit=1)
    assert all(i.kept == 0 for i in prepared["mmlu_pro_cot"])  # prompt + 1024 new tokens never fits 512
    prepared, _ = prepare_tasks(["mmlu_pro_cot"], tmp_path, counter=counter, max_len=512, limit=1, max_gen_toks=16)
    assert sum(i.kept for i in prepared["mmlu_pro_cot"]) >= 10
    cfg = read_yaml(Path(prepared["mmlu_pro_cot"][0].yaml))
    assert cfg["generation_kwargs"]["max_gen_toks"] == 16


def test_no_tokenizer_means_no_filter_and_says_so(tmp_path):
    prepared, _ = prepare_tasks(["faq_mc"], tmp_path, counter=None, max_len=512, limit=2)
    item = prepared["faq_mc"][0]
    assert not item.filtered and "not filtered to the context" in item.note and item.kept is None


def test_full_mmlu_pro_split_swaps_the_data(tmp_path):
    counter = TokenCounter(str(EMBEDDED))
    prepared, _ = prepare_tasks(["mmlu_pro_mc_history"], tmp_path, counter=counter, max_len=512, limit=30,
                                mmlu_pro="full")
    item = prepared["mmlu_pro_mc_history"][0]
    assert item.considered == 30  # the committed subset has only 20 per category


def test_a_retrained_adapter_gets_another_request_cache(tmp_path, monkeypatch):
    """lm-eval's cache is keyed by what was served: new adapter weights, new cache file; the same weights, the same."""
    import shutil
    from types import SimpleNamespace

    from evalkit.accuracy.lmeval import request_cache_path
    from evalkit.settings import reload_settings

    data = tmp_path / "data"
    shutil.copytree(Path(__file__).resolve().parents[2] / "data" / "adapters" / "smollm2-135m-faq",
                    data / "adapters" / "smollm2-135m-faq")
    monkeypatch.setenv("EVALKIT_DATA_DIR", str(data))
    reload_settings()
    try:
        srv = SimpleNamespace(model="smollm2-135m-faq", base_url="http://127.0.0.1:8000/v1")
        before = request_cache_path(tmp_path, srv, "completions", "tok")
        assert request_cache_path(tmp_path, srv, "completions", "tok") == before
        weights = next((data / "adapters" / "smollm2-135m-faq").glob("adapter_model.*"))
        raw = weights.read_bytes()
        weights.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))  # retrained: other weights
        assert request_cache_path(tmp_path, srv, "completions", "tok") != before
    finally:
        monkeypatch.delenv("EVALKIT_DATA_DIR")
        reload_settings()
