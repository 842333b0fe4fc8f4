"""Layer 1, performance: GuideLLM load tests against the served model, and their typed result.

This module owns the ``guidellm run`` command (GuideLLM 0.8.1, run as a subprocess against ``srv.root_url`` with
the model's own tokenizer, offline), the checks done before it starts (token counts against the model's context,
rates and counts, a target that answers), the reading of GuideLLM's JSON report into one row per benchmark, the
:class:`PerfResult` and :class:`TokenGridResult` that save and load, and the ``evalkit perf`` command. What the
numbers mean (capacity at an SLO, knee, cost per token) lives in :mod:`evalkit.perf_analysis`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import os
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import ClassVar

import pandas as pd
import yaml

from evalkit import proc
from evalkit.envreport import env_report
from evalkit.errors import (
    ConfigError,
    ContextLengthError,
    ServerUnreachableError,
    ToolError,
)
from evalkit.perf_analysis import (
    PRICES,
    SLO,
    Capacity,
    Knee,
    as_slo,
    cost_at_capacity,
    cost_per_million_output_tokens,
    hourly_price,
    knee,
    measured,
    slo_capacity,
)
from evalkit.runs import RESULT_FILE, LayerResult, Metric, catalog_metric, new_run_dir
from evalkit.settings import get_settings

__all__ = [
    "PRICES",
    "PROFILES",
    "SLO",
    "Capacity",
    "Knee",
    "PerfResult",
    "TokenGridResult",
    "build_command",
    "command_for",
    "cost_at_capacity",
    "cost_per_million_output_tokens",
    "knee",
    "parse_report",
    "slo_capacity",
    "sweep",
    "token_grid",
]

PROFILES = ("synchronous", "concurrent", "constant", "poisson", "throughput", "sweep")
ENDPOINTS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
DATA_KINDS = {".txt": "text_file", ".csv": "csv_file", ".json": "json_file", ".jsonl": "json_file"}
REPORT_JSON, REPORT_HTML, LOG = "benchmarks.json", "benchmarks.html", "guidellm.log"
REPORT_VERSION = 2  # GuideLLM 0.8's report format (metadata.version)
DEFAULT_MAX_CONCURRENCY = 512  # GuideLLM's own default for sweep and throughput
STDEV_SPAN = 3  # synthetic token counts are clipped to mean +- 3 standard deviations

COLUMNS = [
    "benchmark", "strategy", "rate", "concurrency", "requests_per_s", "output_tokens_per_s", "total_tokens_per_s",
    "concurrency_mean",
    "ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms",
    "itl_mean_ms", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms",
    "tpot_mean_ms", "tpot_p50_ms", "tpot_p90_ms", "tpot_p99_ms",
    "latency_mean_s", "latency_p50_s", "latency_p90_s", "latency_p99_s",
    "successful", "errored", "incomplete", "prompt_tokens_mean", "output_tokens_mean", "duration_s", "load_order",
]
_DISTRIBUTIONS = {  # our column prefix -> GuideLLM metric
    "ttft": "time_to_first_token_ms",
    "itl": "inter_token_latency_ms",
    "tpot": "time_per_output_token_ms",
    "latency": "request_latency",
}


# ---------------------------------------------------------------- checks before starting


def _positive(name: str, value, kind=float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if ok and kind is int:
        ok = float(value).is_integer()
    if not ok:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name}={value!r} must be {what} > 0.", fix=f"give {name} {what} greater than zero.")


def _check_params(p: dict, max_model_len: int | None, model: str) -> dict:
    """Validate sweep parameters (before anything starts) and return them normalized."""
    profile = p["profile"]
    if profile not in PROFILES:
        raise ConfigError(f"Unknown profile {profile!r}.", fix=f"use one of: {', '.join(PROFILES)}.")
    if p["endpoint"] not in ENDPOINTS:
        raise ConfigError(f"Unknown endpoint {p['endpoint']!r}.", fix=f"use one of: {', '.join(ENDPOINTS)}.")
    rates = p["rates"]
    if rates is not None and not isinstance(rates, (list, tuple)):
        rates = [rates]
    if profile in ("concurrent", "constant", "poisson"):
        unit = "stream counts" if profile == "concurrent" else "request rates (requests/s)"
        if not rates:
            raise ConfigError(f"The {profile} profile needs rates: a list of {unit}.",
                              fix=f"pass rates=[1, 2, 4] ({unit}), or use profile='sweep'.")
        for r in rates:
            _positive("rates" if profile != "concurrent" else "rates (stream count)", r,
                      int if profile == "concurrent" else float)
        rates = [int(r) if profile == "concurrent" else float(r) for r in rates]
    elif rates:
        raise ConfigError(f"The {profile} profile takes no rates (got {rates}).",
                          fix="use profile='concurrent' (stream counts) or 'constant'/'poisson' (requests/s), or "
                          "drop rates; a sweep picks its own rates (sweep_size).")
    if p["max_seconds"] is None and p["max_requests"] is None:
        raise ConfigError("Nothing would stop each benchmark: both max_seconds and max_requests are None.",
                          fix="give max_seconds (e.g. 5) and/or max_requests (e.g. 50).")
    if p["max_seconds"] is not None:
        _positive("max_seconds", p["max_seconds"])
    if p["max_requests"] is not None:
        _positive("max_requests", p["max_requests"], int)
    _positive("sweep_size", p["sweep_size"], int)
    if profile == "sweep" and p["sweep_size"] < 2:
        raise ConfigError(f"sweep_size={p['sweep_size']} is too small.",
                          fix="a sweep needs at least 2 points (synchronous and throughput).")
    if p["max_concurrency"] is not None:
        _positive("max_concurrency", p["max_concurrency"], int)
    if p["workers"] is not None:
        _positive("workers", p["workers"], int)
    _positive("output_tokens", p["output_tokens"], int)
    for name in ("prompt_tokens_stdev", "output_tokens_stdev"):
        if not isinstance(p[name], (int, float)) or p[name] < 0:
            raise ConfigError(f"{name}={p[name]!r} must be >= 0.", fix=f"give {name}=0 for fixed token counts.")
    out_max = p["output_tokens"] + STDEV_SPAN * p["output_tokens_stdev"]
    if p["data"] is not None:
        data = Path(p["data"]).expanduser()
        if not data.is_file():
            raise ConfigError(f"Prompts file {data} does not exist.",
                              fix="give the path of a .txt, .csv or .jsonl file.")
        if data.suffix.lower() not in DATA_KINDS:
            raise ConfigError(f"Prompts file {data.name} has an unknown type.",
                              fix=f"use one of {', '.join(DATA_KINDS)} (one prompt per line or a 'prompt' column).")
        need, what = out_max, f"{out_max} output tokens"
    else:
        _positive("prompt_tokens", p["prompt_tokens"], int)
        in_max = p["prompt_tokens"] + STDEV_SPAN * p["prompt_tokens_stdev"]
        need, what = in_max + out_max, f"{in_max} prompt + {out_max} output tokens"
    if max_model_len and need > max_model_len:
        spread = " (mean + 3 standard deviations)" if p["prompt_tokens_stdev"] or p["output_tokens_stdev"] else ""
        raise ContextLengthError(
            f"{what}{spread} = {need} tokens exceed the context of {model}: max_model_len = {max_model_len} tokens.",
            fix=f"lower prompt_tokens/output_tokens (or their stdev) so they sum to at most {max_model_len}, or "
            "serve the model with a longer --max-model-len if it supports one.",
        )
    return {**p, "rates": rates, "data": str(Path(p["data"]).expanduser().resolve()) if p["data"] else None}


# ---------------------------------------------------------------- the command


def _kv(**fields) -> str:
    """GuideLLM's ``key=value,...`` form, or JSON when a value would not survive that form."""
    fields = {k: v for k, v in fields.items() if v is not None}
    plain = all(
        not isinstance(v, str) or ("," not in v and "=" not in v and yaml.safe_load(v) == v) for v in fields.values()
    )
    if plain and all(isinstance(v, (str, int, float)) for v in fields.values()):
        return ",".join(f"{k}={v}" for k, v in fields.items())
    return json.dumps(fields, separators=(",", ":"))


