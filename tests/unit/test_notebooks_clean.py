"""Committed notebooks carry no outputs and have exactly one cell tagged `parameters` with the common names."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    source = "".join(tagged[0]["source"])
    for name in ("MODEL =", "BASE_URL =", "RUN_DIR ="):
        assert name in source, f"{path.name}: parameters cell lacks {name}"
    # literal values only: every assignment line carries a comment saying what it is
    assignments = [line for line in source.splitlines() if "=" in line and not line.lstrip().startswith("#")]
    for line in assignments:
        assert "#" in line, f"{path.name}: parameter without a comment: {line}"
    # papermill (and `evalkit run`, which checks profiles against them) must be able to read every parameter;
    # its parser gives up on a line whose comment contains "="
    import papermill

    assert len(papermill.inspect_notebook(str(path))) == len(assignments), f"{path.name}: a parameter line " \
        "papermill cannot parse (no '=' inside the comment)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_do_learn_need(path):
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    for heading in ("What you'll do", "What you'll learn", "What you need"):
        assert heading in first
