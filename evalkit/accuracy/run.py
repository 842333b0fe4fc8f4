"""Running lm-eval: :func:`evaluate` fits the tasks to the model's context and runs them on one or both endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from evalkit import proc
from evalkit.accuracy.args import AccuracyArgs
from evalkit.accuracy.lmeval import (
    LOG_FILE,
    LmEvalProgress,
    cache_answers,
    check_loglikelihood,
    lm_eval_command,
    newest_results_file,
    parse_results,
    raise_for_failure,
    read_samples,
    request_cache_path,
    sample_view,
)
from evalkit.accuracy.prepare import PreparedTask, TokenCounter, prepare_tasks
from evalkit.accuracy.result import AccuracyResult, mean_or_none
from evalkit.accuracy.taskfiles import resolve_tasks, task_config, task_index
from evalkit.envreport import env_report
from evalkit.errors import ConfigError, ToolError
from evalkit.runs import new_run_dir, run_lock
from evalkit.settings import get_settings

D = AccuracyArgs.defaults()  # the run arguments' defaults, from their one source


def evaluate(
    srv,
    tasks: Sequence[str] | str = D.tasks,
    *,
    limit: int | dict[str, int | None] | None = D.limit,
    num_fewshot: int = D.num_fewshot,
    concurrency: int | None = D.concurrency,
    batch_size: int | None = D.batch_size,
    max_gen_toks: int | None = D.max_gen_toks,
    api: str = D.api,
    include_path=None,
    mmlu_pro: str = D.mmlu_pro,
    run_dir: Path | str | None = None,
    max_length: int | None = D.max_length,
    use_cache: bool = D.use_cache,
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
    names = AccuracyArgs.check(tasks=tasks, limit=limit, num_fewshot=num_fewshot, concurrency=concurrency,
                               batch_size=batch_size, max_gen_toks=max_gen_toks, api=api, mmlu_pro=mmlu_pro,
                               max_length=max_length, use_cache=use_cache).tasks
    settings = get_settings()

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

    run_dir = Path(run_dir).resolve() if run_dir else new_run_dir(f"accuracy-{srv.model}")  # lm-eval runs elsewhere
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
            cache = request_cache_path(Path(cache_dir) if cache_dir else run_dir / "cache", srv, endpoint,
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
            cached_before = cache_answers(cache)
            sink = echo if callable(echo) else (LmEvalProgress() if echo and echo != "all" else bool(echo))
            ran = proc.run(command, env=get_settings().tool_env(), cwd=run_dir, timeout_s=timeout_s,
                           log_path=run_dir / LOG_FILE, echo=sink, watch=srv.problem,
                           heartbeat=srv.heartbeat("lm-eval") if hasattr(srv, "heartbeat") else None)
            result.durations_s[endpoint] = round(ran.duration_s, 2)
            raise_for_failure(ran, srv, run_dir, cache, cached_before)
            results_file = newest_results_file(output, started)
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
        row["chance"] = mean_or_none(chances)
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
