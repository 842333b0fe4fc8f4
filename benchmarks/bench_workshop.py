"""Wall time and peak memory of the main job (`evalkit run --profile quick`), per layer, against its goal.

    .venv/bin/python benchmarks/bench_workshop.py [--profile quick] [--base-url URL]

Runs the job in a fresh runs folder (server start included unless --base-url is given), samples the resident
memory of the whole process tree (server, kernels, tools) once a second, and prints each notebook's time from
run.json, the total, the peak memory and the ratio to the 10-minute goal.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

GOAL_S = 600.0


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--base-url", default=None)
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="evalkit-bench-runs-"))
    command = [sys.executable, "-m", "evalkit.cli", "run", "--profile", args.profile]
    if args.base_url:
        command += ["--base-url", args.base_url]
    env = dict(os.environ, EVALKIT_RUNS_DIR=str(runs), EVALKIT_PORT=os.environ.get("EVALKIT_PORT", "8790"))
    start = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            done.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0]
    done.set()
    sampler.join()
    wall = time.monotonic() - start
    run = next(runs.glob(f"*-{args.profile}"), None)
    print(f"exit code {proc.returncode}; run folder {run}")
    if run is None:
        print(output[-3000:])
        return 1
    state = json.loads((run / "run.json").read_text())
    print(f"{'notebook':<16}{'status':<10}{'seconds':>8}")
    for name, record in state["notebooks"].items():
        print(f"{name:<16}{record.get('status', '?'):<10}{record.get('duration_s', 0):>8.1f}")
    server = state.get("server", {})
    print(f"server ready after: {server.get('ready_s')} s (started here: {server.get('started_here')})")
    print(f"total wall time: {wall:.1f} s; goal {GOAL_S:.0f} s; ratio {wall / GOAL_S:.2f} (<= 1.00 meets the goal)")
    print(f"peak resident memory of the process tree: {peak[0] / 2**30:.2f} GiB")
    return 0 if proc.returncode in (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
