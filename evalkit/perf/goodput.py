"""GuideLLM's own readings of a server's load (its ``goodput`` search and its ``knee`` fit), set beside evalkit's.

GuideLLM 0.8's goodput profile runs one concurrent load after another: 1, 2, 4, ... streams until a load fails
the objectives, then bisects between the last pass and the first failure. A load passes when at least
``attainment`` of its requests keep every objective (time to first token, and GuideLLM's ``tpot``: a request's
mean inter-token latency). evalkit's :func:`~evalkit.perf.analysis.slo_capacity` reads a sweep instead: the
highest load whose p99 TTFT and p99 ITL (over all tokens) keep the limits. The two answer the same question
with different loads (stream counts against request rates) and different tests (per request against per load),
so they are compared in requests per second: :func:`compare_capacity`.

GuideLLM's knee profile runs a concurrent load at five or more stream counts and fits two straight lines to
output throughput against streams: the knee is where the rising line meets a much flatter tail
(:func:`read_knee`). evalkit's :func:`~evalkit.perf.analysis.knee` reads any result with three or more loads
(a sweep's rates included, which GuideLLM's fit cannot take) and asks another question: where latency starts to
grow faster than throughput.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from evalkit.errors import ConfigError
from evalkit.perf.analysis import SLO, Knee, as_slo

STOP_REASONS = {
    "converged": "the search converged",
    "max_streams_reached": "every load up to the stream limit passed: the capacity is at least this",
    "max_probes_exhausted": "the search ran out of probes: the capacity is at least this",
    "objectives_unmet_at_minimum": "even one stream at a time fails the SLO",
    "indeterminate_at_minimum": "one stream failed on too few requests to be sure",
    "constraint_stopped_escalation": "a limit of the run stopped the search",
}


def goodput_objectives(slo: SLO | dict | None) -> dict:
    """GuideLLM's ``--metrics slo`` for an evalkit SLO (vLLM's names: ``ttft_ms``, ``tpot_ms``).

    Raises:
        ConfigError: no SLO: the goodput search has nothing to search for.
    """
    if slo is None:
        raise ConfigError("The goodput profile searches for the most streams that keep an SLO, and none was given.",
                          fix="pass slo=perf.SLO(ttft_p99_ms=..., itl_p99_ms=...) (or a dict of them).")
    slo = as_slo(slo)
    return {k: v for k, v in (("ttft_ms", slo.ttft_p99_ms), ("tpot_ms", slo.itl_p99_ms)) if v is not None}


@dataclass
class Goodput:
    """What GuideLLM's goodput search found.

    ``streams`` is the highest stream count that passed (None when none did); ``requests_per_s`` and
    ``output_tokens_per_s`` were measured at that load. ``probes`` holds every load it tried, in order, with the
    fraction of its requests that kept the SLO, its 95 % interval, and whether the interval decided it
    (``resolved``: with fewer than about 300 requests an attainment of 0.99 cannot be told from a lower one).
    """

    attainment: float
    streams: int | None
    failing_streams: int | None
    stop_reason: str | None
    requests_per_s: float | None = None
    output_tokens_per_s: float | None = None
    probes: list[dict] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return self.streams is not None

    @property
    def sentence(self) -> str:
        why = STOP_REASONS.get(self.stop_reason or "", self.stop_reason or "it stopped")
        tried = ", ".join(f"{p['streams']} ({'pass' if p['passed'] else 'fail'})" for p in self.probes)
        if not self.met:
            return (f"GuideLLM's goodput search found no load where {self.attainment:.0%} of requests keep the SLO: "
                    f"{why} (streams tried: {tried}).")
        rate = (f": {self.requests_per_s:.2f} requests/s, {self.output_tokens_per_s:.1f} output tokens/s"
                if self.requests_per_s is not None else "")
        unresolved = sum(not p.get("resolved", True) for p in self.probes)
        doubt = (f" {unresolved} of {len(self.probes)} loads had too few requests for their attainment's 95 % "
                 "interval to clear the target: read their pass or fail as that of the slowest requests."
                 if unresolved else "")
        return (f"GuideLLM's goodput search: {self.streams} stream(s) keep the SLO for {self.attainment:.0%} of "
                f"requests{rate}; {why} (streams tried: {tried}).{doubt}")

    def __str__(self) -> str:
        return self.sentence

    def to_frame(self) -> pd.DataFrame:
        cols = ["streams", "attainment", "attainment_lower", "attainment_upper", "determined_requests", "passed",
                "resolved", "goodput"]
        return pd.DataFrame([{c: p.get(c) for c in cols} for p in self.probes], columns=cols)


def read_goodput(result) -> Goodput:
    """The :class:`Goodput` of a :class:`~evalkit.perf.PerfResult` run with ``profile="goodput"``."""
    search = getattr(result, "search", None)
    if result.profile != "goodput" or not search:
        raise ConfigError(f"This result ran the {result.profile} profile, not GuideLLM's goodput search"
                          + ("" if result.profile != "goodput" else ", and its report holds no search conclusion")
                          + ".", fix="run perf.sweep(srv, profile='goodput', slo=...) first.")
    attainment = float(result.params.get("attainment", 0.99))
    best = search.get("best_passing_streams")
    reading = Goodput(attainment=attainment, streams=best, failing_streams=search.get("lowest_failing_streams"),
                      stop_reason=search.get("stop_reason"), probes=list(search.get("probes") or []))
    if best is not None:
        df = result.df
        rows = df[(df["strategy"] == "concurrent") & (df["concurrency"] == best) & (df["successful"] > 0)]
        if not rows.empty:
            row = rows.iloc[-1]
            reading.requests_per_s = float(row["requests_per_s"])
            reading.output_tokens_per_s = float(row["output_tokens_per_s"])
    return reading


@dataclass
class CapacityComparison:
    """evalkit's capacity from a sweep beside GuideLLM's goodput search, in requests per second."""

    sweep_requests_per_s: float | None
    goodput_requests_per_s: float | None
    sweep_sentence: str
    goodput_sentence: str

    @property
    def ratio(self) -> float | None:
        """The sweep's capacity over the search's (1.0: the same); None when either found none."""
        if not self.sweep_requests_per_s or not self.goodput_requests_per_s:
            return None
        return self.sweep_requests_per_s / self.goodput_requests_per_s

    @property
    def sentence(self) -> str:
        if self.ratio is None:
            found = [name for name, v in (("evalkit's sweep", self.sweep_requests_per_s),
                                          ("GuideLLM's search", self.goodput_requests_per_s)) if v]
            return ("Nothing to compare: " + (f"only {found[0]} found a capacity." if found else
                                              "neither found a load that keeps the SLO."))
        return (f"Capacity at the SLO: evalkit's sweep {self.sweep_requests_per_s:.2f} requests/s, GuideLLM's goodput "
                f"search {self.goodput_requests_per_s:.2f} requests/s (ratio {self.ratio:.2f}; within 25 % counts "
                "as agreement for loads this short).")

    def __str__(self) -> str:
        return self.sentence


def compare_capacity(sweep_result, goodput_result) -> CapacityComparison:
    """The measured capacity of a sweep (at its own SLO) beside the goodput search's, in requests/s."""
    cap = sweep_result.capacity()
    good = read_goodput(goodput_result)
    return CapacityComparison(cap.measured_requests_per_s if cap.met else None, good.requests_per_s,
                              cap.sentence, good.sentence)