def guidellm_executable() -> str:
    """The guidellm console script of this Python environment (or the one on PATH)."""
    local = get_settings().venv_bin / "guidellm"
    return str(local) if local.exists() else "guidellm"


def build_command(p: dict, *, target: str, model: str, tokenizer: str, run_dir: Path) -> list[str]:
    """The ``guidellm run`` argument list for validated parameters ``p`` (see :func:`sweep`)."""
    profile = p["profile"]
    backend = dict(kind="openai_http", target=target, model=model, request_format=ENDPOINTS[p["endpoint"]])
    if p["data"] is not None:
        backend["max_tokens"] = p["output_tokens"]
    prof: dict = {"kind": profile}
    if profile == "sweep":
        prof.update(sweep_size=p["sweep_size"], max_concurrency=p["max_concurrency"] or DEFAULT_MAX_CONCURRENCY)
    elif profile == "throughput":
        prof["max_concurrency"] = p["max_concurrency"] or DEFAULT_MAX_CONCURRENCY
    elif profile in ("constant", "poisson") and p["max_concurrency"]:
        prof["max_concurrency"] = p["max_concurrency"]
    cmd = [guidellm_executable(), "run", "--backend", _kv(**backend), "--profile", _kv(**prof)]
    if p["rates"]:
        field = "streams" if profile == "concurrent" else "rate"
        cmd += ["--override", f"profile.{field}", ",".join(f"{r:g}" for r in p["rates"])]
    if p["max_seconds"] is not None:
        cmd += ["--constraint", _kv(kind="max_duration", seconds=p["max_seconds"])]
    if p["max_requests"] is not None:
        cmd += ["--constraint", _kv(kind="max_requests", count=int(p["max_requests"]))]
    cmd += ["--tokenizer", _kv(kind="huggingface_auto", model=tokenizer)]
    if p["data"] is not None:
        cmd += ["--data", _kv(kind=DATA_KINDS[Path(p["data"]).suffix.lower()], path=p["data"])]
    else:
        cmd += ["--data", _kv(kind="synthetic_text", **_token_fields("prompt_tokens", p["prompt_tokens"],
                                                                       p["prompt_tokens_stdev"]),
                              **_token_fields("output_tokens", p["output_tokens"], p["output_tokens_stdev"]))]
    cmd += ["--metrics", _kv(kind="generative", sample_size=p["request_samples"])]
    cmd += ["--output", _kv(kind="json", path=str(run_dir / REPORT_JSON))]
    if p["html"]:
        cmd += ["--output", _kv(kind="html", path=str(run_dir / REPORT_HTML))]
    return cmd + ["--disable-progress"]


