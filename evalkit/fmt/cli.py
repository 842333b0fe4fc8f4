"""``evalkit format``: the format layer on the command line."""

from __future__ import annotations

import pandas as pd

from evalkit.fmt.items import SETS
from evalkit.fmt.run import check_format
from evalkit.settings import get_settings


def register_cli(subparsers) -> None:
    """``evalkit format``: JSON parse rate and schema pass rate, with and without structured outputs."""
    p = subparsers.add_parser("format", help="JSON parse and schema pass rates, structured outputs on/off (promptfoo)")
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS, metavar="SET",
                   help=f"some of {', '.join(SETS)} (default: both)")
    p.add_argument("--structured", choices=["on", "off", "both"], default="both",
                   help="structured outputs on, off, or both (default)")
    p.add_argument("--whitespace", choices=["compact", "any"], default="compact",
                   help="compact: a grammar without free whitespace (default); any: plain response_format")
    p.add_argument("--max-tokens", type=int, default=None,
                   help=f"output tokens per answer (default {get_settings().format_max_tokens})")
    p.add_argument("--limit", type=int, default=None, help="first N items of each set (default: all)")
    p.add_argument("--concurrency", type=int, default=None,
                   help=f"promptfoo -j (default {get_settings().promptfoo_concurrency})")
    p.add_argument("--config", default=None, help="run your own promptfooconfig.yaml instead")
    p.add_argument("--run-dir", default=None, help="folder for the results (default: a new one under runs/)")
    p.add_argument("--base-url", default=None, help="attach to this endpoint (default: settings, or start vLLM)")
    p.add_argument("--model", default=None)
    p.set_defaults(func=_cmd_format)


def _cmd_format(args) -> int:
    from evalkit.serve import serve

    with serve(args.model, base_url=args.base_url) as srv:
        result = check_format(srv, sets=args.sets, structured=args.structured, max_tokens=args.max_tokens,
                              limit=args.limit,
                              concurrency=args.concurrency, whitespace=args.whitespace, config=args.config,
                              run_dir=args.run_dir)
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(result.summary().to_string(index=False))
        print()
        print(result.table().to_string(index=False))
    print(f"saved {result.path / 'result.json'}")
    return 0