def read_knee(result) -> Knee:
    """GuideLLM's throughput knee of a :class:`~evalkit.perf.PerfResult` run with ``profile="knee"``.

    ``benchmark`` is the first measured load at or past the knee (``concurrent@N``) with its throughput;
    the sentence gives GuideLLM's estimate in streams and, when it found none, GuideLLM's reason.
    """
    search = getattr(result, "search", None)
    if result.profile != "knee" or not search:
        raise ConfigError(f"This result ran the {result.profile} profile, not GuideLLM's knee profile"
                          + ("" if result.profile != "knee" else ", and its report holds no knee conclusion") + ".",
                          fix="run perf.sweep(srv, profile='knee', rates=[1, 2, 4, 8, 16]) first.")
    fit = (search.get("final") or {}).get("throughput") or {}
    if fit.get("status") != "ok":
        return Knee(False, f"GuideLLM's knee fit found no knee: {fit.get('reason', 'no conclusion')}.",
                    latency_metric="")  # a throughput fit: no latency
    at = fit.get("saturation_concurrency")
    df = result.df
    rows = df[(df["concurrency"] == at) & (df["successful"] > 0)]
    row = rows.iloc[-1] if not rows.empty else None
    rate = f": {row['requests_per_s']:.2f} requests/s, {row['output_tokens_per_s']:.1f} output tokens/s there" \
        if row is not None else ""
    return Knee(True, f"GuideLLM's knee fit: throughput stops rising at about {fit['knee']:.1f} streams (first "
                      f"measured load past it: {at:g} streams{rate}; the tail rises at {fit['slope_ratio']:.2f} of "
                      "the slope before it).",
                benchmark=f"concurrent@{at:g}",
                requests_per_s=float(row["requests_per_s"]) if row is not None else None,
                output_tokens_per_s=float(row["output_tokens_per_s"]) if row is not None else None,
                latency_metric="")  # a throughput fit: no latency
