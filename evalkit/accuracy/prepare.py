"""The tasks of one run, fitted to the model's context, in ``<run_dir>/tasks/``.

:func:`prepare_tasks` writes one self-contained YAML per task (includes merged, data paths absolute, the few-shot
count written in), the data that was evaluated, and the **context filter**: a question whose longest request
(prompt plus the longest answer option, or prompt plus the generation budget) does not fit the served model's
context is dropped and counted, never truncated. Tasks with Python functions are passed through unfiltered and
say so.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2

from evalkit.accuracy.reference import mmlu_pro_full
from evalkit.accuracy.render import doc_target, render_context, render_messages, requests_for
from evalkit.accuracy.tables import table_rows
from evalkit.accuracy.taskfiles import (
    TaskEntry,
    absolute_files,
    has_function,
    read_jsonl,
    resolve_tasks,
    task_config,
    task_index,
    write_jsonl,
    write_yaml,
)
from evalkit.errors import ConfigError, TaskFileError


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
    files = absolute_files(cfg, index_[leaves[0]].path)
    meta = cfg.get("metadata") or {}
    if meta.get("source_table"):
        table = Path(meta["source_table"])
        docs = table_rows(table if table.is_absolute() else (index_[leaves[0]].path.parent / table).resolve(),
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
        from evalkit.serve.client import http_json

        return int(http_json(f"{self.root_url}/tokenize", {"model": self.model, **payload}, timeout=30)["count"])

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
    if has_function(cfg):
        return "it uses Python functions (!function)"
    if cfg.get("process_docs") or cfg.get("gen_prefix") or cfg.get("use_prompt"):
        return "it uses process_docs, gen_prefix or a promptsource prompt"
    files = (cfg.get("dataset_kwargs") or {}).get("data_files")
    if not isinstance(files, dict) or cfg.get("test_split", "test") not in files:
        return "its data_files do not name the test split"
    if cfg.get("output_type", "generate_until") not in ("multiple_choice", "generate_until"):
        return f"output_type {cfg.get('output_type')} is not multiple_choice or generate_until"
    return None


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
    files = absolute_files(cfg, entry.path)
    folder = dest / entry.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if has_function(cfg):  # lm-eval resolves !function module.name next to the YAML
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
        docs = table_rows(table, meta.get("kind", "multiple_choice"))
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
