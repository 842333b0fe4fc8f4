"""The typed results of layer 1: :class:`PerfResult` (one sweep) and :class:`TokenGridResult` (a grid of runs).

Both save to and load from ``result.json``; :data:`METRICS` lists every scorecard metric a sweep can report.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import ClassVar

import pandas as pd

from evalkit import proc
from evalkit.errors import (
    ConfigError,
)
from evalkit.perf.analysis import Capacity, measured, slo_capacity
from evalkit.perf.cost import cost_per_million_output_tokens, hourly_price
from evalkit.perf.guidellm import LOG, REPORT_HTML, REPORT_JSON
from evalkit.result import FRACTION, LayerResult, Metric, MetricSpec, ToolRun, catalog_metric

COLUMNS = [
    "benchmark", "strategy", "rate", "concurrency", "requests_per_s", "output_tokens_per_s", "total_tokens_per_s",
    "concurrency_mean",
    "ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms",
    "itl_mean_ms", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms",
    "tpot_mean_ms", "tpot_p50_ms", "tpot_p90_ms", "tpot_p99_ms",
    "latency_mean_s", "latency_p50_s", "latency_p90_s", "latency_p99_s",
    "successful", "errored", "incomplete", "prompt_tokens_mean", "output_tokens_mean", "duration_s", "load_order",
]


def _numeric(df: pd.DataFrame) -> pd.DataFrame:
    for col in df.columns:
        if col not in ("benchmark", "strategy"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


#: every metric :meth:`PerfResult.metrics` can report (the scorecard checks thresholds against these names)
METRICS: dict[str, MetricSpec] = {
    "max_output_tokens_per_s": MetricSpec("tok/s", "higher", "best output throughput of the loads"),
    "max_requests_per_s": MetricSpec("req/s", "higher", "best request rate of the loads"),
    "ttft_p99_ms_at_lowest_load": MetricSpec("ms", "lower", "p99 time to first token, lowest load"),
    "ttft_p50_ms_at_lowest_load": MetricSpec("ms", "lower", "p50 time to first token, lowest load"),
    "itl_p99_ms_at_lowest_load": MetricSpec("ms", "lower", "p99 inter-token latency, lowest load"),
    "request_latency_p99_s_at_lowest_load": MetricSpec("s", "lower", "p99 latency, lowest load"),
    "error_rate": MetricSpec(FRACTION, "lower", "errored / finished requests"),
    "slo_capacity_requests_per_s": MetricSpec("req/s", "higher", "measured load that keeps the SLO"),
    "slo_capacity_output_tokens_per_s": MetricSpec("tok/s", "higher", "output tok/s at that load"),
    "cost_per_million_output_tokens_usd": MetricSpec("USD/1M tok", "lower", "cost at SLO capacity"),
    "goodput_capacity_requests_per_s": MetricSpec("req/s", "higher", "GuideLLM's goodput search at the SLO"),
}


def p99_words(requests) -> str:
    """What a p99 over ``requests`` requests is: a percentile from 100 on, else about the slowest one."""
    n = int(requests) if requests == requests else 0  # NaN: none
    return "p99" if n >= 100 else f"max of {n}"


class PerfResult(LayerResult):
    """One ``guidellm run``: its parameters, command, files, and one row per benchmark.

    ``df`` has the columns in ``COLUMNS`` (rates in /s, latencies in ms except request latency in s).
    ``duration_s`` is the whole :func:`sweep` call, ``tool_duration_s`` the ``guidellm run`` subprocess. ``slo``
    and ``price_per_hour``/``accelerator`` are optional analysis settings; when set, :meth:`metrics` adds the
    capacity at the SLO and its cost.
    """

    layer: ClassVar[str] = "performance"

    catalog: ClassVar[dict[str, MetricSpec]] = METRICS

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
    search: dict | None = None  # the goodput profile's conclusion (GuideLLM's report)
    goodput_search: dict | None = None  # a goodput search at this sweep's SLO (record_goodput): what it found

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

    def summary(self) -> pd.DataFrame:
        """The columns a reader looks at first, in load order.

        ``p99_is`` says what a request p99 is made of: with fewer than 100 requests it is (about) the slowest
        request of the load, "max of 6", not a 99th percentile anyone could repeat.
        """
        cols = ["benchmark", "requests_per_s", "output_tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms",
                "itl_p99_ms", "latency_p50_s", "latency_p99_s", "successful", "errored", "incomplete"]
        table = measured(self.df)[cols].set_index("benchmark")
        table["p99_is"] = [p99_words(n) for n in table["successful"]]
        return table

    def goodput(self):
        """What GuideLLM's goodput search found (:class:`~evalkit.perf.goodput.Goodput`; profile ``goodput``)."""
        from evalkit.perf.goodput import read_goodput

        return read_goodput(self)

    def guidellm_knee(self):
        """GuideLLM's throughput knee (:func:`~evalkit.perf.goodput.read_knee`; profile ``knee``)."""
        from evalkit.perf.goodput import read_knee

        return read_knee(self)

    def record_goodput(self, searched: PerfResult) -> PerfResult:
        """Keep what GuideLLM's goodput search ``searched`` found beside this sweep, in its result.json.

        The scorecard then shows the search's capacity next to this sweep's reading of the same SLO
        (``goodput_capacity_requests_per_s``); the search's own run keeps its benchmarks in its folder.
        """
        found = searched.goodput()
        self.goodput_search = {
            "streams": found.streams, "requests_per_s": found.requests_per_s,
            "output_tokens_per_s": found.output_tokens_per_s, "attainment": found.attainment,
            "stop_reason": found.stop_reason, "slo": searched.slo, "sentence": found.sentence,
            "run_dir": str(searched.path),
        }
        self.save()
        return self

    def capacity(self, **limits) -> Capacity:
        """:func:`~evalkit.perf.analysis.slo_capacity` of this result (its own SLO unless limits are given)."""
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
        if self.goodput_search:
            found = self.goodput_search
            out.append(metric("goodput_capacity_requests_per_s", found.get("requests_per_s"), note=found["sentence"]))
        return out

    def tool_runs(self) -> list[ToolRun]:
        return [ToolRun(list(self.command), self.tool_duration_s)] if self.command else []


