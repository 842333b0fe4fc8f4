"""``evalkit run``: the main job on the command line (it imports the job when it runs, not when the parser is built)."""

from __future__ import annotations

from evalkit.errors import ConfigError


def _cmd_run(args) -> int:
    from evalkit.pipeline.job import exit_code, run, run_models

    only = args.only.split(",") if args.only else None
    if args.models:
        if args.model or args.base_url or args.resume:
            raise ConfigError("--models runs each model on its own server; it does not combine with --model, "
                              "--base-url or --resume.", fix="drop those options, or run one model at a time.")
        _, runs = run_models(args.profile, [m.strip() for m in args.models.split(",") if m.strip()], only=only,
                             overrides=args.set, thresholds=args.thresholds)
        return max(exit_code(folder) for folder in runs.values())
    folder = run(args.profile, model=args.model, base_url=args.base_url, resume=args.resume, only=only,
                 overrides=args.set, thresholds=args.thresholds)
    return exit_code(folder)


def register_cli(sub) -> None:
    p = sub.add_parser("run", help="run every notebook of the pyramid, then scorecard, gates and report")
    p.add_argument("--profile", default="quick", help="profile in profiles.yaml (quick, full)")
    p.add_argument("--model", default=None, help="model preset/folder/hub id (default: the profile's)")
    p.add_argument("--base-url", default=None, help="attach to this OpenAI-compatible endpoint")
    p.add_argument("--models", default=None, metavar="A,B,...",
                   help="run the pyramid on each model (own server each), then one comparison report")
    p.add_argument("--resume", default=None, metavar="RUN", help="rerun only what did not finish in RUN")
    p.add_argument("--only", default=None, help="comma-separated notebooks, e.g. 01_performance,03_accuracy")
    p.add_argument("--set", action="append", default=[], metavar="NOTEBOOK.PARAM=VALUE",
                   help="replace one of the profile's values (VALUE in YAML), e.g. --set 03_accuracy.LIMIT=2; "
                        "repeatable; a resumed run keeps them")
    p.add_argument("--thresholds", default=None, help="thresholds YAML (default: thresholds.yaml)")
    p.set_defaults(func=_cmd_run)
