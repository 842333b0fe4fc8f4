"""evalkit's cost over the raw tools, per layer: the quick profile's layer runs through evalkit and by hand.

One server for the whole benchmark (its ready time is reported). For each repeat and each layer, in an order
that alternates between repeats:

- **evalkit**: the layer's function with the quick profile's values (``perf.sweep``, ``fmt.check_format``,
  ``accuracy.evaluate``, ``safety.check_safety`` on the one server), timed from call to return: its checks, data
  and config preparation, the tool, and reading the tool's output into the result;
- **raw**: the tool command(s) that run recorded (``guidellm run``, ``lm-eval run``, ``promptfoo eval``), with the
  same arguments, prepared data and config, run again as typed by hand, writing their outputs into a folder of
  their own, timed from start to exit. The environment is the one the notebooks' by-hand lines give: the offline
  one evalkit gives its tools, GuideLLM's worker count, which GuideLLM reads from the environment only (left at
  GuideLLM's default, one worker per core and more, a 2-core sweep took 37 s instead of 28 s), and promptfoo's
  own variables (its state in the raw folder, the closed proxy).

Every layer runs once untimed first, so that vLLM's prefix cache holds its prompts for every timed run (the
first run of a prompt set is slower: 18.8 s against 15.5 s for the accuracy layer on 2026-12-06).

It prints the median wall time of each with its range, the ratio evalkit/raw per layer and for the four layers
together, evalkit's own time per call (the call's wall time minus the tool runs it timed itself: preparation,
checks, reading the output, saving the result) and its share of the raw time, the server's ready time and the
peak resident memory of the whole process tree (this process, the tools and the server), and writes
``benchmarks/results/pyramid-<time>.json``.

A sweep's length depends on the rates GuideLLM picks from what it measures (3 to 6 benchmarks of about 6.5 s
each on 2 cores), which makes its evalkit/raw ratio noisy; ``--layers performance-fixed`` measures the same
call with two fixed concurrencies instead (not part of the pyramid's total).

    .venv/bin/python benchmarks/pyramid.py [--repeat 3] [--model ladder-m] [--layers performance,format]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from evalkit import accuracy, fmt, perf, safety
from evalkit.perf.guidellm import default_workers
from evalkit.pipeline import load_profiles, profile_parameters
from evalkit.promptfoo import promptfoo_env
from evalkit.serve import serve
from evalkit.settings import Settings, get_settings

RESULTS = Path(__file__).resolve().parent / "results"
OUTPUT_FLAGS = ("--output", "--output_path", "--use_cache", "-o")  # arguments that name what a tool writes


class PeakMemory:
    """Samples the resident memory of this process's tree plus the server's every 0.2 s; keeps the peak."""

    def __init__(self, server_pid: int | None):
        self.roots = [psutil.Process()] + ([psutil.Process(server_pid)] if server_pid else [])
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            total = 0
            for root in self.roots:
                for p in [root, *root.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            self.peak = max(self.peak, total / 2**30)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def layer_calls(params: dict) -> dict:
    """The quick profile's main call of each layer's notebook: ``{layer: (function, keyword arguments)}``."""
    p, f, a, s = (params[n] for n in ("01_performance", "02_format", "03_accuracy", "04_safety"))
    return {
        "performance": (perf.sweep, {"profile": p["PROFILE"], "sweep_size": p["SWEEP_SIZE"],
                                     "max_seconds": p["MAX_SECONDS"], "prompt_tokens": p["PROMPT_TOKENS"],
                                     "output_tokens": p["OUTPUT_TOKENS"]}),
        "format": (fmt.check_format, {"limit": f["LIMIT"], "structured": f["STRUCTURED"]}),
        "accuracy": (accuracy.evaluate, {"tasks": a["TASKS"], "limit": a["LIMIT"]}),
        "safety": (safety.check_safety, {"sample": s["SAMPLE"], "bbq_categories": s["BBQ_CATEGORIES"]}),
        # not a layer of the profile: GuideLLM's sweep picks its rates from what it measures, so the number of
        # benchmarks in a sweep varies from run to run; two fixed loads give a like-for-like measure of the cost
        "performance-fixed": (perf.sweep, {"profile": "concurrent", "rates": [1, 4], "max_seconds": p["MAX_SECONDS"],
                                           "prompt_tokens": p["PROMPT_TOKENS"], "output_tokens": p["OUTPUT_TOKENS"]}),
    }


def tool_runs(result) -> list[tuple[list[str], Path]]:
    """The tool commands a layer's run executed, each with the folder it ran in.

    Promptfoo runs in its config's folder, which is the run folder.
    """
    return [(ran.command, Path(result.run_dir)) for ran in result.tool_runs()]


def redirect(command: list[str], run_dir: Path, raw_dir: Path) -> list[str]:
    """The same command with every output it names moved from ``run_dir`` into ``raw_dir``."""
    out = list(command)
    for i, arg in enumerate(out[:-1]):
        if arg in OUTPUT_FLAGS:
            out[i + 1] = out[i + 1].replace(str(run_dir), str(raw_dir))
    return out


def run_raw(result, raw_dir: Path, env: dict) -> float:
    """Run the recorded tool commands again, as typed by hand; return their wall time."""
    raw_dir.mkdir(parents=True)
    if isinstance(result, perf.PerfResult):  # GuideLLM takes its worker count from the environment only
        env = {**env, "GUIDELLM__MAX_WORKER_PROCESSES": str(result.params.get("workers") or default_workers())}
    elif isinstance(result, (fmt.FormatResult, safety.SafetyResult)):  # promptfoo's variables, as by hand
        env = {**env, **promptfoo_env(raw_dir, hosts=[result.base_url])}
    start = time.monotonic()
    for command, cwd in tool_runs(result):
        with open(raw_dir / "tool.log", "ab") as log:
            code = subprocess.run(redirect(command, Path(result.run_dir), raw_dir), cwd=cwd, env=env,
                                  stdout=log, stderr=subprocess.STDOUT).returncode
        if code not in (0, 100):  # promptfoo exits 100 when assertions fail, which is a result, not an error
            raise SystemExit(f"raw command failed with exit code {code}: see {raw_dir / 'tool.log'}")
    return time.monotonic() - start


def _span(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} [{min(values):.1f}-{max(values):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default=None, help="default: the quick profile's model")
    parser.add_argument("--layers", default="performance,format,accuracy,safety")
    args = parser.parse_args()
    params = profile_parameters("quick")
    calls = layer_calls(params)
    chosen = args.layers.split(",")
    unknown = [name for name in chosen if name not in calls]
    if unknown:
        raise SystemExit(f"unknown layer(s) {', '.join(unknown)}; choose from {', '.join(calls)}")
    work = Path(tempfile.mkdtemp(prefix="evalkit-bench-pyramid-"))
    settings = Settings(runs_dir=work / "runs", base_url=None)
    env = get_settings().tool_env()
    times: dict[str, dict[str, list[float]]] = {name: {"evalkit": [], "raw": [], "own": []} for name in chosen}
    model = args.model or load_profiles()["quick"].get("model") or get_settings().model
    with serve(model, settings=settings, echo=False) as srv, PeakMemory(srv.info.pid) as peak:
        print(f"{model}: server ready after {srv.info.ready_s} s; work folder {work}", flush=True)
        for name in chosen:  # untimed: the server's prefix cache then holds each layer's prompts for every run
            function, kwargs = calls[name]
            function(srv, run_dir=work / f"{name}-warmup", echo=False, **kwargs)
        for rep in range(args.repeat):
            for name in chosen:
                function, kwargs = calls[name]
                run_dir = work / f"{name}-{rep}-evalkit"
                order = ("evalkit", "raw") if rep % 2 == 0 else ("raw", "evalkit")
                if order[0] == "raw":  # the raw run needs the commands of an evalkit run: one from a warm-up
                    warm = function(srv, run_dir=work / f"{name}-{rep}-warmup", echo=False, **kwargs)
                    times[name]["raw"].append(run_raw(warm, work / f"{name}-{rep}-raw", env))
                start = time.monotonic()
                result = function(srv, run_dir=run_dir, echo=False, **kwargs)
                times[name]["evalkit"].append(time.monotonic() - start)
                tools_s = sum(ran.duration_s or 0 for ran in result.tool_runs())
                times[name]["own"].append(times[name]["evalkit"][-1] - tools_s)
                if order[0] == "evalkit":
                    times[name]["raw"].append(run_raw(result, work / f"{name}-{rep}-raw", env))
                print(f"repeat {rep + 1} {name:<17} evalkit {times[name]['evalkit'][-1]:6.1f} s, raw "
                      f"{times[name]['raw'][-1]:6.1f} s ({' then '.join(order)})", flush=True)
        ready_s = srv.info.ready_s
    rows = []
    print(f"\n{'layer':<18}{'evalkit s':>20}{'raw s':>20}{'evalkit/raw':>13}{'own s':>8}{'own/raw':>9}")
    for name in chosen:
        e, r = statistics.median(times[name]["evalkit"]), statistics.median(times[name]["raw"])
        own = statistics.median(times[name]["own"])
        rows.append({"layer": name, "evalkit_s": times[name]["evalkit"], "raw_s": times[name]["raw"],
                     "evalkit_median_s": e, "raw_median_s": r, "ratio": e / r, "own_s": times[name]["own"],
                     "own_median_s": own, "own_share": own / r})
        print(f"{name:<18}{_span(times[name]['evalkit']):>20}{_span(times[name]['raw']):>20}{e / r:>13.3f}"
              f"{own:>8.2f}{own / r:>9.3f}")
    pyramid_layers = [n for n in chosen if n != "performance-fixed"]
    totals = {k: [sum(times[n][k][i] for n in pyramid_layers) for i in range(args.repeat)]
              for k in ("evalkit", "raw", "own")}
    ratio = None
    if pyramid_layers:
        ratio = statistics.median(totals["evalkit"]) / statistics.median(totals["raw"])
        print(f"{'pyramid':<18}{_span(totals['evalkit']):>20}{_span(totals['raw']):>20}{ratio:>13.3f}"
              f"  ({', '.join(pyramid_layers)})")
    print(f"server ready after {ready_s} s; peak memory of the process tree {peak.peak:.2f} GiB")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pyramid-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": psutil.cpu_count(), "python": sys.version.split()[0],
        "model": model, "repeat": args.repeat, "server_ready_s": ready_s, "peak_memory_gib": round(peak.peak, 2),
        "layers": rows, "pyramid": {"evalkit_s": totals["evalkit"], "raw_s": totals["raw"], "own_s": totals["own"],
                                    "ratio": ratio},
    }, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
