"""The figures the text quotes (docs/figures.yaml) against the notebooks, the docs and the last measured run.

- every quoted ``text`` starts with a number inside the figure's interval, and appears in the "what you should
  see" cell right after the notebook cell that checks it (and in every file that cites it);
- every figure is checked by exactly one ``ek.expect`` call (or, for run times, by scripts/build_docs.py);
- the committed measurements (docs/figures-measured.json, written by `make docs`) lie in the intervals: a claim
  edited away from what was measured, or a run that drifted from the claim, fails here;
- the executed copies in docs/notebooks/ run the code the notebooks hold now.
"""

import json
import re
from pathlib import Path

import pytest

from evalkit.errors import ConfigError
from evalkit.figures import expect, load_figures

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?")


def _cells(name: str) -> list[dict]:
    return json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]


def _flat(text: str) -> str:
    """Text with every run of whitespace (line breaks included) as one space."""
    return " ".join(text.split())


def _first_number(text: str) -> float:
    found = NUMBER.search(text)
    assert found, f"{text!r} quotes no number"
    return float(found.group().replace(",", ""))


FIGURES = load_figures()


def test_figures_file_loads_and_names_existing_notebooks():
    assert FIGURES
    for fig in FIGURES.values():
        assert (ROOT / "notebooks" / f"{fig.notebook}.ipynb").exists(), fig.key
        assert fig.low <= fig.high, fig.key


@pytest.mark.parametrize("key", sorted(FIGURES))
def test_quoted_text_lies_in_its_interval_and_is_quoted_where_measured(key):
    fig = FIGURES[key]
    assert fig.low <= _first_number(fig.text) <= fig.high, f"{key}: {fig.text!r} is outside {fig.low}-{fig.high}"
    cells = _cells(fig.notebook)
    if key.startswith("time_"):  # run times: measured by scripts/build_docs.py, quoted in the first cell
        assert fig.text in _flat("".join(cells[0]["source"])), f"{key}: {fig.text!r} not in {fig.notebook}'s first cell"
        return
    calling = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and f'expect("{key}"' in "".join(c["source"])]
    assert len(calling) == 1, f"{key}: {len(calling)} cells of {fig.notebook} call expect() for it"
    following = next(c for c in cells[calling[0] + 1:] if c["cell_type"] == "markdown")
    assert fig.text in _flat("".join(following["source"])), (
        f"{key}: the cell after the check in {fig.notebook} does not quote {fig.text!r}")
    for name in fig.cited_in:
        assert fig.text in _flat((ROOT / name).read_text()), f"{key}: {name} does not quote {fig.text!r}"


def test_every_expect_call_names_a_figure():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            for key in re.findall(r'expect\("([^"]+)"', "".join(cell["source"])):
                assert key in FIGURES, f"{path.name} checks {key!r}, which docs/figures.yaml lacks"


def test_committed_measurements_lie_in_the_intervals():
    measured = json.loads((ROOT / "docs" / "figures-measured.json").read_text())
    for key, fig in FIGURES.items():
        assert key in measured, f"{key} was not measured by the last `make docs`"
        m = measured[key]
        assert m["compared"], f"{key} was measured with other parameters: {m['differs']}"
        assert m["value"] is not None and fig.holds(m["value"]), (
            f"{key}: measured {m['value']}, the text says {fig.text!r} ({fig.low}-{fig.high})")


