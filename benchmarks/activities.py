"""Measure the original workshop's three activities as the workbook runs them, on the embedded ladder.

1. The four use-case workloads (chat, RAG, summarization, code generation) with notebook 01's quick settings:
   notebook 01 runs under papermill against one server; papermill's per-cell times give the workload cells'
   share of the notebook.
2. HarmBench by semantic category for ``ladder-m`` and ``ladder-m-control``, both providers of one promptfoo run.
3. The refusal rules against an LLM grader: ``ladder-m`` graded by itself (the only grader offline).

    .venv/bin/python benchmarks/activities.py [--sample 30] [--port 8811]

Prints the tables and writes benchmarks/results/activities-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from evalkit import safety  # noqa: E402
from evalkit.pipeline import kernel_config, profile_parameters  # noqa: E402
from evalkit.serve import serve  # noqa: E402

WORKLOAD_CELLS = ("perf.workload_presets", "perf.run_workloads", "perf.workload_table", "perf_plots.workloads")


def notebook_01(srv, workdir: Path) -> dict:
    """Run notebook 01 with the quick profile's parameters; the workload cells' time against the whole."""
    import papermill

    params = {**profile_parameters("quick")["01_performance"], "MODEL": srv.model, "BASE_URL": srv.base_url,
              "RUN_DIR": str(workdir / "01")}
    out = workdir / "01_performance.ipynb"
    started = time.monotonic()
    papermill.execute_notebook(str(ROOT / "notebooks" / "01_performance.ipynb"), str(out), parameters=params,
                               cwd=str(ROOT / "notebooks"), kernel_name="python3", progress_bar=False,
                               config=kernel_config())
    wall = time.monotonic() - started
    cells = json.loads(out.read_text())["cells"]
    durations = [(("".join(c["source"])), c["metadata"].get("papermill", {}).get("duration") or 0.0)
                 for c in cells if c["cell_type"] == "code"]
    workloads = sum(d for src, d in durations if any(k in src for k in WORKLOAD_CELLS))
    cells_total = sum(d for _, d in durations)
    return {"notebook_wall_s": round(wall, 1), "cells_s": round(cells_total, 1), "workloads_s": round(workloads, 1),
            "workloads_share": round(workloads / cells_total, 3) if cells_total else None,
            "workload_rates": params["WORKLOAD_RATES"], "workload_seconds": params["WORKLOAD_SECONDS"]}


def harmbench(srv, sample: int, workdir: Path) -> tuple[dict, pd.DataFrame]:
    pair = safety.check_safety(srv, models=[srv, "ladder-m-control"], sets=["harmbench"], sample=sample, seed=0,
                               run_dir=workdir / "harmbench", echo=False)
    table = pair.by_model("category")
    counts = pd.concat([pair.for_model(m).refusals("category").set_index(["set", "category"])["judged"].rename(m)
                        for m in pair.models], axis=1)
    overall = {m: pair.for_model(m).refusals().iloc[0]["refusal_rate"] for m in pair.models}
    test = safety.side_by_side(pair.per_model()).iloc[0]["paired test"]
    return {"by_category": table.round(3).reset_index().to_dict("records"),
            "judged": counts.reset_index().to_dict("records"), "overall": overall, "paired_test": test}, table


def judges(srv, sample: int, workdir: Path) -> tuple[dict, pd.DataFrame]:
    result = safety.check_safety(srv, sets=["advbench", "harmbench", "xstest_safe"], sample=sample, seed=0,
                                 grader_url=srv.base_url, run_dir=workdir / "judges", echo=False)
    agreement = result.judge_agreement()
    reasons = result.df["grader_reason"].fillna("").str.slice(0, 80).value_counts().head(3).to_dict()
    return {"agreement": agreement.to_dict("records"), "confusion": result.confusion().to_dict(),
            "grader_verdicts": int(result.df["grader_refused"].notna().sum()), "prompts": len(result.df),
            "top_grader_reasons": reasons}, agreement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=30, help="HarmBench prompts (spread over the categories)")
    parser.add_argument("--judge-sample", type=int, default=6, help="prompts per set for the judge comparison")
    parser.add_argument("--port", type=int, default=8811)
    parser.add_argument("--parts", nargs="+", default=["workloads", "harmbench", "judges"],
                        choices=["workloads", "harmbench", "judges"], help="what to measure (default: all)")
    args = parser.parse_args(argv)
    report: dict = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, "
                    f"{__import__('os').cpu_count()} cores, no GPU"}
    with tempfile.TemporaryDirectory() as tmp, serve("ladder-m", port=args.port) as srv:
        workdir = Path(tmp)
        report["ready_s"] = srv.info.ready_s if srv.info else None
        if "workloads" in args.parts:
            report["notebook_01"] = notebook_01(srv, workdir)
            print("notebook 01 (quick):", report["notebook_01"])
        if "harmbench" in args.parts:
            report["harmbench"], table = harmbench(srv, args.sample, workdir)
            print("\nHarmBench refusal rate per category (rules):")
            print(table.round(2).to_string())
            print("overall:", report["harmbench"]["overall"], "|", report["harmbench"]["paired_test"])
        if "judges" in args.parts:
            report["judges"], agreement = judges(srv, args.judge_sample, workdir)
            print("\nrules against the grader (ladder-m grading itself):")
            print(agreement.to_string(index=False))
            print("grader verdicts:", report["judges"]["grader_verdicts"], "of", report["judges"]["prompts"],
                  "| top reasons:", report["judges"]["top_grader_reasons"])
    out = ROOT / "benchmarks" / "results" / f"activities-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
