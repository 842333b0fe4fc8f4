"""What a performance sweep means: capacity at a latency SLO and the knee of the curve.

Everything here works on the per-benchmark table of :class:`evalkit.perf.PerfResult` (``result.df``), so it is
plain arithmetic with no tool and no server. The capacity at an SLO keeps what was measured apart from what is
interpolated between two measured loads, and says so in words when no measured load meets the SLO.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from evalkit.errors import ConfigError

#: how the latency limits of an SLO are named in sentences
LIMIT_NAMES = {"ttft_p99_ms": "p99 TTFT", "itl_p99_ms": "p99 ITL"}


@dataclass(frozen=True)
class SLO:
    """Latency objectives a load must keep: p99 time to first token and p99 inter-token latency, in ms."""

    ttft_p99_ms: float | None = None
    itl_p99_ms: float | None = None
    max_error_rate: float = 0.0

    def __post_init__(self):
        if self.ttft_p99_ms is None and self.itl_p99_ms is None:
            raise ConfigError("An SLO needs at least one limit.", fix="give ttft_p99_ms=..., itl_p99_ms=..., or both.")
        for name in ("ttft_p99_ms", "itl_p99_ms"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"SLO limit {name}={value} must be > 0 ms.", fix=f"give {name} a positive number.")
        if not 0 <= self.max_error_rate < 1:
            raise ConfigError(f"max_error_rate={self.max_error_rate} must be in [0, 1).",
                              fix="give a fraction such as 0.01 (1 % of requests may fail).")

    @property
    def limits(self) -> dict[str, float]:
        """Column name of the result table -> limit, for the limits that are set."""
        return {k: v for k, v in (("ttft_p99_ms", self.ttft_p99_ms), ("itl_p99_ms", self.itl_p99_ms)) if v}

    def describe(self) -> str:
        return " and ".join(f"{LIMIT_NAMES[k]} <= {v:g} ms" for k, v in self.limits.items())


def as_slo(slo: SLO | dict | None = None, ttft_p99_ms: float | None = None, itl_p99_ms: float | None = None) -> SLO:
    """An :class:`SLO` from an SLO, a dict of its fields, or the two limits."""
    if isinstance(slo, SLO):
        return slo
    if isinstance(slo, dict):
        return SLO(**slo)
    return SLO(ttft_p99_ms=ttft_p99_ms, itl_p99_ms=itl_p99_ms)


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in increasing offered load (see ``load_order``), with the index reset."""
    return df.sort_values("load_order", kind="stable").reset_index(drop=True)


def _error_rate(row) -> float:
    done = row["successful"] + row["errored"]
    return row["errored"] / done if done else 0.0


def _meets(row, slo: SLO) -> bool:
    if not row["successful"]:
        return False
    if _error_rate(row) > slo.max_error_rate:
        return False
    return all(row[col] <= limit for col, limit in slo.limits.items())


def _frame(result) -> pd.DataFrame:
    return result if isinstance(result, pd.DataFrame) else result.df


