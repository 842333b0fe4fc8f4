"""Layer 3, accuracy: lm-evaluation-harness against the served model, by task, by subject and on your own data.

:func:`evaluate` runs ``lm-eval run`` (pinned) as a subprocess against ``srv.base_url``, offline: multiple-choice
tasks through ``local-completions`` (each option scored by its loglikelihood, which needs a completions endpoint
with echo + logprobs), generative tasks through ``local-chat-completions`` with the model's chat template. Tasks
come from ``data/tasks`` (MMLU-Pro by category, the company FAQ) and any folder given as ``include_path``;
:mod:`evalkit.tasks` prepares them in ``<run_dir>/tasks`` (context filter, few-shot, limit). lm-eval's own files
stay in the run folder: ``lmeval/<endpoint>/**/results_*.json`` and ``samples_*.jsonl``, its request cache
(``cache/``: a rerun with the same settings reuses the answers), ``lm-eval.log``. :class:`AccuracyResult` reads
them back: a table per task, per category, the samples for browsing what went wrong, and scorecard metrics.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import time
import urllib.error
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import pandas as pd
from pydantic import Field

from evalkit import proc
from evalkit.envreport import env_report
from evalkit.errors import ConfigError, ServerDiedError, ToolError, ToolMissingError
from evalkit.runs import FRACTION, LayerResult, Metric, catalog_metric, kind_of, new_run_dir, run_lock, scan_results
from evalkit.settings import get_settings
from evalkit.tasks import (
    PreparedTask,
    TokenCounter,
    list_tasks,
    llama2_reference,
    mmlu_pro_categories,
    prepare_tasks,
    preview,
    resolve_tasks,
    task_config,
    task_from_table,
    task_index,
)

__all__ = [
    "AccuracyResult",
    "accuracy_runs",
    "compare_runs",
    "evaluate",
    "latest_by_model",
    "list_tasks",
    "llama2_reference",
    "mmlu_pro_categories",
    "preview",
    "task_from_table",
]

# evalkit's request settings for lm-eval; benchmarks/bench_accuracy.py measures them against lm-eval's defaults
# (num_concurrent=1, batch_size=1): 2.3x the requests/s (14.8 vs 6.5) on the same MMLU-Pro questions, on the
# 2-core shared CPU server with the embedded model. Batching helps most: vLLM scores 16 prompts per request.
DEFAULT_MAX_RETRIES = 3
LMEVAL_DEFAULTS = {"concurrency": 1, "batch_size": 1}
DEFAULT_TASKS = ("mmlu_pro_mc",)
LOG_FILE = "lm-eval.log"
APIS = ("auto", "completions", "chat")

F = FRACTION
METRICS: dict[str, dict] = {
    "mmlu_pro_mc_accuracy": {"unit": F, "direction": "higher",
                             "doc": "MMLU-Pro multiple choice (loglikelihood), all evaluated categories"},
    "mmlu_pro_mc_above_chance": {"unit": F, "direction": "higher",
                                 "doc": "MMLU-Pro accuracy minus chance (mean of 1/options over the questions)"},
    "mmlu_pro_mc_dropped": {"unit": "questions", "direction": "lower",
                            "doc": "MMLU-Pro questions dropped because they do not fit the model's context"},
    "mmlu_pro_cot_accuracy": {"unit": F, "direction": "higher",
                              "doc": "MMLU-Pro chain of thought on a chat endpoint (no extractable answer = wrong)"},
    "mmlu_pro_cot_above_chance": {"unit": F, "direction": "higher", "doc": "MMLU-Pro CoT accuracy minus chance"},
    "mmlu_pro_cot_dropped": {"unit": "questions", "direction": "lower", "doc": "MMLU-Pro CoT questions dropped"},
    "faq_mc_accuracy": {"unit": F, "direction": "higher", "doc": "company FAQ, multiple choice (loglikelihood)"},
    "faq_mc_above_chance": {"unit": F, "direction": "higher", "doc": "company FAQ accuracy minus chance"},
    "faq_mc_dropped": {"unit": "questions", "direction": "lower", "doc": "FAQ questions dropped (context)"},
    "faq_mc_held_out_accuracy": {"unit": F, "direction": "higher",
                                 "doc": "FAQ rows the ladder models never trained on (the honest score)"},
    "faq_mc_trained_accuracy": {"unit": F, "direction": "higher",
                                "doc": "FAQ rows the ladder models trained on (contaminated on purpose)"},
    "faq_open_accuracy": {"unit": F, "direction": "higher",
                          "doc": "company FAQ, open answers, normalized exact match on a chat endpoint"},
    "faq_open_dropped": {"unit": "questions", "direction": "lower", "doc": "FAQ open questions dropped (context)"},
}


# ---------------------------------------------------------------- the result


class AccuracyResult(LayerResult):
    """What one :func:`evaluate` call measured; the raw lm-eval files stay in ``run_dir``.

    ``rows`` holds one entry per task lm-eval reported (groups and their subtasks), read from results_*.json;
    ``prepared`` what evalkit did before lm-eval (questions considered, dropped for the context, few-shot).
    """

    layer: ClassVar[str] = "accuracy"

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
                            "chance": _mean(part["chance"].dropna().tolist()), "dropped": None})
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

    def mistakes(self, task: str | None = None) -> pd.DataFrame:
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

    def summary(self) -> str:
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
    from evalkit.ladder.corpus import faq_split

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


def _mean(values: list[float]) -> float | None:
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


# ---------------------------------------------------------------- reading lm-eval's files


def read_samples(path: Path) -> list[dict]:
    """The lines of one lm-eval ``samples_<task>_<time>.jsonl`` file."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _choices_of(sample: dict) -> tuple[list[str], list[str]]:
    """The continuations lm-eval scored (" A", " B"...) and how to show them (MMLU-Pro: "B. <option text>")."""
    args = sample.get("arguments") or {}
    conts = [a.get("arg_1", "") for a in args.values()] if isinstance(args, dict) else [a[1] for a in args]
    labels = [str(c).strip() for c in conts]
    options = (sample.get("doc") or {}).get("options")
    if isinstance(options, list) and len(options) == len(labels) and all(len(x) == 1 for x in labels):
        return labels, [f"{label}. {option}" for label, option in zip(labels, options, strict=True)]
    return labels, labels


