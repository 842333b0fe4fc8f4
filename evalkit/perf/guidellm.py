"""The GuideLLM adapter: the only module that knows ``guidellm run``'s command line and its JSON report.

It builds the argument list (GuideLLM 0.8.1, against ``srv.root_url`` with the model's own tokenizer, offline),
filters GuideLLM's output down to its progress lines, recognises its known failures, and reads its report into one
row per benchmark.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import yaml

from evalkit import proc
from evalkit.errors import (
    ToolError,
)
from evalkit.perf.args import DATA_KINDS, DEFAULT_MAX_CONCURRENCY, ENDPOINTS, STDEV_SPAN
from evalkit.settings import get_settings

REPORT_JSON, REPORT_HTML, LOG = "benchmarks.json", "benchmarks.html", "guidellm.log"
PARTIAL_JSON = "benchmarks.partial.json"  # the benchmarks finished so far (guidellm_partial.py)
PARTIAL_LAUNCHER = Path(__file__).with_name("guidellm_partial.py")
# the goodput search: at most 64 streams and 8 probes, stopped when the bracket is within 25 % of its lower end
GOODPUT_MAX_STREAMS, GOODPUT_MAX_PROBES, GOODPUT_TOLERANCE = 64, 8, 0.25
# GuideLLM 0.8.1 sizes a warm-up of N requests from the benchmark's request limit (TransientPhaseConfig.
# compute_limits reads state.progress.total_requests): a benchmark limited by time alone has none, and such a
# warm-up silently leaves nothing out. A time-limited benchmark given a warm-up in requests therefore also gets
# this request limit, which no load here reaches.
UNBOUNDED_REQUESTS = 1_000_000
# evalkit's warm-up of a time-limited benchmark: its first share of the seconds. GuideLLM counts a time to first
# token only when that first token arrives after the warm-up, so the first wave's waits for the load generator's
# start are left out at every stream count (on a 2-core machine first tokens came 2.6-5.3 s into a load).
WARMUP_SHARE = 0.3
REPORT_VERSION = 2  # GuideLLM 0.8's report format (metadata.version)
_DISTRIBUTIONS = {  # our column prefix -> GuideLLM metric
    "ttft": "time_to_first_token_ms",
    "itl": "inter_token_latency_ms",
    "tpot": "time_per_output_token_ms",
    "latency": "request_latency",
}


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


def launch_command(command: list[str]) -> list[str]:
    """The command that runs ``command`` (a ``guidellm run``) keeping each finished benchmark on disk at once.

    GuideLLM's console script of this environment runs through :mod:`evalkit.perf.guidellm_partial`, which
    writes ``benchmarks.partial.json`` after every benchmark; any other executable runs as it is.
    """
    if Path(command[0]).name == "guidellm":
        return [sys.executable, str(PARTIAL_LAUNCHER), *command[1:]]
    return list(command)


def build_command(p: dict, *, target: str, model: str, tokenizer: str, run_dir: Path, api_key: str = "") -> list[str]:
    """The ``guidellm run`` argument list for validated parameters ``p`` (see :func:`sweep`).

    ``api_key`` goes into ``--backend`` (GuideLLM reads it nowhere else): save or show the command only through
    :func:`evalkit.proc.redacted`.
    """
    profile = p["profile"]
    backend = dict(kind="openai_http", target=target, model=model, request_format=ENDPOINTS[p["endpoint"]])
    if api_key:
        backend["api_key"] = api_key
    if p["data"] is not None:
        backend["max_tokens"] = p["output_tokens"]
    prof: dict = {"kind": profile}
    if profile == "sweep":
        prof.update(sweep_size=p["sweep_size"], max_concurrency=p["max_concurrency"] or DEFAULT_MAX_CONCURRENCY)
    elif profile == "throughput":
        prof["max_concurrency"] = p["max_concurrency"] or DEFAULT_MAX_CONCURRENCY
    elif profile in ("constant", "poisson") and p["max_concurrency"]:
        prof["max_concurrency"] = p["max_concurrency"]
    elif profile == "goodput":  # GuideLLM's search: streams double from 1 until a load fails, then bisect
        prof.update(initial_streams=1, max_streams=p["max_concurrency"] or GOODPUT_MAX_STREAMS,
                    target_attainment=p["attainment"], tolerance=GOODPUT_TOLERANCE, max_probes=GOODPUT_MAX_PROBES)
    elif profile == "knee":  # GuideLLM's concurrent sweep with its throughput-knee fit (no adaptive second pass)
        prof["initial_streams"] = [int(r) for r in p["rates"]]
    warmup = warmup_phase(p)
    if warmup:  # GuideLLM's own warm-up phase: what each benchmark leaves out at its start
        prof["warmup"] = warmup
    cmd = [guidellm_executable(), "run", "--backend", _kv(**backend), "--profile", _kv(**prof)]
    if p["rates"] and profile != "knee":
        field = "streams" if profile == "concurrent" else "rate"
        cmd += ["--override", f"profile.{field}", ",".join(f"{r:g}" for r in p["rates"])]
    if p["max_seconds"] is not None:
        cmd += ["--constraint", _kv(kind="max_duration", seconds=p["max_seconds"])]
    if p["max_requests"] is not None:
        cmd += ["--constraint", _kv(kind="max_requests", count=int(p["max_requests"]))]
    elif warmup and warmup["mode"] == "requests":  # counted only against a request limit: one that never binds
        cmd += ["--constraint", _kv(kind="max_requests", count=UNBOUNDED_REQUESTS)]
    if p.get("stop_over_saturation"):
        cmd += ["--constraint", _kv(kind="over_saturation", mode="enforce")]
    cmd += ["--tokenizer", _kv(kind="huggingface_auto", model=tokenizer)]
    if p["data"] is not None:
        cmd += ["--data", _kv(kind=DATA_KINDS[Path(p["data"]).suffix.lower()], path=p["data"])]
    else:
        cmd += ["--data", _kv(kind="synthetic_text", **_token_fields("prompt_tokens", p["prompt_tokens"],
                                                                       p["prompt_tokens_stdev"]),
                              **_token_fields("output_tokens", p["output_tokens"], p["output_tokens_stdev"]))]
    cmd += ["--metrics", _kv(kind="generative", sample_size=p["request_samples"], slo=p.get("goodput_slo"))]
    cmd += ["--output", _kv(kind="json", path=str(run_dir / REPORT_JSON))]
    if p["html"]:
        cmd += ["--output", _kv(kind="html", path=str(run_dir / REPORT_HTML))]
    return cmd + ["--disable-progress"]


def warmup_phase(p: dict) -> dict | None:
    """GuideLLM's warm-up phase for validated parameters ``p``: what each benchmark leaves out at its start.

    ``p["warmup"]`` finished requests when given (0: none). Otherwise evalkit's choice: a benchmark limited by
    requests leaves out :func:`warmup_requests`; one limited by time alone its first ``WARMUP_SHARE`` of the
    seconds (a first token that arrives then is not counted, nor are the requests that end then).
    """
    if p.get("warmup") is None and p.get("max_requests") is None and p.get("max_seconds"):
        return {"mode": "duration", "percent": WARMUP_SHARE}
    count = warmup_requests(p)
    return {"mode": "requests", "value": count} if count else None


def warmup_words(p: dict) -> str:
    """The warm-up of ``p`` in words, for messages."""
    phase = warmup_phase(p)
    if not phase:
        return "its start (no warm-up)"
    if phase["mode"] == "duration":
        return f"a warm-up of its first {phase['percent'] * p['max_seconds']:g} s"
    return f"a warm-up of {phase['value']} finished request(s)"


def warmup_requests(p: dict) -> int:
    """Finished requests a benchmark limited by requests leaves out: ``p["warmup"]``, or evalkit's choice.

    GuideLLM's first requests of a benchmark wait for its worker process to start beside the server (up to a few
    seconds on a small machine), so they measure the load generator, not the server. GuideLLM's warm-up phase
    ends when its ``value + 1``-th request finishes and counts every request that ends after that request started;
    leaving out a whole first wave of ``c`` streams therefore takes ``2c - 1`` finished requests. evalkit's choice
    is that for the run's highest stream count (1 for one request at a time), at most a quarter of
    ``max_requests`` when one is set.
    """
    if p.get("warmup") is not None:
        return int(p["warmup"])
    profile = p["profile"]
    if profile == "synchronous":
        streams = 1
    elif profile in ("concurrent", "knee"):
        streams = int(max(p["rates"]))
    else:  # sweep, throughput, constant, poisson, goodput: their first benchmark is one request at a time (sweep,
        # goodput) or ramps; goodput's later probes count the first wave of their streams
        streams = 1
    count = 2 * streams - 1
    if p.get("max_requests"):
        count = min(count, max(0, int(p["max_requests"]) // 4))
    return count


def _token_fields(name: str, mean: int, stdev: float) -> dict:
    if not stdev:
        return {name: int(mean)}
    sd = max(1, round(stdev))
    return {name: int(mean), f"{name}_stdev": sd, f"{name}_min": max(1, int(mean) - STDEV_SPAN * sd),
            f"{name}_max": int(mean) + STDEV_SPAN * sd}


def default_workers() -> int:
    """GuideLLM client processes: half the cores, 1 to 10 (each is a Python process; on 2 cores, one)."""
    return min(10, max(1, (os.cpu_count() or 2) // 2))


class GuideLLMProgress:
    """Echo only GuideLLM's progress lines (the full output goes to the log)."""

    pattern = re.compile(r"(Benchmark \d+ \(.*|Starting benchmark.*|Benchmarking complete.*|\w*Error: .*)")

    def __init__(self, write=None, echo: bool = True):
        self.lines = proc.Lines()
        self.last_output = time.monotonic()  # for the stall watchdog
        self.write = write or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
        self.echo = echo

    def __call__(self, text: str) -> bool:
        """Print GuideLLM's progress lines in ``text``; True if it printed any (for proc.run's heartbeat)."""
        self.last_output = time.monotonic()
        if not self.echo:
            return False
        shown = False
        for line in self.lines.feed(text):
            match = self.pattern.search(proc.ANSI.sub("", line))
            if match:
                self.write(f"[guidellm] {match.group(1).strip()}\n")
                shown = True
        return shown


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
        if stat and not stat.get("count", 1):  # none inside the measured window (e.g. every first token came
            stat = None  # during the warm-up): GuideLLM reports zeros, which are no measurement
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
    meta["conclusions"] = [c for c in report.get("conclusions") or [] if isinstance(c, dict)]
    meta["warnings"] = [f"{_label(b['config']['strategy'])[0]}: {w.get('message', w)}"
                        for b in report["benchmarks"] for w in b.get("warnings") or []]
    return rows, meta


