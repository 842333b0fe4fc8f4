"""papermill runs notebook 03 against the embedded-model server with a small limit (the steps, not the scores)."""

import json


def test_notebook_03(outputs, execute_small, server, tmp_path):
    # stories260k and no size climb: on a 2-core AVX2 CPU the real model's MMLU-Pro prompts alone took 6 minutes
    # here; the adapter-on-the-same-server path of the climb is tests/integration/test_adapters.py's
    out = execute_small("03_accuracy.ipynb", LIMIT=1, FAQ_LIMIT=4, CLIMB_MODELS=[])
    text = outputs(out)
    results = tmp_path / "results"
    data = json.loads((results / "result.json").read_text())
    assert data["layer"] == "accuracy" and data["tasks"] == ["mmlu_pro_mc", "faq_mc"]
    assert data["params"]["limit"] == {"mmlu_pro_mc": 1, "faq_mc": 4}
    assert "attached to stories260k" in text
    assert "too few questions" in text  # the honest reading of 1 question per category
    assert "random guessing (about 10 % on 10 options)" in text and "llama2_7b" in text  # the bands table
    assert (results / "faq-edit" / "run" / "result.json").exists()  # the edited FAQ ran
    assert "Cached requests: 16, Requests remaining: 196" in text  # 4 FAQ rows x 4 options reused from the main run
    assert "column 'answer': index 7 is outside the 4 choices" in text
    assert "RUN_CHAT is False" in text
    halves = [line.split() for line in text.splitlines() if line.split()[:1] in (["trained"], ["held_out"])]
    assert [h[:2] for h in halves] == [["trained", "2"], ["held_out", "2"]]  # hb01, hb03 trained; hb02, hb04 not
    assert not (results / "climb").exists() and "faq_held_out" in text  # the climb table holds this model alone
    assert "[evalkit] lm-eval exited with code 0" in text  # by hand, from lm-eval's request cache
    assert list((results / "by-hand" / "lm-eval").rglob("results_*.json"))
    assert server.healthy()
