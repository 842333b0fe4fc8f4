"""Convert notebooks to and from the "percent" script format for editing and review.

    python scripts/nbpercent.py to-py notebooks/01_performance.ipynb      # writes notebooks/01_performance.py
    python scripts/nbpercent.py to-ipynb notebooks/01_performance.py      # writes the .ipynb, without outputs

Cells start with ``# %%`` (code) or ``# %% [markdown]`` (markdown lines prefixed with ``# ``); tags follow as
``# %% tags=["parameters"]``. The .ipynb is what the project keeps; the .py is a scratch copy (git-ignored).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def to_py(path: Path) -> Path:
    nb = nbformat.read(path, as_version=4)
    out = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        head = "# %%" + (" [markdown]" if cell.cell_type == "markdown" else "")
        if tags:
            head += " tags=" + json.dumps(tags)
        out.append(head)
        if cell.cell_type == "markdown":
            out += [("# " + line).rstrip() for line in cell.source.splitlines()]
        else:
            out += cell.source.splitlines()
        out.append("")
    target = path.with_suffix(".py")
    target.write_text("\n".join(out))
    return target


def to_ipynb(path: Path) -> Path:
    cells, current = [], None
    for line in path.read_text().splitlines():
        match = HEADER.match(line)
        if match:
            current = {"md": bool(match["md"]), "tags": json.loads(match["tags"]) if match["tags"] else [], "lines": []}
            cells.append(current)
        elif current is not None:
            current["lines"].append(line)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, cell in enumerate(cells):
        lines = cell["lines"]
        while lines and not lines[-1].strip():
            lines.pop()
        if cell["md"]:
            source = "\n".join(re.sub(r"^# ?", "", line) for line in lines)
            new = nbformat.v4.new_markdown_cell(source)
        else:
            new = nbformat.v4.new_code_cell("\n".join(lines))
        if cell["tags"]:
            new.metadata["tags"] = cell["tags"]
        new["id"] = f"{path.stem[:2]}-{index:02d}"  # stable ids keep diffs small
        nb.cells.append(new)
    target = path.with_suffix(".ipynb")
    nbformat.write(nb, target)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("to-py", "to-ipynb"):
        sys.exit(__doc__)
    print({"to-py": to_py, "to-ipynb": to_ipynb}[sys.argv[1]](Path(sys.argv[2])))
