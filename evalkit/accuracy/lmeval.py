"""The lm-eval adapter: the only module that knows ``lm-eval run``'s command line and its output files.

It builds the argument list for one endpoint, filters lm-eval's output down to its milestones, reads its results
and per-question samples, and turns a failed run into one error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import urllib.error
from collections.abc import Sequence
from pathlib import Path

from evalkit import proc
from evalkit.errors import ConfigError, ServerDiedError, ToolMissingError
from evalkit.settings import get_settings

# evalkit's request settings for lm-eval; benchmarks/bench_accuracy.py measures them against lm-eval's defaults
# (num_concurrent=1, batch_size=1): 2.3x the requests/s (14.8 vs 6.5) on the same MMLU-Pro questions, on the
# 2-core shared CPU server with the embedded model. Batching helps most: vLLM scores 16 prompts per request.
DEFAULT_MAX_RETRIES = 3
LMEVAL_DEFAULTS = {"concurrency": 1, "batch_size": 1}
LOG_FILE = "lm-eval.log"


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


def request_cache_path(folder: Path, srv, endpoint: str, tokenizer: str | None) -> Path:
    """lm-eval's cache keys are the requests only, so the file name carries what was served and how it was asked.

    The model's name, the fingerprint of its files (a retrained adapter or a rebuilt model is asked again, not
    answered from the old one's cache), the endpoint and the tokenizer.
    """
    from evalkit.models import fingerprint

    key = json.dumps([srv.model, fingerprint(srv.model), srv.base_url, endpoint, tokenizer], sort_keys=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", srv.model).strip("-")[:40]
    return folder / f"{endpoint}-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


class LmEvalProgress:
    """An echo sink for :func:`evalkit.proc.run` that prints lm-eval's milestones, not every progress-bar tick."""

    KEEP = ("Selected Tasks", "Cached requests", "Saving results", "ERROR", "Traceback", "Error:")

    def __init__(self):
        self.lines = proc.Lines()

    def __call__(self, text: str) -> bool:
        """Print the milestones in ``text``; True if it printed any (the heartbeat of proc.run counts on it)."""
        shown = False
        for line in self.lines.feed(text):
            done = "Requesting API: 100%" in line and line.rstrip().endswith("]") and "s/it" not in line[-3:]
            if done or any(k in line for k in self.KEEP):
                print("    " + line.strip()[:200], flush=True)
                shown = True
        return shown


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


def newest_results_file(output: Path, since: float) -> Path | None:
    found = [p for p in output.rglob("results_*.json") if p.stat().st_mtime >= since - 1]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def cache_answers(cache: Path | None) -> int:
    """How many answers lm-eval's request cache holds (its file is ``<cache>_rank0.db``; 0 if none)."""
    import sqlite3

    db = Path(f"{cache}_rank0.db") if cache else None
    if db is None or not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM unnamed").fetchone()[0])
    except sqlite3.Error:
        return 0


def requests_planned(log_text: str) -> int | None:
    """The number of requests lm-eval's last progress bar counts to ("Requesting API: 40%|...| 80/200")."""
    found = re.findall(r"Requesting API:[^|\n]*\|[^|\n]*\|\s*\d+/(\d+)", log_text)
    return int(found[-1]) if found else None


def what_was_kept(ran: proc.ProcResult, cache: Path | None, cached_before: int) -> str:
    """What an lm-eval run stopped early leaves: its scores and samples are written only at its end."""
    lost = " lm-eval writes its scores and samples only once every request is answered, so this run has none"
    if cache is None:
        return lost + "; with use_cache=False its answers so far were not kept either."
    answered = cache_answers(cache) - cached_before
    try:
        planned = requests_planned(ran.log_path.read_text(errors="replace")) if ran.log_path else None
    except OSError:
        planned = None
    of = f" of the {planned} it had to send" if planned else ""
    return (f"{lost}; the {answered} answers it had received{of} are kept in its request cache "
            f"({cache}_rank0.db), and a rerun sends only the rest.")


def raise_for_failure(ran: proc.ProcResult, srv, run_dir: Path, cache: Path | None, cached_before: int = 0) -> None:
    if ran.ok:
        return
    reuse = f" A rerun with run_dir={str(run_dir)!r} reuses the answers already in lm-eval's cache." if cache else ""
    raise proc.failure(ran, tool="lm-eval", kept=run_dir, server_problem=srv.problem(), rerun_hint=reuse,
                       detail=what_was_kept(ran, cache, cached_before),
                       fix_timeout="raise timeout_s or lower limit.",
                       fix_failed=f"read {run_dir / LOG_FILE} (the traceback names the cause).")
