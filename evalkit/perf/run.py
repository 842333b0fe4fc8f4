"""Running GuideLLM: one run, a grid of token counts, and one run per use-case workload.

:func:`sweep` is one run with its watchdogs and reruns, :func:`token_grid` a grid of them, :func:`run_workloads`
one sweep per use-case workload and :func:`workload_table` their figures side by side.
"""

from __future__ import annotations

import dataclasses
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from evalkit import proc
from evalkit.envreport import env_report
from evalkit.errors import ConfigError, ContextLengthError, ServerUnreachableError, ToolError
from evalkit.perf.analysis import SLO, as_slo
from evalkit.perf.args import PerfArgs, check_params
from evalkit.perf.cost import hourly_price
from evalkit.perf.goodput import goodput_objectives
from evalkit.perf.guidellm import (
    GOODPUT_MAX_PROBES,
    LOG,
    PARTIAL_JSON,
    REPORT_HTML,
    REPORT_JSON,
    GuideLLMProgress,
    build_command,
    default_workers,
    launch_command,
    lost_timings,
    nothing_to_measure,
    parse_report,
)
from evalkit.perf.result import PerfResult, TokenGridResult
from evalkit.perf.workloads import WORKLOADS, fit_workload
from evalkit.result import RESULT_FILE
from evalkit.runs import new_run_dir
from evalkit.serve.client import api_key_of
from evalkit.settings import get_settings


def _as_server(srv):
    if isinstance(srv, str):
        from evalkit.serve import attach

        return attach(srv)
    return srv


def _run_watched(command, env, run_dir: Path, srv, *, echo: bool, timeout_s: float,
                 stall_timeout_s: float) -> tuple[proc.ProcResult, list[str], list[str]]:
    """Run GuideLLM once, stopping it when the server dies or it prints nothing for ``stall_timeout_s``.

    Returns the finished process and the reasons it was stopped early: (ran, died, stalled).
    """
    progress = GuideLLMProgress(echo=echo)
    died: list[str] = []
    stalled: list[str] = []

    def server_gone():
        message = srv.problem()
        if message:
            died.append(message)
        return message

    def watch():
        if server_gone():
            return died[-1]
        quiet = time.monotonic() - progress.last_output
        if quiet > stall_timeout_s:
            stalled.append(f"GuideLLM printed nothing for {quiet:.0f} s and was stopped.")
            return stalled[-1]
        return None

    ran = proc.run(launch_command(command), env=env, cwd=run_dir, timeout_s=timeout_s, log_path=run_dir / LOG,
                   echo=progress, watch=watch,
                   heartbeat=srv.heartbeat("guidellm") if echo and hasattr(srv, "heartbeat") else None)
    if not ran.ok and not died:  # GuideLLM may fail on a dead server before the next watch looks
        server_gone()
    # messages name GuideLLM's own command, the one to rerun by hand (the log shows the launcher too)
    return dataclasses.replace(ran, command=list(command)), died, stalled


D = PerfArgs.defaults()  # the run arguments' defaults, from their one source


