"""promptfoo runner: output parsing (fixture from a real run), config checks, missing tools, short errors."""

import os
from pathlib import Path

import pytest

from evalkit import errors
from evalkit.promptfoo import check_config_file, parse_output, promptfoo_command, provider, write_config
from evalkit.promptfoo.output import outbound, read_net_audit
from evalkit.promptfoo.run import shorten_error
from evalkit.settings import Settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "promptfoo" / "smoke"


def test_parse_real_output():
    df = parse_output(FIXTURE / "out.json")
    assert list(df["description"]) == ["a story goes on", "not JSON", "never empty"]
    assert list(df["passed"]) == [True, False, True]
    assert df.loc[1, "reason"] == "Expected output to be valid JSON"
    assert df.loc[0, "vars"] == {"who": "there was a girl"}
    assert df.loc[0, "prompt"] == "Once upon a time, there was a girl"
    assert (df["completion_tokens"] > 0).all() and (df["latency_ms"] >= 0).all()
    assert set(df["provider"]) == {"stories260k"}


def test_provider_entry():
    class Srv:
        base_url, model = "http://127.0.0.1:1234/v1", "m"

    entry = provider(Srv(), endpoint="completion", max_tokens=7, response_format={"type": "json_object"})
    assert entry["id"] == "openai:completion:m"
    assert entry["config"]["apiBaseUrl"] == "http://127.0.0.1:1234/v1" and entry["config"]["max_tokens"] == 7
    assert entry["config"]["response_format"] == {"type": "json_object"}
    with pytest.raises(ValueError):
        provider(Srv(), endpoint="embedding")


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("prompts: ['a']\ntests:\n  - vars: {x: 1\n")
    with pytest.raises(errors.TaskFileError) as info:
        check_config_file(path)
    assert str(path) in str(info.value) and "line 4" in str(info.value)


def test_config_without_tests(tmp_path):
    path = write_config({"prompts": ["a"]}, tmp_path / "c.yaml")
    with pytest.raises(errors.TaskFileError, match="no `tests:`"):
        check_config_file(path)
    with pytest.raises(errors.TaskFileError, match="does not exist"):
        check_config_file(tmp_path / "missing.yaml")


def test_missing_promptfoo_says_how_to_install(tmp_path):
    settings = Settings(project_dir=tmp_path)
    with pytest.raises(errors.ToolMissingError) as info:
        promptfoo_command(settings)
    assert "make setup" in str(info.value)


def test_missing_or_old_node(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no node anywhere
    with pytest.raises(errors.ToolMissingError, match="Node.js is not installed"):
        promptfoo_command(Settings(node_dir=tmp_path))
    old = tmp_path / "node"
    old.write_text("#!/bin/sh\necho v20.20.2\n")
    old.chmod(0o755)
    with pytest.raises(errors.ToolMissingError, match="needs Node >= 22.22"):
        promptfoo_command(Settings(node_dir=tmp_path))


def test_shorten_error_keeps_the_message():
    tail = "\n".join([
        "(node:1) ExperimentalWarning: x", "Starting evaluation", "Error: Invalid config: prompts must be a list",
        "    at foo (file.js:1:1)", "    at bar (file.js:2:2)", "Node.js v24.19.0",
    ])
    assert shorten_error(tail) == "Error: Invalid config: prompts must be a list"


def test_net_audit_outbound(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text(
        '{"kind":"connect","host":"127.0.0.1","port":8000,"pid":1}\n'
        '{"kind":"connect","host":"/tmp/tsx/1.pipe","port":null,"pid":1}\n'
        '{"kind":"dns","host":"example.com","port":null,"pid":1}\n'
    )
    table = read_net_audit(path)
    assert len(table) == 3 and list(outbound(table)["host"]) == ["example.com"]
    assert read_net_audit(None).empty and read_net_audit(tmp_path / "none.jsonl").empty
    assert os.path.exists(path)


def test_finished_rows_reads_the_rows_promptfoo_stored_before_it_was_stopped(tmp_path):
    import sqlite3

    from evalkit.promptfoo.output import finished_rows, promptfoo_db

    db = promptfoo_db(tmp_path)
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:  # the two tables of promptfoo 0.123's database that are read
        conn.execute("CREATE TABLE evals (id TEXT, created_at INTEGER)")
        conn.execute("CREATE TABLE eval_results (eval_id TEXT, test_idx INTEGER, prompt_idx INTEGER, success "
                     "INTEGER, score REAL, response TEXT, error TEXT)")
        conn.executemany("INSERT INTO evals VALUES (?, ?)", [("old", 1000), ("new", 5000)])
        conn.executemany("INSERT INTO eval_results VALUES (?, ?, ?, ?, ?, ?, ?)", [
            ("old", 0, 0, 1, 1.0, '{"output": "from an earlier run"}', None),
            ("new", 1, 0, 0, 0.0, None, "connection refused"),
            ("new", 0, 0, 1, 1.0, '{"output": "{\\"a\\": 1}"}', None),
        ])
    rows = finished_rows(tmp_path, since=4.0)
    assert [(r["test_idx"], r["success"], r["output"], r["error"]) for r in rows] == [
        (0, True, '{"a": 1}', None), (1, False, None, "connection refused")]
    assert rows[0]["eval"] == "new"
    assert finished_rows(tmp_path, since=6.0) == []  # this run had stored no eval yet
    assert finished_rows(tmp_path / "elsewhere") == []
