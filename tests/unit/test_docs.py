"""workshop.md's troubleshooting table lists every error evalkit raises (regenerate: scripts/list_errors.py)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_workshop_error_table_is_current():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "list_errors.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def _notebooks():
    import json

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        yield path.stem, json.loads(path.read_text())["cells"]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end > 0 else None]


def test_workshop_agenda_lists_the_notebooks_with_their_titles():
    import re

    agenda = _section((ROOT / "workshop.md").read_text(), "## Agenda")
    rows = re.findall(r"^\| [^|]+ \| `(\d\d_\w+)` \| [^|]+ \| ([^|]+) \|$", agenda, re.MULTILINE)
    titles = {name: "".join(cells[0]["source"]).splitlines()[0].split(" · ", 1)[1] for name, cells in _notebooks()}
    assert [name for name, _ in rows] == list(titles), "the agenda's notebooks differ from notebooks/"
    for name, title in rows:
        assert title.strip() == titles[name], f"agenda: {name} is titled {titles[name]!r} in the notebook"


def test_workshop_exercise_list_equals_the_notebooks_exercises():
    import re

    pattern = r"\*\*Exercise (\d+): ([^*]+?)\*\*"
    in_notebooks = [(name[:2], number, title) for name, cells in _notebooks() for c in cells
                    if c["cell_type"] == "markdown" for number, title in re.findall(pattern, "".join(c["source"]))]
    listed = re.findall(r"^- \*\*(\d\d) · Exercise (\d+): ([^*]+?)\*\*",
                        _section((ROOT / "workshop.md").read_text(), "## Exercises and answers"), re.MULTILINE)
    assert in_notebooks and listed == in_notebooks
    for name, cells in _notebooks():  # every notebook has its exercises, and they are numbered 1, 2, ...
        numbers = [int(n) for n, t in re.findall(pattern, "".join("".join(c["source"]) for c in cells))]
        assert numbers == list(range(1, len(numbers) + 1)) and numbers, name


def test_every_notebook_links_the_glossary_and_closes_with_its_three_sections():
    text = (ROOT / "workshop.md").read_text()
    assert "## Glossary" in text
    for name, cells in _notebooks():
        assert "(../workshop.md#glossary)" in "".join(cells[0]["source"]), f"{name}: no glossary link in its first cell"
        markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        positions = [markdown.find(h) for h in ("## On your own", "## In practice", "## Further reading")]
        assert -1 not in positions and positions == sorted(positions), f"{name}: closing sections missing or unordered"
