"""``evalkit performance`` (short: ``evalkit perf``): the performance layer on the command line."""

from __future__ import annotations

from evalkit.commands import add_server_options, command_server
from evalkit.errors import ConfigError
from evalkit.perf.args import PerfArgs

RUN_OPTIONS = ["profile", "prompt_tokens", "output_tokens", "prompt_tokens_stdev", "output_tokens_stdev", "data",
               "max_seconds", "max_requests", "endpoint", "sweep_size", "max_concurrency", "workers", "workload",
               "stop_over_saturation", "warmup", "attainment"]


def _cmd_perf(args) -> int:
    import pandas as pd

    from evalkit.perf.analysis import SLO, slo_capacity
    from evalkit.perf.run import sweep

    try:
        rates = [float(r) for part in args.rate or [] for r in str(part).split(",") if r.strip()] or None
    except ValueError:
        raise ConfigError(f"--rate {' '.join(args.rate)}: not numbers.",
                          fix="give numbers, e.g. --rate 1 2 4.") from None
    if rates and args.profile in ("concurrent", "knee"):
        rates = [int(r) if r.is_integer() else r for r in rates]
    slo = SLO(args.ttft_p99_ms, args.itl_p99_ms) if (args.ttft_p99_ms or args.itl_p99_ms) else None
    with command_server(args) as srv:
        result = sweep(srv, rates=rates, **{name: getattr(args, name) for name in RUN_OPTIONS}, slo=slo,
                       price_per_hour=args.price_per_hour, accelerator=args.accelerator, run_dir=args.run_dir,
                       echo=not args.quiet)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(result.summary().round(2).to_string())
    if args.profile == "knee":
        print(result.guidellm_knee().sentence)
    if slo and args.profile == "goodput":
        print(result.goodput().sentence)
    elif slo:
        print(slo_capacity(result).sentence)
    print(f"result: {result.path / 'result.json'}\nGuideLLM report: {result.report_path}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``evalkit performance`` (short: ``evalkit perf``); its run options come from :class:`PerfArgs`."""
    p = subparsers.add_parser("performance", aliases=["perf"],
                              help="load-test the server with GuideLLM (throughput, TTFT, ITL, capacity)")
    PerfArgs.add_options(p, RUN_OPTIONS)
    p.add_argument("--rate", nargs="+", default=None,
                   help="stream counts (concurrent) or requests/s (constant, poisson); space- or comma-separated")
    p.add_argument("--ttft-p99-ms", type=float, default=None, help="SLO: limit on p99 time to first token")
    p.add_argument("--itl-p99-ms", type=float, default=None, help="SLO: limit on p99 inter-token latency")
    p.add_argument("--price-per-hour", type=float, default=None, help="hourly price (USD) for the cost metric")
    p.add_argument("--accelerator", default=None,
                   help="price from evalkit.perf.PRICES, e.g. L4 or CPU-2vCPU (an unknown name lists them)")
    p.add_argument("--run-dir", default=None, help="folder for the reports (default: a new one under runs/)")
    add_server_options(p)
    p.add_argument("--quiet", action="store_true", help="do not print GuideLLM's progress")
    p.set_defaults(func=_cmd_perf)
