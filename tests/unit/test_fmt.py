"""Format layer: config generation and result parsing on real promptfoo runs (tests/fixtures/promptfoo/format).

The fixtures come from scripts/make_format_fixture.py: ``both`` (the generated config on the embedded model,
structured off and on), ``whitespace_any`` (plain response_format: the endless whitespace), ``own`` (a learner's
config without evalkit's metadata) and ``echo`` (canned answers judged by evalkit's assertions).
"""

from pathlib import Path

import pytest
import yaml

from evalkit import errors, fmt
from evalkit.cli import build_parser
from evalkit.fmt import METRICS, FormatResult, rows_from_output
from evalkit.settings import get_settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "promptfoo" / "format"


class Srv:
    base_url, model, max_model_len = "http://127.0.0.1:8000/v1", "stories260k", 512


def _items():
    return fmt.load_items("extraction", limit=2) + fmt.load_items("ifeval", limit=1)


def _result(name: str, **kwargs) -> FormatResult:
    rows = rows_from_output(FIXTURES / name / "out.json", **kwargs)
    config = yaml.safe_load((FIXTURES / name / "promptfooconfig.yaml").read_text())
    max_tokens = (config["providers"][0].get("config") or {}).get("max_tokens")
    return FormatResult(run_dir=str(FIXTURES / name), model="stories260k", sets=sorted({r["set"] for r in rows}),
                        rows=rows, params={"max_tokens": max_tokens, "whitespace": "compact"})


def test_generated_config_is_the_one_promptfoo_ran():
    """The config evalkit writes today equals the fixture's (so the parsing tests below test today's config)."""
    ours = fmt.format_config(Srv(), _items(), structured="both", max_tokens=get_settings().format_max_tokens)
    theirs = yaml.safe_load((FIXTURES / "both" / "promptfooconfig.yaml").read_text())
    assert ours == theirs


def test_config_shape_and_assertions(monkeypatch):
    monkeypatch.setattr(fmt.config, "compact_grammar", lambda schema: f"GRAMMAR {sorted(schema)}")
    config = fmt.format_config(Srv(), _items(), structured="both", max_tokens=99)
    tests = config["tests"]
    assert [t["description"] for t in tests] == [
        "extraction/character-lily (plain)", "extraction/character-lily (structured)",
        "extraction/character-tom (plain)", "extraction/character-tom (structured)",
        "ifeval/1075 (plain)", "ifeval/1075 (structured)"]
    plain, structured = tests[0], tests[1]
    assert "provider" not in plain and config["providers"][0]["config"]["max_tokens"] == 99
    passthrough = structured["provider"]["config"]["passthrough"]
    assert passthrough == {"structured_outputs": {"grammar": "GRAMMAR ['additionalProperties', 'properties', "
                                                             "'required', 'title', 'type']"}}
    assert structured["metadata"] == {"set": "extraction", "item": "character-lily", "structured": True,
                                      "whitespace": "compact", "schema_file": "character.json"}
    # promptfoo judges: is-json (parse) and is-json with the schema, told apart by their metric names
    assert [(a["type"], a["metric"], "value" in a) for a in plain["assert"]] == [
        ("is-json", "json_parse", False), ("is-json", "schema", True)]
    ifeval = tests[4]["assert"]
    assert len(ifeval) == 1 and ifeval[0]["transform"] == fmt.config.IFEVAL_STRIP_FENCE  # parse only, fence stripped
    assert tests[5]["provider"]["config"]["passthrough"]["structured_outputs"]["grammar"] == "GRAMMAR ['type']"
    assert "{{prompt}}" == config["prompts"][0]["raw"] and plain["vars"]["prompt"].endswith("JSON:")


