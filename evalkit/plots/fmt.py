"""Figures for layer 2, format: parse and schema pass rates with and without structured outputs, output lengths.

Each function takes a :class:`evalkit.fmt.FormatResult` (or the table :func:`evalkit.fmt.side_by_side` builds) and
returns a matplotlib Figure; none of them runs a tool. A rate with nothing to judge (no schema in a set) is
written as "n/a" instead of drawn as 0. Figures are closed in pyplot before they are returned, so a notebook
shows each one once (as the cell's value).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt

COLORS = {False: "tab:gray", True: "tab:blue"}
MODE = {False: "plain", True: "structured"}


def _na(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _done(fig):
    fig.tight_layout()
    plt.close(fig)
    return fig


def rates(result, ax=None):
    """Parse rate and schema pass rate per set, plain beside structured, with n on each bar."""
    table = result.summary()
    bars = []  # (label, plain value/n, structured value/n)
    for name in dict.fromkeys(table["set"]):
        part = table[table["set"] == name].set_index("structured")
        bars.append((f"{name}\nparses", {m: (part["parse_rate"].get(m), part["n"].get(m)) for m in part.index}))
        if part["schema_n"].sum() > 0:
            bars.append((f"{name}\nmatches schema",
                         {m: (part["schema_pass_rate"].get(m), part["schema_n"].get(m)) for m in part.index}))
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.2))
    modes = sorted({m for _, values in bars for m in values})
    width = 0.8 / max(len(modes), 1)
    for i, (_, values) in enumerate(bars):
        for j, mode in enumerate(modes):
            value, n = values.get(mode, (None, 0))
            x = i + (j - (len(modes) - 1) / 2) * width
            if _na(value):
                ax.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=8)
                continue
            ax.bar(x, value, width, color=COLORS[mode], label=MODE[mode] if i == 0 else None)
            ax.text(x, value + 0.02, f"{value:.0%}\nn={n}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=8)
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("fraction of outputs")
    ax.set_title(f"JSON compliance, {result.model} (max_tokens={result.params.get('max_tokens')})")
    ax.legend(loc="upper right", fontsize=8)
    return _done(fig)


def lengths(result, ax=None):
    """Output tokens per test, plain and structured; the dashed line is max_tokens (a bar there was cut off)."""
    df = result.df
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3))
    labels = []
    for i, ((name, mode), group) in enumerate(df.groupby(["set", "structured"], sort=False)):
        tokens = group["completion_tokens"].fillna(0).to_numpy()
        ok = (group["parsed"] == True).to_numpy()  # noqa: E712 - None means "not checked"
        xs = [i + (k - (len(tokens) - 1) / 2) * min(0.8 / max(len(tokens), 1), 0.1) for k in range(len(tokens))]
        ax.scatter([x for x, good in zip(xs, ok, strict=True) if good], tokens[ok], color="tab:green", s=14,
                   label="parsed" if i == 0 else None)
        ax.scatter([x for x, good in zip(xs, ok, strict=True) if not good], tokens[~ok], color="tab:red", s=14,
                   marker="x", label="did not parse" if i == 0 else None)
        labels.append(f"{name}\n{MODE[mode]}")
    limit = result.params.get("max_tokens")
    ax.set_xlim(-0.5, len(labels) - 0.5)
    if limit:
        ax.axhline(limit, color="black", linestyle="--", linewidth=0.8)
        ax.text(len(labels) - 0.5, limit, f"max_tokens={limit} ", va="bottom", ha="right", fontsize=8)
        ax.set_ylim(0, limit * 1.15)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("output tokens")
    ax.set_title("Output length: runaway outputs stop only at max_tokens")
    ax.legend(loc="lower right", fontsize=8)
    return _done(fig)


def load(table, ax=None):
    """Parse rate (bars) and mean latency (dots, right axis) per run of :func:`evalkit.fmt.side_by_side`."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.2))
    groups = list(dict.fromkeys(zip(table["set"], table["structured"], strict=True)))
    runs = list(dict.fromkeys(table["run"]))
    width = min(0.8 / max(len(runs), 1), 0.3)
    right = ax.twinx()
    cmap = plt.get_cmap("viridis", max(len(runs), 2))
    for j, run in enumerate(runs):
        part = table[table["run"] == run]
        for i, (name, mode) in enumerate(groups):
            row = part[(part["set"] == name) & (part["structured"] == mode)]
            if row.empty:
                continue
            x = i + (j - (len(runs) - 1) / 2) * width
            value = row["parse_rate"].iloc[0]
            concurrency = row["concurrency"].iloc[0]
            ax.bar(x, 0 if _na(value) else value, width, color=cmap(j),
                   label=f"{run} (concurrency {concurrency})" if i == 0 else None)
            right.plot(x, row["latency_ms"].iloc[0] / 1000, "o", color="black", markersize=4)
    ax.set_xticks(range(len(groups)), [f"{n}\n{MODE[m]}" for n, m in groups], fontsize=8)
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("parse rate (bars)")
    right.set_ylabel("mean latency, s (dots)")
    right.set_ylim(bottom=0)
    ax.set_title("Compliance under load: same checks, more requests in flight")
    ax.legend(loc="upper left", fontsize=8)
    return _done(fig)


def report_sections(result) -> list:
    """The report's section for a format result: pass rates with and without structured outputs, the summary."""
    return [rates(result), result.summary()]
