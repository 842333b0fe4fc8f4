"""MMLU-Pro helpers: its categories, the full test split, and Llama-2-7B's reference accuracy (``data/mmlu_pro/``)."""

from __future__ import annotations

import functools
import json
import math
import zipfile
from collections.abc import Iterable

import pandas as pd

from evalkit.accuracy.taskfiles import mmlu_pro_dir, tasks_dir
from evalkit.errors import TaskFileError

LLAMA2_SOURCE = (
    "Llama-2-7B, 5-shot chain of thought: predictions shipped by the MMLU-Pro authors "
    "(TIGER-AI-Lab/MMLU-Pro eval_results/model_outputs_Llama-2-7b-hf_5shots.zip), full test split; "
    "a prediction with no extractable letter counts as wrong"
)


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