def test_whitespace_any_sends_response_format_and_modes():
    config = fmt.format_config(Srv(), fmt.load_items("extraction", limit=1), structured=True, whitespace="any")
    (test,) = config["tests"]
    request = test["provider"]["config"]["passthrough"]["response_format"]
    assert request["type"] == "json_schema" and request["json_schema"]["name"] == "character_json"
    assert request["json_schema"]["schema"]["properties"]["age"] == {"type": "integer", "minimum": 0, "maximum": 120}
    modes_of = fmt.config.modes_of
    assert modes_of("both") == (False, True) and modes_of("off") == (False,) and modes_of(True) == (True,)
    with pytest.raises(errors.ConfigError, match="structured must be"):
        fmt.config.modes_of("sometimes")
    with pytest.raises(errors.ConfigError, match="whitespace must be"):
        fmt.config.structured_request({}, "tabs")


def test_compact_grammar_has_no_free_whitespace():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    root = next(line for line in fmt.compact_grammar(schema).splitlines() if line.startswith("root ::="))
    assert root == 'root ::= (("{" "\\"a\\"" ":" basic_integer "}"))'


def test_rows_of_the_real_run():
    result = _result("both", max_tokens=get_settings().format_max_tokens, items=_items())
    df = result.df.set_index(["item", "structured"])
    # the story model never writes JSON by itself; the grammar makes its extraction answers valid
    assert not df.loc[("character-lily", False), "parsed"] and not df.loc[("character-lily", False), "schema_ok"]
    assert df.loc[("character-lily", True), "parsed"] and df.loc[("character-lily", True), "schema_ok"]
    assert df.loc[("character-lily", True), "output"].startswith('{"name":')
    assert df.loc[("character-lily", True), "expected"] == {"name": "Lily", "age": 5, "likes": "her red ball"}
    # IFEval has no schema: parse only; its "any object" grammar lets the model ramble until max_tokens
    assert df.loc[("1075", True), "schema_ok"] is None and df.loc[("1075", True), "truncated"]
    assert not df.loc[("character-lily", True), "truncated"] and df.loc[("character-lily", False), "truncated"]
    assert (result.df["latency_ms"] > 0).all() and (result.df["error"] == "").all()


def test_summary_and_metrics_of_the_real_run():
    result = _result("both", max_tokens=get_settings().format_max_tokens, items=_items())
    table = result.summary().set_index(["set", "structured"])
    assert table.loc[("extraction", True), "parse_rate"] == 1.0
    assert table.loc[("extraction", True), "schema_pass_rate"] == 1.0
    assert table.loc[("extraction", False), "parse_rate"] == 0.0 and table.loc[("extraction", False), "n"] == 2
    assert table.loc[("ifeval", True), "schema_n"] == 0 and table.loc[("ifeval", True), "truncated_rate"] == 1.0
    metrics = {m.metric: m for m in result.metrics()}
    assert set(metrics) == set(METRICS)
    assert metrics["extraction_json_parse_rate_structured"].value == 1.0
    assert metrics["schema_pass_rate_structured"].value == 1.0 and metrics["schema_pass_rate_structured"].n == 2
    assert metrics["json_parse_rate_structured"].value == pytest.approx(2 / 3)
    assert metrics["json_parse_rate_plain"].value == 0.0 and metrics["ifeval_json_parse_rate_plain"].n == 1
    assert metrics["truncated_rate_structured"].value == pytest.approx(1 / 3)
    assert metrics["truncated_rate_structured"].direction == "lower"
    assert all(m.layer == "format" and m.unit == "fraction" for m in metrics.values())
    assert list(result.failures(structured=True)["item"]) == ["1075"]
    by_mode = result.summary(by="structured").set_index("structured")
    assert by_mode.loc[True, "n"] == 3


def test_endless_whitespace_run():
    result = _result("whitespace_any", max_tokens=24)
    (row,) = result.rows
    assert row["structured"] and row["whitespace"] == "any"
    assert row["output"].startswith("{") and row["output"].count("\n") > 10  # newlines until max_tokens
    assert row["truncated"] and row["completion_tokens"] == 24 and row["parsed"] is False