def sample_view(sample: dict, kind: str, metric: str | None, filter_name: str | None, category: str = "") -> dict:
    """One sample as question / choices / gold / pick / correct (from the tool's own fields)."""
    doc = sample.get("doc") or {}
    question = doc.get("question") or doc.get("query") or doc.get("text") or ""
    cat = doc.get("category") or doc.get("topic") or category or ""
    metric = metric or ("acc" if kind == "multiple_choice" else "exact_match")
    correct = sample.get(metric)
    view = {"category": cat, "doc_id": sample.get("doc_id"), "item": doc.get("id"), "question": question,
            "choices": None, "gold": None,
            "pick": None, "correct": bool(correct) if correct is not None else None, "chance": None,
            "response": None}
    if kind == "multiple_choice":
        labels, shown = _choices_of(sample)
        lls = []
        for resp in sample.get("filtered_resps") or []:
            value = resp[0] if isinstance(resp, (list, tuple)) else resp
            lls.append(float(value))
        pick = max(range(len(lls)), key=lls.__getitem__) if lls else None
        try:
            gold = int(sample.get("target"))
        except (TypeError, ValueError):
            gold = None
        view |= {"choices": shown, "gold": shown[gold] if gold is not None and gold < len(shown) else None,
                 "pick": shown[pick] if pick is not None else None, "chance": 1 / len(shown) if shown else None}
    else:
        resps = sample.get("resps") or []
        raw = resps[0][0] if resps and isinstance(resps[0], list) and resps[0] else (resps[0] if resps else None)
        filtered = sample.get("filtered_resps") or []
        pick = filtered[0] if isinstance(filtered, list) and filtered else filtered
        options = doc.get("options") or doc.get("choices")
        view |= {"gold": sample.get("target"), "pick": pick, "response": raw,
                 "choices": options if isinstance(options, list) else None,
                 "chance": 1 / len(options) if isinstance(options, list) and options else None}
    return view


