"""Figures for layer 1, performance: latency against throughput, latency percentiles per load, the token grid.

Latency against throughput carries the SLO limits and the capacity; the grid is drawn as heatmaps. Each function
takes a result (or its table) and returns a matplotlib Figure; none of them runs a tool. Figures
are closed in pyplot before they are returned, so a notebook shows each one once (as the cell's value).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from evalkit.perf.analysis import SLO, Capacity, Knee, as_slo, measured

_NAMES = {"ttft": "time to first token (TTFT)", "itl": "inter-token latency (ITL)"}
_X = {"requests_per_s": "throughput (requests/s)", "output_tokens_per_s": "throughput (output tokens/s)"}


def _table(result) -> pd.DataFrame:
    df = result if isinstance(result, pd.DataFrame) else result.df
    return measured(df[df["successful"] > 0])


def _done(fig):
    fig.tight_layout()
    plt.close(fig)
    return fig


def throughput_latency(
    result,
    slo: SLO | dict | None = None,
    capacity: Capacity | None = None,
    knee: Knee | None = None,
    x: str = "requests_per_s",
):
    """p50 and p99 TTFT and ITL against throughput, one panel each, with the SLO limits as horizontal lines.

    Args:
        result: a PerfResult or its ``df``.
        slo: limits to draw (default: the result's own SLO, if it has one).
        capacity: a Capacity to mark: a solid line where it was measured, a dotted one where interpolated.
        knee: a Knee to mark.
        x: ``requests_per_s`` or ``output_tokens_per_s``.
    """
    df = _table(result)
    slo = slo if slo is not None else getattr(result, "slo", None)
    slo = as_slo(slo) if slo is not None else None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("ttft", "itl"), strict=True):
        for q, style in (("p50", "o--"), ("p99", "o-")):
            ax.plot(df[x], df[f"{key}_{q}_ms"], style, label=f"{q}")
        for _, row in df.iterrows():
            ax.annotate(row["benchmark"], (row[x], row[f"{key}_p99_ms"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        limit = slo.limits.get(f"{key}_p99_ms") if slo else None
        if limit:
            ax.axhline(limit, color="crimson", linestyle="--", linewidth=1.2, label=f"SLO: p99 <= {limit:g} ms")
        if capacity is not None and capacity.met:
            cap_x = capacity.measured_requests_per_s if x == "requests_per_s" else capacity.measured_output_tokens_per_s
            ax.axvline(cap_x, color="seagreen", linewidth=1.2, label="capacity (measured)")
            if capacity.interpolated_requests_per_s is not None:
                est = (capacity.interpolated_requests_per_s if x == "requests_per_s"
                       else capacity.interpolated_output_tokens_per_s)
                ax.axvline(est, color="seagreen", linestyle=":", linewidth=1.2, label="capacity (interpolated)")
        if knee is not None and knee.found:
            knee_x = knee.requests_per_s if x == "requests_per_s" else knee.output_tokens_per_s
            ax.axvline(knee_x, color="darkorange", linestyle="-.", linewidth=1, label="knee")
        ax.set_xlabel(_X.get(x, x))
        ax.set_ylabel("ms")
        ax.set_title(_NAMES[key])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if df.empty:
        fig.suptitle("no load completed a request")
    return _done(fig)


def latency_percentiles(result):
    """TTFT and ITL mean, p50, p90 and p99 for each load, in increasing load: how far the tail sits from the middle."""
    df = _table(result)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    pos = np.arange(len(df))
    for ax, key in zip(axes, ("ttft", "itl"), strict=True):
        for q, marker in (("mean", "s"), ("p50", "o"), ("p90", "^"), ("p99", "v")):
            ax.plot(pos, df[f"{key}_{q}_ms"], marker=marker, label=q)
        ax.set_xticks(pos, df["benchmark"], rotation=30, ha="right", fontsize=8)
        ax.set_xlabel("load (increasing)")
        ax.set_ylabel("ms")
        ax.set_title(_NAMES[key])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _done(fig)


def token_grid_heatmap(grid, metrics: tuple[str, ...] = ("ttft_p50_ms", "latency_p50_s")):
    """One heatmap per metric: prompt tokens down, output tokens across, the value written in each cell."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        table = grid.pivot(metric)
        image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", aspect="auto")
        ax.set_xticks(range(table.shape[1]), table.columns)
        ax.set_yticks(range(table.shape[0]), table.index)
        ax.set_xlabel("output tokens")
        ax.set_ylabel("prompt tokens")
        ax.set_title(metric)
        values = table.to_numpy(dtype=float)
        middle = np.nanmean(values) if np.isfinite(values).any() else 0.0
        for (i, j), value in np.ndenumerate(values):
            finite = np.isfinite(value)
            ax.text(j, i, f"{value:.3g}" if finite else "no request\ncompleted", ha="center", va="center",
                    fontsize=9, color="black" if not finite or value > middle else "white")
        fig.colorbar(image, ax=ax)
    return _done(fig)


def report_sections(result) -> list:
    """The report's section for a performance result: latency against throughput, percentiles, the table."""
    return [throughput_latency(result), latency_percentiles(result), result.summary()]


def workloads(results: dict, ax=None):
    """TTFT p99 and ITL p99 against output throughput, one line per use-case workload (:func:`run_workloads`)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4)) if ax is None else (ax[0].figure, ax)
    for name, result in results.items():
        df = measured(result.df)
        tokens = f"{result.params['prompt_tokens']}/{result.params['output_tokens']}"
        for axis, column in zip(axes, ("ttft_p99_ms", "itl_p99_ms"), strict=True):
            axis.plot(df["output_tokens_per_s"], df[column], marker="o", label=f"{name} ({tokens})")
    for axis, title in zip(axes, ("time to first token, p99 (ms)", "inter-token latency, p99 (ms)"), strict=True):
        axis.set_xlabel("output tokens/s")
        axis.set_ylabel(title)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8, title="workload (prompt/output tokens)")
    fig.suptitle("Use-case workloads: what each load costs in latency")
    fig.tight_layout()
    return _done(fig) if ax is None else fig