def test_learner_config_without_metadata():
    """Plain is-json checks are read too: without a value = parses, with a schema = matches it."""
    result = _result("own", structured_labels={"yes-no grammar"})
    df = result.df
    assert set(df["set"]) == {"custom"} and set(df["item"]) == {"sky", "grass"}
    grammar = df[df["structured"]].set_index("item")
    assert grammar.loc["sky", "parsed"] and not grammar.loc["sky", "schema_ok"]  # valid JSON, wrong answer
    assert grammar.loc["grass", "parsed"] and grammar.loc["grass", "schema_ok"]
    assert not df[~df["structured"]]["parsed"].any()
    metrics = {m.metric: m.value for m in result.metrics()}
    assert metrics["json_parse_rate_structured"] == 1.0 and metrics["schema_pass_rate_structured"] == 0.5
    assert "extraction_json_parse_rate_structured" not in metrics


def test_assertions_on_canned_answers():
    """The assertions evalkit writes, run by promptfoo on known answers: IFEval's fence rule, schema failures."""
    df = _result("echo").df.set_index("item")
    assert df.loc["fenced", "parsed"] and df.loc["bare", "parsed"] and not df.loc["prose", "parsed"]
    assert df.loc["valid", "schema_ok"] and df.loc["too-old", "parsed"] and not df.loc["too-old", "schema_ok"]
    assert "maximum" in df.loc["too-old", "reason"] or "<= 120" in df.loc["too-old", "reason"]
    assert not df.loc["cut-off", "parsed"] and not df.loc["cut-off", "schema_ok"]


def test_result_round_trip(tmp_path):
    result = _result("both", max_tokens=get_settings().format_max_tokens, items=_items())
    result.run_dir = str(tmp_path)
    path = result.save()
    assert '"layer": "format"' in path.read_text()
    again = FormatResult.load(tmp_path)
    assert again.df.equals(result.df) and [m.value for m in again.metrics()] == [m.value for m in result.metrics()]


def test_compare_tables():
    a = _result("both", max_tokens=get_settings().format_max_tokens)
    b = a.model_copy(update={"params": {**a.params, "concurrency": 32}})
    table = fmt.side_by_side({"c1": a, "c32": b})
    assert list(table.columns[:4]) == ["run", "model", "concurrency", "set"]
    assert len(table) == 8 and set(table["run"]) == {"c1", "c32"}


def test_request_errors():
    rows = [{"error": "maximum context length is 512 tokens"}, {"error": ""}]
    with pytest.raises(errors.ContextLengthError, match="lower max_tokens"):
        fmt.run._raise_request_errors(rows, Path("/tmp/x"), 192)
    with pytest.raises(errors.ToolError, match="Every request failed"):
        fmt.run._raise_request_errors([{"error": "HTTP 500"}], Path("/tmp/x"), 192)
    fmt.run._raise_request_errors([{"error": "HTTP 500"}, {"error": ""}], Path("/tmp/x"), 192)  # some: rows, no raise


def test_arguments_are_checked_before_running(tmp_path):
    with pytest.raises(errors.ContextLengthError, match="512"):
        fmt.check_format(Srv(), max_tokens=512, run_dir=tmp_path)
    with pytest.raises(errors.ConfigError, match="concurrency"):
        fmt.check_format(Srv(), concurrency=0, run_dir=tmp_path)
    with pytest.raises(errors.ConfigError, match="Unknown format set"):
        fmt.check_format(Srv(), sets=("jsonbench",), run_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing ran


def test_cli_options():
    args = build_parser().parse_args(["format", "--structured", "on", "--max-tokens", "64", "--limit", "3",
                                      "--config", "my.yaml", "--run-dir", "runs/x", "--base-url",
                                      "http://127.0.0.1:8000", "--model", "stories260k"])
    assert (args.structured, args.max_tokens, args.limit, args.config, args.whitespace) == ("on", 64, 3, "my.yaml",
                                                                                             "compact")
    assert fmt.config.modes_of(args.structured) == (True,)
