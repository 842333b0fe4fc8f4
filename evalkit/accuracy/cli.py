"""``evalkit accuracy``: the accuracy layer on the command line."""

from __future__ import annotations

import pandas as pd

from evalkit.accuracy.run import APIS, DEFAULT_TASKS, evaluate
from evalkit.accuracy.taskfiles import list_tasks
from evalkit.settings import get_settings


def register_cli(subparsers) -> None:
    """``evalkit accuracy``: lm-eval on MMLU-Pro, the FAQ or your own tasks."""
    p = subparsers.add_parser("accuracy", help="lm-eval accuracy: MMLU-Pro by category, the FAQ, your own tasks")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), metavar="TASK",
                   help="task or group names (default: mmlu_pro_mc); `--list` shows them")
    p.add_argument("--limit", type=int, default=None, help="first N questions per task/category (default: all)")
    p.add_argument("--num-fewshot", type=int, default=0, help="few-shot examples per question (default 0)")
    p.add_argument("--concurrency", type=int, default=None,
                   help=f"requests in flight (default {get_settings().lmeval_concurrency})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"prompts per request (default {get_settings().lmeval_batch_size})")
    p.add_argument("--max-gen-toks", type=int, default=None, help="generation budget of generative tasks")
    p.add_argument("--api", choices=APIS, default="auto", help="endpoint choice (default auto)")
    p.add_argument("--mmlu-pro", choices=["subset", "full"], default="subset",
                   help="MMLU-Pro questions: subset (20 per category) or full (12,032)")
    p.add_argument("--include-path", nargs="*", default=None, help="extra folders with task YAMLs")
    p.add_argument("--run-dir", default=None, help="folder for the results (default: a new one under runs/)")
    p.add_argument("--base-url", default=None, help="attach to this endpoint (default: settings, or start vLLM)")
    p.add_argument("--model", default=None)
    p.add_argument("--list", action="store_true", help="list the tasks and exit")
    p.set_defaults(func=_cmd_accuracy)


def _cmd_accuracy(args) -> int:
    if args.list:
        with pd.option_context("display.width", 160, "display.max_colwidth", 70):
            print(list_tasks(args.include_path).to_string(index=False))
        return 0
    from evalkit.serve import serve

    with serve(args.model, base_url=args.base_url) as srv:
        result = evaluate(srv, args.tasks, limit=args.limit, num_fewshot=args.num_fewshot,
                          concurrency=args.concurrency, batch_size=args.batch_size, max_gen_toks=args.max_gen_toks,
                          api=args.api, include_path=args.include_path, mmlu_pro=args.mmlu_pro, run_dir=args.run_dir)
    print(result.summary())
    with pd.option_context("display.width", 160):
        for task in result.tasks:
            frame = result.by_category(task)
            if not frame.empty:
                print(f"\n{task} by category:")
                print(frame.drop(columns=["task"]).round(3).to_string(index=False))
    print(f"\nresults: {result.path / 'result.json'}")
    return 0
