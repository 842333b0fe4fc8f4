"""Server start-up: seconds until vLLM answers /v1/models, with and without --enforce-eager, and the speed after.

Starts the embedded model's server (or ``--model``) ``--repeat`` times in each mode, alternating which goes
first, each on its own port and runs folder, measures the ready time and then the output tokens/s of a few
sequential completions (CUDA graphs or torch.compile can make a slower start pay off later), stops it, and prints:

- the ready time per mode and the ratio eager / compiled (below 1: eager starts faster),
- output tokens/s after the start per mode and its ratio.

    .venv/bin/python benchmarks/bench_serve.py [--model stories260k] [--repeat 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from evalkit.serve import serve
from evalkit.settings import Settings

PORT = 8791
TOKENS = 64


def speed(srv, requests: int = 5) -> float:
    """Output tokens/s of ``requests`` sequential completions of ``TOKENS`` tokens."""
    produced, start = 0, time.monotonic()
    for _ in range(requests):
        reply = srv.completion("Once upon a time", max_tokens=TOKENS, ignore_eos=True, temperature=0)
        produced += reply["usage"]["completion_tokens"]
    return produced / (time.monotonic() - start)


def start_once(model: str, eager: bool) -> tuple[float, float]:
    settings = Settings(enforce_eager=eager, runs_dir=tempfile.mkdtemp(prefix="evalkit-bench-serve-"),
                        base_url=None)
    with serve(model, port=PORT, settings=settings, start_timeout_s=900, echo=False) as srv:
        if not srv.started:
            raise SystemExit(f"port {PORT} already has a server: stop it first")
        speed(srv, requests=1)  # the first request after the start carries any remaining warm-up
        return srv.info.ready_s, speed(srv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="stories260k")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    ready: dict[bool, list[float]] = {True: [], False: []}
    tps: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.repeat):
        for eager in ((True, False) if i % 2 == 0 else (False, True)):
            r, s = start_once(args.model, eager)
            ready[eager].append(r)
            tps[eager].append(s)
            print(f"{'--enforce-eager' if eager else 'compiled':<16} ready after {r:6.1f} s, then {s:7.1f} "
                  "output tok/s", flush=True)
    r_e, r_c = statistics.median(ready[True]), statistics.median(ready[False])
    s_e, s_c = statistics.median(tps[True]), statistics.median(tps[False])
    print(f"ready time: eager {r_e:.1f} s, compiled {r_c:.1f} s; ratio eager/compiled {r_e / r_c:.2f}")
    print(f"output tok/s after the start: eager {s_e:.1f}, compiled {s_c:.1f}; ratio eager/compiled {s_e / s_c:.2f}")


if __name__ == "__main__":
    main()
