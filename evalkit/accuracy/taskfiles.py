"""lm-eval task files: find them, read and write their YAML (with lm-eval's ``!function`` tag), resolve names.

Local tasks live in ``data/tasks/`` (and any extra include folders); ``data_files`` paths in a task YAML are
relative to that YAML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from evalkit.errors import ConfigError, TaskFileError
from evalkit.settings import get_settings

if TYPE_CHECKING:  # pandas loads when a function needs it: the command line starts quickly
    import pandas as pd

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def tasks_dir() -> Path:
    """The project's task folder (``data/tasks``)."""
    return get_settings().data_dir / "tasks"


def mmlu_pro_dir() -> Path:
    return get_settings().data_dir / "mmlu_pro"


class FunctionRef(str):
    """The value of a ``!function module.name`` tag, kept so that the YAML can be written back unchanged."""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser where PyYAML has it: 8x faster
    pass


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    pass


_Loader.add_constructor("!function", lambda loader, node: FunctionRef(loader.construct_scalar(node)))
_Dumper.add_representer(FunctionRef, lambda dumper, data: dumper.represent_scalar("!function", str(data)))


def _str(dumper, data: str):
    """Strings with line breaks as one double-quoted line (escaped newlines), the way task authors write them."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"' if "\n" in data else None)


_Dumper.add_representer(str, _str)


def read_yaml(path: Path) -> dict:
    """Read one task YAML; a syntax error names the file, line and column."""
    path = Path(path)
    if not path.exists():
        raise TaskFileError(f"Task file {path} does not exist.", fix="check the path (include: lines are relative "
                            "to the file that contains them).")
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - a safe loader's subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise TaskFileError(
            f"Task file {path} is not valid YAML ({where}): {exc.problem}.",
            fix="fix the YAML at that position (quote strings that contain ': ' or start with '{').",
        ) from None
    except yaml.YAMLError as exc:
        raise TaskFileError(f"Task file {path} is not valid YAML: {exc}.", fix="fix the YAML syntax.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TaskFileError(f"Task file {path} must hold a mapping (key: value lines), not a {type(data).__name__}.",
                            fix="see data/tasks/README.md for the keys of a task.")
    return data


def write_yaml(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000))


def has_function(value) -> bool:
    if isinstance(value, FunctionRef):
        return True
    if isinstance(value, dict):
        return any(has_function(v) for v in value.values())
    if isinstance(value, list):
        return any(has_function(v) for v in value)
    return False


@dataclass
class TaskEntry:
    """A task or group YAML found in an include folder."""

    name: str
    path: Path
    kind: str  # "task" or "group"
    raw: dict

    @property
    def subtasks(self) -> list[str]:
        items = self.raw.get("task", []) if self.kind == "group" else []
        return [t if isinstance(t, str) else t.get("task", "") for t in items]


def _include_dirs(include_path: Path | str | Sequence[Path | str] | None) -> list[Path]:
    if include_path is None:
        extra = []
    elif isinstance(include_path, (str, Path)):
        extra = [Path(include_path)]
    else:
        extra = [Path(p) for p in include_path]
    dirs = []
    for folder in [tasks_dir(), *extra]:
        if not folder.is_dir():
            raise TaskFileError(f"Task folder {folder} does not exist.",
                                fix="pass an existing folder that holds task YAML files.")
        if folder.resolve() not in [d.resolve() for d in dirs]:
            dirs.append(folder)
    return dirs


def task_index(include_path=None) -> dict[str, TaskEntry]:
    """Every task and group defined in ``data/tasks`` and the extra include folders, by name."""
    index: dict[str, TaskEntry] = {}
    for folder in _include_dirs(include_path):
        for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
            raw = read_yaml(path)
            if isinstance(raw.get("group"), str) and isinstance(raw.get("task"), list):
                name, kind = raw["group"], "group"
            elif isinstance(raw.get("task"), str):
                name, kind = raw["task"], "task"
            else:
                continue  # a template used through include:
            if name in index and index[name].path.resolve() != path.resolve():
                raise TaskFileError(f"Task name {name!r} is defined twice: {index[name].path} and {path}.",
                                    fix="rename one of them (the task: or group: key).")
            index[name] = TaskEntry(name=name, path=path, kind=kind, raw=raw)
    return index


def task_config(path: Path, _seen: tuple = ()) -> tuple[dict, list[Path]]:
    """A task YAML with its ``include:`` chain merged (the including file wins), and the folders of that chain."""
    path = Path(path)
    if path.resolve() in _seen:
        raise TaskFileError(f"{path} includes itself (through {' -> '.join(str(p) for p in _seen)}).",
                            fix="remove the circular include: line.")
    raw = dict(read_yaml(path))
    folders = [path.parent]
    include = raw.pop("include", None)
    if include is None:
        return raw, folders
    base_path = (path.parent / include) if not Path(include).is_absolute() else Path(include)
    if not base_path.exists():
        raise TaskFileError(f"{path}: include: {include} names a file that does not exist ({base_path}).",
                            fix="correct the include: path (it is relative to the including file).")
    base, base_folders = task_config(base_path, (*_seen, path.resolve()))
    base.update(raw)
    return base, folders + [f for f in base_folders if f not in folders]


def list_tasks(include_path=None) -> pd.DataFrame:
    """The tasks evalkit can run offline: name, kind (task/group), output type, subtasks, file."""
    import pandas as pd

    rows = []
    for name, entry in sorted(task_index(include_path).items()):
        if entry.kind == "group":
            rows.append({"task": name, "kind": "group", "output_type": "", "subtasks": len(entry.subtasks),
                         "file": str(entry.path)})
        else:
            cfg, _ = task_config(entry.path)
            rows.append({"task": name, "kind": "task", "output_type": cfg.get("output_type", "generate_until"),
                         "subtasks": 0, "file": str(entry.path)})
    return pd.DataFrame(rows)


def resolve_tasks(names: Iterable[str], index: dict[str, TaskEntry]) -> dict[str, list[str]]:
    """Map each requested name to its leaf tasks (a task maps to itself; a group to its subtasks, recursively)."""
    out: dict[str, list[str]] = {}

    def leaves(name: str, trail: tuple) -> list[str]:
        if name not in index:
            known = ", ".join(sorted(n for n, e in index.items() if not n.startswith("_"))) or "(none)"
            where = f" (listed in group {trail[-1]})" if trail else ""
            raise ConfigError(
                f"Unknown task {name!r}{where}. evalkit runs lm-eval offline, so only local tasks can run: {known}.",
                fix="pick one of those, write one with evalkit.accuracy.task_from_table(...), or pass the folder "
                "with your YAML as include_path=.",
            )
        entry = index[name]
        if entry.kind == "task":
            return [name]
        if name in trail:
            raise TaskFileError(f"Group {name} contains itself.", fix=f"edit {entry.path}.")
        return [leaf for sub in entry.subtasks for leaf in leaves(sub, (*trail, name))]

    for name in names:
        out[name] = leaves(name, ())
    return out


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON Lines file (or of a JSON file holding a list); an error names the line."""
    path = Path(path)
    if not path.exists():
        raise TaskFileError(f"Data file {path} does not exist.", fix="check the path, or restore it from git.")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskFileError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}.",
                                fix="fix the JSON at that line.") from None
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TaskFileError(f"{path}, line {number} is not valid JSON: {exc.msg} (column {exc.colno}).",
                                    fix="each line of a .jsonl file must be one JSON object.") from None
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise TaskFileError(f"{path}, row {number} is a {type(row).__name__}, not a JSON object.",
                                fix="each row must be an object with named fields.")
    return rows


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def absolute_files(cfg: dict, yaml_path: Path) -> dict:
    """Resolve ``dataset_kwargs.data_files`` relative to the task's YAML; a missing file names the YAML and key."""
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    files = kwargs.get("data_files")
    if files is None:
        return {}
    if isinstance(files, (str, list)):
        files = {"train": files}
    resolved = {}
    for split, value in files.items():
        values = value if isinstance(value, list) else [value]
        paths = []
        for item in values:
            path = Path(item)
            if not path.is_absolute():
                path = (yaml_path.parent / path).resolve()
            if not path.exists():
                raise TaskFileError(
                    f"{yaml_path}: dataset_kwargs.data_files.{split} names {item}, which does not exist ({path}).",
                    fix="correct the path; it is relative to the task's YAML file.",
                )
            paths.append(path)
        resolved[split] = paths if isinstance(value, list) else paths[0]
    return resolved