def _metric_key(result: dict, preferred: Sequence[str] = ("acc", "exact_match", "acc_norm")) -> tuple[str, str] | None:
    keys = [k for k in result if "," in k and "_stderr" not in k]
    for name in preferred:
        for key in keys:
            metric, filt = key.split(",", 1)
            if metric == name:
                return metric, filt
    if keys:
        metric, filt = keys[0].split(",", 1)
        return metric, filt
    return None


def _float(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def parse_results(path: Path, endpoint: str = "") -> tuple[list[dict], dict[str, str]]:
    """Rows per task (groups and leaves) from one lm-eval ``results_<time>.json``, and the samples file per leaf.

    A leaf's main metric is the first of its config's ``metric_list`` (with its first filter for generative
    tasks); a group's is its aggregate metric. Values, stderr and n are lm-eval's own numbers.
    """
    path = Path(path)
    data = json.loads(path.read_text())
    results, configs = data.get("results", {}), data.get("configs", {})
    groups = data.get("group_subtasks", {})
    parent = {leaf: group for group, leaves in groups.items() for leaf in leaves}
    stamp = path.stem[len("results_"):]
    rows = []
    for task, result in results.items():
        cfg = configs.get(task)
        preferred: list[str] = []
        if cfg:
            metrics = [m.get("metric") for m in cfg.get("metric_list") or [] if isinstance(m, dict)]
            preferred = [m for m in metrics if isinstance(m, str)]
        key = _metric_key(result, [*preferred, "acc", "exact_match"])
        if key is None:
            continue
        metric, filt = key
        if cfg and cfg.get("filter_list"):
            names = [f.get("name") for f in cfg["filter_list"] if isinstance(f, dict)]
            if names and f"{metric},{names[0]}" in result:
                filt = names[0]
        n_samples = (data.get("n-samples") or {}).get(task, {})
        n = n_samples.get("effective") if isinstance(n_samples, dict) else None
        if n is None and task in groups:
            n = sum(((data.get("n-samples") or {}).get(t) or {}).get("effective", 0) for t in groups[task])
        rows.append({
            "task": task,
            "group": parent.get(task),
            "category": (cfg or {}).get("task_alias") or result.get("alias", task).strip(" -"),
            "is_group": task in groups,
            "kind": (cfg or {}).get("output_type", "group" if task in groups else ""),
            "endpoint": endpoint,
            "metric": metric,
            "filter": filt,
            "accuracy": _float(result.get(f"{metric},{filt}")),
            "stderr": _float(result.get(f"{metric}_stderr,{filt}")),
            "n": n,
            "num_fewshot": (data.get("n-shot") or {}).get(task),
        })
    samples = {}
    for row in rows:
        if not row["is_group"]:
            candidate = path.parent / f"samples_{row['task']}_{stamp}.jsonl"
            if candidate.exists():
                samples[row["task"]] = str(candidate)
    return rows, samples


# ---------------------------------------------------------------- running lm-eval


def _lm_eval_bin() -> Path:
    exe = get_settings().venv_bin / "lm-eval"
    if not exe.exists():
        raise ToolMissingError(f"lm-eval is not installed ({exe} is missing).",
                               fix="run `make setup` (it installs lm-eval[api]==0.4.13 into .venv).")
    return exe


def check_loglikelihood(srv) -> None:
    """Ask the completions endpoint for prompt logprobs once; raise if it cannot score multiple choice."""
    why = ("Multiple-choice tasks are scored by loglikelihood: lm-eval sends each question with each option to "
           "/v1/completions with echo=true and logprobs, and picks the option the model finds most likely.")
    try:
        reply = srv.completion("Hello", max_tokens=1, echo=True, logprobs=1, temperature=0)
        logprobs = reply["choices"][0].get("logprobs") or {}
        if not logprobs.get("token_logprobs"):
            raise ValueError("no token_logprobs in the reply")
    except ServerDiedError:
        raise
    except (ConfigError, ValueError, KeyError, IndexError, TypeError, urllib.error.URLError) as exc:
        raise ConfigError(
            f"{srv.base_url}/completions cannot score multiple choice ({exc}). {why}",
            fix="serve the model with vLLM (its /v1/completions returns prompt logprobs), or run a generative "
            "task on the chat endpoint instead, e.g. tasks=['mmlu_pro_cot'], api='chat'.",
        ) from None


def _cache_path(folder: Path, srv, endpoint: str, tokenizer: str | None) -> Path:
    """lm-eval's cache keys are the requests only, so the file name carries the model, endpoint and tokenizer."""
    key = json.dumps([srv.model, srv.base_url, endpoint, tokenizer], sort_keys=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", srv.model).strip("-")[:40]
    return folder / f"{endpoint}-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


class _Progress:
    """An echo sink for :func:`evalkit.proc.run` that prints lm-eval's milestones, not every progress-bar tick."""

    KEEP = ("Selected Tasks", "Cached requests", "Saving results", "ERROR", "Traceback", "Error:")

    def __init__(self):
        self.lines = proc.Lines()

    def __call__(self, text: str) -> None:
        for line in self.lines.feed(text):
            done = "Requesting API: 100%" in line and line.rstrip().endswith("]") and "s/it" not in line[-3:]
            if done or any(k in line for k in self.KEEP):
                print("    " + line.strip()[:200], flush=True)


def lm_eval_command(srv, names: Sequence[str], *, endpoint: str, include: Path, output: Path, cache: Path | None,
                    limit: int | None, concurrency: int, batch_size: int, max_len: int | None,
                    max_retries: int = DEFAULT_MAX_RETRIES, request_timeout_s: int = 300) -> list[str]:
    """The ``lm-eval run`` argument list for one endpoint."""
    args = {"model": srv.model, "num_concurrent": concurrency, "max_retries": max_retries,
            "timeout": request_timeout_s}
    if endpoint == "completions":
        args |= {"base_url": f"{srv.base_url}/completions", "tokenizer": srv.tokenizer,
                 "tokenizer_backend": "huggingface"}
        if max_len:
            args["max_length"] = max_len
    else:
        args |= {"base_url": f"{srv.base_url}/chat/completions"}
    for key, value in args.items():
        if "," in str(value) or "=" in str(value):
            raise ConfigError(f"lm-eval cannot take {key}={value!r}: its --model_args are comma-separated.",
                              fix=f"use a {key} without commas or '=' (e.g. move the folder).")
    command = [
        str(_lm_eval_bin()), "run",
        "--model", "local-completions" if endpoint == "completions" else "local-chat-completions",
        "--model_args", ",".join(f"{k}={v}" for k, v in args.items()),
        "--tasks", ",".join(names),
        "--include_path", str(include),
        "--output_path", str(output),
        "--log_samples",
        "--batch_size", str(batch_size if endpoint == "completions" else 1),
    ]
    if cache is not None:
        command += ["--use_cache", str(cache)]
    if limit:
        command += ["--limit", str(limit)]
    if endpoint == "chat":
        command += ["--apply_chat_template"]
    return command


def _check_int(name: str, value, minimum: int, fix: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} is not allowed: it must be a whole number >= {minimum}.", fix=fix)


def evaluate(
    srv,
    tasks: Sequence[str] | str = DEFAULT_TASKS,
    *,
    limit: int | dict[str, int | None] | None = None,
    num_fewshot: int = 0,
    concurrency: int | None = None,
    batch_size: int | None = None,
    max_gen_toks: int | None = None,
    api: str = "auto",
    include_path=None,
    mmlu_pro: str = "subset",
    run_dir: Path | str | None = None,
    max_length: int | None = None,
    use_cache: bool = True,
    cache_dir: Path | str | None = None,
    timeout_s: float | None = None,
    echo: bool | str | Callable[[str], None] = True,
) -> AccuracyResult:
    """Run lm-eval on ``tasks`` against ``srv`` and return what it measured (also saved as ``result.json``).

    Args:
        srv: the server (:func:`evalkit.serve`); its ``base_url``, ``model``, ``tokenizer`` and context are used.
        tasks: task or group names (see :func:`list_tasks`): ``mmlu_pro_mc`` (14 categories, multiple choice),
            ``mmlu_pro_cot`` (generative chain of thought, chat models), ``faq_mc``, ``faq_open``, your own.
        limit: the first ``limit`` questions of each task (each MMLU-Pro category); None = all; a dict sets it
            per requested task, e.g. ``{"mmlu_pro_mc": 5, "faq_mc": None}``. Questions that do not fit the
            context are dropped from these and counted.
        num_fewshot: solved examples before each question (tasks without a few-shot split run 0-shot).
        concurrency: requests in flight (lm-eval ``num_concurrent``; default: the ``lmeval_concurrency`` setting, 4).
        batch_size: prompts per completions request (default: the ``lmeval_batch_size`` setting, 16); chat
            requests carry one.
        max_gen_toks: generation budget of generative tasks (default: each task's own; MMLU-Pro CoT 1024).
        api: ``"auto"`` (multiple choice on /completions, generative on /chat/completions), ``"completions"``
            (everything on /completions, no chat template) or ``"chat"`` (generative tasks only).
        include_path: extra folder(s) with task YAMLs (e.g. what :func:`task_from_table` wrote).
        mmlu_pro: ``"subset"`` (20 questions per category, shipped) or ``"full"`` (the 12,032-question test split).
        run_dir: folder for everything (default: a new ``runs/<time>-accuracy-<model>``).
        max_length: the model's context in tokens (default: the server's ``max_model_len``).
        use_cache: keep lm-eval's request cache and reuse it on a rerun with the same settings.
        cache_dir: where that cache lives (default ``run_dir/cache``); share one between runs to reuse answers
            (its file name includes the model, endpoint and tokenizer, so models never mix).
        timeout_s: stop lm-eval after this many seconds.
        echo: True prints lm-eval's main progress lines, ``"all"`` its whole output, False nothing; a callable
            receives the output as it comes.

    Returns:
        The :class:`AccuracyResult`, also written to ``run_dir/result.json``.

    Raises:
        ConfigError: a bad parameter, an unknown task, multiple choice asked of a chat-only endpoint.
        TaskFileError: a malformed task YAML or table (named by file, row and column).
        ServerDiedError: the server stopped answering (results so far kept).
        ToolError: lm-eval failed (its log and files kept; a rerun with the same run_dir reuses the cache).
    """
    names = [tasks] if isinstance(tasks, str) else list(tasks)
    if not names or not all(isinstance(t, str) and t for t in names):
        raise ConfigError(f"tasks={tasks!r}: give at least one task name.", fix="e.g. tasks=['mmlu_pro_mc'].")
    limits = limit.values() if isinstance(limit, dict) else [limit]
    for value in limits:
        _check_int("limit", value, 1, "use None for all questions, or a positive number per task (category).")
    if isinstance(limit, dict) and set(limit) - set(names):
        extra = ", ".join(sorted(set(limit) - set(names)))
        raise ConfigError(f"limit names {extra}, which is not among tasks={names}.",
                          fix="use the same names in limit as in tasks.")
    _check_int("num_fewshot", num_fewshot, 0, "use 0 (zero-shot) up to 5.")
    settings = get_settings()
    _check_int("concurrency", concurrency, 1, f"use 1 or more (default {settings.lmeval_concurrency}).")
    _check_int("batch_size", batch_size, 1, f"use 1 or more (default {settings.lmeval_batch_size}).")
    _check_int("max_gen_toks", max_gen_toks, 1, "use a positive number of tokens.")
    _check_int("max_length", max_length, 2, "use the model's context length in tokens.")
    if api not in APIS:
        raise ConfigError(f"api={api!r} is not one of {', '.join(APIS)}.", fix="use 'auto' unless you know better.")
    if mmlu_pro not in ("subset", "full"):
        raise ConfigError(f"mmlu_pro={mmlu_pro!r}: use 'subset' or 'full'.", fix="'subset' = 20 per category.")

    index = task_index(include_path)
    plan = resolve_tasks(names, index)
    kinds = {leaf: task_config(index[leaf].path)[0].get("output_type", "generate_until")
             for leaves in plan.values() for leaf in leaves}
    mc = [leaf for leaf, kind in kinds.items() if kind in ("multiple_choice", "loglikelihood",
                                                          "loglikelihood_rolling")]
    if api == "chat" and mc:
        raise ConfigError(
            f"{', '.join(sorted({n for n, ls in plan.items() if set(ls) & set(mc)}))} is multiple choice, and a chat "
            "endpoint cannot score it. lm-eval scores multiple choice by loglikelihood: it sends each question with "
            "each option to a completions endpoint with echo and logprobs and compares the probabilities; "
            "/v1/chat/completions only returns generated text.",
            fix="use api='auto' or 'completions' on an endpoint with /v1/completions and logprobs (any vLLM "
            "server), or pick a generative task for a chat-only endpoint (mmlu_pro_cot, faq_open).",
        )
    if mc:
        check_loglikelihood(srv)

    run_dir = Path(run_dir) if run_dir else new_run_dir(f"accuracy-{srv.model}")
    run_dir.mkdir(parents=True, exist_ok=True)
    max_len = max_length or srv.max_model_len
    counter = TokenCounter(srv.tokenizer, root_url=srv.root_url, model=srv.model)
    concurrency = concurrency or settings.lmeval_concurrency
    batch_size = batch_size or settings.lmeval_batch_size
    params = {"tasks": names, "limit": limit, "num_fewshot": num_fewshot, "concurrency": concurrency,
              "batch_size": batch_size, "max_gen_toks": max_gen_toks, "api": api, "mmlu_pro": mmlu_pro,
              "max_length": max_len, "include_path": [str(p) for p in _as_list(include_path)]}

    by_endpoint: dict[str, list[str]] = {}
    for name, leaves in plan.items():
        generative = all(kinds[leaf] == "generate_until" for leaf in leaves)
        endpoint = "chat" if generative and api in ("auto", "chat") else "completions"
        by_endpoint.setdefault(endpoint, []).append(name)

    result = AccuracyResult(run_dir=str(run_dir), model=srv.model, base_url=srv.base_url, params=params,
                            env=env_report(), tool_versions=_versions(), tasks=names, max_len=max_len)
    with run_lock(run_dir, "evalkit accuracy"):
        for endpoint, group_names in by_endpoint.items():
            include = run_dir / "tasks" / endpoint
            prepared, run_names = prepare_tasks(
                group_names, include, counter=counter, max_len=max_len, limit=limit, num_fewshot=num_fewshot,
                max_gen_toks=max_gen_toks, chat=endpoint == "chat", include_path=include_path, mmlu_pro=mmlu_pro,
            )
            result.prepared |= {k: [_prepared_dict(p) for p in v] for k, v in prepared.items()}
            if not run_names:
                continue
            output = run_dir / "lmeval" / endpoint
            cache = _cache_path(Path(cache_dir) if cache_dir else run_dir / "cache", srv, endpoint,
                                srv.tokenizer) if use_cache else None
            # evalkit already cut filtered tasks to `limit`; lm-eval's --limit is needed only for the others
            unfiltered = [n for n, items in prepared.items() if any(not p.filtered for p in items)]
            lm_limit = None
            if unfiltered:
                values = [limit.get(n) for n in unfiltered] if isinstance(limit, dict) else [limit]
                lm_limit = None if None in values else max(values)
            command = lm_eval_command(srv, run_names, endpoint=endpoint, include=include, output=output, cache=cache,
                                      limit=lm_limit, concurrency=concurrency, batch_size=batch_size,
                                      max_len=max_len)
            result.commands.append(command)
            started = time.time()
            if echo and echo != "all" and not callable(echo):
                print(f"[evalkit] lm-eval on {endpoint}: {', '.join(run_names)} (log: {run_dir / LOG_FILE})",
                      flush=True)
            sink = echo if callable(echo) else (_Progress() if echo and echo != "all" else bool(echo))
            ran = proc.run(command, env=get_settings().tool_env(), cwd=run_dir, timeout_s=timeout_s,
                           log_path=run_dir / LOG_FILE, echo=sink, watch=srv.problem)
            result.durations_s[endpoint] = round(ran.duration_s, 2)
            _raise_for(ran, srv, run_dir, cache)
            results_file = _newest_results(output, started)
            if results_file is None:
                raise ToolError(f"lm-eval exited 0 but wrote no results_*.json under {output}.\n{ran.tail}",
                                fix=f"read {run_dir / LOG_FILE}.", kept=run_dir)
            rows, samples = parse_results(results_file, endpoint)
            result.results_files[endpoint] = str(results_file.relative_to(run_dir))
            result.samples_files |= {k: str(Path(v).relative_to(run_dir)) for k, v in samples.items()}
            result.rows += rows
        _finish_rows(result, counter)
        result.save()
    return result


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, (str, Path)) else list(value)


def _prepared_dict(p: PreparedTask) -> dict:
    from dataclasses import asdict

    return asdict(p)


def _newest_results(output: Path, since: float) -> Path | None:
    found = [p for p in output.rglob("results_*.json") if p.stat().st_mtime >= since - 1]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _raise_for(ran: proc.ProcResult, srv, run_dir: Path, cache: Path | None) -> None:
    if ran.ok:
        return
    reuse = (f" A rerun with run_dir={str(run_dir)!r} reuses the answers already in lm-eval's cache ({cache.parent})."
             if cache else "")
    raise proc.failure(ran, tool="lm-eval", kept=run_dir, server_problem=srv.problem(), rerun_hint=reuse,
                       fix_timeout="raise timeout_s or lower limit.",
                       fix_failed=f"read {run_dir / LOG_FILE} (the traceback names the cause).")


def _finish_rows(result: AccuracyResult, counter: TokenCounter) -> None:
    """Add chance (mean 1/options over the questions evaluated), dropped counts and the over-context check."""
    leaf_info = {p["task"]: p for items in result.prepared.values() for p in items}
    budget = (result.max_len - 1) if result.max_len else None
    for row in result.rows:
        if row["is_group"]:
            continue
        samples_file = result.samples_files.get(row["task"])
        chances, over = [], 0
        if samples_file:
            for sample in read_samples(result.path / samples_file):
                view = sample_view(sample, row["kind"], row["metric"], row["filter"], row["category"])
                if view["chance"] is not None:
                    chances.append(view["chance"])
                if budget and row["kind"] == "multiple_choice" and counter.local is not None:
                    args = sample.get("arguments") or {}
                    pairs = [(a.get("arg_0", ""), a.get("arg_1", "")) for a in args.values()]
                    if any(counter.count(c + x) > budget for c, x in pairs):
                        over += 1
        info = leaf_info.get(row["task"], {})
        row["chance"] = _mean(chances)
        row["chance_n"] = len(chances)
        row["considered"] = info.get("considered")
        row["dropped"] = len(info.get("dropped_ids") or [])
        row["over_context"] = over
        row["note"] = (info.get("note") or "").strip()
    for row in result.rows:
        if not row["is_group"]:
            continue
        subs = [r for r in result.rows if r.get("group") == row["task"]]
        weights = [(r.get("chance"), r.get("chance_n") or 0) for r in subs if r.get("chance") is not None]
        total = sum(w for _, w in weights)
        row["chance"] = sum(c * w for c, w in weights) / total if total else None
        row["chance_n"] = total
        # counted over every subtask evalkit prepared, also those left with no question (not in lm-eval's output)
        items = result.prepared.get(row["task"], [])
        row["considered"] = sum(p.get("considered") or 0 for p in items)
        row["dropped"] = sum(len(p.get("dropped_ids") or []) for p in items)
        row["over_context"] = sum(r.get("over_context") or 0 for r in subs)
        empty = [p["task"] for p in items if p.get("kept") == 0]
        notes = sorted({r["note"] for r in subs if r.get("note")})
        if empty:
            notes.append(f"{len(empty)} subtask(s) with no question that fits: {', '.join(empty)}")
        row["note"] = "; ".join(notes)
    for row in result.rows:
        acc, chance = row.get("accuracy"), row.get("chance")
        row["above_chance"] = acc - chance if acc is not None and chance is not None else None


def _versions() -> dict:
    from evalkit.envreport import package_version

    return {"lm_eval": package_version("lm_eval") or ""}


def compare_runs(results: Sequence[AccuracyResult], labels: Sequence[str] | None = None,
                 task: str = "mmlu_pro_mc") -> pd.DataFrame:
    """Accuracy per category of several runs side by side (rows: categories; columns: one per run)."""
    labels = list(labels) if labels else [r.model for r in results]
    if len(labels) != len(results):
        raise ConfigError(f"{len(results)} results but {len(labels)} labels.", fix="give one label per result.")
    frames = []
    for label, result in zip(labels, results, strict=True):
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


def latest_by_model(task: str = "mmlu_pro_mc", root: Path | None = None) -> list[AccuracyResult]:
    """The newest saved result that ran ``task``, one per model (for model-to-model comparisons)."""
    out, seen = [], set()
    for row in accuracy_runs(root).to_dict("records"):
        if row["model"] in seen or task not in row["tasks"].split(","):
            continue
        seen.add(row["model"])
        out.append(AccuracyResult.load(row["run_dir"]))
    return out


# ---------------------------------------------------------------- CLI


def register_cli(subparsers) -> None:
    """``evalkit accuracy``: lm-eval on MMLU-Pro, the FAQ or your own tasks."""
    p = subparsers.add_parser("accuracy", help="lm-eval accuracy: MMLU-Pro by category, the FAQ, your own tasks")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), metavar="TASK",
                   help="task or group names (default: mmlu_pro_mc); `--list` shows them")
    p.add_argument("--limit", type=int, default=None, help="first N questions per task/category (default: all)")
    p.add_argument("--num-fewshot", type=int, default=0, help="few-shot examples per question (default 0)")
    p.add_argument("--concurrency", type=int, default=None,
                   help=f"requests in flight (default {get_settings().lmeval_concurrency})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"prompts per request (default {get_settings().lmeval_batch_size})")
    p.add_argument("--max-gen-toks", type=int, default=None, help="generation budget of generative tasks")
    p.add_argument("--api", choices=APIS, default="auto", help="endpoint choice (default auto)")
    p.add_argument("--mmlu-pro", choices=["subset", "full"], default="subset",
                   help="MMLU-Pro questions: subset (20 per category) or full (12,032)")
    p.add_argument("--include-path", nargs="*", default=None, help="extra folders with task YAMLs")
    p.add_argument("--run-dir", default=None, help="folder for the results (default: a new one under runs/)")
    p.add_argument("--base-url", default=None, help="attach to this endpoint (default: settings, or start vLLM)")
    p.add_argument("--model", default=None)
    p.add_argument("--list", action="store_true", help="list the tasks and exit")
    p.set_defaults(func=_cmd_accuracy)


def _cmd_accuracy(args) -> int:
    if args.list:
        with pd.option_context("display.width", 160, "display.max_colwidth", 70):
            print(list_tasks(args.include_path).to_string(index=False))
        return 0
    from evalkit.serve import serve

    with serve(args.model, base_url=args.base_url) as srv:
        result = evaluate(srv, args.tasks, limit=args.limit, num_fewshot=args.num_fewshot,
                          concurrency=args.concurrency, batch_size=args.batch_size, max_gen_toks=args.max_gen_toks,
                          api=args.api, include_path=args.include_path, mmlu_pro=args.mmlu_pro, run_dir=args.run_dir)
    print(result.summary())
    with pd.option_context("display.width", 160):
        for task in result.tasks:
            frame = result.by_category(task)
            if not frame.empty:
                print(f"\n{task} by category:")
                print(frame.drop(columns=["task"]).round(3).to_string(index=False))
    print(f"\nresults: {result.path / 'result.json'}")
    return 0

