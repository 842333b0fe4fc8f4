"""lm-eval task files: find them, check them, fit them to the model's context, and write a learner's table as a task.

This module owns what happens to task YAMLs and their data before lm-eval reads them. Local tasks live in
``data/tasks/`` (and any extra include folders); ``data_files`` paths in a task YAML are relative to that YAML.
:func:`prepare_tasks` writes the tasks of one run into ``<run_dir>/tasks/``: one self-contained YAML per task
(includes merged, data paths absolute, the few-shot count written in), the data that was evaluated, and the
**context filter**: a question whose longest request (prompt plus the longest answer option, or prompt plus the
generation budget) does not fit the served model's context is dropped and counted, never truncated. The prompt
is rendered the way lm-eval renders it (same Jinja settings, delimiters and few-shot layout), so the count is
exact for Jinja-only tasks; tasks with Python functions are passed through unfiltered and say so.
:func:`task_from_table` turns a CSV/JSONL (multiple choice, or open answers scored by exact or normalized match)
into an lm-eval task. The MMLU-Pro helpers (categories, the full test split, Llama-2-7B's reference accuracy)
read ``data/mmlu_pro/``.
"""

from __future__ import annotations

import ast
import csv
import functools
import json
import math
import os
import re
import shutil
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2
import pandas as pd
import yaml

from evalkit.errors import ConfigError, TaskFileError
from evalkit.settings import get_settings

LETTERS = "ABCDEFGHIJ"
TABLE_KINDS = ("multiple_choice", "exact", "normalized")
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
LLAMA2_SOURCE = (
    "Llama-2-7B, 5-shot chain of thought: predictions shipped by the MMLU-Pro authors "
    "(TIGER-AI-Lab/MMLU-Pro eval_results/model_outputs_Llama-2-7b-hf_5shots.zip), full test split; "
    "a prediction with no extractable letter counts as wrong"
)


def tasks_dir() -> Path:
    """The project's task folder (``data/tasks``)."""
    return get_settings().data_dir / "tasks"


def mmlu_pro_dir() -> Path:
    return get_settings().data_dir / "mmlu_pro"


# ---------------------------------------------------------------- YAML with lm-eval's !function tag


class FunctionRef(str):
    """The value of a ``!function module.name`` tag, kept so that the YAML can be written back unchanged."""


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
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
        data = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass
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


