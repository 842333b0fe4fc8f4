"""``evalkit scorecard``, ``evalkit gate`` and ``evalkit compare`` on the command line.

Each command imports what it runs when it runs, so building the parser (``evalkit --help``, ``evalkit status``)
loads no pandas.
"""

from __future__ import annotations

from evalkit.settings import get_settings


def _cmd_scorecard(args) -> int:
    import pandas as pd

    from evalkit.runs import resolve_run_dir
    from evalkit.scorecard.collect import collect

    card = collect(args.run)
    if args.run:
        card.save(resolve_run_dir(args.run))
    with pd.option_context("display.max_rows", 500, "display.width", 160):
        print(card.df.drop(columns=["bound", "threshold", "passed"]).to_string(index=False))
    return 0


def _cmd_gate(args) -> int:
    from evalkit.runs import resolve_run_dir
    from evalkit.scorecard.gates import JUNIT_FILE, SUMMARY_FILE, gate, markdown_summary

    card = gate(args.run, args.thresholds)
    print(markdown_summary(card))
    out = resolve_run_dir(args.run) if args.run else get_settings().runs_dir / "latest-gate"
    print(f"JUnit XML: {out / JUNIT_FILE}\nSummary: {out / SUMMARY_FILE}")
    return 0 if card.passed else 1


def _cmd_compare(args) -> int:
    import pandas as pd

    from evalkit.scorecard.compare import compare

    table = compare(args.run_a, args.run_b)
    print(f"a = {table.attrs['run_a']}\nb = {table.attrs['run_b']}")
    with pd.option_context("display.max_rows", 500, "display.width", 160):
        print(table.to_string(index=False))
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("scorecard", help="collect a run's results into one table (scorecard.json/.csv)")
    p.add_argument("run", nargs="?", default=None, help="run folder (default: newest result of each layer)")
    p.set_defaults(func=_cmd_scorecard)
    p = sub.add_parser("gate", help="apply thresholds to a run; exit 1 if any gate fails")
    p.add_argument("run", nargs="?", default=None, help="run folder (default: newest result of each layer)")
    p.add_argument("--thresholds", default=None, help="thresholds YAML (default: thresholds.yaml)")
    p.set_defaults(func=_cmd_gate)
    p = sub.add_parser("compare", help="side-by-side metrics of two runs, with a paired test per item metric")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.set_defaults(func=_cmd_compare)
