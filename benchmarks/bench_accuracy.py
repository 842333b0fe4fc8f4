"""Benchmark of evalkit.accuracy: requests/s of its lm-eval settings against lm-eval's defaults; MMLU-Pro time.

Real runs of ``evalkit.accuracy.evaluate`` on ``mmlu_pro_mc`` (loglikelihood requests on /v1/completions), each
in its own folder without a request cache:

1. lm-eval's defaults (``num_concurrent=1``, ``batch_size=1``) on the first ``--limit`` questions per category;
2. evalkit's defaults (the ``lmeval_concurrency`` and ``lmeval_batch_size`` settings) on the same questions (skip with
   ``--no-same-set``);
3. evalkit's defaults on the whole subset (``--subset-limit``; default all 280 questions): the timed MMLU-Pro run.

requests = loglikelihood requests lm-eval made (one per option, counted in its samples files); the request phase
is timed on lm-eval's output as it streams, from "Running loglikelihood requests" (prompts built; tokenizing
is inside the phase) to the last "Requesting API" progress update. Wall times add lm-eval's start-up (imports,
tokenizer, tasks), which no request setting changes. On a shared machine the numbers move from run to run;
compare within one run.

    .venv/bin/python benchmarks/bench_accuracy.py [--base-url http://127.0.0.1:8000/v1] [--limit 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from evalkit import accuracy
from evalkit.serve import serve
from evalkit.settings import get_settings


class RequestClock:
    """Receives lm-eval's output (evaluate(echo=...)) and notes when the request phase starts and ends."""

    def __init__(self):
        self.start = self.end = None

    def __call__(self, text: str) -> None:
        now = time.perf_counter()
        if self.start is None and ("Running loglikelihood requests" in text or "Requests remaining" in text):
            self.start = now
        if self.start is not None and "Requesting API" in text:
            self.end = now

    @property
    def seconds(self) -> float:
        if self.start is None or self.end is None:
            raise SystemExit("lm-eval printed no request progress: were all answers cached?")
        return self.end - self.start


def measure(srv, run_dir: Path, limit, concurrency: int, batch_size: int) -> dict:
    clock = RequestClock()
    start = time.perf_counter()
    result = accuracy.evaluate(srv, ["mmlu_pro_mc"], limit=limit, concurrency=concurrency, batch_size=batch_size,
                               run_dir=run_dir, use_cache=False, echo=clock)
    wall = time.perf_counter() - start
    requests = sum(len(s["arguments"]) for f in result.samples_files.values()
                   for s in accuracy.read_samples(run_dir / f))
    return {"wall_s": wall, "requests_s": clock.seconds, "requests": requests, "rps": requests / clock.seconds,
            "questions": int(result.df.loc[0, "n"]), "accuracy": float(result.df.loc[0, "accuracy"]),
            "settings": f"num_concurrent={concurrency} batch_size={batch_size}"}


def line(name: str, m: dict) -> str:
    return (f"{name:26s} {m['settings']:32s} {m['questions']:4d} questions {m['requests']:5d} requests  "
            f"request phase {m['requests_s']:6.1f} s  wall {m['wall_s']:6.1f} s  {m['rps']:6.1f} requests/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=None, help="server to measure (default: EVALKIT_BASE_URL or serve())")
    parser.add_argument("--model", default="stories260k")
    parser.add_argument("--limit", type=int, default=3, help="questions per category for the comparison")
    parser.add_argument("--subset-limit", type=int, default=None, help="questions per category for the timed "
                        "MMLU-Pro run (default: all 20 of the subset)")
    parser.add_argument("--no-same-set", action="store_true", help="skip run 2 (compare with run 3's rate)")
    args = parser.parse_args()
    srv = serve(args.model, base_url=args.base_url, echo=False)
    ek = (get_settings().lmeval_concurrency, get_settings().lmeval_batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        defaults = measure(srv, tmp / "defaults", args.limit, accuracy.LMEVAL_DEFAULTS["concurrency"],
                           accuracy.LMEVAL_DEFAULTS["batch_size"])
        same = None if args.no_same_set else measure(srv, tmp / "evalkit", args.limit, *ek)
        subset = measure(srv, tmp / "subset", args.subset_limit, *ek)
    print(f"server {srv.base_url} model {srv.model} (context {srv.max_model_len})")
    print(line("lm-eval defaults", defaults))
    if same:
        print(line("evalkit, same questions", same))
    print(line("evalkit, MMLU-Pro subset", subset))
    ours = same or subset
    print(f"requests/s ratio evalkit / lm-eval defaults: {ours['rps'] / defaults['rps']:.2f}x (goal >= 2x); "
          f"wall-time ratio on the same questions: "
          + (f"{defaults['wall_s'] / same['wall_s']:.2f}x" if same else "n/a"))
    print(f"MMLU-Pro subset ({subset['questions']} questions, {subset['requests']} requests) with evalkit's "
          f"settings: {subset['wall_s']:.1f} s wall, request phase {subset['requests_s']:.1f} s; "
          f"accuracy {subset['accuracy']:.3f}")
    print(json.dumps({"defaults": defaults, "same": same, "subset": subset}))


if __name__ == "__main__":
    main()