def _code(cells: list[dict]) -> list[str]:
    return ["".join(c["source"]) for c in cells
            if c["cell_type"] == "code" and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_executed_copy_runs_the_current_code(path):
    copy = ROOT / "docs" / "notebooks" / path.name
    assert copy.exists(), f"{copy} is missing: run `make docs`"
    executed = json.loads(copy.read_text())["cells"]
    assert _code(executed) == _code(json.loads(path.read_text())["cells"]), (
        f"{copy} ran other code than {path}: run `make docs` (or `make docs NOTEBOOKS={path.stem}`)")
    assert not any(o.get("output_type") == "error" for c in executed for o in c.get("outputs", []))


def test_expect_compares_only_at_the_stated_parameters(capsys, monkeypatch, tmp_path):
    fig = next(f for f in FIGURES.values() if f.when)
    param, stated = next(iter(fig.when.items()))
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("EVALKIT_FIGURES_LOG", str(log))
    inside = expect(fig.key, fig.low, **{param: stated})
    assert inside.compared and inside.holds
    outside = expect(fig.key, fig.high + abs(fig.high) + 1, **{param: stated})
    assert outside.holds is False and "OUTSIDE" in capsys.readouterr().out
    other = expect(fig.key, fig.low, **{param: "something else"})
    assert not other.compared and other.holds is None and "not compared" in other.sentence()
    assert [json.loads(line)["compared"] for line in log.read_text().splitlines()] == [True, True, False]
    with pytest.raises(ConfigError, match="Unknown figure"):
        expect("no_such_figure", 1.0)




@pytest.mark.parametrize("key", sorted(FIGURES))
def test_the_quoted_number_is_the_committed_measurement_rounded(key):
    """Words and measurement agree: within 10 % (0.03 for a share or an accuracy).

    A p-value is on the same side of 0.05, a quoted range ("2-3 times") holds the value; an interval wide enough
    for any run does not make the words right.
    """
    fig = FIGURES[key]
    measured = json.loads((ROOT / "docs" / "figures-measured.json").read_text())[key]["value"]
    quoted = _first_number(fig.text)
    span = re.search(r"(\d[\d.,]*)\s*-\s*(\d[\d.,]*)", fig.text)
    if "p=" in fig.text:
        assert (quoted < 0.05) == (measured < 0.05), f"{key}: {fig.text!r}, measured p={measured:.3g}"
    elif span:
        low, high = (float(g.replace(",", "")) for g in span.groups())
        assert low <= measured <= high, f"{key}: {fig.text!r}, measured {measured:.4g}"
    else:
        share = 0 <= quoted <= 1 and 0 <= measured <= 1 and not key.startswith("time_")
        tolerance = 0.03 if share else 0.1 * abs(measured)
        assert abs(quoted - measured) <= tolerance, f"{key}: the text says {fig.text!r}, measured {measured:.4g}"


def _wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of ``successes`` out of ``n``."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return max(0.0, centre - half), min(1.0, centre + half)


SHARES = {key: fig for key, fig in FIGURES.items()
          if re.search(r"\bn=(\d+)", fig.what) and 0 <= fig.low <= fig.high <= 1 and "p=" not in fig.text}


def test_every_share_states_how_many_items_it_counts():
    # a share or an accuracy (a figure between 0 and 1 that is no p-value) says n= in its description, so that its
    # interval can be checked against what n items allow
    shares = [key for key, fig in FIGURES.items() if 0 <= fig.low <= fig.high <= 1 and "p=" not in fig.text
              and not key.startswith(("time_", "gates_", "control_gates", "completion_tokens", "ladder_"))]
    assert sorted(shares) == sorted(SHARES), sorted(set(shares) - set(SHARES))


@pytest.mark.parametrize("key", sorted(SHARES))
def test_a_share_s_interval_is_no_wider_than_what_its_n_items_allow(key):
    """An interval is the measurement's own uncertainty, not a band wide enough for any run.

    For a share of n items: inside the 95 % Wilson interval of the committed measurement (0.01 for rounding).
    """
    fig = SHARES[key]
    n = int(re.search(r"\bn=(\d+)", fig.what).group(1))
    value = json.loads((ROOT / "docs" / "figures-measured.json").read_text())[key]["value"]
    low, high = _wilson(round(value * n), n)
    assert fig.low >= low - 0.01 and fig.high <= high + 0.01, (
        f"{key}: interval {fig.low}-{fig.high} is wider than the 95 % interval of {round(value * n)}/{n} "
        f"({low:.2f}-{high:.2f})")
