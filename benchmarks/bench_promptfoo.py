"""Benchmark: promptfoo tests/s at the concurrency evalkit chooses against promptfoo's default (-j 4).

    .venv/bin/python benchmarks/bench_promptfoo.py [--base-url URL] [--sets extraction] [--limit N]

It builds the format layer's config (the extraction set, structured outputs off and on: 32 tests by default),
warms the server's grammar cache with one short run, then runs the same config with promptfoo's default
concurrency and with evalkit's (the ``promptfoo_concurrency`` setting). tests/s uses promptfoo's own
evaluation time from out.json (Node's start-up, about 10 s, is left out; the whole process time is printed
too). It also prints the parse and schema pass rates of both runs: more requests in flight should not change
what the model answers. Takes about a minute and a half on 2 CPU cores with the embedded model.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from evalkit import fmt
from evalkit.promptfoo import eval_stats, run_promptfoo, write_config
from evalkit.serve import attach
from evalkit.settings import get_settings

PROMPTFOO_DEFAULT = 4  # promptfoo's -j when none is given (its documented default)


def measure(srv, config: Path, folder: Path, concurrency: int | None, max_tokens: int, items) -> dict:
    run = run_promptfoo(config, run_dir=folder, max_concurrency=concurrency, srv=srv, echo=False)
    stats = eval_stats(run.output_path)
    result = fmt.FormatResult(run_dir=str(folder), model=srv.model, sets=["extraction"], rows=fmt.rows_from_output(
        run.output_path, max_tokens=max_tokens, items=items), params={"max_tokens": max_tokens})
    table = result.summary(by="structured").set_index("structured")
    return {"concurrency": concurrency or PROMPTFOO_DEFAULT, **stats, "process_s": round(run.duration_s, 1),
            "parse": table["parse_rate"].to_dict(), "schema": table["schema_pass_rate"].to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--sets", nargs="+", default=["extraction"], choices=fmt.SETS)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=get_settings().format_max_tokens)
    parser.add_argument("--concurrency", type=int, default=get_settings().promptfoo_concurrency,
                        help="evalkit's choice")
    args = parser.parse_args()

    srv = attach(args.base_url)
    items = fmt.load_items(args.sets, limit=args.limit)
    with tempfile.TemporaryDirectory(prefix="bench-promptfoo-") as tmp:
        root = Path(tmp)
        warm = write_config(fmt.format_config(srv, items, structured=True, max_tokens=8), root / "warm.yaml")
        run_promptfoo(warm, run_dir=root / "warm", max_concurrency=args.concurrency, srv=srv, echo=False)
        config = write_config(fmt.format_config(srv, items, structured="both", max_tokens=args.max_tokens),
                              root / "promptfooconfig.yaml")
        default = measure(srv, config, root / "default", None, args.max_tokens, items)
        chosen = measure(srv, config, root / "chosen", args.concurrency, args.max_tokens, items)

    print(f"model {srv.model} at {srv.base_url}; {default['tests']} tests ({', '.join(args.sets)}, structured off "
          f"and on, max_tokens {args.max_tokens}); {os.cpu_count()} CPUs, {platform.machine()}")
    for label, row in (("promptfoo default", default), ("evalkit", chosen)):
        print(f"{label:>17}: -j {row['concurrency']:>3}  {row['tests_per_s']:6.2f} tests/s  (evaluation "
              f"{row['eval_s']:.1f} s, whole process {row['process_s']:.1f} s)  parse {row['parse']}  "
              f"schema {row['schema']}")
    print(f"ratio evalkit / default: {chosen['tests_per_s'] / default['tests_per_s']:.2f}x")


if __name__ == "__main__":
    main()
