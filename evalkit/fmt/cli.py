"""``evalkit format``: the format layer on the command line."""

from __future__ import annotations

from evalkit.commands import add_server_options, command_server
from evalkit.fmt.args import FormatArgs
from evalkit.fmt.items import SETS


def register_cli(subparsers) -> None:
    """``evalkit format``: JSON parse rate and schema pass rate, with and without structured outputs."""
    p = subparsers.add_parser("format", help="JSON parse and schema pass rates, structured outputs on/off (promptfoo)")
    defaults = FormatArgs.defaults()
    p.add_argument("--sets", nargs="+", default=list(defaults.sets), choices=SETS, metavar="SET",
                   help=f"some of {', '.join(SETS)} (default: both)")
    p.add_argument("--structured", choices=["on", "off", "both"], default=defaults.structured,
                   help="structured outputs on, off, or both (default)")
    p.add_argument("--whitespace", choices=["compact", "any"], default=defaults.whitespace,
                   help="compact: a grammar without free whitespace (default); any: plain response_format")
    FormatArgs.add_options(p, ["max_tokens", "limit", "concurrency"])
    p.add_argument("--config", default=None, help="run your own promptfooconfig.yaml instead")
    p.add_argument("--run-dir", default=None, help="folder for the results (default: a new one under runs/)")
    add_server_options(p)
    p.set_defaults(func=_cmd_format)


def _cmd_format(args) -> int:
    import pandas as pd

    from evalkit.fmt.run import check_format

    with command_server(args) as srv:
        result = check_format(srv, sets=args.sets, structured=args.structured, max_tokens=args.max_tokens,
                              limit=args.limit,
                              concurrency=args.concurrency, whitespace=args.whitespace, config=args.config,
                              run_dir=args.run_dir)
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(result.summary().to_string(index=False))
        print()
        print(result.metrics_table().to_string(index=False))
    print(f"saved {result.path / 'result.json'}")
    return 0