def sweep(
    srv,
    *,
    profile: str = D.profile,
    rates: list[float] | float | None = D.rates,
    prompt_tokens: int = D.prompt_tokens,
    output_tokens: int = D.output_tokens,
    prompt_tokens_stdev: float = D.prompt_tokens_stdev,
    output_tokens_stdev: float = D.output_tokens_stdev,
    data: str | Path | None = D.data,
    max_seconds: float | None = D.max_seconds,
    max_requests: int | None = D.max_requests,
    endpoint: str = D.endpoint,
    sweep_size: int = D.sweep_size,
    max_concurrency: int | None = D.max_concurrency,
    slo: SLO | dict | None = None,
    price_per_hour: float | None = None,
    accelerator: str | None = None,
    workers: int | None = D.workers,
    request_samples: int | None = D.request_samples,
    html: bool = D.html,
    workload: str | None = D.workload,
    workload_tokens: int | None = D.workload_tokens,
    stop_over_saturation: bool = D.stop_over_saturation,
    warmup: int | None = D.warmup,
    attainment: float = D.attainment,
    run_dir: str | Path | None = None,
    echo: bool = True,
    timeout_s: float | None = None,
    stall_timeout_s: float | None = None,
    stall_retries: int = 1,
) -> PerfResult:
    """Run ``guidellm run`` against a server and return its benchmarks as a :class:`PerfResult`.

    Everything is checked before GuideLLM starts. GuideLLM's JSON and HTML reports, its full output
    (``guidellm.log``) and ``result.json`` stay in ``run_dir``.

    Args:
        srv: a :class:`~evalkit.serve.Server` (or a base URL to attach to).
        profile: ``synchronous`` (one request at a time), ``concurrent`` (fixed stream counts), ``constant`` or
            ``poisson`` (request rates), ``throughput`` (as many as ``max_concurrency`` allows), ``sweep``
            (synchronous, throughput, then ``sweep_size - 2`` constant rates between them), or ``goodput``
            (GuideLLM's search for the most streams that keep ``slo``: 1, 2, 4, ... streams until a load fails,
            then bisection; at most ``max_concurrency`` streams, default 64; see :meth:`PerfResult.goodput`).
        rates: stream counts for ``concurrent``; requests/s for ``constant``/``poisson``; None otherwise.
        prompt_tokens: synthetic prompt length in tokens (ignored with ``data``).
        output_tokens: tokens generated per request (the server is told to ignore end-of-text); with ``data``, a cap.
        prompt_tokens_stdev: spread of prompt lengths (0 = all equal; clipped to mean +- 3 stdev).
        output_tokens_stdev: spread of output lengths.
        data: a prompts file (.txt one per line, .csv/.jsonl with a ``prompt`` column) instead of synthetic text.
        max_seconds: length of each benchmark in seconds.
        max_requests: stop each benchmark after this many requests.
        endpoint: ``completions`` (/v1/completions) or ``chat`` (/v1/chat/completions).
        sweep_size: number of benchmarks in a sweep (at least 2).
        max_concurrency: cap on requests in flight for sweep/throughput (default 512) and constant/poisson.
        slo: latency limits kept with the result; :meth:`PerfResult.metrics` then reports the capacity at them.
        price_per_hour: hourly price for the cost metric (or ``accelerator`` from :data:`PRICES`).
        accelerator: a row of :data:`PRICES` to take the hourly price from.
        workers: GuideLLM client processes (default: half the cores, at most 10).
        request_samples: requests per status kept with their text in the report (None = all; 0 keeps it small).
        html: also write GuideLLM's HTML report.
        workload: a use-case preset (chat, rag, summarization, codegen) that sets prompt and output tokens; on a
            model with a smaller context it is scaled with the same ratio, printed, and kept in ``params``.
        workload_tokens: cap the workload's prompt + output tokens per request below the context (scaled the same
            way): long outputs take minutes per request on a slow CPU.
        stop_over_saturation: add GuideLLM's over-saturation constraint (it ends a benchmark when latency keeps
            growing with load; it checks after 30 s, so it matters for the full profile, not the quick one).
        attainment: goodput: the fraction of a load's requests that must keep every limit of ``slo``.
        warmup: finished requests at the start of each benchmark that its figures leave out, through GuideLLM's
            own warm-up phase (None: :func:`~evalkit.perf.guidellm.warmup_phase`, the first 30 % of a
            time-limited load's seconds or the first wave of a request-limited one; 0: none).
            The load generator's own start (its worker process beside the server) makes the first requests of a
            benchmark slow; a server's cold start is measured apart (:func:`~evalkit.perf.cold.cold_start`).
        run_dir: folder for the files (default: a new ``runs/<time>-perf-<profile>``).
        echo: print GuideLLM's progress lines while it runs.
        timeout_s: stop GuideLLM after this long (default: generous, from the number and length of benchmarks).
        stall_timeout_s: stop GuideLLM when it prints nothing for this long (default: 3 x max_seconds + 120 s,
            at least 180 s); GuideLLM 0.8 can hang between benchmarks (vllm-project/guidellm#431, #1152).
        stall_retries: how often a stalled GuideLLM (or one that lost its request timings) is rerun from the
            start before it is an error (each rerun is listed in ``result.warnings``).

    Returns:
        The :class:`PerfResult`, also saved as ``run_dir/result.json``.

    Raises:
        ConfigError, ContextLengthError: a parameter is wrong; nothing was started.
        ServerUnreachableError: the server does not answer before the start.
        ServerDiedError: the server stopped answering during the run (files so far kept).
        ToolError: GuideLLM failed or timed out (files so far kept; the message has its last lines).
    """
    started = time.monotonic()
    srv = _as_server(srv)
    params = dict(profile=profile, rates=rates, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                  prompt_tokens_stdev=prompt_tokens_stdev, output_tokens_stdev=output_tokens_stdev, data=data,
                  max_seconds=max_seconds, max_requests=max_requests, endpoint=endpoint, sweep_size=sweep_size,
                  max_concurrency=max_concurrency, workers=workers, request_samples=request_samples, html=html,
                  workload=workload, workload_tokens=workload_tokens, stop_over_saturation=stop_over_saturation,
                  warmup=warmup, attainment=attainment)
    p = check_params(params, srv.max_model_len, srv.model)
    if profile == "goodput":  # the search needs objectives: refused here, before GuideLLM starts
        p["goodput_slo"] = goodput_objectives(slo)
    if echo and p.get("workload_scale", 1) < 1:
        print(f"[evalkit] workload {p['workload_note']}", flush=True)
    slo_dict = dataclasses.asdict(as_slo(slo)) if slo is not None else None
    if price_per_hour is not None or accelerator is not None:
        hourly_price(price_per_hour, accelerator)
    problem = srv.problem()
    if problem:
        raise ServerUnreachableError(f"{problem} GuideLLM was not started.",
                                     fix="start the server with `evalkit serve` (or check the base URL) and rerun.")
    run_dir = (Path(run_dir) if run_dir else new_run_dir(f"perf-{profile}")).resolve()  # GuideLLM runs inside it
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (REPORT_JSON, PARTIAL_JSON, REPORT_HTML, RESULT_FILE):  # a rerun must not leave old files
        (run_dir / stale).unlink(missing_ok=True)
    command = build_command(p, target=srv.root_url, model=srv.model, tokenizer=srv.tokenizer, run_dir=run_dir,
                            api_key=api_key_of(srv))
    workers = p["workers"] or default_workers()
    points = len(p["rates"] or []) or {"sweep": p["sweep_size"], "goodput": GOODPUT_MAX_PROBES}.get(profile, 1)
    if timeout_s is None:
        timeout_s = 300 + points * (3 * p["max_seconds"] + 120) if p["max_seconds"] else 1800
    if echo:
        print(f"[evalkit] guidellm run: {profile}, {points} benchmark(s)"
              + (f" of {p['max_seconds']:g} s" if p["max_seconds"] else "") + f" against {srv.base_url}; "
              f"full output in {run_dir / LOG}", flush=True)
    if stall_timeout_s is None:
        stall_timeout_s = max(180.0, 3 * (p["max_seconds"] or 60) + 120)
    env = get_settings().tool_env({"GUIDELLM__MAX_WORKER_PROCESSES": str(workers)})
    reruns: list[str] = []
    while True:
        ran, died, stalled = _run_watched(command, env, run_dir, srv, echo=echo, timeout_s=timeout_s,
                                          stall_timeout_s=stall_timeout_s)
        lost = lost_timings(ran) if not (stalled or died) else None
        if not (stalled or lost) or died or len(reruns) >= stall_retries:
            break
        # both are races in GuideLLM: a second run usually completes; the failed run's log is kept
        kept_log = run_dir / f"guidellm.{'stalled' if stalled else 'failed'}-{len(reruns) + 1}.log"
        (run_dir / LOG).replace(kept_log)
        for stale in (REPORT_JSON, PARTIAL_JSON, REPORT_HTML):
            (run_dir / stale).unlink(missing_ok=True)
        why = stalled[0] + " " if stalled else lost
        reruns.append(f"{why}GuideLLM was rerun (its log: {kept_log.name}"
                      + ("; vllm-project/guidellm#431)." if stalled else ")."))
        if echo:
            print(f"[evalkit] {reruns[-1]}", flush=True)
    report = run_dir / REPORT_JSON
    partial = run_dir / PARTIAL_JSON
    if not report.exists() and partial.exists():  # stopped early: the benchmarks it had finished
        report = partial
    result = None
    rows = None
    if report.exists():
        try:
            rows, meta = parse_report(report)
        except ToolError:
            if ran.ok and not died:
                raise
    if report == partial and rows is not None:
        meta["warnings"].insert(0, f"GuideLLM was stopped after {len(rows)} of {points} benchmark(s); the "
                                f"finished ones are kept (from {PARTIAL_JSON}).")
    elif partial.exists():
        partial.unlink()  # the full report has every benchmark
    if rows is not None:
        result = PerfResult(
            run_dir=str(run_dir), model=srv.model, base_url=srv.base_url, params=p, env=env_report(),
            tool_versions={"guidellm": meta.get("guidellm_version", "")}, profile=profile, benchmarks=rows,
            command=proc.redacted(command), duration_s=round(time.monotonic() - started, 2),
            tool_duration_s=round(ran.duration_s, 2), warnings=reruns + meta["warnings"],
            complete=ran.ok, report_html=REPORT_HTML if (run_dir / REPORT_HTML).exists() else None,
            slo=slo_dict, price_per_hour=price_per_hour, accelerator=accelerator,
            search=meta["conclusions"][0] if profile in ("goodput", "knee") and meta.get("conclusions") else None,
        )
        result.save()
        if echo:
            for warning in meta["warnings"]:  # reruns were announced as they happened
                print(f"[evalkit] GuideLLM warning: {warning}", flush=True)
    tail = "\n".join(ran.tail.splitlines()[-15:])
    runs = f" in {len(reruns) + 1} runs" if reruns else ""
    if stalled and not died:
        raise ToolError(f"guidellm run made no progress{runs}: {stalled[0]} GuideLLM 0.8 can hang between benchmarks "
                        f"(vllm-project/guidellm#431, #1152). Last lines:\n{textwrap.indent(tail, '    ')}\n"
                        f"Command: {ran.command_line}\nLog: {run_dir / LOG}",
                        fix="rerun it; if it recurs, run fewer benchmarks (a concurrent profile with a few stream "
                        "counts) or raise stall_timeout_s.", kept=run_dir)
    if died or not ran.ok:
        if result and report == partial:
            saved = (f" The {len(rows)} of {points} benchmark(s) it had finished are kept in result.json "
                     f"(complete=False; perf.PerfResult.load({str(run_dir)!r})).")
        else:
            saved = (" Its JSON report was read into result.json (complete=False)." if result
                     else " It finished no benchmark, so none was kept.")
        if not died and reruns and lost_timings(ran):  # lost at every try: a load with nothing to measure
            raise nothing_to_measure(p, len(rows or []) + 1, points, len(reruns) + 1, saved, run_dir)
        raise proc.failure(ran, tool="guidellm run", kept=run_dir, server_problem=died[0] if died else None,
                           tail=tail, detail=(f" It was run {len(reruns) + 1} times." if reruns else "") + saved,
                           fix_timeout="shorten the run (max_seconds, fewer rates) or pass timeout_s=.")
    if result is None:
        raise ToolError(f"guidellm run exited 0 but wrote no report at {report}.\nCommand: {ran.command_line}\n"
                        f"Log: {run_dir / LOG}",
                        fix="read the log; check that the run folder is writable.", kept=run_dir)
    return result


