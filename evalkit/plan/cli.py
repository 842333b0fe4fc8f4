"""``evalkit plan``: the servers a run would start, sized for a machine, and whether they fit (exit 0 or 2)."""

from __future__ import annotations

import json
from dataclasses import asdict


def _cmd_plan(args) -> int:
    from evalkit.plan.build import make_plan

    plan = make_plan(args.profile, args.hardware, model=args.model, base_url=args.base_url,
                     check_args=not args.no_vllm_check)
    if args.json:
        print(json.dumps({"profile": plan.profile, "hardware": asdict(plan.hardware), "model": plan.model,
                          "settings": plan.settings, "fits": plan.fits, "args_checked": plan.args_checked,
                          "servers": [asdict(s) for s in plan.servers], "steps": [asdict(s) for s in plan.steps],
                          "problems": [{**asdict(p), "text": str(p)} for p in plan.problems], "notes": plan.notes},
                         indent=2))
    else:
        print(plan.text())
    return 0 if plan.fits else 2


def register_cli(sub) -> None:
    p = sub.add_parser("plan", help="list the servers a run would start or reuse, sized for a machine; exit 2 if "
                                    "it does not fit")
    p.add_argument("--profile", default="quick", help="profile in profiles.yaml (quick, full)")
    p.add_argument("--hardware", default=None,
                   help="a row of data/hardware.yaml (L4, A10G, A100-40, A100-80, H100, 2xL4, 4xL4, 8xH100, ...) or "
                        "CPU; default: the machine this runs on")
    p.add_argument("--model", default=None, help="the run's model instead of the profile's")
    p.add_argument("--base-url", default=None, help="the run's server is attached by URL (takes no memory here)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--no-vllm-check", action="store_true",
                   help="skip parsing each command line with vLLM's own argument parser (it imports vLLM)")
    p.set_defaults(func=_cmd_plan)

    from evalkit.plan.check import register_cli as register_check

    register_check(sub)
