"""``evalkit accuracy``: the accuracy layer on the command line."""

from __future__ import annotations

from evalkit.accuracy.args import AccuracyArgs
from evalkit.commands import add_server_options, command_server


def register_cli(subparsers) -> None:
    """``evalkit accuracy``: lm-eval on MMLU-Pro, the FAQ or your own tasks."""
    p = subparsers.add_parser("accuracy", help="lm-eval accuracy: MMLU-Pro by category, the FAQ, your own tasks")
    p.add_argument("--tasks", nargs="+", default=list(AccuracyArgs.defaults().tasks), metavar="TASK",
                   help="task or group names (default: mmlu_pro_mc); `--list` shows them")
    p.add_argument("--limit", type=int, default=None, help="first N questions per task/category (default: all)")
    AccuracyArgs.add_options(p, ["num_fewshot", "concurrency", "batch_size", "max_gen_toks", "api", "mmlu_pro"])
    p.add_argument("--include-path", nargs="*", default=None, help="extra folders with task YAMLs")
    p.add_argument("--run-dir", default=None, help="folder for the results (default: a new one under runs/)")
    add_server_options(p)
    p.add_argument("--list", action="store_true", help="list the tasks and exit")
    p.set_defaults(func=_cmd_accuracy)


def _cmd_accuracy(args) -> int:
    import pandas as pd

    from evalkit.accuracy.run import evaluate
    from evalkit.accuracy.taskfiles import list_tasks

    if args.list:
        with pd.option_context("display.width", 160, "display.max_colwidth", 70):
            print(list_tasks(args.include_path).to_string(index=False))
        return 0
    with command_server(args) as srv:
        result = evaluate(srv, args.tasks, limit=args.limit, num_fewshot=args.num_fewshot,
                          concurrency=args.concurrency, batch_size=args.batch_size, max_gen_toks=args.max_gen_toks,
                          api=args.api, include_path=args.include_path, mmlu_pro=args.mmlu_pro, run_dir=args.run_dir)
    print(result.summary_text())
    with pd.option_context("display.width", 160):
        for task in result.tasks:
            frame = result.by_category(task)
            if not frame.empty:
                print(f"\n{task} by category:")
                print(frame.drop(columns=["task"]).round(3).to_string(index=False))
    print(f"\nresults: {result.path / 'result.json'}")
    return 0
