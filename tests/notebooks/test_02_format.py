"""papermill runs notebook 02 (format) against the session server with small parameters."""


from evalkit.fmt import FormatResult


def test_notebook_02(outputs, execute, real_server, tmp_path):
    out = execute("02_format.ipynb", LIMIT=2, LOAD_CONCURRENCY=[1, 4], DEMO_MAX_TOKENS=24)
    text = outputs(out)
    result = FormatResult.load(tmp_path / "results")  # the main check saved where the scorecard looks
    metrics = {m.metric: m for m in result.metrics()}
    # the grammar lifts the schema rate of the real model (plain 0.5 on these 2 items: one answer misses a field)
    assert metrics["schema_pass_rate_structured"].value == 1.0 > metrics["schema_pass_rate_plain"].value
    assert metrics["json_parse_rate_plain"].n == 4 and result.params["concurrency"] == 32
    # the whitespace demo ran with the plain response_format (the real model stops by itself; a weaker one does not)
    assert "character-lily: " in text and " tokens, parsed=" in text
    assert 'root ::= (("{" "\\"animal\\"" ":"' in text
    for sub in ("whitespace-any", "load/c1", "load/c4"):
        assert (tmp_path / "results" / sub / "result.json").exists()
    assert "saved" in text and real_server.healthy()
    # by hand: a copy of the generated config with a latency assertion, run by promptfoo, its table and HTML page
    by_hand = tmp_path / "results" / "by-hand"
    assert "[evalkit] promptfoo exited with code" in text and (by_hand / "out.html").exists()
    assert "latency" in (by_hand / "promptfooconfig.yaml").read_text()
    assert "latency" not in (tmp_path / "results" / "promptfooconfig.yaml").read_text()  # the original is kept
    assert "schema passes, structured against plain:" in text