def _token_fields(name: str, mean: int, stdev: float) -> dict:
    if not stdev:
        return {name: int(mean)}
    sd = max(1, round(stdev))
    return {name: int(mean), f"{name}_stdev": sd, f"{name}_min": max(1, int(mean) - STDEV_SPAN * sd),
            f"{name}_max": int(mean) + STDEV_SPAN * sd}


def default_workers() -> int:
    """GuideLLM client processes: half the cores, 1 to 10 (each is a Python process; on 2 cores, one)."""
    return min(10, max(1, (os.cpu_count() or 2) // 2))


class _Progress:
    """Echo only GuideLLM's progress lines (the full output goes to the log)."""

    pattern = re.compile(r"(Benchmark \d+ \(.*|Starting benchmark.*|Benchmarking complete.*|\w*Error: .*)")
    ansi = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

    def __init__(self, write=None, echo: bool = True):
        self.lines = proc.Lines()
        self.last_output = time.monotonic()  # for the stall watchdog
        self.write = write or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
        self.echo = echo

    def __call__(self, text: str) -> None:
        self.last_output = time.monotonic()
        if not self.echo:
            return
        for line in self.lines.feed(text):
            match = self.pattern.search(self.ansi.sub("", line))
            if match:
                self.write(f"[guidellm] {match.group(1).strip()}\n")


# ---------------------------------------------------------------- reading GuideLLM's report


def _stat(metrics: dict, name: str, group: str = "successful") -> dict | None:
    entry = metrics.get(name)
    return entry.get(group) if isinstance(entry, dict) else None


def _label(strategy: dict) -> tuple[str, float | None, float | None]:
    kind = strategy["type_"]
    if kind == "synchronous":
        return "synchronous", None, 1
    if kind == "concurrent":
        return f"concurrent@{strategy['streams']}", None, strategy["streams"]
    if kind == "throughput":
        return f"throughput@{strategy.get('max_concurrency')}", None, strategy.get("max_concurrency")
    rate = strategy.get("rate")
    return f"{kind}@{rate:.2f}", rate, None


def _row(bench: dict) -> dict:
    label, rate, concurrency = _label(bench["config"]["strategy"])
    m = bench["metrics"]
    totals = m["request_totals"]
    row = {"benchmark": label, "strategy": bench["config"]["strategy"]["type_"], "rate": rate,
           "concurrency": concurrency, "successful": int(totals.get("successful", 0)),
           "errored": int(totals.get("errored", 0)), "incomplete": int(totals.get("incomplete", 0)),
           "duration_s": bench.get("duration")}
    done = row["successful"] > 0  # with no completed request, GuideLLM reports zeros: keep them as missing

    def mean(name):
        stat = _stat(m, name)
        return stat["mean"] if done and stat else None

    row.update(requests_per_s=mean("requests_per_second"), output_tokens_per_s=mean("output_tokens_per_second"),
               total_tokens_per_s=mean("tokens_per_second"), concurrency_mean=mean("request_concurrency"),
               prompt_tokens_mean=mean("prompt_token_count"), output_tokens_mean=mean("output_token_count"))
    for prefix, name in _DISTRIBUTIONS.items():
        unit = "s" if prefix == "latency" else "ms"
        stat = _stat(m, name) if done else None
        pct = (stat or {}).get("percentiles") or {}
        row[f"{prefix}_mean_{unit}"] = stat["mean"] if stat else None
        for q in ("p50", "p90", "p99"):
            row[f"{prefix}_{q}_{unit}"] = pct.get(q) if stat else None
    return row


def _load_key(row: dict, index: int) -> tuple:
    group = {"synchronous": 0, "throughput": 2}.get(row["strategy"], 1)
    return group, row["rate"] or row["concurrency"] or 0, index


def parse_report(path: Path | str) -> tuple[list[dict], dict]:
    """Read GuideLLM's JSON report: one row per benchmark (see ``COLUMNS``) and the report's metadata.

    Rows that completed no request carry None for every rate and latency (GuideLLM reports zeros there).
    ``load_order`` ranks the rows by offered load: synchronous, then increasing rate or stream count, then
    throughput.

    Raises:
        ToolError: the file is missing, is not JSON, or is not a GuideLLM 0.8 report.
    """
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ToolError(f"Cannot read GuideLLM's report {path}: {exc}.",
                        fix="rerun the benchmark; the report is written when all benchmarks are done.") from None
    meta = report.get("metadata", {}) if isinstance(report, dict) else {}
    if meta.get("version") != REPORT_VERSION or "benchmarks" not in report:
        raise ToolError(
            f"{path} is not a GuideLLM 0.8 report (metadata.version={meta.get('version')!r}, expected "
            f"{REPORT_VERSION}).", fix="use the pinned guidellm==0.8.1 (`make setup`).")
    try:
        rows = [_row(b) for b in report["benchmarks"]]
    except (KeyError, TypeError) as exc:
        raise ToolError(f"GuideLLM's report {path} lacks an expected field ({exc}).",
                        fix="use the pinned guidellm==0.8.1 (`make setup`); other versions write other reports.",
                        ) from None
    order = sorted(range(len(rows)), key=lambda i: _load_key(rows[i], i))
    for rank, i in enumerate(order):
        rows[i]["load_order"] = rank
    meta = dict(meta)
    meta["warnings"] = [f"{_label(b['config']['strategy'])[0]}: {w.get('message', w)}"
                        for b in report["benchmarks"] for w in b.get("warnings") or []]
    return rows, meta


# ---------------------------------------------------------------- results


def _numeric(df: pd.DataFrame) -> pd.DataFrame:
    for col in df.columns:
        if col not in ("benchmark", "strategy"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


#: every metric :meth:`PerfResult.metrics` can report (the scorecard checks thresholds against these names)
METRICS: dict[str, dict] = {
    "max_output_tokens_per_s": {"unit": "tok/s", "direction": "higher", "doc": "best output throughput of the loads"},
    "max_requests_per_s": {"unit": "req/s", "direction": "higher", "doc": "best request rate of the loads"},
    "ttft_p99_ms_at_lowest_load": {"unit": "ms", "direction": "lower", "doc": "p99 time to first token, lowest load"},
    "ttft_p50_ms_at_lowest_load": {"unit": "ms", "direction": "lower", "doc": "p50 time to first token, lowest load"},
    "itl_p99_ms_at_lowest_load": {"unit": "ms", "direction": "lower", "doc": "p99 inter-token latency, lowest load"},
    "request_latency_p99_s_at_lowest_load": {"unit": "s", "direction": "lower", "doc": "p99 latency, lowest load"},
    "error_rate": {"unit": "fraction", "direction": "lower", "doc": "errored / finished requests"},
    "slo_capacity_requests_per_s": {"unit": "req/s", "direction": "higher", "doc": "measured load that keeps the SLO"},
    "slo_capacity_output_tokens_per_s": {"unit": "tok/s", "direction": "higher", "doc": "output tok/s at that load"},
    "cost_per_million_output_tokens_usd": {"unit": "USD/1M tok", "direction": "lower", "doc": "cost at SLO capacity"},
}


class PerfResult(LayerResult):
    """One ``guidellm run``: its parameters, command, files, and one row per benchmark.

    ``df`` has the columns in ``COLUMNS`` (rates in /s, latencies in ms except request latency in s).
    ``duration_s`` is the whole :func:`sweep` call, ``tool_duration_s`` the ``guidellm run`` subprocess. ``slo``
    and ``price_per_hour``/``accelerator`` are optional analysis settings; when set, :meth:`metrics` adds the
    capacity at the SLO and its cost.
    """

    layer: ClassVar[str] = "performance"

    profile: str
    benchmarks: list[dict] = []
    command: list[str] = []
    duration_s: float | None = None
    tool_duration_s: float | None = None
    report_json: str = REPORT_JSON
    report_html: str | None = REPORT_HTML
    log: str = LOG
    warnings: list[str] = []
    complete: bool = True
    slo: dict | None = None
    price_per_hour: float | None = None
    accelerator: str | None = None

    def frame(self) -> pd.DataFrame:
        return _numeric(pd.DataFrame(self.benchmarks, columns=COLUMNS))

    @property
    def command_line(self) -> str:
        return proc.shlex.join(self.command)

    @property
    def report_path(self) -> Path:
        return self.path / self.report_json

    @property
    def html_path(self) -> Path | None:
        return self.path / self.report_html if self.report_html else None

    def table(self) -> pd.DataFrame:
        """The columns a reader looks at first, in load order."""
        cols = ["benchmark", "requests_per_s", "output_tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms",
                "itl_p99_ms", "latency_p50_s", "latency_p99_s", "successful", "errored", "incomplete"]
        return measured(self.df)[cols].set_index("benchmark")

    def capacity(self, **limits) -> Capacity:
        """:func:`~evalkit.perf_analysis.slo_capacity` of this result (its own SLO unless limits are given)."""
        return slo_capacity(self, **limits)

    def metrics(self) -> list[Metric]:
        """Scorecard rows: peak throughput, latency at the lowest load, error rate; capacity and cost with an SLO."""
        df = self.df
        done = measured(df[df["successful"] > 0])
        n_total = int(df["successful"].sum() + df["errored"].sum())

        metric = functools.partial(catalog_metric, self.layer, METRICS)
        none_done = "no benchmark completed a request"
        peak_and_lowest = ("max_output_tokens_per_s", "max_requests_per_s", "ttft_p99_ms_at_lowest_load",
                           "ttft_p50_ms_at_lowest_load",
                           "itl_p99_ms_at_lowest_load", "request_latency_p99_s_at_lowest_load")
        out = []
        if done.empty:
            out += [metric(name, None, note=none_done) for name in peak_and_lowest]
        else:
            best = done.loc[done["output_tokens_per_s"].idxmax()]
            fastest = done.loc[done["requests_per_s"].idxmax()]
            low = done.iloc[0]
            at_low = f"at the lowest load, {low['benchmark']}"
            out += [
                metric("max_output_tokens_per_s", best["output_tokens_per_s"], len(done),
                       f"best of {len(done)} loads, at {best['benchmark']}"),
                metric("max_requests_per_s", fastest["requests_per_s"], len(done),
                       f"best of {len(done)} loads, at {fastest['benchmark']}"),
                metric("ttft_p99_ms_at_lowest_load", low["ttft_p99_ms"], int(low["successful"]), at_low),
                metric("ttft_p50_ms_at_lowest_load", low["ttft_p50_ms"], int(low["successful"]), at_low),
                metric("itl_p99_ms_at_lowest_load", low["itl_p99_ms"], int(low["successful"]), at_low),
                metric("request_latency_p99_s_at_lowest_load", low["latency_p99_s"], int(low["successful"]), at_low),
            ]
        errors = int(df["errored"].sum())
        out.append(metric("error_rate", errors / n_total if n_total else None, n_total,
                          f"{errors} of {n_total} finished requests failed" if n_total else none_done))
        if self.slo:
            cap = slo_capacity(self)
            out += [
                metric("slo_capacity_requests_per_s", cap.measured_requests_per_s, note=cap.sentence),
                metric("slo_capacity_output_tokens_per_s", cap.measured_output_tokens_per_s, note=cap.sentence),
            ]
            if self.price_per_hour is not None or self.accelerator is not None:
                price, basis = hourly_price(self.price_per_hour, self.accelerator)
                cost = (cost_per_million_output_tokens(cap.measured_output_tokens_per_s, price)
                        if cap.met and cap.measured_output_tokens_per_s else None)
                out.append(metric("cost_per_million_output_tokens_usd", cost,
                                  note=f"at the measured SLO capacity, {basis} {price:g} USD/h"
                                  if cost is not None else cap.sentence))
        return out


class TokenGridResult(LayerResult):
    """A prompt-tokens x output-tokens grid: one GuideLLM run per cell, in ``<run_dir>/p<P>_o<O>/``."""

    layer: ClassVar[str] = "performance"
    kind: ClassVar[str] = "performance-grid"  # not the layer's result: the scorecard never takes it

    profile: str
    prompt_tokens: list[int]
    output_tokens: list[int]
    cells: list[dict] = []

    def frame(self) -> pd.DataFrame:
        return _numeric(pd.DataFrame(self.cells, columns=["prompt_tokens", "output_tokens", "cell_dir", *COLUMNS]))

    def pivot(self, metric: str = "ttft_p50_ms") -> pd.DataFrame:
        """``metric`` as a table: prompt tokens down, output tokens across (mean over a cell's benchmarks)."""
        df = self.df
        if metric not in df.columns:
            raise ConfigError(f"No column {metric!r} in the grid.", fix=f"use one of: {', '.join(COLUMNS[4:])}.")
        return df.pivot_table(index="prompt_tokens", columns="output_tokens", values=metric, aggfunc="mean")

    def metrics(self) -> list[Metric]:
        """None: the grid is a lesson on token counts, not a gate (the sweep's result carries the metrics)."""
        return []


# ---------------------------------------------------------------- running


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
    progress = _Progress(echo=echo)
    died: list[str] = []
    stalled: list[str] = []

    def watch():
        message = srv.problem()
        if message:
            died.append(message)
            return message
        quiet = time.monotonic() - progress.last_output
        if quiet > stall_timeout_s:
            stalled.append(f"GuideLLM printed nothing for {quiet:.0f} s and was stopped.")
            return stalled[-1]
        return None

    ran = proc.run(command, env=env, cwd=run_dir, timeout_s=timeout_s, log_path=run_dir / LOG, echo=progress,
                   watch=watch)
    return ran, died, stalled


_LOST_TIMINGS = "No measurement start or end times available"


def _lost_timings(ran: proc.ProcResult) -> str | None:
    """Why a GuideLLM run that ended in its known timing race failed, or None for any other outcome.

    Now and then GuideLLM 0.8's scheduler hands a benchmark's requests to the report without their timestamps
    and the run ends with "Cannot compile GenerativeMetrics: No measurement start or end times available." even
    though the server answered; the same command run again completes.
    """
    if ran.ok or ran.timed_out or _LOST_TIMINGS not in ran.tail:
        return None
    return f"GuideLLM lost a benchmark's request timings (\"{_LOST_TIMINGS}\") and failed. "


def sweep(
    srv,
    *,
    profile: str = "sweep",
    rates: list[float] | float | None = None,
    prompt_tokens: int = 64,
    output_tokens: int = 32,
    prompt_tokens_stdev: float = 0,
    output_tokens_stdev: float = 0,
    data: str | Path | None = None,
    max_seconds: float | None = 5,
    max_requests: int | None = None,
    endpoint: str = "completions",
    sweep_size: int = 4,
    max_concurrency: int | None = None,
    slo: SLO | dict | None = None,
    price_per_hour: float | None = None,
    accelerator: str | None = None,
    workers: int | None = None,
    request_samples: int | None = 0,
    html: bool = True,
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
            ``poisson`` (request rates), ``throughput`` (as many as ``max_concurrency`` allows), or ``sweep``
            (synchronous, throughput, then ``sweep_size - 2`` constant rates between them).
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
                  max_concurrency=max_concurrency, workers=workers, request_samples=request_samples, html=html)
    p = _check_params(params, srv.max_model_len, srv.model)
    slo_dict = dataclasses.asdict(as_slo(slo)) if slo is not None else None
    if price_per_hour is not None or accelerator is not None:
        hourly_price(price_per_hour, accelerator)
    problem = srv.problem()
    if problem:
        raise ServerUnreachableError(f"{problem} GuideLLM was not started.",
                                     fix="start the server with `evalkit serve` (or check the base URL) and rerun.")
    run_dir = (Path(run_dir) if run_dir else new_run_dir(f"perf-{profile}")).resolve()  # GuideLLM runs inside it
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (REPORT_JSON, REPORT_HTML, RESULT_FILE):  # a rerun into the same folder must not leave old files
        (run_dir / stale).unlink(missing_ok=True)
    command = build_command(p, target=srv.root_url, model=srv.model, tokenizer=srv.tokenizer, run_dir=run_dir)
    workers = p["workers"] or default_workers()
    points = len(p["rates"] or []) or (p["sweep_size"] if profile == "sweep" else 1)
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
        lost = _lost_timings(ran) if not (stalled or died) else None
        if not (stalled or lost) or died or len(reruns) >= stall_retries:
            break
        # both are races in GuideLLM: a second run usually completes; the failed run's log is kept
        kept_log = run_dir / f"guidellm.{'stalled' if stalled else 'failed'}-{len(reruns) + 1}.log"
        (run_dir / LOG).replace(kept_log)
        for stale in (REPORT_JSON, REPORT_HTML):
            (run_dir / stale).unlink(missing_ok=True)
        why = stalled[0] + " " if stalled else lost
        reruns.append(f"{why}GuideLLM was rerun (its log: {kept_log.name}"
                      + ("; vllm-project/guidellm#431)." if stalled else ")."))
        if echo:
            print(f"[evalkit] {reruns[-1]}", flush=True)
    report = run_dir / REPORT_JSON
    result = None
    rows = None
    if report.exists():
        try:
            rows, meta = parse_report(report)
        except ToolError:
            if ran.ok and not died:
                raise
    if rows is not None:
        result = PerfResult(
            run_dir=str(run_dir), model=srv.model, base_url=srv.base_url, params=p, env=env_report(),
            tool_versions={"guidellm": meta.get("guidellm_version", "")}, profile=profile, benchmarks=rows,
            command=command, duration_s=round(time.monotonic() - started, 2),
            tool_duration_s=round(ran.duration_s, 2), warnings=reruns + meta["warnings"],
            complete=ran.ok, report_html=REPORT_HTML if (run_dir / REPORT_HTML).exists() else None,
            slo=slo_dict, price_per_hour=price_per_hour, accelerator=accelerator,
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
        saved = (" Its JSON report was read into result.json (complete=False)." if result
                 else " It wrote no JSON report.")
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
    names = ("profile", "rates", "prompt_tokens", "output_tokens", "prompt_tokens_stdev", "output_tokens_stdev",
             "data", "max_seconds", "max_requests", "endpoint", "sweep_size", "max_concurrency", "workers",
             "request_samples", "html")
    defaults = {name: inspect.signature(sweep).parameters[name].default for name in names}
    unknown = set(kwargs) - set(names)
    if unknown:
        raise ConfigError(f"command_for() does not take {', '.join(sorted(unknown))}.",
                          fix=f"use sweep's run parameters: {', '.join(names)}.")
    p = _check_params({**defaults, **kwargs}, srv.max_model_len, srv.model)
    return build_command(p, target=srv.root_url, model=srv.model, tokenizer=srv.tokenizer, run_dir=Path(run_dir))


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
            _check_params({**common, "prompt_tokens": pt, "output_tokens": ot}, srv.max_model_len, srv.model)
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


# ---------------------------------------------------------------- command line


def _cmd_perf(args) -> int:
    from evalkit.serve import serve

    try:
        rates = [float(r) for part in args.rate or [] for r in str(part).split(",") if r.strip()] or None
    except ValueError:
        raise ConfigError(f"--rate {' '.join(args.rate)}: not numbers.",
                          fix="give numbers, e.g. --rate 1 2 4.") from None
    if rates and args.profile == "concurrent":
        rates = [int(r) if r.is_integer() else r for r in rates]
    slo = SLO(args.ttft_p99_ms, args.itl_p99_ms) if (args.ttft_p99_ms or args.itl_p99_ms) else None
    srv = serve(args.model, base_url=args.base_url)
    result = sweep(
        srv, profile=args.profile, rates=rates, prompt_tokens=args.prompt_tokens, output_tokens=args.output_tokens,
        data=args.data, max_seconds=args.max_seconds, max_requests=args.max_requests, endpoint=args.endpoint,
        sweep_size=args.sweep_size, max_concurrency=args.max_concurrency, slo=slo,
        price_per_hour=args.price_per_hour, accelerator=args.accelerator, run_dir=args.run_dir, echo=not args.quiet,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(result.table().round(2).to_string())
    if slo:
        print(slo_capacity(result).sentence)
    print(f"result: {result.path / 'result.json'}\nGuideLLM report: {result.report_path}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``evalkit perf`` to the command line."""
    p = subparsers.add_parser("perf", help="load-test the server with GuideLLM (throughput, TTFT, ITL, capacity)")
    p.add_argument("--profile", choices=PROFILES, default="sweep")
    p.add_argument("--rate", nargs="+", default=None,
                   help="stream counts (concurrent) or requests/s (constant, poisson); space- or comma-separated")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--output-tokens", type=int, default=32)
    p.add_argument("--data", default=None, help="prompts file (.txt, .csv, .jsonl) instead of synthetic prompts")
    p.add_argument("--max-seconds", type=float, default=5.0, help="length of each benchmark")
    p.add_argument("--max-requests", type=int, default=None, help="stop each benchmark after this many requests")
    p.add_argument("--endpoint", choices=list(ENDPOINTS), default="completions")
    p.add_argument("--sweep-size", type=int, default=4, help="benchmarks in a sweep")
    p.add_argument("--max-concurrency", type=int, default=None, help="cap on requests in flight (sweep, throughput)")
    p.add_argument("--ttft-p99-ms", type=float, default=None, help="SLO: limit on p99 time to first token")
    p.add_argument("--itl-p99-ms", type=float, default=None, help="SLO: limit on p99 inter-token latency")
    p.add_argument("--price-per-hour", type=float, default=None, help="hourly price (USD) for the cost metric")
    p.add_argument("--accelerator", default=None, help=f"price from the table: {', '.join(PRICES.index)}")
    p.add_argument("--run-dir", default=None, help="folder for the reports (default: a new one under runs/)")
    p.add_argument("--base-url", default=None, help="attach to this OpenAI-compatible endpoint")
    p.add_argument("--model", default=None, help="preset name, model folder or hub id (default: settings)")
    p.add_argument("--quiet", action="store_true", help="do not print GuideLLM's progress")
    p.set_defaults(func=_cmd_perf)
