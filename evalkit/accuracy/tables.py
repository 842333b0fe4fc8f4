"""A learner's table as an lm-eval task.

:func:`task_from_table` turns a CSV/JSONL (multiple choice, or open answers scored by exact or normalized match)
into a task YAML and its data.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from evalkit.accuracy.render import LETTERS
from evalkit.accuracy.taskfiles import NAME_RE, read_jsonl, write_jsonl, write_yaml
from evalkit.errors import ConfigError, TaskFileError

TABLE_KINDS = ("multiple_choice", "exact", "normalized")


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


def _check_utf8(path: Path) -> None:
    """Refuse a table that is not UTF-8 (a byte-order mark is fine), naming the line of the first bad byte."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise TaskFileError(
            f"{path} is not UTF-8 text: line {line} has the byte 0x{data[exc.start]:02x}, which UTF-8 does not allow "
            "there (the file may be Latin-1 or Windows-1252).",
            fix="save the table as UTF-8 (in a spreadsheet: 'CSV UTF-8'; or `iconv -f latin1 -t utf-8`).",
        ) from None


def read_table(path: Path | str) -> list[tuple[str, dict]]:
    """Rows of a CSV or JSONL table as ``(where, row)`` pairs; ``where`` names the row for error messages."""
    path = Path(path)
    if not path.exists():
        raise TaskFileError(f"Table {path} does not exist.", fix="check the path (relative paths start at the "
                            "current folder; notebooks run in notebooks/).")
    suffix = path.suffix.lower()
    _check_utf8(path)
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


def table_rows(path: Path, kind: str) -> list[dict]:
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
    docs = table_rows(path, kind)
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
