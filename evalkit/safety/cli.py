"""``evalkit safety``: the safety layer on the command line."""

from __future__ import annotations

from evalkit.commands import add_server_options, command_server
from evalkit.safety import bbq as bbq_mod
from evalkit.safety.args import SafetyArgs
from evalkit.safety.config import ALIASES, SETS


def register_cli(subparsers) -> None:
    """``evalkit safety``: refusals, over-refusals, BBQ bias and custom checks with promptfoo."""
    p = subparsers.add_parser("safety", help="refusal (AdvBench, XSTest), bias (BBQ) and custom checks (promptfoo)")
    defaults = SafetyArgs.defaults()
    p.add_argument("--sets", nargs="+", default=list(defaults.sets), choices=[*SETS, *ALIASES], metavar="SET",
                   help=f"some of {', '.join([*SETS, *ALIASES])} (default: {' '.join(defaults.sets)})")
    SafetyArgs.add_options(p, ["sample", "seed", "grader_url", "grader_model", "max_tokens", "concurrency"])
    p.add_argument("--bbq-categories", nargs="+", default=None, choices=bbq_mod.CATEGORIES, metavar="CATEGORY")
    p.add_argument("--harmbench-categories", nargs="+", default=None, metavar="CATEGORY",
                   help="HarmBench semantic categories (default: all)")
    p.add_argument("--custom", nargs="+", default=None, help="custom checks files (.jsonl or .yaml)")
    p.add_argument("--run-dir", default=None, help="folder for the results (default: a new one under runs/)")
    add_server_options(p)
    p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help="two or more models (names or base URLs) asked the same tests in one promptfoo run, "
                   "side by side; the first is the model under test")
    p.set_defaults(func=_cmd_safety)


def _cmd_safety(args) -> int:
    import pandas as pd

    from evalkit.safety.result import side_by_side
    from evalkit.safety.run import check_safety

    options = dict(sets=args.sets, sample=args.sample, seed=args.seed, grader_url=args.grader_url,
                   grader_model=args.grader_model, custom=args.custom, bbq_categories=args.bbq_categories,
                   harmbench_categories=args.harmbench_categories, max_tokens=args.max_tokens,
                   concurrency=args.concurrency, run_dir=args.run_dir)
    if args.models:  # the servers check_safety starts for them are stopped when it ends
        result = check_safety(None, models=args.models, **options)
    else:
        with command_server(args) as srv:
            result = check_safety(srv, **options)
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        if result.models:
            print(result.by_model().round(3).to_string())
            print()
            print(side_by_side(result.per_model()).to_string(index=False))
            print()
        print(result.summary().to_string(index=False))
    print(f"saved {result.path / 'result.json'}")
    return 0
