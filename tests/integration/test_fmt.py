"""The format layer for real: promptfoo against the session server, structured outputs on and off."""

import yaml

from evalkit import fmt
from evalkit.promptfoo import provider, write_config
from evalkit.widgets.fmt import format_panel


def test_small_run_with_and_without_structured_outputs(server, run_dir):
    result = fmt.check_format(server, limit=1, run_dir=run_dir / "format", echo=False)
    df = result.df.set_index(["set", "structured"])
    assert len(result.df) == 4 and result.promptfoo["returncode"] in (0, 100)
    # with the grammar the story model's extraction answer parses and matches its schema
    assert df.loc[("extraction", True), "parsed"] and df.loc[("extraction", True), "schema_ok"]
    assert df.loc[("extraction", True), "output"].startswith('{"name":"')  # compact: no whitespace after {
    # without it, promptfoo judged the story it wrote (it is not JSON)
    assert not df.loc[("extraction", False), "parsed"] and df.loc[("ifeval", False), "schema_ok"] is None
    saved = fmt.FormatResult.load(run_dir / "format")
    assert {m.metric for m in saved.metrics()} == set(fmt.METRICS)
    config = yaml.safe_load((run_dir / "format" / "promptfooconfig.yaml").read_text())
    assert config["providers"][0]["config"]["apiBaseUrl"] == server.base_url
    assert (run_dir / "format" / "out.json").exists() and (run_dir / "format" / "promptfoo.log").exists()


def test_grammar_with_free_whitespace_runs_to_max_tokens(server, run_dir):
    """The plain response_format grammar lets the tiny model emit whitespace until max_tokens."""
    items = fmt.load_items("extraction", limit=1)
    result = fmt.check_format(server, items=items, structured=True, whitespace="any", max_tokens=32,
                              run_dir=run_dir / "any", echo=False)
    (row,) = result.rows
    assert row["truncated"] and row["parsed"] is False
    assert sum(c.isspace() for c in row["output"]) > len(row["output"]) / 2


def test_learner_config(server, run_dir):
    schema = {"type": "string", "enum": ["yes", "no"]}
    grammar = {"response_format": {"type": "json_schema", "json_schema": {"name": "yes_no", "schema": schema}}}
    path = write_config({
        "prompts": ["{{question}} Answer yes or no, as JSON."],
        "providers": [provider(server, max_tokens=16, label="plain"),
                      provider(server, max_tokens=16, label="yes-no", passthrough=grammar)],
        "tests": [{"description": "sky", "vars": {"question": "Is the sky green?"},
                   "assert": [{"type": "is-json"}, {"type": "is-json", "value": {"enum": ["yes", "no"]}}]}],
    }, run_dir / "mine" / "promptfooconfig.yaml")
    result = fmt.check_format(server, config=path, run_dir=run_dir / "own", echo=False)
    df = result.df.set_index("structured")
    assert set(result.df["set"]) == {"custom"} and len(df) == 2
    assert df.loc[True, "parsed"] and df.loc[True, "schema_ok"] and df.loc[True, "output"].strip('"') in ("yes", "no")
    assert result.params["config"] == str(path)


def test_compliance_under_load(server, run_dir):
    runs = fmt.check_under_load(server, concurrencies=(1, 8), sets="extraction", limit=3, structured=True,
                                run_dir=run_dir / "load", echo=False)
    table = fmt.side_by_side(runs)
    assert list(table["concurrency"]) == [1, 8]
    assert (table["parse_rate"] == 1.0).all() and (table["schema_pass_rate"] == 1.0).all()


def test_panel_reruns_and_redraws(server, run_dir):
    panel = format_panel(server, run_dir=run_dir / "panel", schema="sentiment.json", limit=1, structured=True)
    panel.button.click()
    assert panel.error is None, panel.error
    first, figures = panel.result, panel.figures
    assert first.df["schema_ok"].all() and len(figures) == 2
    panel.max_tokens.value = 8  # too few tokens for {"sentiment":...,"is_question":...}
    panel.button.click()
    assert panel.result is not first and panel.figures[0] is not figures[0]
    assert panel.result.df["truncated"].all() and not panel.result.df["parsed"].any()
    assert panel.result.path != first.path
    panel.editor.value = '{"type": "object", "properties": {"sentiment": {"type": "strng"}}}'
    panel.button.click()
    assert "not a valid JSON Schema" in str(panel.error)