@dataclass
class Capacity:
    """The highest measured load that keeps an SLO, and the interpolated point past it.

    ``measured_*`` fields come from a benchmark that ran; ``interpolated_*`` fields are a straight-line estimate
    between that benchmark and the next, failing one, and were never measured. ``met`` is False when no
    measured load keeps the SLO: then every capacity field is None and ``sentence`` says so.
    """

    slo: SLO
    met: bool
    sentence: str
    measured_benchmark: str | None = None
    measured_requests_per_s: float | None = None
    measured_output_tokens_per_s: float | None = None
    measured_ttft_p99_ms: float | None = None
    measured_itl_p99_ms: float | None = None
    interpolated_requests_per_s: float | None = None
    interpolated_output_tokens_per_s: float | None = None
    interpolated_between: tuple[str, str] | None = None
    limited_by: str | None = None
    all_loads_meet: bool = False
    checks: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        return self.sentence

    def to_frame(self) -> pd.DataFrame:
        """One row for the measured capacity and one for the interpolated estimate (when there is one)."""
        rows = []
        if self.met:
            rows.append({"kind": "measured", "benchmark": self.measured_benchmark,
                         "requests_per_s": self.measured_requests_per_s,
                         "output_tokens_per_s": self.measured_output_tokens_per_s,
                         "ttft_p99_ms": self.measured_ttft_p99_ms, "itl_p99_ms": self.measured_itl_p99_ms})
        if self.interpolated_requests_per_s is not None:
            low, high = self.interpolated_between
            rows.append({"kind": "interpolated (not measured)", "benchmark": f"between {low} and {high}",
                         "requests_per_s": self.interpolated_requests_per_s,
                         "output_tokens_per_s": self.interpolated_output_tokens_per_s,
                         "ttft_p99_ms": float("nan"), "itl_p99_ms": float("nan")})
        return pd.DataFrame(rows, columns=["kind", "benchmark", "requests_per_s", "output_tokens_per_s",
                                           "ttft_p99_ms", "itl_p99_ms"])

    def checks_frame(self) -> pd.DataFrame:
        """Every measured load with its p99 latencies and whether it keeps the SLO."""
        return pd.DataFrame(self.checks)


def slo_capacity(
    result,
    ttft_p99_ms: float | None = None,
    itl_p99_ms: float | None = None,
    *,
    slo: SLO | dict | None = None,
    max_error_rate: float | None = None,
) -> Capacity:
    """The highest measured load that keeps the SLO, with every lower load keeping it too.

    Loads are taken in increasing offered load (synchronous, then rates or stream counts, then throughput). A
    load keeps the SLO when its p99 TTFT and p99 ITL are within the limits and at most ``max_error_rate`` of its
    requests failed. The capacity is the last load before the first one that breaks the SLO: a higher load that
    happens to pass again (noise in short runs) does not raise it, and the sentence names it. Loads that
    completed no request were not measured and are left out (and named). Between the capacity and the first
    failing load, the point where the first limit is crossed is interpolated linearly and labelled as such.

    Args:
        result: a :class:`~evalkit.perf.PerfResult` or its ``df``.
        ttft_p99_ms: limit on p99 time to first token (ms); None = no limit.
        itl_p99_ms: limit on p99 inter-token latency (ms); None = no limit.
        slo: an :class:`SLO` (or dict) instead of the two limits; default: the result's own ``slo``.
        max_error_rate: fraction of requests allowed to fail at a load (default: the SLO's, 0).

    Returns:
        A :class:`Capacity`; ``met`` is False, with a sentence saying why, when the lowest measured load already
        breaks the SLO (or nothing was measured).

    Raises:
        ConfigError: no limit given and the result carries no SLO, or the result has no benchmarks.
    """
    if slo is None and ttft_p99_ms is None and itl_p99_ms is None:
        slo = getattr(result, "slo", None)
        if slo is None:
            raise ConfigError("No SLO to check.", fix="pass ttft_p99_ms=... and/or itl_p99_ms=... (milliseconds).")
    slo = as_slo(slo, ttft_p99_ms, itl_p99_ms)
    if max_error_rate is not None:
        slo = SLO(slo.ttft_p99_ms, slo.itl_p99_ms, max_error_rate)
    df = _frame(result)
    if df.empty:
        raise ConfigError("The result has no benchmarks to check against the SLO.", fix="run a sweep first.")
    everything = measured(df)
    checks = [
        {"benchmark": row["benchmark"], "requests_per_s": row["requests_per_s"], "ttft_p99_ms": row["ttft_p99_ms"],
         "itl_p99_ms": row["itl_p99_ms"], "error_rate": _error_rate(row), "successful": int(row["successful"]),
         "meets_slo": _meets(row, slo) if row["successful"] else None}
        for _, row in everything.iterrows()
    ]
    skipped = list(everything.loc[everything["successful"] == 0, "benchmark"])
    left_out = (f" Left out, as they completed no request in their time: {', '.join(skipped)}." if skipped else "")
    rows = everything[everything["successful"] > 0].reset_index(drop=True)
    flags = [_meets(row, slo) for _, row in rows.iterrows()]
    first_fail = flags.index(False) if False in flags else len(rows)
    if first_fail == 0:
        return Capacity(slo=slo, met=False, sentence=_no_capacity_sentence(rows, slo, flags) + left_out, checks=checks)

    row = rows.iloc[first_fail - 1]
    cap = Capacity(
        slo=slo, met=True, sentence="", measured_benchmark=row["benchmark"],
        measured_requests_per_s=float(row["requests_per_s"]),
        measured_output_tokens_per_s=float(row["output_tokens_per_s"]),
        measured_ttft_p99_ms=float(row["ttft_p99_ms"]), measured_itl_p99_ms=float(row["itl_p99_ms"]),
        checks=checks,
    )
    head = (f"Measured capacity at {slo.describe()}: {cap.measured_requests_per_s:.2f} requests/s "
            f"({cap.measured_output_tokens_per_s:.1f} output tokens/s) at {row['benchmark']}")
    if first_fail == len(rows):
        cap.all_loads_meet = True
        cap.sentence = (f"{head}. Every measured load kept the SLO, so the true capacity is at least this: "
                        f"measure higher loads (more streams, higher rates) to find the limit.{left_out}")
        return cap
    nxt = rows.iloc[first_fail]
    again = [r["benchmark"] for (_, r), ok in zip(rows.iterrows(), flags, strict=True) if ok][first_fail:]
    noisy = (f" Higher loads kept the SLO again ({', '.join(again)}) after {nxt['benchmark']} broke it: the runs "
             "are too short or the machine too busy for a steady p99; rerun with longer benchmarks before "
             "trusting either." if again else "")
    cap.sentence = head + "."
    estimate = _interpolate(row, nxt, slo)
    if estimate is None:
        cap.sentence += (f" The next load, {nxt['benchmark']}, broke the SLO without a latency crossing to "
                         "interpolate (on errors, or without delivering more requests/s)." + noisy + left_out)
        return cap
    t, limited_by = estimate
    cap.limited_by = limited_by
    cap.interpolated_between = (row["benchmark"], nxt["benchmark"])
    cap.interpolated_requests_per_s = float(row["requests_per_s"] + t * (nxt["requests_per_s"] - row["requests_per_s"]))
    cap.interpolated_output_tokens_per_s = float(
        row["output_tokens_per_s"] + t * (nxt["output_tokens_per_s"] - row["output_tokens_per_s"]))
    cap.sentence += (f" Interpolated (not measured) between {row['benchmark']} and {nxt['benchmark']}: about "
                     f"{cap.interpolated_requests_per_s:.2f} requests/s "
                     f"({cap.interpolated_output_tokens_per_s:.1f} output tokens/s), where {limited_by} reaches its "
                     "limit." + noisy + left_out)
    return cap


