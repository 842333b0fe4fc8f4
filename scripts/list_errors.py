"""Write the troubleshooting table of workshop.md: every error evalkit raises, with its message and its fix.

    .venv/bin/python scripts/list_errors.py          # rewrite the table between the markers in workshop.md
    .venv/bin/python scripts/list_errors.py --check  # exit 1 if the table is out of date (a unit test runs this)

Messages are read from the source (``raise SomeError("message", fix="...")``); parts computed at run time show
as ``…``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKSHOP = ROOT / "workshop.md"
BEGIN, END = "<!-- errors:begin (scripts/list_errors.py) -->", "<!-- errors:end -->"
ERRORS = {"EvalkitError", "ConfigError", "UnknownModelError", "ContextLengthError", "TaskFileError",
          "PortInUseError", "ServerUnreachableError", "ServerStartError", "ServerDiedError", "ToolMissingError",
          "ToolError", "RunLockedError", "RunNotFoundError", "ResultFileError", "PlanError"}


def _text(node: ast.AST | None) -> str:
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    if isinstance(node, ast.IfExp):
        return _text(node.body) + " / " + _text(node.orelse)
    return "…"


def errors() -> list[tuple[str, str, str, str]]:
    """(module, error class, message, fix) for every evalkit error raised, or returned to be raised.

    A helper may build the error its caller raises (:func:`evalkit.proc.failure` does): those count too.
    """
    rows = []
    for path in sorted((ROOT / "evalkit").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            call = node.exc if isinstance(node, ast.Raise) else node.value if isinstance(node, ast.Return) else None
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in ERRORS:
                continue
            message = _text(call.args[0]) if call.args else ""
            fix = _text(next((k.value for k in call.keywords if k.arg == "fix"), None))
            rows.append((str(path.relative_to(ROOT)), name, message, fix))
    return rows


def table() -> str:
    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    lines = [BEGIN, "", "| error | message (… = filled in at run time) | fix | where |", "|---|---|---|---|"]
    seen = set()
    for module, name, message, fix in sorted(errors(), key=lambda r: (r[1], r[0], r[2])):
        key = (name, message, fix)
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"| {name} | {cell(message)} | {cell(fix) or '(see message)'} | `{module}` |")
    return "\n".join(lines + ["", END])


def main(check: bool) -> int:
    text = WORKSHOP.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + table() + text[end:]
    if check:
        if new != text:
            print("workshop.md's error table is out of date: run scripts/list_errors.py", file=sys.stderr)
            return 1
        return 0
    WORKSHOP.write_text(new)
    print(f"{len(errors())} raise sites written to {WORKSHOP}")
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv))
