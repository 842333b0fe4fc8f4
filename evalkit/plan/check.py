"""A facilitator's check of one machine before a workshop: plan, start, one short call per layer, figures, exit code.

:func:`check_machine` plans the profile for the machine it runs on (refusing one that cannot fit), starts the
profile's model with the profile's settings, runs one short call of each layer (a synchronous GuideLLM
benchmark, two format items, the FAQ task, eight refusal prompts) and sets each measured figure beside what
the machine should show: on a GPU the single-stream decode ceiling from its memory bandwidth (derived, never
presented as measured), on a CPU the workbook's own measurement. ``evalkit check-gpu`` prints the table and
exits 0 when every step ran and every figure is plausible, 1 when a figure is not, 2 when a step failed; it
takes a few minutes on an L4 (``scripts/gpu_check.sh`` runs it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

# a single stream above its bandwidth ceiling was not measured right; far below it, the GPU is not doing the work
CEILING_SHARE = (0.25, 1.05)


@dataclass
class MachineCheck:
    """What the check ran, measured and concluded."""

    plan_text: str
    rows: list[dict] = field(default_factory=list)  # step, seconds, measured, expected, verdict
    failed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.failed:
            return 2
        return 0 if all(r["verdict"] in ("ok", "ran") for r in self.rows) else 1

    def table(self):
        import pandas as pd

        return pd.DataFrame(self.rows)


def _timed(check: MachineCheck, step: str, call):
    started = time.monotonic()
    try:
        value = call()
    except Exception as exc:  # one step's failure is reported, and the others still run
        check.failed.append(f"{step}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        check.rows.append({"step": step, "seconds": round(time.monotonic() - started, 1), "measured": None,
                           "expected": "", "verdict": "FAILED"})
        return None
    check.rows.append({"step": step, "seconds": round(time.monotonic() - started, 1), "measured": None,
                       "expected": "", "verdict": "ran"})
    return value


def check_machine(profile: str = "full", *, run_dir: Path | str | None = None, echo: bool = True) -> MachineCheck:
    """Plan ``profile`` here, start its model, run each layer once, and compare the figures with the plan's."""
    from evalkit.accuracy import evaluate
    from evalkit.fmt import check_format
    from evalkit.perf import sweep
    from evalkit.plan.build import make_plan, profile_settings
    from evalkit.runs import new_run_dir
    from evalkit.safety import check_safety
    from evalkit.serve import serve
    from evalkit.settings import settings_applied

    plan = make_plan(profile).check()  # an impossible plan is refused before anything starts
    check = MachineCheck(plan.text())
    out = Path(run_dir) if run_dir else new_run_dir(f"check-{profile}")
    run_server = plan.servers[0]
    with settings_applied(profile_settings(profile)), serve(plan.model, echo=echo) as srv:
        check.rows.append({"step": "serve", "seconds": srv.info.ready_s, "measured": srv.info.ready_s,
                           "expected": "", "verdict": "ran"})
        perf = _timed(check, "performance (1 stream, 256 in / 128 out, 4 requests)", lambda: sweep(
            srv, profile="synchronous", prompt_tokens=256, output_tokens=128, max_requests=4, max_seconds=120.0,
            run_dir=out / "performance", echo=False))
        if perf is not None:
            tps = float(perf.summary()["output_tokens_per_s"].iloc[0])
            row = check.rows[-1]
            row["measured"] = round(tps, 1)
            if not tps > 0:  # NaN: no request finished
                row.update(expected="at least one finished request", verdict="CHECK")
            elif run_server.decode_ceiling:
                low, high = (share * run_server.decode_ceiling for share in CEILING_SHARE)
                row["expected"] = (f"{low:.0f}-{high:.0f} output tok/s ({CEILING_SHARE[0]:.0%}-{CEILING_SHARE[1]:.0%} "
                                   f"of the {run_server.decode_ceiling:.0f} tok/s bandwidth ceiling; derived, not "
                                   "measured)")
                row["verdict"] = "ok" if low <= tps <= high else "CHECK"
        _timed(check, "format (2 extraction items, structured outputs)", lambda: check_format(
            srv, sets=["extraction"], limit=2, structured=True, run_dir=out / "format", echo=False))
        _timed(check, "accuracy (FAQ, 10 questions)", lambda: evaluate(
            srv, ["faq_mc"], limit=10, run_dir=out / "accuracy", echo=False))
        _timed(check, "safety (4 HarmBench + 4 XSTest prompts)", lambda: check_safety(
            srv, sets=["harmbench", "xstest_safe"], sample=4, run_dir=out / "safety", echo=False))
    (out / "check.txt").write_text(plan.text() + "\n\n" + check.table().to_string(index=False) + "\n")
    return check


def _cmd_check_gpu(args) -> int:
    import pandas as pd

    check = check_machine(args.profile, run_dir=args.run_dir)
    print(check.plan_text, "\n")
    with pd.option_context("display.max_colwidth", 120, "display.width", 200):
        print(check.table().to_string(index=False))
    for failure in check.failed:
        print(f"FAILED {failure}")
    print({0: "PASSED: this machine is ready for the profile.", 1: "CHECK: a figure is outside what this machine "
           "should show (see the expected column).", 2: "FAILED: a step did not run (see above)."}[check.exit_code])
    return check.exit_code


def register_cli(sub) -> None:
    p = sub.add_parser("check-gpu", help="a facilitator's check of this machine: plan, start, one call per layer, "
                                         "measured against expected figures (exit 0, 1 or 2)")
    p.add_argument("--profile", default="full", help="profile in profiles.yaml (default: full, the L4 workshop)")
    p.add_argument("--run-dir", default=None, help="folder for the check's results (default: a new one in runs/)")
    p.set_defaults(func=_cmd_check_gpu)
