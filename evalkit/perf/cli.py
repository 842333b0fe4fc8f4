"""``evalkit perf``: the performance layer on the command line."""

from __future__ import annotations

import pandas as pd

from evalkit.errors import (
    ConfigError,
)
from evalkit.perf.analysis import SLO, slo_capacity
from evalkit.perf.args import ENDPOINTS, PROFILES
from evalkit.perf.cost import PRICES
from evalkit.perf.run import sweep


def _cmd_perf(args) -> int:
    from evalkit.serve import serve

    try:
        rates = [float(r) for part in args.rate or [] for r in str(part).split(",") if r.strip()] or None
    except ValueError:
        raise ConfigError(f"--rate {' '.join(args.rate)}: not numbers.",
                          fix="give numbers, e.g. --rate 1 2 4.") from None
    if rates and args.profile == "concurrent":
        rates = [int(r) if r.is_integer() else r for r in rates]
    slo = SLO(args.ttft_p99_ms, args.itl_p99_ms) if (args.ttft_p99_ms or args.itl_p99_ms) else None
    srv = serve(args.model, base_url=args.base_url)
    result = sweep(
        srv, profile=args.profile, rates=rates, prompt_tokens=args.prompt_tokens, output_tokens=args.output_tokens,
        data=args.data, max_seconds=args.max_seconds, max_requests=args.max_requests, endpoint=args.endpoint,
        sweep_size=args.sweep_size, max_concurrency=args.max_concurrency, slo=slo,
        price_per_hour=args.price_per_hour, accelerator=args.accelerator, run_dir=args.run_dir, echo=not args.quiet,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(result.table().round(2).to_string())
    if slo:
        print(slo_capacity(result).sentence)
    print(f"result: {result.path / 'result.json'}\nGuideLLM report: {result.report_path}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``evalkit perf`` to the command line."""
    p = subparsers.add_parser("perf", help="load-test the server with GuideLLM (throughput, TTFT, ITL, capacity)")
    p.add_argument("--profile", choices=PROFILES, default="sweep")
    p.add_argument("--rate", nargs="+", default=None,
                   help="stream counts (concurrent) or requests/s (constant, poisson); space- or comma-separated")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--output-tokens", type=int, default=32)
    p.add_argument("--data", default=None, help="prompts file (.txt, .csv, .jsonl) instead of synthetic prompts")
    p.add_argument("--max-seconds", type=float, default=5.0, help="length of each benchmark")
    p.add_argument("--max-requests", type=int, default=None, help="stop each benchmark after this many requests")
    p.add_argument("--endpoint", choices=list(ENDPOINTS), default="completions")
    p.add_argument("--sweep-size", type=int, default=4, help="benchmarks in a sweep")
    p.add_argument("--max-concurrency", type=int, default=None, help="cap on requests in flight (sweep, throughput)")
    p.add_argument("--ttft-p99-ms", type=float, default=None, help="SLO: limit on p99 time to first token")
    p.add_argument("--itl-p99-ms", type=float, default=None, help="SLO: limit on p99 inter-token latency")
    p.add_argument("--price-per-hour", type=float, default=None, help="hourly price (USD) for the cost metric")
    p.add_argument("--accelerator", default=None, help=f"price from the table: {', '.join(PRICES.index)}")
    p.add_argument("--run-dir", default=None, help="folder for the reports (default: a new one under runs/)")
    p.add_argument("--base-url", default=None, help="attach to this OpenAI-compatible endpoint")
    p.add_argument("--model", default=None, help="preset name, model folder or hub id (default: settings)")
    p.add_argument("--quiet", action="store_true", help="do not print GuideLLM's progress")
    p.set_defaults(func=_cmd_perf)
