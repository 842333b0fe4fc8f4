"""Accuracy figures: per category with error bars, chance and a reference model; per task; run against run.

They draw :class:`evalkit.accuracy.AccuracyResult` tables and never run a tool. Error bars are one standard error
(lm-eval's ``acc_stderr``); chance is the mean of 1/number of options over the questions that were evaluated,
drawn per category (MMLU-Pro has 4 to 10 options per question) and overall.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd

OURS, REFERENCE, CHANCE = "#1f77b4", "#bbbbbb", "#d62728"


def _axes(ax, height: float = 5.0, width: float = 8.0):
    if ax is None:
        _, ax = plt.subplots(figsize=(width, height))
    return ax


def _err(values: pd.Series) -> list[float]:
    return [float(v) if pd.notna(v) else 0.0 for v in values]


def by_category(result, task: str = "mmlu_pro_mc", reference: pd.DataFrame | str | None = "llama2",
                ax=None, title: str | None = None):
    """Horizontal bars of accuracy per category with ±1 stderr, chance per category and a reference model.

    Args:
        result: an AccuracyResult that ran ``task``.
        task: a group (MMLU-Pro: one bar per category) or a task with a category column (the FAQ's topics).
        reference: ``"llama2"`` (Llama-2-7B's 5-shot accuracy per MMLU-Pro category, from the MMLU-Pro
            authors' predictions; MMLU-Pro tasks only), a DataFrame with ``category`` and ``accuracy``, or None.
        ax: draw into these axes.
        title: figure title (default: task, model, n).
    """
    frame = result.by_category(task)
    ax = _axes(ax, height=max(3.0, 0.38 * max(len(frame), 1) + 1.5))
    if frame.empty:
        ax.text(0.5, 0.5, f"no per-category results for {task}", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    frame = frame.sort_values("category", ascending=False).reset_index(drop=True)
    ys = range(len(frame))
    ref = None
    if isinstance(reference, str) and reference == "llama2" and task.startswith("mmlu_pro"):
        from evalkit.accuracy.reference import llama2_reference

        ref = llama2_reference()
    elif isinstance(reference, pd.DataFrame):
        ref = reference
    height = 0.38 if ref is not None else 0.7
    offset = height / 2 if ref is not None else 0.0
    ax.barh([y + offset for y in ys], frame["accuracy"], height=height, xerr=_err(frame["stderr"]), color=OURS,
            capsize=3, label=f"{result.model} (±1 stderr)")
    if ref is not None:
        values = frame["category"].map(ref.set_index("category")["accuracy"])
        label = "Llama-2-7B, 5-shot CoT (MMLU-Pro authors' predictions)" if reference == "llama2" else "reference"
        ax.barh([y - offset for y in ys], values, height=height, color=REFERENCE, edgecolor="#666666", label=label)
    drew = False
    for y, chance in zip(ys, frame["chance"], strict=True):
        if pd.notna(chance):
            ax.plot([chance, chance], [y - 0.45, y + 0.45], color=CHANCE, lw=2,
                    label=None if drew else "chance of this category's questions")
            drew = True
    overall = result.df.set_index("task")["chance"].get(task)
    if overall is not None and pd.notna(overall):
        ax.axvline(overall, color=CHANCE, ls="--", lw=1, label=f"chance, mean 1/options = {overall:.3f}")
    labels = []
    for category, n, dropped in zip(frame["category"], frame["n"], frame["dropped"], strict=True):
        extra = f", {int(dropped)} dropped" if pd.notna(dropped) and dropped else ""
        labels.append(f"{category}  (n={int(n)}{extra})" if pd.notna(n) else category)
    ax.set_yticks(list(ys), labels)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    n_total = int(frame["n"].fillna(0).sum())
    ax.set_title(title or f"{task} on {result.model}: accuracy by category ({n_total} questions)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return ax


def tasks(result, ax=None, title: str | None = None):
    """One bar per requested task with ±1 stderr and its chance level."""
    frame = result.df.dropna(subset=["accuracy"]).reset_index(drop=True)
    ax = _axes(ax, height=max(2.5, 0.6 * max(len(frame), 1) + 1.2))
    if frame.empty:
        ax.text(0.5, 0.5, "no task ran", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    ys = range(len(frame))
    ax.barh(list(ys), frame["accuracy"], xerr=_err(frame["stderr"]), color=OURS, capsize=3, height=0.6,
            label=f"{result.model} (±1 stderr)")
    drew = False
    for y, chance in zip(ys, frame["chance"], strict=True):
        if pd.notna(chance):
            ax.plot([chance, chance], [y - 0.4, y + 0.4], color=CHANCE, lw=2, label=None if drew else "chance")
            drew = True
    ax.set_yticks(list(ys), [f"{t}  (n={int(n)})" for t, n in zip(frame["task"], frame["n"], strict=True)])
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(title or f"accuracy per task on {result.model}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return ax


def side_by_side(results: Mapping, task: str = "mmlu_pro_mc", ax=None, title: str | None = None):
    """Accuracy per category of two or more runs side by side (``{label: result}``), ±1 stderr, chance dashed."""
    labels = list(results)
    frames = [r.by_category(task).set_index("category") for r in results.values()]
    categories = sorted(set().union(*(f.index for f in frames)), reverse=True)
    ax = _axes(ax, height=max(3.0, 0.45 * max(len(categories), 1) + 1.5))
    width = 0.8 / max(len(frames), 1)
    for i, (label, frame) in enumerate(zip(labels, frames, strict=True)):
        acc = frame["accuracy"].reindex(categories)
        err = frame["stderr"].reindex(categories)
        ys = [y + (i - (len(frames) - 1) / 2) * width for y in range(len(categories))]
        ax.barh(ys, acc.fillna(0), height=width, xerr=_err(err), capsize=2, label=label)
    chances = [r.df.set_index("task")["chance"].get(task) for r in results.values()]
    chances = [c for c in chances if c is not None and pd.notna(c)]
    if chances:
        ax.axvline(sum(chances) / len(chances), color=CHANCE, ls="--", lw=1, label="chance (mean 1/options)")
    ax.set_yticks(range(len(categories)), categories)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(title or f"{task}: " + " vs ".join(labels))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return ax


def report_sections(result) -> list:
    """The report's section for an accuracy result: MMLU-Pro by category, every task, the table, the bands."""
    mmlu = [task for task in result.df["task"] if task.startswith("mmlu_pro")]
    figures = [by_category(result, task) for task in mmlu]
    return figures + [tasks(result), result.df, *(result.bands(task).round(3) for task in mmlu)]