def _interpolate(low, high, slo: SLO) -> tuple[float, str] | None:
    """Fraction of the way from ``low`` to ``high`` where the first limit is reached, and that limit's name."""
    if not high["requests_per_s"] > low["requests_per_s"]:
        return None
    crossings = []
    for col, limit in slo.limits.items():
        a, b = float(low[col]), float(high[col])
        if b > limit and b > a:
            crossings.append(((limit - a) / (b - a), LIMIT_NAMES[col]))
    if not crossings:  # the next load failed on errors only: no latency crossing to interpolate
        return None
    return min(crossings)


def _violations(row, slo: SLO) -> str:
    out = [f"{LIMIT_NAMES[col]} {row[col]:.1f} ms > {limit:g} ms" for col, limit in slo.limits.items()
           if row[col] > limit]
    if _error_rate(row) > slo.max_error_rate:
        out.append(f"error rate {_error_rate(row):.1%} > {slo.max_error_rate:.1%}")
    return ", ".join(out)


def _no_capacity_sentence(done: pd.DataFrame, slo: SLO, flags: list[bool]) -> str:
    if done.empty:
        return (f"No measured load meets the SLO ({slo.describe()}): no benchmark completed a single request, so "
                "there is no capacity to report. Check the server log, or give each load more time (max_seconds).")
    first = done.iloc[0]
    why = (f"the lowest load, {first['benchmark']} at {first['requests_per_s']:.2f} requests/s, had "
           f"{_violations(first, slo)}")
    passing = [b for b, ok in zip(done["benchmark"], flags, strict=True) if ok]
    if passing:
        return (f"There is no capacity to report at {slo.describe()}: {why}. Higher loads kept the SLO "
                f"({', '.join(passing)}), which points at noise: rerun with longer benchmarks before trusting it.")
    return (f"No measured load meets the SLO ({slo.describe()}), so there is no capacity to report. Even {why}. "
            "Relax the limits, send shorter prompts or outputs, or serve on faster hardware.")


