"""The typed result of layer 3: :class:`AccuracyResult` (per task and per category, per question), and the saved runs.

:data:`METRICS` lists the scorecard metrics; :func:`accuracy_runs`, :func:`latest_by_model` and
:func:`side_by_side` read results saved under runs/.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pandas as pd
from pydantic import Field

from evalkit.accuracy.lmeval import read_samples, sample_view
from evalkit.errors import ConfigError
from evalkit.result import FRACTION, LayerResult, Metric, MetricSpec, ToolRun, catalog_metric, kind_of
from evalkit.runs import scan_results

F = FRACTION
METRICS: dict[str, MetricSpec] = {
    "mmlu_pro_mc_accuracy": MetricSpec(F, "higher",
                                       "MMLU-Pro multiple choice (loglikelihood), all evaluated categories"),
    "mmlu_pro_mc_above_chance": MetricSpec(F, "higher",
                                           "MMLU-Pro accuracy minus chance (mean of 1/options over the questions)"),
    "mmlu_pro_mc_dropped": MetricSpec("questions", "lower",
                                      "MMLU-Pro questions dropped because they do not fit the model's context"),
    "mmlu_pro_cot_accuracy": MetricSpec(F, "higher",
                                        "MMLU-Pro chain of thought on a chat endpoint (no extractable answer = wrong)"),
    "mmlu_pro_cot_above_chance": MetricSpec(F, "higher", "MMLU-Pro CoT accuracy minus chance"),
    "mmlu_pro_cot_dropped": MetricSpec("questions", "lower", "MMLU-Pro CoT questions dropped"),
    "faq_mc_accuracy": MetricSpec(F, "higher", "company FAQ, multiple choice (loglikelihood)"),
    "faq_mc_above_chance": MetricSpec(F, "higher", "company FAQ accuracy minus chance"),
    "faq_mc_dropped": MetricSpec("questions", "lower", "FAQ questions dropped (context)"),
    "faq_mc_held_out_accuracy": MetricSpec(F, "higher",
                                           "FAQ rows the ladder models never trained on (the honest score)"),
    "faq_mc_trained_accuracy": MetricSpec(F, "higher",
                                          "FAQ rows the ladder models trained on (contaminated on purpose)"),
    "faq_open_accuracy": MetricSpec(F, "higher",
                                    "company FAQ, open answers, normalized exact match on a chat endpoint"),
    "faq_open_dropped": MetricSpec("questions", "lower", "FAQ open questions dropped (context)"),
}


#: the original workshop's reading of MMLU-Pro scores: (lowest accuracy of the band, what it means)
BANDS = ((0.0, "random guessing (about 10 % on 10 options)"), (0.2, "above guessing, below small models"),
         (0.3, "small or untuned model (30-50 %)"), (0.5, "capable model (50-60 %)"),
         (0.6, "strong model (60-70 % and more)"))


def band_of(accuracy: float) -> str:
    """The workshop band an MMLU-Pro accuracy falls in (see :data:`BANDS`)."""
    return [label for low, label in BANDS if accuracy >= low][-1]


class AccuracyResult(LayerResult):
    """What one :func:`evaluate` call measured; the raw lm-eval files stay in ``run_dir``.

    ``rows`` holds one entry per task lm-eval reported (groups and their subtasks), read from results_*.json;
    ``prepared`` what evalkit did before lm-eval (questions considered, dropped for the context, few-shot).
    """

    layer: ClassVar[str] = "accuracy"

    catalog: ClassVar[dict[str, MetricSpec]] = METRICS

    tasks: list[str] = Field(default_factory=list)
    rows: list[dict] = Field(default_factory=list)
    prepared: dict[str, list[dict]] = Field(default_factory=dict)
    results_files: dict[str, str] = Field(default_factory=dict)  # endpoint -> results_*.json (relative)
    samples_files: dict[str, str] = Field(default_factory=dict)  # leaf task -> samples_*.jsonl (relative)
    commands: list[list[str]] = Field(default_factory=list)
    durations_s: dict[str, float] = Field(default_factory=dict)  # endpoint -> seconds lm-eval ran
    max_len: int | None = None

    # --- tables
    def frame(self) -> pd.DataFrame:
        """One row per requested task: accuracy, stderr, n, chance, accuracy minus chance, dropped questions."""
        columns = ["task", "kind", "endpoint", "metric", "accuracy", "stderr", "n", "chance", "above_chance",
                   "considered", "dropped", "over_context", "note"]
        rows = []
        for task in self.tasks:
            row = self._row(task)
            if row is None:
                prepared = self.prepared.get(task, [])
                rows.append({"task": task, "n": 0, "considered": sum(p.get("considered") or 0 for p in prepared),
                             "dropped": sum(len(p.get("dropped_ids") or []) for p in prepared),
                             "note": "no question fits the context: nothing ran"})
                continue
            rows.append({k: row.get(k) for k in columns})
        return pd.DataFrame(rows, columns=columns)

    def _row(self, task: str) -> dict | None:
        return next((r for r in self.rows if r["task"] == task), None)

    def by_category(self, task: str | None = None) -> pd.DataFrame:
        """Accuracy per subject, with stderr, n, chance and questions dropped for the context.

        A group gives one row per subtask (MMLU-Pro: one per category, also those that lost every question to
        the context filter); a single task gives its questions grouped by their ``category`` field (the FAQ's
        topics).
        """
        columns = ["task", "category", "accuracy", "stderr", "n", "chance", "dropped"]
        names = [task] if task else self.tasks
        out = []
        for name in names:
            subs = [r for r in self.rows if r.get("group") == name]
            if subs:
                out += [{"task": name, "category": r["category"], **{k: r.get(k) for k in columns[2:]}} for r in subs]
                for p in self.prepared.get(name, []):  # subtasks that lost every question to the context filter
                    if p.get("kept") == 0:
                        out.append({"task": name, "category": _alias(p["task"], name), "accuracy": None,
                                    "stderr": None, "n": 0, "chance": None, "dropped": len(p["dropped_ids"])})
                continue
            if name not in self.samples_files:
                continue
            frame = self.samples(name)
            if frame.empty or not frame["category"].astype(bool).any():
                continue
            for category, part in frame.groupby("category", sort=True):
                acc, se = _mean_stderr(part["correct"].astype(float).tolist())
                out.append({"task": name, "category": category, "accuracy": acc, "stderr": se, "n": len(part),
                            "chance": mean_or_none(part["chance"].dropna().tolist()), "dropped": None})
        return pd.DataFrame(out, columns=columns)

    def samples(self, task: str | None = None) -> pd.DataFrame:
        """Every question lm-eval asked: question, choices, gold, the model's pick, correct?, raw response.

        Args:
            task: a requested task or group, or a leaf task; None for all.
        """
        columns = ["task", "category", "doc_id", "item", "question", "choices", "gold", "pick", "correct", "chance",
                   "response"]
        if task is None:
            leaves = list(self.samples_files)
        elif task in self.samples_files:
            leaves = [task]
        else:
            leaves = [r["task"] for r in self.rows if r.get("group") == task]
            if not leaves and task not in self.tasks:
                raise ConfigError(f"This result has no task {task!r}.",
                                  fix=f"use one of: {', '.join([*self.tasks, *self.samples_files])}.")
        rows = []
        for leaf in (t for t in leaves if t in self.samples_files):
            row = next((r for r in self.rows if r["task"] == leaf), {})
            for sample in read_samples(self.path / self.samples_files[leaf]):
                rows.append({"task": leaf, **sample_view(sample, row.get("kind", ""), row.get("metric"),
                                                         row.get("filter"), row.get("category", ""))})
        return pd.DataFrame(rows, columns=columns)

    def bands(self, task: str = "mmlu_pro_mc") -> pd.DataFrame:
        """Where ``task``'s score (overall and per category) sits: chance, the workshop's bands, Llama-2-7B.

        The bands are the rule of thumb of the original workshop for MMLU-Pro: about 10 % is random guessing on
        10 options, 30-50 % a small or untuned model, 60-70 % and more a strong one (:data:`BANDS`). A score is
        read against its own chance level first (MMLU-Pro mixes 4- to 10-option questions), then placed in a
        band, unless it rests on too few questions to tell (the band then says so instead of naming one);
        Llama-2-7B's accuracy over the whole test split of each category is the shipped reference.
        Columns: category, accuracy, stderr, n, chance, vs_chance, band, llama2_7b.
        """
        from evalkit.accuracy.reference import llama2_reference

        verdicts = self.vs_chance().set_index("task")["verdict"].to_dict()
        overall = self.df[self.df["task"] == task]
        rows = [{"category": "all", **overall.iloc[0].to_dict()}] if len(overall) else []
        rows += self.by_category(task).to_dict("records")
        llama2 = llama2_reference()
        reference = llama2.set_index("category")["accuracy"].to_dict()
        if len(llama2):
            reference["all"] = float((llama2["accuracy"] * llama2["n"]).sum() / llama2["n"].sum())
        out = []
        for row in rows:
            name = task if row["category"] == "all" else f"{task} / {row['category']}"
            acc, verdict = row.get("accuracy"), verdicts.get(name, "")
            band = band_of(acc) if _num(acc) else "nothing evaluated"
            if verdict.startswith("too few"):
                band = f"not read: {verdict}"
            out.append({"category": row["category"], "accuracy": acc, "stderr": row.get("stderr"), "n": row.get("n"),
                        "chance": row.get("chance"), "vs_chance": verdict, "band": band,
                        "llama2_7b": reference.get(row["category"])})
        return pd.DataFrame(out, columns=["category", "accuracy", "stderr", "n", "chance", "vs_chance", "band",
                                          "llama2_7b"])

    def vs_chance(self) -> pd.DataFrame:
        """Is each task (and category) above chance, or consistent with guessing?

        z = (accuracy - chance) / sqrt(chance (1 - chance) / n): a one-sample test against a model that guesses
        uniformly among the options; |z| > 2 happens by luck about 5 % of the time.
        Columns: task, accuracy, stderr, n, chance, above_chance, z, verdict.
        """
        rows = []
        frame = pd.concat([self.df, self.by_category().rename(columns={"task": "group"})], ignore_index=True)
        for row in frame.to_dict("records"):
            name = row["task"] if isinstance(row.get("task"), str) else f"{row['group']} / {row['category']}"
            acc, chance, n = row.get("accuracy"), row.get("chance"), row.get("n")
            z, verdict = None, "no chance level (open answers)"
            if not _num(acc) or not n:
                verdict = "nothing evaluated"
            elif _num(chance):
                z = (acc - chance) / math.sqrt(chance * (1 - chance) / n) if 0 < chance < 1 else None
                if n < 10:
                    verdict = f"too few questions (n={n}) to tell"
                elif z is not None and z > 2:
                    verdict = "above chance"
                elif z is not None and z < -2:
                    verdict = "below chance (a bias toward wrong options)"
                else:
                    verdict = "consistent with guessing"
            rows.append({"task": name, "accuracy": acc, "stderr": row.get("stderr"), "n": n, "chance": chance,
                         "above_chance": acc - chance if _num(acc) and _num(chance) else None, "z": z,
                         "verdict": verdict})
        return pd.DataFrame(rows)

    def tool_runs(self) -> list[ToolRun]:
        durations = list(self.durations_s.values())
        return [ToolRun(list(command), durations[i] if i < len(durations) else None)
                for i, command in enumerate(self.commands)]

    def failures(self, task: str | None = None) -> pd.DataFrame:
        """The samples the model got wrong."""
        frame = self.samples(task)
        return frame[~frame["correct"].astype(bool)].reset_index(drop=True)

    # --- scorecard
    def metrics(self) -> list[Metric]:
        """``<task>_accuracy``, ``<task>_above_chance`` and ``<task>_dropped`` per requested task (see METRICS)."""
        out = []
        metric = functools.partial(catalog_metric, self.layer, METRICS)
        for task in self.tasks:
            row = self._row(task) or {}
            prepared = self.prepared.get(task, [])
            considered = sum(p.get("considered") or 0 for p in prepared) or None
            dropped = sum(len(p.get("dropped_ids") or []) for p in prepared)
            acc, chance, n = row.get("accuracy"), row.get("chance"), row.get("n")
            parts = []
            if chance is not None:
                parts.append(f"chance {chance:.3f}")
            if row.get("stderr") is not None:
                parts.append(f"stderr {row['stderr']:.3f}")
            parts.append(f"{dropped} dropped (context {self.max_len})" if self.max_len else "no context filter")
            limit = self.params.get("limit")
            limit = limit.get(task) if isinstance(limit, dict) else limit
            if limit:
                group = any(r.get("group") == task for r in self.rows)
                parts.append(f"limit {limit} per {'category' if group else 'task'}")
            if row.get("over_context"):
                parts.append(f"{row['over_context']} requests over the context")
            note = "; ".join(parts)
            out.append(metric(f"{task}_accuracy", acc, n, note, unit=F))
            if row.get("kind") == "multiple_choice" or (chance is not None and acc is not None):
                value = None if acc is None or chance is None else acc - chance
                out.append(metric(f"{task}_above_chance", value, n, note, unit=F))
            out.append(metric(f"{task}_dropped", dropped, considered, f"context {self.max_len} tokens",
                              unit="questions", direction="lower"))
            if task == "faq_mc" and task in self.samples_files:
                for _, half in self.faq_halves(task).iterrows():
                    out.append(metric(f"faq_mc_{half['half']}_accuracy", half["accuracy"], int(half["n"]),
                                      "split: evalkit.ladder.corpus", unit=F))
        return out

    def items(self) -> dict[str, dict[str, bool | None]]:
        """Per-question verdicts behind ``<task>_accuracy`` (and the FAQ halves), for paired tests."""
        out: dict[str, dict[str, bool | None]] = {}
        for task in self.tasks:
            try:
                samples = self.samples(task)
            except ConfigError:
                continue
            out[f"{task}_accuracy"] = {f"{r.task}:{r.doc_id}": r.correct for r in samples.itertuples()}
            if task == "faq_mc":
                for half, verdicts in _faq_halves(samples).items():
                    out[f"faq_mc_{half}_accuracy"] = verdicts
        return out

    def faq_halves(self, task: str = "faq_mc") -> pd.DataFrame:
        """Accuracy on the FAQ rows the ladder models trained on (as paraphrases) and on those they never saw.

        The split is :func:`evalkit.ladder.corpus.faq_split` (alternate paragraphs per topic). For a ladder model
        the gap between the two rows is contamination, measured; for any other model both halves are unseen.
        """
        samples = self.samples(task) if task in self.samples_files else pd.DataFrame(columns=["item", "correct"])
        rows = []
        for half, verdicts in _faq_halves(samples).items():
            judged = [bool(v) for v in verdicts.values() if v is not None]
            rows.append({"half": half, "n": len(judged), "correct": sum(judged),
                         "accuracy": sum(judged) / len(judged) if judged else None})
        return pd.DataFrame(rows, columns=["half", "n", "correct", "accuracy"])

    def summary(self) -> pd.DataFrame:
        """One row per task: accuracy, its standard error, questions asked, chance and questions dropped."""
        cols = ["task", "accuracy", "stderr", "n", "chance", "dropped", "note"]
        return self.frame().reindex(columns=cols)

    def summary_text(self) -> str:
        """One line per task, for a terminal."""
        lines = []
        for row in self.frame().to_dict("records"):
            if not row.get("n"):
                lines.append(f"{row['task']}: nothing ran ({row.get('note')})")
                continue
            se = f" ± {row['stderr']:.3f}" if _num(row.get("stderr")) else ""
            chance = f", chance {row['chance']:.3f}" if _num(row.get("chance")) else ""
            lines.append(f"{row['task']}: accuracy {row['accuracy']:.3f}{se} (n={row['n']}{chance}, "
                         f"{row['dropped']} dropped for the context)")
        return "\n".join(lines)


def _faq_halves(samples: pd.DataFrame) -> dict[str, dict[str, bool | None]]:
    """FAQ verdicts by row id, split into the half the ladder trained on and the half it never saw."""
    from evalkit.ladder.corpus.reading import faq_split

    trained = {r["id"] for r in faq_split()[0]}
    halves: dict[str, dict[str, bool | None]] = {"trained": {}, "held_out": {}}
    for row in samples.itertuples():
        halves["trained" if row.item in trained else "held_out"][str(row.item)] = row.correct
    return halves


def _alias(task: str, group: str) -> str:
    """``mmlu_pro_mc_computer_science`` in group ``mmlu_pro_mc`` -> ``computer science``."""
    prefix = group + "_"
    return (task[len(prefix):] if task.startswith(prefix) else task).replace("_", " ")


def _num(value) -> bool:
    return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))


def mean_or_none(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _mean_stderr(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and its standard error with the n-1 sample variance (lm-eval's mean_stderr)."""
    n = len(values)
    if not n:
        return None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def side_by_side(results: Mapping[str, AccuracyResult], task: str = "mmlu_pro_mc") -> pd.DataFrame:
    """Accuracy per category of several runs side by side (rows: categories; columns: one per run).

    ``results``: ``{label: result}``, e.g. :func:`latest_by_model`.
    """
    if not results:
        raise ConfigError("No results to set side by side.", fix="pass {label: result} for one or more results.")
    frames = []
    for label, result in results.items():
        frame = result.by_category(task)
        if frame.empty:
            frame = result.df[result.df["task"] == task].assign(category="all")
        frames.append(frame.set_index("category")[["accuracy", "stderr", "n"]].add_prefix(f"{label}:"))
    return pd.concat(frames, axis=1)


def accuracy_runs(root: Path | None = None) -> pd.DataFrame:
    """Saved accuracy results under ``runs/`` (newest first): folder, model, time, tasks."""
    rows = []
    for path, data in scan_results(root, deep=True):
        if kind_of(data) == AccuracyResult.result_kind():
            rows.append({"run_dir": str(path.parent), "model": data.get("model"), "created": data.get("created"),
                         "tasks": ",".join(data.get("tasks") or [])})
    frame = pd.DataFrame(rows, columns=["run_dir", "model", "created", "tasks"])
    return frame.sort_values("created", ascending=False).reset_index(drop=True)


def latest_by_model(task: str = "mmlu_pro_mc", root: Path | None = None,
                    limit: int | None = None) -> dict[str, AccuracyResult]:
    """``{model: result}``: the newest saved result that ran ``task``, one per model.

    The newest models come first (at most ``limit`` of them); pass it to :func:`side_by_side` or the plots.
    """
    out: dict[str, AccuracyResult] = {}
    for row in accuracy_runs(root).to_dict("records"):
        if limit is not None and len(out) >= limit:
            break
        if row["model"] in out or task not in row["tasks"].split(","):
            continue
        out[row["model"]] = AccuracyResult.load(row["run_dir"])
    return out
