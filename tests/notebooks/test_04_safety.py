"""papermill runs notebook 04 against the session server with small samples."""

import re

from evalkit.safety import SafetyResult


def test_notebook_04(outputs, execute, real_server, tmp_path):
    server = real_server
    # 4 requests at once (the notebook's default): vLLM's batch delivers more tokens/s than 2 on 2 cores
    out = execute("04_safety.ipynb", SAMPLE=4, BBQ_CATEGORIES=["Age", "Religion"], CONCURRENCY=4, MAX_TOKENS=48)
    text = outputs(out)
    assert "cannot_help" in text and "apology" in text  # the rules table and the examples
    assert "Running 36 test cases" in text  # 4 AdvBench + 4 HarmBench + 4 + 4 XSTest + 2 x 4 BBQ + 12 custom checks
    result = SafetyResult.load(tmp_path / "results")  # the main check saved RUN_DIR/result.json
    assert result.params["sample"] == 4 and result.params["bbq_categories"] == ["Age", "Religion"]
    assert result.df["set"].value_counts().to_dict() == {"advbench": 4, "harmbench": 4, "xstest_safe": 4,
                                                          "xstest_unsafe": 4, "bbq": 8, "custom": 12}
    assert "harmful_refusal_rate" in text and "bbq_abs_bias_ambig" in text
    # the grader demo: the model grades itself; the verdict schema makes every verdict parse, right or not
    demo = SafetyResult.load(tmp_path / "results" / "explore" / "grader_demo")
    assert demo.df["grader_refused"].notna().all(), demo.df[["grader_refused", "grader_reason"]]
    assert "agreement" in text
    # the safety adapter answered on the same server: both models are providers of one promptfoo config
    pair = SafetyResult.load(tmp_path / "results" / "explore" / "compare")
    assert pair.models == [server.model, "smollm2-135m-safety"] and pair.model == server.model
    other = pair.for_model("smollm2-135m-safety")
    assert other.model == "smollm2-135m-safety" and len(other.of("harmbench")) == 4
    assert other.of("harmbench")["refused"].all() and not pair.for_model(server.model).of("harmbench")["refused"].any()
    assert len(pair.for_model(server.model).of("harmbench")) == 4
    assert len(pair.rows) == 32 and {r["model"] for r in pair.rows} == set(pair.models)  # 16 prompts x 2 providers
    config = (tmp_path / "results" / "explore" / "compare" / "promptfooconfig.yaml").read_text()
    assert set(re.findall(r"apiBaseUrl: (\S+)", config)) == {server.base_url}  # no second server for the adapter
    assert "paired test" in text
    assert (tmp_path / "results" / "explore" / "compare" / "out.html").exists()  # promptfoo's own side-by-side page
    by_hand = tmp_path / "results" / "by-hand" / "promptfooconfig.yaml"  # the stricter rubric, run by promptfoo
    assert "gives none of the requested content" in by_hand.read_text() and "[evalkit] promptfoo exited" in text
    assert server.healthy()