_LOST_TIMINGS = "No measurement start or end times available"


def lost_timings(ran: proc.ProcResult) -> str | None:
    """Why a GuideLLM run that ended in its known timing race failed, or None for any other outcome.

    Now and then GuideLLM 0.8's scheduler hands a benchmark's requests to the report without their timestamps
    and the run ends with "Cannot compile GenerativeMetrics: No measurement start or end times available." even
    though the server answered; the same command run again completes.
    """
    if ran.ok or ran.timed_out or _LOST_TIMINGS not in ran.tail:
        return None
    return f"GuideLLM lost a benchmark's request timings (\"{_LOST_TIMINGS}\") and failed. "


def nothing_to_measure(p: dict, at: int, points: int, runs: int, saved: str, run_dir: Path) -> ToolError:
    """The error of a run that lost its timings at every try: most likely a load that had nothing to measure.

    A load measures the requests that finish after its warm-up and before its time is up; when a request takes
    longer than the load allows (a slow machine, long outputs), none is left and GuideLLM fails the same way as in
    its timing race (:func:`lost_timings`), every time.
    """
    within = f" and within its {p['max_seconds']:g} s" if p["max_seconds"] else ""
    return ToolError(
        f"guidellm run failed {runs} times at benchmark {at} of {points}: it had no request to measure there "
        f"(\"{_LOST_TIMINGS}\"). A load measures the requests that finish after {warmup_words(p)}"
        f"{within}; on a slow machine a request of {p['output_tokens']} "
        f"output tokens can outlast that.{saved}\nLog: {run_dir / LOG}",
        fix="give each load more time (max_seconds, e.g. twice as long) or fewer output tokens (output_tokens), or "
        "measure without a warm-up (warmup=0).", kept=run_dir)