class TokenGridResult(LayerResult):
    """A prompt-tokens x output-tokens grid: one GuideLLM run per cell, in ``<run_dir>/p<P>_o<O>/``."""

    layer: ClassVar[str] = "performance"

    catalog: ClassVar[dict[str, MetricSpec]] = METRICS
    kind: ClassVar[str] = "performance-grid"  # not the layer's result: the scorecard never takes it

    profile: str
    prompt_tokens: list[int]
    output_tokens: list[int]
    cells: list[dict] = []

    def frame(self) -> pd.DataFrame:
        return _numeric(pd.DataFrame(self.cells, columns=["prompt_tokens", "output_tokens", "cell_dir", *COLUMNS]))

    def pivot(self, metric: str = "ttft_p50_ms") -> pd.DataFrame:
        """``metric`` as a table: prompt tokens down, output tokens across (mean over a cell's benchmarks).

        Every cell of the grid keeps its place: one that measured nothing (no request finished in its time) is
        NaN, so that a ratio between cells is NaN too instead of one between the neighbours left.
        """
        df = self.df
        if metric not in df.columns:
            raise ConfigError(f"No column {metric!r} in the grid.", fix=f"use one of: {', '.join(COLUMNS[4:])}.")
        table = df.pivot_table(index="prompt_tokens", columns="output_tokens", values=metric, aggfunc="mean")
        return table.reindex(index=sorted(self.prompt_tokens), columns=sorted(self.output_tokens))

    def metrics(self) -> list[Metric]:
        """None: the grid is a lesson on token counts, not a gate (the sweep's result carries the metrics)."""
        return []
