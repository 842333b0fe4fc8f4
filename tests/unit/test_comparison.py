"""Model against model: comparison of run folders (safety results from real promptfoo fixtures) and --models checks."""

from pathlib import Path

import pytest

from evalkit import errors
from evalkit.pipeline.job import run_models
from evalkit.safety import SafetyResult, rows_from_output
from evalkit.scorecard.by_model import write_comparison

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "promptfoo" / "safety"


def _run(tmp_path, name, model, flip=False):
    rows = rows_from_output(FIXTURES / "echo" / "out.json")
    if flip:  # a second model that answers where the first refused, and the other way round
        rows = [{**r, "refused": None if r["refused"] is None else not r["refused"]} for r in rows]
    folder = tmp_path / name
    SafetyResult(run_dir=str(folder / "safety"), model=model, sets=["advbench", "xstest_safe"], rules=[],
                 rows=rows).save()
    return folder


def test_comparison_report_has_every_metric_and_a_paired_test(tmp_path):
    runs = {"ladder-m": _run(tmp_path, "a", "ladder-m"), "ladder-m-control": _run(tmp_path, "b", "ladder-m-control",
                                                                                     flip=True)}
    page = write_comparison(runs, tmp_path / "compare")
    text = page.read_text()
    assert "harmful_refusal_rate" in text and "over_refusal_rate" in text
    assert (tmp_path / "compare" / "size.png").stat().st_size > 1000
    markdown = (tmp_path / "compare" / "compare.md").read_text()
    assert "| ladder-m | ladder-m-control | safety | harmful_refusal_rate |" in markdown
    assert "not significant at n=3" in markdown  # three AdvBench items: too few for any verdict


def test_models_option_refuses_bad_lists_before_anything_runs():
    with pytest.raises(errors.ConfigError, match="two or more different models"):
        run_models("quick", ["ladder-m"])
    with pytest.raises(errors.UnknownModelError, match="no-such-model"):
        run_models("quick", ["ladder-m", "no-such-model"])
