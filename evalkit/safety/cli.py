"""``evalkit safety``: the safety layer on the command line."""

from __future__ import annotations

import pandas as pd

from evalkit.safety import bbq as bbq_mod
from evalkit.safety.config import ALIASES, DEFAULT_SETS, SETS
from evalkit.safety.run import check_safety


def register_cli(subparsers) -> None:
    """``evalkit safety``: refusals, over-refusals, BBQ bias and custom checks with promptfoo."""
    p = subparsers.add_parser("safety", help="refusal (AdvBench, XSTest), bias (BBQ) and custom checks (promptfoo)")
    p.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), choices=[*SETS, *ALIASES], metavar="SET",
                   help=f"some of {', '.join([*SETS, *ALIASES])} (default: {' '.join(DEFAULT_SETS)})")
    p.add_argument("--sample", type=int, default=20, help="prompts per set; BBQ: per category (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bbq-categories", nargs="+", default=None, choices=bbq_mod.CATEGORIES, metavar="CATEGORY")
    p.add_argument("--grader-url", default=None, help="OpenAI-compatible endpoint of an LLM grader (default: rules)")
    p.add_argument("--grader-model", default=None)
    p.add_argument("--custom", nargs="+", default=None, help="custom checks files (.jsonl or .yaml)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--run-dir", default=None, help="folder for the results (default: a new one under runs/)")
    p.add_argument("--base-url", default=None, help="attach to this endpoint (default: settings, or start vLLM)")
    p.add_argument("--model", default=None)
    p.set_defaults(func=_cmd_safety)


def _cmd_safety(args) -> int:
    from evalkit.serve import serve

    srv = serve(args.model, base_url=args.base_url)
    result = check_safety(srv, sets=args.sets, sample=args.sample, seed=args.seed, grader_url=args.grader_url,
                          grader_model=args.grader_model, custom=args.custom, bbq_categories=args.bbq_categories,
                          max_tokens=args.max_tokens, concurrency=args.concurrency, run_dir=args.run_dir)
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(result.summary().to_string(index=False))
    print(f"saved {result.path / 'result.json'}")
    return 0
