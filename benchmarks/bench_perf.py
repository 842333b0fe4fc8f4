"""Benchmark of evalkit.perf: its wall time against the same ``guidellm run`` typed by hand, and a sweep's time.

Runs the bare command (built by ``evalkit.perf.command_for``, run with ``subprocess`` and its output to a file)
and ``evalkit.perf.sweep`` in turn (``--repeat`` pairs, alternating which goes first so that drift in a shared
machine's load hits both), with the same arguments and environment, and prints:

- the wall-time ratio evalkit / bare (goal <= 1.05; noisy on a busy machine, see the spread over repeats),
- evalkit's own share: the whole ``sweep()`` call against its ``guidellm run`` subprocess (less noisy),
- the sweep's time on the model served (the embedded one by default).

    .venv/bin/python benchmarks/bench_perf.py [--base-url http://127.0.0.1:8000/v1] [--repeat 1]

Without --base-url it uses EVALKIT_BASE_URL, or attaches to (or starts) the embedded model's server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from evalkit import perf
from evalkit.serve import serve
from evalkit.settings import get_settings


def bare_run(command: list[str], evalkit_dir: Path, bare_dir: Path) -> float:
    """Run the command evalkit ran, writing into ``bare_dir``, as a person would in a terminal; return seconds."""
    args = [a.replace(str(evalkit_dir), str(bare_dir)) for a in command]
    env = get_settings().tool_env({"GUIDELLM__MAX_WORKER_PROCESSES": str(perf.default_workers())})
    bare_dir.mkdir(parents=True, exist_ok=True)
    with open(bare_dir / "guidellm.log", "wb") as log:
        start = time.perf_counter()
        subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=bare_dir, check=True)
        seconds = time.perf_counter() - start
    if not (bare_dir / perf.REPORT_JSON).exists():
        raise SystemExit(f"the bare run wrote no report; see {bare_dir / 'guidellm.log'}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=None, help="server to measure (default: EVALKIT_BASE_URL or serve())")
    parser.add_argument("--model", default="stories260k")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of (bare, evalkit) runs")
    parser.add_argument("--sweep-size", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=3.0)
    parser.add_argument("--max-concurrency", type=int, default=8)
    args = parser.parse_args()
    srv = serve(args.model, base_url=args.base_url, echo=False)
    kwargs = dict(profile="sweep", sweep_size=args.sweep_size, max_seconds=args.max_seconds,
                  max_concurrency=args.max_concurrency, prompt_tokens=64, output_tokens=32, echo=False)
    bare, wrapped, own = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(args.repeat):
            ek_dir = tmp / f"evalkit-{i}"
            command = perf.command_for(srv, ek_dir, **{k: v for k, v in kwargs.items() if k != "echo"})
            for which in ("bare", "evalkit") if i % 2 == 0 else ("evalkit", "bare"):  # alternate who goes first
                if which == "bare":
                    bare.append(bare_run(command, ek_dir, tmp / f"bare-{i}"))
                    continue
                start = time.perf_counter()
                result = perf.sweep(srv, run_dir=ek_dir, **kwargs)
                wrapped.append(time.perf_counter() - start)
                own.append(wrapped[-1] / result.tool_duration_s)
                assert result.command == command, "evalkit ran a different command than the bare run"
    ratios = [w / b for w, b in zip(wrapped, bare, strict=True)]
    summary = {
        "model": srv.model, "base_url": srv.base_url, "cpu_cores": os.cpu_count(),
        "workload": f"sweep of {args.sweep_size}, {args.max_seconds:g} s each, 64+32 tokens, "
                    f"max_concurrency {args.max_concurrency}",
        "bare_s": [round(x, 1) for x in bare], "evalkit_s": [round(x, 1) for x in wrapped],
        "wall_ratio_median": round(statistics.median(ratios), 3),
        "evalkit_over_its_subprocess_median": round(statistics.median(own), 3),
        "sweep_s_median": round(statistics.median(wrapped), 1),
    }
    print(f"workload: {summary['workload']} on {srv.model} at {srv.base_url}, {os.cpu_count()} CPU cores")
    for i, (b, w) in enumerate(zip(bare, wrapped, strict=True)):
        print(f"  pair {i + 1}: bare guidellm run {b:6.1f} s   evalkit.perf.sweep {w:6.1f} s   ratio {w / b:.3f}")
    print(f"wall-time ratio evalkit / bare (median of {len(ratios)}): {summary['wall_ratio_median']:.3f}"
          "   (goal <= 1.05)")
    print("evalkit's whole call / its guidellm subprocess (median): "
          f"{summary['evalkit_over_its_subprocess_median']:.3f}")
    print(f"sweep time on {srv.model}: {summary['sweep_s_median']:.1f} s for {args.sweep_size} benchmarks")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