def _has_function(value) -> bool:
    if isinstance(value, FunctionRef):
        return True
    if isinstance(value, dict):
        return any(_has_function(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_function(v) for v in value)
    return False


# ---------------------------------------------------------------- the task index


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


# ---------------------------------------------------------------- rendering prompts like lm-eval


def _regex_replace(string, pattern, repl, count: int = 0):
    return re.sub(pattern, repl, string, count=count)


_ENV = jinja2.Environment(loader=jinja2.BaseLoader(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_ENV.filters["regex_replace"] = _regex_replace


@functools.lru_cache(maxsize=512)
def _template(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


def _render(text: str, doc: dict) -> str:
    return _template(text).render(**doc)


def doc_text(cfg: dict, doc: dict, spec=None) -> str:
    """The question text of one document (lm-eval's doc_to_text for a field name or a Jinja template)."""
    spec = cfg.get("doc_to_text") if spec is None else spec
    if isinstance(spec, int):
        return spec
    if spec in doc:
        return doc[spec]
    return _render(spec, doc)


def doc_choices(cfg: dict, doc: dict, spec=None) -> list[str]:
    """The answer options of one document (lm-eval's doc_to_choice)."""
    spec = cfg.get("doc_to_choice") if spec is None else spec
    if isinstance(spec, list):
        return spec
    if isinstance(spec, dict):
        return list(spec.values())
    if spec in doc:
        return doc[spec]
    return ast.literal_eval(_render(spec, doc))


def doc_target(cfg: dict, doc: dict, spec=None):
    """The gold answer of one document: an option index (multiple choice) or a string (lm-eval's doc_to_target)."""
    spec = cfg.get("doc_to_target") if spec is None else spec
    if isinstance(spec, (int, list)):
        return spec
    if spec in doc:
        return doc[spec]
    text = _render(spec, doc)
    if text.isdigit() and cfg.get("doc_to_choice") is not None:
        return int(text)
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            return text
    return text


def _fewshot_settings(cfg: dict) -> dict:
    fs = dict(cfg.get("fewshot_config") or {})
    for key in ("doc_to_text", "doc_to_choice", "doc_to_target"):
        fs.setdefault(key, cfg.get(key))
    fs.setdefault("target_delimiter", cfg.get("target_delimiter", " "))
    fs.setdefault("fewshot_delimiter", cfg.get("fewshot_delimiter", "\n\n"))
    return fs


def _fewshot_turns(cfg: dict, fewshot_docs: Sequence[dict]) -> list[tuple[str, str]]:
    fs = _fewshot_settings(cfg)
    turns = []
    for fdoc in fewshot_docs:
        question = doc_text(cfg, fdoc, fs["doc_to_text"])
        answer = doc_target(cfg, fdoc, fs["doc_to_target"])
        if isinstance(answer, int) and fs.get("doc_to_choice") is not None:
            answer = doc_choices(cfg, fdoc, fs["doc_to_choice"])[answer]
        elif isinstance(answer, list):
            answer = answer[0]
        turns.append((question, str(answer)))
    return turns


def render_context(cfg: dict, doc: dict, fewshot_docs: Sequence[dict] = ()) -> str:
    """The plain-text prompt lm-eval builds for ``doc``: description, few-shot examples, then the question."""
    fs = _fewshot_settings(cfg)
    parts = [_render(cfg["description"], doc) if cfg.get("description") else ""]
    for question, answer in _fewshot_turns(cfg, fewshot_docs):
        parts.append(question + fs["target_delimiter"] + answer + fs["fewshot_delimiter"])
    parts.append(doc_text(cfg, doc))
    return "".join(parts)


def render_messages(cfg: dict, doc: dict, fewshot_docs: Sequence[dict] = ()) -> list[dict]:
    """The chat messages lm-eval sends with ``--apply_chat_template`` (few-shot examples as turns)."""
    messages = []
    if cfg.get("description"):
        messages.append({"role": "system", "content": _render(cfg["description"], doc)})
    for question, answer in _fewshot_turns(cfg, fewshot_docs):
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": doc_text(cfg, doc)})
    return messages


def requests_for(cfg: dict, doc: dict, fewshot_docs: Sequence[dict] = ()) -> tuple[str, list[str]]:
    """The context and the continuations lm-eval scores for a multiple-choice document."""
    context = render_context(cfg, doc, fewshot_docs)
    delimiter = cfg.get("target_delimiter", " ")
    return context, [delimiter + str(choice) for choice in doc_choices(cfg, doc)]


def preview(task: str, index: int = 0, num_fewshot: int = 0, include_path=None) -> dict:
    """What the model sees for one question of a local task, on either endpoint.

    The plain prompt (completions endpoint) with the continuations lm-eval scores, and the chat messages it sends
    to a chat endpoint (the server then applies the model's chat template).

    Returns:
        ``{"task", "doc", "prompt", "continuations", "messages", "target"}``.
    """
    index_ = task_index(include_path)
    leaves = resolve_tasks([task], index_)[task]
    cfg, _ = task_config(index_[leaves[0]].path)
    files = _absolute_files(cfg, index_[leaves[0]].path)
    meta = cfg.get("metadata") or {}
    if meta.get("source_table"):
        table = Path(meta["source_table"])
        docs = _table_rows(table if table.is_absolute() else (index_[leaves[0]].path.parent / table).resolve(),
                           meta.get("kind", "multiple_choice"))
    else:
        docs = read_jsonl(files[cfg.get("test_split", "test")])
    fewshot_split = cfg.get("fewshot_split")
    shots = read_jsonl(files[fewshot_split])[:num_fewshot] if num_fewshot and fewshot_split in files else []
    doc = docs[index]
    out = {"task": leaves[0], "doc": doc, "prompt": render_context(cfg, doc, shots),
           "messages": render_messages(cfg, doc, shots), "target": doc_target(cfg, doc), "continuations": None}
    if cfg.get("output_type") == "multiple_choice":
        out["continuations"] = requests_for(cfg, doc, shots)[1]
    return out


# ---------------------------------------------------------------- counting tokens


class TokenCounter:
    """Counts tokens the way lm-eval and the server do: the model's own tokenizer, no special tokens added.

    Uses the ``tokenizer.json`` of the served model's tokenizer folder (or of the local Hugging Face cache) with
    the ``tokenizers`` library; without one it asks the server's ``/tokenize`` endpoint (vLLM has one). Chat
    prompts are counted by the server when it can (it applies the chat template), else estimated with a margin.
    """

    CHAT_MARGIN = 8  # tokens per message for role markers when the server cannot count a chat prompt

    def __init__(self, tokenizer: str | None = None, root_url: str | None = None, model: str | None = None):
        self.model = model
        self.root_url = root_url.rstrip("/") if root_url else None
        self.local = _load_tokenizer(tokenizer) if tokenizer else None
        self._remote_ok: bool | None = None  # probed on first use, not here: a counter may never need the server

    @property
    def available(self) -> bool:
        return self.local is not None or self.remote_ok

    @property
    def remote_ok(self) -> bool:
        if self._remote_ok is None:
            self._remote_ok = False
            if self.root_url and self.model:
                try:
                    self._tokenize({"prompt": "a"})
                    self._remote_ok = True
                except (OSError, ValueError, KeyError):
                    pass
        return self._remote_ok

    def _tokenize(self, payload: dict) -> int:
        data = json.dumps({"model": self.model, **payload}).encode()
        request = urllib.request.Request(f"{self.root_url}/tokenize", data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(json.loads(response.read().decode())["count"])

    def count(self, text: str) -> int:
        if self.local is not None:
            return len(self.local.encode(text, add_special_tokens=False).ids)
        return self._tokenize({"prompt": text, "add_special_tokens": False})

    def count_chat(self, messages: list[dict]) -> int:
        if self.remote_ok:
            try:
                return self._tokenize({"messages": messages, "add_generation_prompt": True})
            except (OSError, ValueError, KeyError):
                pass
        return sum(self.count(m["content"]) + self.CHAT_MARGIN for m in messages) + self.CHAT_MARGIN


def _load_tokenizer(name: str):
    try:
        from tokenizers import Tokenizer
    except ImportError:  # pragma: no cover - tokenizers comes with transformers
        return None
    path = Path(name) / "tokenizer.json"
    if not path.exists():
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover
            return None
        cached = try_to_load_from_cache(name, "tokenizer.json")
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        return Tokenizer.from_file(str(path))
    except Exception:  # noqa: BLE001 - a tokenizer file the library cannot read: fall back to the server
        return None


# ---------------------------------------------------------------- data files


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


# ---------------------------------------------------------------- preparing the tasks of one run


@dataclass
class PreparedTask:
    """What evalkit did to one task before lm-eval ran it."""

    task: str
    group: str | None
    output_type: str
    yaml: str
    considered: int | None = None  # questions looked at (the first `limit` of the data file)
    kept: int | None = None  # questions that fit the context and went to lm-eval
    dropped_ids: list = field(default_factory=list)  # ids (or row numbers) of questions that did not fit
    longest_tokens: int | None = None  # longest request among the kept questions
    budget_tokens: int | None = None  # the most tokens one request may have
    num_fewshot: int = 0
    filtered: bool = True
    note: str = ""

    @property
    def dropped(self) -> int:
        return len(self.dropped_ids)


def _doc_id(doc: dict, number: int):
    for key in ("question_id", "id", "doc_id"):
        if key in doc and doc[key] not in (None, ""):
            return doc[key]
    return number


def _filterable(cfg: dict) -> str | None:
    """None if evalkit can render this task's prompts itself, else the reason it cannot."""
    if cfg.get("dataset_path") != "json":
        return f"dataset_path is {cfg.get('dataset_path')!r}, not a local json file"
    if _has_function(cfg):
        return "it uses Python functions (!function)"
    if cfg.get("process_docs") or cfg.get("gen_prefix") or cfg.get("use_prompt"):
        return "it uses process_docs, gen_prefix or a promptsource prompt"
    files = (cfg.get("dataset_kwargs") or {}).get("data_files")
    if not isinstance(files, dict) or cfg.get("test_split", "test") not in files:
        return "its data_files do not name the test split"
    if cfg.get("output_type", "generate_until") not in ("multiple_choice", "generate_until"):
        return f"output_type {cfg.get('output_type')} is not multiple_choice or generate_until"
    return None


def _absolute_files(cfg: dict, yaml_path: Path) -> dict:
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


def prepare_tasks(
    names: Sequence[str],
    dest: Path,
    *,
    counter: TokenCounter | None,
    max_len: int | None,
    limit: int | dict[str, int | None] | None = None,
    num_fewshot: int = 0,
    max_gen_toks: int | None = None,
    chat: bool = False,
    include_path=None,
    mmlu_pro: str = "subset",
) -> tuple[dict[str, list[PreparedTask]], list[str]]:
    """Write the tasks ``names`` (tasks or groups) into ``dest`` for one lm-eval run, filtered to the context.

    Args:
        names: task or group names from :func:`task_index`.
        dest: folder lm-eval gets as ``--include_path`` (``<run_dir>/tasks``).
        counter: counts tokens; None skips the context filter (noted per task).
        max_len: the served model's context (``max_model_len``); None skips the filter.
        limit: look at the first ``limit`` questions of each task only; a dict gives a limit per requested name
            (a group's limit applies to each of its subtasks; names not in the dict: no limit).
        num_fewshot: few-shot examples per prompt (tasks without a few-shot split run 0-shot, noted).
        max_gen_toks: generation budget of generative tasks (default: the task's own).
        chat: generative tasks go to a chat endpoint (count the chat-templated prompt).
        include_path: extra task folders.
        mmlu_pro: ``"subset"`` (20 per category, committed) or ``"full"`` (the whole test split, from the zip).

    Returns:
        ``{name: [PreparedTask per leaf]}`` and the names to pass to ``--tasks`` (groups whose every subtask
        still has questions, otherwise the leaves that do).
    """
    index = task_index(include_path)
    plan = resolve_tasks(names, index)
    dest.mkdir(parents=True, exist_ok=True)
    prepared: dict[str, list[PreparedTask]] = {}
    done: dict[str, PreparedTask] = {}
    for name, leaves in plan.items():
        group = name if index[name].kind == "group" else None
        items = []
        task_limit = limit.get(name) if isinstance(limit, dict) else limit
        for leaf in leaves:
            if leaf not in done:
                done[leaf] = _prepare_leaf(index[leaf], dest, counter=counter, max_len=max_len, limit=task_limit,
                                           num_fewshot=num_fewshot, max_gen_toks=max_gen_toks, chat=chat,
                                           mmlu_pro=mmlu_pro)
            item = PreparedTask(**{**asdict(done[leaf]), "group": group})
            items.append(item)
        prepared[name] = items
    run_names = []
    for name, items in prepared.items():
        live = [p.task for p in items if p.kept != 0]
        if index[name].kind == "group":
            if live:  # the group over the subtasks that still have questions (the others are counted as dropped)
                write_yaml(dest / f"{name}.yaml", {**index[name].raw, "task": live})
                run_names.append(name)
        elif live:
            run_names.append(name)
    return prepared, list(dict.fromkeys(run_names))


def _prepare_leaf(entry: TaskEntry, dest: Path, *, counter, max_len, limit, num_fewshot, max_gen_toks, chat,
                  mmlu_pro) -> PreparedTask:
    cfg, folders = task_config(entry.path)
    output_type = cfg.get("output_type", "generate_until")
    files = _absolute_files(cfg, entry.path)
    folder = dest / entry.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if _has_function(cfg):  # lm-eval resolves !function module.name next to the YAML
        for source in folders:
            for py in source.glob("*.py"):
                shutil.copy2(py, folder / py.name)
    out = PreparedTask(task=entry.name, group=None, output_type=output_type, yaml=str(folder / f"{entry.name}.yaml"))

    test_split = cfg.get("test_split", "test")
    fewshot_split = cfg.get("fewshot_split")
    has_fewshot = bool(fewshot_split) and fewshot_split in files
    if num_fewshot and not has_fewshot:
        out.note = f"no few-shot split, ran 0-shot (asked for {num_fewshot}). "
        cfg["num_fewshot"] = 0
    else:
        cfg["num_fewshot"] = num_fewshot
    out.num_fewshot = cfg["num_fewshot"]
    if max_gen_toks is not None and output_type == "generate_until":
        cfg["generation_kwargs"] = {**(cfg.get("generation_kwargs") or {}), "max_gen_toks": int(max_gen_toks)}

    reason = _filterable(cfg)
    if reason is None and num_fewshot and has_fewshot and (cfg.get("fewshot_config") or {}).get("sampler") != "first_n":
        reason = "its few-shot sampler is random (evalkit can predict first_n only)"
    if reason is None and (counter is None or not counter.available or not max_len):
        reason = "no tokenizer or context length to count with"

    if reason is not None:
        out.filtered = False
        out.note += f"not filtered to the context: {reason}; lm-eval may truncate long prompts (left side)."
        if files:
            cfg["dataset_kwargs"] = {**(cfg.get("dataset_kwargs") or {}), "data_files": _as_str(files)}
        write_yaml(Path(out.yaml), cfg)
        return out

    # --- the data: regenerate table tasks from their table, swap in the full MMLU-Pro split if asked
    meta = cfg.get("metadata") or {}
    if meta.get("source_table"):
        table = Path(meta["source_table"])
        table = table if table.is_absolute() else (entry.path.parent / table).resolve()
        docs = _table_rows(table, meta.get("kind", "multiple_choice"))
    elif mmlu_pro == "full" and meta.get("mmlu_pro_category"):
        fewshot_ids = {d.get("question_id") for d in read_jsonl(files[fewshot_split])} if has_fewshot else set()
        docs = [d for d in mmlu_pro_full() if d["category"] == meta["mmlu_pro_category"]
                and d["question_id"] not in fewshot_ids]
    else:
        docs = read_jsonl(files[test_split])
    k = cfg["num_fewshot"]
    fewshot_docs = read_jsonl(files[fewshot_split])[:k] if has_fewshot and k else []
    if k and len(fewshot_docs) < k:
        raise ConfigError(f"{entry.name} has {len(fewshot_docs)} few-shot examples, fewer than the {k} asked.",
                          fix=f"use num_fewshot <= {len(fewshot_docs)}.")

    considered = docs[:limit] if limit else docs
    gen_budget = int((cfg.get("generation_kwargs") or {}).get("max_gen_toks", 256))
    budget = max_len - 1  # lm-eval keeps one position for the token it asks for
    kept, longest = [], 0
    for number, doc in enumerate(considered):
        try:
            if output_type == "multiple_choice":
                context, continuations = requests_for(cfg, doc, fewshot_docs)
                need = max(counter.count(context + c) for c in continuations)
            elif chat:
                need = counter.count_chat(render_messages(cfg, doc, fewshot_docs)) + gen_budget
            else:
                need = counter.count(render_context(cfg, doc, fewshot_docs)) + gen_budget
        except (jinja2.TemplateError, ValueError, SyntaxError, KeyError, IndexError, TypeError) as exc:
            raise TaskFileError(
                f"{entry.path}: rendering question {number + 1} of {entry.name} failed: {type(exc).__name__}: {exc}.",
                fix="check the task's doc_to_text / doc_to_choice / doc_to_target against the data's field names.",
            ) from None
        if need <= budget:
            kept.append(doc)
            longest = max(longest, need)
        else:
            out.dropped_ids.append(_doc_id(doc, number))
    out.considered, out.kept, out.longest_tokens, out.budget_tokens = len(considered), len(kept), longest, budget
    if out.dropped:
        what = "prompt + longest option" if output_type == "multiple_choice" else f"prompt + {gen_budget} new tokens"
        out.note += f"{out.dropped} of {len(considered)} questions dropped: {what} > {budget} tokens. "

    data = {}
    write_jsonl(folder / f"{test_split}.jsonl", kept)
    data[test_split] = str(folder / f"{test_split}.jsonl")
    if has_fewshot:
        write_jsonl(folder / f"{fewshot_split}.jsonl", read_jsonl(files[fewshot_split]))
        data[fewshot_split] = str(folder / f"{fewshot_split}.jsonl")
    cfg["dataset_kwargs"] = {**(cfg.get("dataset_kwargs") or {}), "data_files": data}
    if meta.get("source_table"):
        cfg["metadata"] = {k: v for k, v in meta.items() if k != "source_table"} | {"source_table": str(table)}
    write_yaml(Path(out.yaml), cfg)
    return out


def _as_str(files: dict) -> dict:
    return {k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in files.items()}


# ---------------------------------------------------------------- tables -> tasks


def _split_choices(cell: str) -> list[str]:
    text = cell.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
            if isinstance(value, list):
                return [str(v).strip() for v in value]
        except json.JSONDecodeError:
            pass
    return [part.strip() for part in text.split("|")]


def read_table(path: Path | str) -> list[tuple[str, dict]]:
    """Rows of a CSV or JSONL table as ``(where, row)`` pairs; ``where`` names the row for error messages."""
    path = Path(path)
    if not path.exists():
        raise TaskFileError(f"Table {path} does not exist.", fix="check the path (relative paths start at the "
                            "current folder; notebooks run in notebooks/).")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise TaskFileError(f"{path} is empty: the first line must name the columns.",
                                    fix="add a header line such as: question,choices,answer")
            rows = []
            for number, row in enumerate(reader, start=1):
                if None in row:
                    raise TaskFileError(
                        f"{path}, row {number} (line {reader.line_num}) has more cells than the header has columns.",
                        fix="quote cells that contain commas (\"like, this\"), or separate options with | .",
                    )
                rows.append((f"{path.name}, row {number} (line {reader.line_num})",
                             {k.strip(): (v if v is not None else "") for k, v in row.items()}))
            return rows
    if suffix in (".jsonl", ".json"):
        return [(f"{path.name}, row {n}", row) for n, row in enumerate(read_jsonl(path), start=1)]
    raise TaskFileError(f"{path}: a table must be .csv or .jsonl, not {suffix or 'a file without extension'}.",
                        fix="save the table as CSV (comma-separated, header line) or JSON Lines.")


def _cell(where: str, row: dict, column: str, required: bool = True) -> str:
    value = row.get(column)
    if isinstance(value, str):
        value = value.strip()
    if required and (value is None or value == "" or value == []):
        raise TaskFileError(f"{where}, column '{column}' is empty.", fix=f"fill in the {column} of that row.")
    return value if value is not None else ""


def _table_rows(path: Path, kind: str) -> list[dict]:
    """Check a table and turn it into the documents of a task (see :func:`task_from_table`)."""
    if kind not in TABLE_KINDS:
        raise ConfigError(f"kind={kind!r} is not one of {', '.join(TABLE_KINDS)}.",
                          fix="use multiple_choice (question/choices/answer) or exact/normalized (question/answer).")
    rows = read_table(path)
    if not rows:
        raise TaskFileError(f"{path} has a header but no rows.", fix="add at least one question.")
    columns = set().union(*(r.keys() for _, r in rows))
    choice_columns = sorted((c for c in columns if re.fullmatch(r"choice_?\d+", c)),
                            key=lambda c: int(re.sub(r"\D", "", c)))
    needed = ["question", "answer"] + (["choices"] if kind == "multiple_choice" and not choice_columns else [])
    for column in needed:
        if column not in columns:
            raise TaskFileError(
                f"{path} has no '{column}' column (it has: {', '.join(sorted(columns))}).",
                fix="a multiple_choice table needs question, choices (options separated by |) and answer; "
                "an exact/normalized table needs question and answer.",
            )
    docs, seen = [], set()
    for number, (where, row) in enumerate(rows, start=1):
        question = _cell(where, row, "question")
        answer = row.get("answer")
        answer = answer.strip() if isinstance(answer, str) else answer
        if answer is None or answer == "":
            raise TaskFileError(f"{where}, column 'answer' is empty.", fix="fill in the answer of that row.")
        doc = {
            "id": str(row.get("id") or number),
            "category": str(row.get("category") or row.get("topic") or ""),
            "context": str(_cell(where, row, "context", required=False)),
            "question": str(question),
        }
        if doc["id"] in seen:
            raise TaskFileError(f"{where}, column 'id': {doc['id']} is used by an earlier row too.",
                                fix="give every row its own id.")
        seen.add(doc["id"])
        if kind == "multiple_choice":
            if choice_columns:
                choices = [str(row.get(c)).strip() for c in choice_columns if str(row.get(c) or "").strip()]
                column = "/".join(choice_columns)
            else:
                raw = row.get("choices")
                choices = [str(c).strip() for c in raw] if isinstance(raw, list) else _split_choices(str(raw or ""))
                column = "choices"
            choices = [c for c in choices if c]
            if len(choices) < 2:
                raise TaskFileError(f"{where}, column '{column}' has {len(choices)} option(s); a multiple-choice "
                                    "question needs at least 2.", fix="separate the options with | .")
            if len(set(choices)) != len(choices):
                raise TaskFileError(f"{where}, column '{column}' lists the same option twice.",
                                    fix="make every option different, or the answer is ambiguous.")
            doc["choices"] = choices
            doc["answer_index"] = _answer_index(where, answer, choices)
            doc["answer"] = choices[doc["answer_index"]]
        else:
            doc["answer"] = str(answer)
        docs.append(doc)
    return docs


def _answer_index(where: str, answer, choices: list[str]) -> int:
    n = len(choices)
    letters = LETTERS[:n] if n <= len(LETTERS) else ""
    text = str(answer).strip()
    if isinstance(answer, int) or re.fullmatch(r"-?\d+", text):
        index = int(text)
        if not 0 <= index < n:
            raise TaskFileError(
                f"{where}, column 'answer': index {index} is outside the {n} choices (valid: 0 to {n - 1}"
                + (f", or a letter {letters[0]}-{letters[-1]}" if letters else "") + ").",
                fix="answer indexes start at 0; or write the letter or the exact text of the right option.",
            )
        return index
    if text in choices:
        return choices.index(text)
    if len(text) == 1 and text.upper() in LETTERS:
        index = LETTERS.index(text.upper())
        if index >= n:
            raise TaskFileError(
                f"{where}, column 'answer': letter {text.upper()} is outside the {n} choices "
                f"({letters[0]}-{letters[-1]}).",
                fix="use a letter of an existing option, its 0-based index, or its exact text.",
            )
        return index
    raise TaskFileError(
        f"{where}, column 'answer': {text!r} is not one of the choices ({' | '.join(choices)}), nor a letter or index.",
        fix="copy the right option's text exactly, or write its letter (A = first) or 0-based index.",
    )


TABLE_PROMPT = "{% if context %}{{ context }}\n{% endif %}Question: {{ question }}\nAnswer:"


def table_task_config(name: str, kind: str, data_file: str, source_table: str, description: str | None) -> dict:
    """The lm-eval task config for a table (see :func:`task_from_table`)."""
    cfg: dict = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data_file}},
        "test_split": "test",
    }
    if description:
        cfg["description"] = description.rstrip("\n") + "\n\n"
    cfg["doc_to_text"] = TABLE_PROMPT
    if kind == "multiple_choice":
        cfg |= {
            "output_type": "multiple_choice",
            "doc_to_choice": "choices",
            "doc_to_target": "answer_index",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
        }
    else:
        match = {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}
        if kind == "normalized":
            match |= {"ignore_case": True, "ignore_punctuation": True,
                      "regexes_to_ignore": [r"\b(a|an|the)\b", r"\s+"]}
        cfg |= {
            "output_type": "generate_until",
            "doc_to_target": "answer",
            "generation_kwargs": {"until": ["\n", "Question:"], "max_gen_toks": 32, "do_sample": False,
                                  "temperature": 0.0},
            "filter_list": [{"name": "strip", "filter": [{"function": "remove_whitespace"},
                                                          {"function": "take_first"}]}],
            "metric_list": [match],
        }
    cfg["metadata"] = {"version": 1.0, "kind": kind, "source_table": source_table}
    return cfg


def task_from_table(path: Path | str, *, name: str, kind: str = "multiple_choice", out_dir: Path | str,
                    description: str | None = None) -> Path:
    """Write an lm-eval task (YAML + JSONL) from a CSV or JSONL table; return the YAML's path.

    Columns: ``question`` and ``answer`` always; ``choices`` for multiple choice (options separated by ``|`` in a
    CSV cell, a list in JSONL; or columns ``choice_1``, ``choice_2``, ...), where ``answer`` is the exact text of
    the right option, its letter (A = first) or its 0-based index. Optional: ``id``, ``context`` (text shown
    before the question, e.g. the policy paragraph it is about), ``category`` or ``topic`` (per-category scores).

    Args:
        path: the table (.csv or .jsonl).
        name: the task name (letters, digits, underscores; starts with a letter).
        kind: ``"multiple_choice"`` (scored by loglikelihood of each option), ``"exact"`` (generated answer equals
            the answer exactly, after stripping spaces) or ``"normalized"`` (equal after lower-casing and removing
            punctuation, articles and spaces).
        out_dir: folder for ``<name>.yaml`` and ``<name>.jsonl``; pass it to ``evaluate(include_path=...)``.
        description: a line shown before every question (e.g. "Questions about Harbor Bean Coffee Co.").

    Returns:
        The YAML's path. Its data path is relative to the YAML; it records the table, and evalkit rereads the
        table at every run, so edits to the table count without calling this again.

    Raises:
        TaskFileError: the table is missing or malformed; the message names the row and column.
        ConfigError: a bad name or kind.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(f"Task name {name!r} is not allowed.",
                          fix="use letters, digits and underscores, starting with a letter (e.g. faq_mc).")
    path = Path(path)
    docs = _table_rows(path, kind)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / f"{name}.jsonl", docs)
    try:
        source = Path(os.path.relpath(path.resolve(), out.resolve()))
    except ValueError:  # different drives on Windows
        source = path.resolve()
    cfg = table_task_config(name, kind, f"{name}.jsonl", str(source), description)
    yaml_path = out / f"{name}.yaml"
    header = (f"# Written by evalkit.accuracy.task_from_table from {path.name} ({kind}). evalkit rereads the table\n"
              "# at every run; data_files is relative to this file.\n")
    write_yaml(yaml_path, cfg)
    yaml_path.write_text(header + yaml_path.read_text())
    return yaml_path


# ---------------------------------------------------------------- MMLU-Pro


def mmlu_pro_categories() -> list[str]:
    """The 14 MMLU-Pro categories, in the order of the task group."""
    return sorted(p.stem.replace("_", " ") for p in (tasks_dir() / "mmlu_pro" / "test").glob("*.jsonl"))


@functools.lru_cache(maxsize=1)
def _llama2_rows() -> tuple[dict, ...]:
    archive = mmlu_pro_dir() / "model_outputs_Llama-2-7b-hf_5shots.zip"
    if not archive.exists():
        raise TaskFileError(f"{archive} does not exist.", fix="restore data/mmlu_pro from git.")
    with zipfile.ZipFile(archive) as zf:
        return tuple(json.loads(zf.read(zf.namelist()[0])))


def mmlu_pro_full() -> list[dict]:
    """The full MMLU-Pro test split (12,032 questions) with the 8 dataset fields, read from the archive."""
    keys = ("question_id", "question", "options", "answer", "answer_index", "cot_content", "category", "src")
    return [{k: r[k] for k in keys} for r in _llama2_rows()]


def llama2_reference(question_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Llama-2-7B's 5-shot accuracy per MMLU-Pro category, from the predictions in the MMLU-Pro archive.

    Args:
        question_ids: score only these questions (e.g. the ones a run evaluated); default the full test split.

    Returns:
        One row per category: ``n``, ``accuracy`` (a prediction without an extractable letter counts as wrong),
        ``stderr``, ``unanswered`` (share without an extractable letter), ``accuracy_if_guessing`` (unanswered
        ones credited with 1/number of options, the expected score of a guess), ``chance`` and ``source``.
    """
    wanted = None if question_ids is None else {int(q) for q in question_ids}
    stats: dict[str, list[float]] = {}
    for row in _llama2_rows():
        if wanted is not None and int(row["question_id"]) not in wanted:
            continue
        s = stats.setdefault(row["category"], [0, 0, 0, 0.0, 0.0])
        s[0] += 1
        s[1] += row["pred"] == row["answer"]
        s[2] += row["pred"] is None
        s[3] += 1 / len(row["options"]) if row["pred"] is None else 0.0
        s[4] += 1 / len(row["options"])
    rows = []
    for category, (n, right, none, guess, chance) in sorted(stats.items()):
        acc = right / n
        rows.append({"category": category, "n": n, "accuracy": acc,
                     "stderr": math.sqrt(acc * (1 - acc) / (n - 1)) if n > 1 else None,
                     "unanswered": none / n, "accuracy_if_guessing": (right + guess) / n, "chance": chance / n,
                     "source": LLAMA2_SOURCE})
    return pd.DataFrame(rows)