def command_for(srv, run_dir: str | Path, **kwargs) -> list[str]:
    """The ``guidellm run`` argument list :func:`sweep` would run with these arguments, without running it."""
    srv = _as_server(srv)
    names = list(PerfArgs.model_fields)
    unknown = set(kwargs) - set(names)
    if unknown:
        raise ConfigError(f"command_for() does not take {', '.join(sorted(unknown))}.",
                          fix=f"use sweep's run parameters: {', '.join(names)}.")
    p = check_params(kwargs, srv.max_model_len, srv.model)
    return proc.redacted(build_command(p, target=srv.root_url, model=srv.model, tokenizer=srv.tokenizer,
                                       run_dir=Path(run_dir), api_key=api_key_of(srv)))


def token_grid(
    srv,
    prompt_tokens: list[int] = (16, 64, 256),
    output_tokens: list[int] = (16, 64),
    *,
    profile: str = "synchronous",
    rates: list[float] | None = None,
    max_seconds: float | None = 30,
    max_requests: int | None = 4,
    endpoint: str = "completions",
    run_dir: str | Path | None = None,
    echo: bool = True,
    **kwargs,
) -> TokenGridResult:
    """Run one small benchmark per (prompt tokens, output tokens) pair: how token counts drive latency.

    Every cell is checked against the model's context before the first one starts. Each cell's GuideLLM files
    and result go to ``<run_dir>/p<P>_o<O>/``; the grid's result to ``<run_dir>/result.json``.

    Args:
        srv: a server (or base URL).
        prompt_tokens: prompt lengths (rows of the grid).
        output_tokens: output lengths (columns of the grid).
        profile: GuideLLM profile for each cell (default: one request at a time).
        rates: rates or stream counts, for profiles that need them.
        max_seconds: cap on each cell's benchmark, in seconds.
        max_requests: requests per cell (with one request at a time, a count is steadier than a duration).
        endpoint: ``completions`` or ``chat``.
        run_dir: folder for the grid (default: a new ``runs/<time>-perf-grid``).
        echo: print progress.
        **kwargs: more :func:`sweep` arguments (``workers``, ``max_concurrency``...).
    """
    srv = _as_server(srv)
    prompt_tokens, output_tokens = list(prompt_tokens), list(output_tokens)
    if not prompt_tokens or not output_tokens:
        raise ConfigError("The token grid needs at least one prompt and one output length.",
                          fix="pass prompt_tokens=[...] and output_tokens=[...].")
    common = dict(profile=profile, rates=rates, max_seconds=max_seconds, max_requests=max_requests,
                  endpoint=endpoint, data=None, prompt_tokens_stdev=0, output_tokens_stdev=0, sweep_size=4,
                  max_concurrency=None, workers=None, request_samples=0, html=False)
    common.update({k: v for k, v in kwargs.items() if k in common})
    too_long = [(pt, ot) for pt in prompt_tokens for ot in output_tokens
                if isinstance(pt, int) and isinstance(ot, int) and srv.max_model_len and pt + ot > srv.max_model_len]
    if too_long:
        cells = ", ".join(f"{pt}+{ot}" for pt, ot in too_long)
        raise ContextLengthError(
            f"Grid cells {cells} exceed the context of {srv.model}: max_model_len = {srv.max_model_len} tokens.",
            fix=f"keep prompt + output tokens at most {srv.max_model_len} in every cell.")
    for pt in prompt_tokens:
        for ot in output_tokens:
            check_params({**common, "prompt_tokens": pt, "output_tokens": ot}, srv.max_model_len, srv.model)
    run_dir = (Path(run_dir) if run_dir else new_run_dir("perf-grid")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cells = []
    for pt in prompt_tokens:
        for ot in output_tokens:
            if echo:
                print(f"[evalkit] grid cell: {pt} prompt tokens x {ot} output tokens", flush=True)
            cell_dir = run_dir / f"p{pt}_o{ot}"
            res = sweep(srv, **{**common, **kwargs, "prompt_tokens": pt, "output_tokens": ot},
                        run_dir=cell_dir, echo=echo)
            cells += [{"prompt_tokens": pt, "output_tokens": ot, "cell_dir": cell_dir.name, **row}
                      for row in res.benchmarks]
    grid = TokenGridResult(run_dir=str(run_dir), model=srv.model, base_url=srv.base_url, profile=profile,
                           prompt_tokens=prompt_tokens, output_tokens=output_tokens, cells=cells, env=env_report(),
                           params={**common, **kwargs}, tool_versions=res.tool_versions)
    grid.save()
    return grid


def run_workloads(srv, names=None, *, run_dir: str | Path | None = None, **sweep_kwargs) -> dict:
    """One :func:`~evalkit.perf.sweep` per workload into ``<run_dir>/<name>``: ``{name: PerfResult}``.

    ``sweep_kwargs`` go to every run (profile, rates, max_seconds, workload_tokens, ...); prompt and output tokens
    come from the workload, fitted to the server's context (and to ``workload_tokens`` when given).
    """
    names = list(names or WORKLOADS)
    for name in names:
        fit_workload(name, srv.max_model_len, srv.model, sweep_kwargs.get("workload_tokens"))  # checked up front
    root = Path(run_dir) if run_dir else new_run_dir("perf-workloads")
    return {name: sweep(srv, workload=name, run_dir=root / name, **sweep_kwargs) for name in names}


def workload_table(results: Mapping[str, PerfResult]) -> pd.DataFrame:
    """Throughput and latency percentiles per workload and load: one row per benchmark of each run."""
    frames = []
    for name, result in results.items():
        table = result.summary().reset_index()
        table.insert(0, "tokens", f"{result.params['prompt_tokens']}/{result.params['output_tokens']}")
        table.insert(0, "workload", name)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