MIN_KNEE_GAIN = 0.05  # a knee must lie at least 5 % of the scaled range below the straight line


@dataclass
class Knee:
    """The knee of the throughput-latency curve: past it, latency grows faster than throughput."""

    found: bool
    sentence: str
    benchmark: str | None = None
    requests_per_s: float | None = None
    output_tokens_per_s: float | None = None
    latency: float | None = None
    latency_metric: str = "latency_p50_s"

    def __str__(self) -> str:
        return self.sentence


def knee(result, latency: str = "latency_p50_s", throughput: str = "output_tokens_per_s") -> Knee:
    """Find the knee of latency against throughput (the Kneedle rule on the measured points).

    Both axes are scaled to [0, 1] between their lowest and highest measured values; on a curve where latency
    rises slowly and then steeply, the knee is the point farthest below the straight line between the ends,
    i.e. the largest ``throughput_scaled - latency_scaled``; a gap under ``MIN_KNEE_GAIN`` (0.05) is no knee.
    Loads that completed no request are left out.

    Why evalkit computes this itself: GuideLLM's own knee (its ``knee`` profile, read by
    :meth:`~evalkit.perf.PerfResult.guidellm_knee`) fits throughput against stream counts and needs a concurrent
    run of five or more; a sweep's loads are request rates, and the question here is another one: where each
    extra unit of throughput starts to cost more latency.

    Args:
        result: a :class:`~evalkit.perf.PerfResult` or its ``df``.
        latency: the latency column (e.g. ``latency_p50_s``, ``ttft_p99_ms``).
        throughput: the throughput column (``output_tokens_per_s`` or ``requests_per_s``).

    Returns:
        A :class:`Knee`; ``found`` is False, with a sentence saying why, when fewer than three loads completed
        requests or the curve is flat.
    """
    df = _frame(result)
    for col in (latency, throughput):
        if col not in df.columns:
            raise ConfigError(f"No column {col!r} in the result table.", fix=f"use one of: {', '.join(df.columns)}.")
    pts = df[df["successful"] > 0].sort_values(throughput).reset_index(drop=True)
    if len(pts) < 3:
        return Knee(False, f"A knee needs at least three loads that completed requests; this result has {len(pts)}.",
                    latency_metric=latency)
    x, y = pts[throughput].astype(float), pts[latency].astype(float)
    if x.max() == x.min() or y.max() == y.min():
        return Knee(False, "Throughput or latency did not change across the loads: the curve has no knee.",
                    latency_metric=latency)
    gain = (x - x.min()) / (x.max() - x.min()) - (y - y.min()) / (y.max() - y.min())
    i = int(gain.idxmax())
    row = pts.iloc[i]
    if gain.iloc[i] < MIN_KNEE_GAIN or i in (0, len(pts) - 1):
        return Knee(False, "Latency grew at least as fast as throughput from the first load on: no knee stands out.",
                    latency_metric=latency)
    return Knee(
        True,
        f"The knee is at {row['benchmark']}: {row['requests_per_s']:.2f} requests/s, "
        f"{row['output_tokens_per_s']:.1f} output tokens/s, {latency} = {row[latency]:.3g}. "
        "Past it, each extra unit of throughput costs more latency.",
        benchmark=row["benchmark"], requests_per_s=float(row["requests_per_s"]),
        output_tokens_per_s=float(row["output_tokens_per_s"]), latency=float(row[latency]), latency_metric=latency,
    )
