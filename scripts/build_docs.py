#!/usr/bin/env python3
"""Execute every notebook at its default parameters into docs/notebooks/, for reading without running.

`make docs` runs this. One server for the default model is started (or reused) first and every notebook attaches
to it, as in a workshop. While the notebooks run:
- every ``ek.expect(...)`` check is logged (EVALKIT_FIGURES_LOG) and written to docs/figures-measured.json: the
  script exits 1 when a figure measured at its stated parameters left the interval docs/figures.yaml gives it
  (the text quoting it no longer holds);
- the time between consecutive outputs of each cell is measured: docs/notebooks/timings.json holds each cell's
  duration and its longest silent stretch (the goal: under 10 s everywhere), and the script prints the worst.
The committed notebooks stay clean; the executed copies are outputs of this command, never edited by hand.

    .venv/bin/python scripts/build_docs.py [00_serve 01_performance ...] [--check-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DOCS = ROOT / "docs"
OUT = DOCS / "notebooks"
MEASURED = DOCS / "figures-measured.json"
SILENCE_GOAL_S = 10.0


def _instrument(events: list) -> None:
    """Record (cell index, time) at each cell's start and end and at every output message of the kernel."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NotebookExecutionManager

    process = PapermillNotebookClient.process_message
    start, complete = NotebookExecutionManager.cell_start, NotebookExecutionManager.cell_complete

    def process_message(self, msg, cell, cell_index):
        if msg.get("msg_type") in ("stream", "display_data", "execute_result", "error", "update_display_data"):
            events.append((cell_index, time.monotonic(), "out"))
        return process(self, msg, cell, cell_index)

    def cell_start(self, cell, cell_index=None, **kw):
        events.append((cell_index, time.monotonic(), "start"))
        return start(self, cell, cell_index, **kw)

    def cell_complete(self, cell, cell_index=None, **kw):
        events.append((cell_index, time.monotonic(), "end"))
        return complete(self, cell, cell_index, **kw)

    PapermillNotebookClient.process_message = process_message
    NotebookExecutionManager.cell_start = cell_start
    NotebookExecutionManager.cell_complete = cell_complete


def silences(events: list) -> dict[int, dict]:
    """Per cell: its duration and the longest gap between its start, its outputs and its end."""
    cells: dict[int, list[float]] = {}
    for index, when, _kind in events:
        cells.setdefault(index, []).append(when)
    out = {}
    for index, times in cells.items():
        times.sort()
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        out[index] = {"duration_s": round(times[-1] - times[0], 2), "longest_silence_s": round(max(gaps or [0]), 2)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="names without .ipynb (default: all)")
    parser.add_argument("--check-only", action="store_true", help="only check docs/figures-measured.json")
    parser.add_argument("--text-only", action="store_true",
                        help="copy the notebooks' markdown into the executed copies whose code is unchanged (after "
                        "editing prose only), then check the figures")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from evalkit.figures import load_figures

    if args.text_only:
        names = args.notebooks or sorted(p.stem for p in OUT.glob("[0-9][0-9]_*.ipynb"))
        stale = [name for name in names if not refresh_text(name)]
        if stale:
            names = " ".join(stale)
            print(f"code changed since the last run of {names}: run `make docs NOTEBOOKS=\"{names}\"`")
            return 1
    if args.check_only or args.text_only:
        figures, measured = load_figures(), json.loads(MEASURED.read_text())
        timings = json.loads((OUT / "timings.json").read_text())
        if args.text_only:  # the figures file may have gained a time_* entry since the last run
            measured.update(run_times(figures, timings))
            MEASURED.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
        return report_drift(figures, measured)
    import papermill

    import evalkit as ek

    names = args.notebooks or sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    OUT.mkdir(parents=True, exist_ok=True)
    timings_path = OUT / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    measured = json.loads(MEASURED.read_text()) if MEASURED.exists() else {}
    events: list = []
    _instrument(events)
    figures = load_figures()
    srv = ek.serve(ek.get_settings().model)  # the notebooks attach to it; stopped at the end if started here
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "figures.jsonl"
        os.environ["EVALKIT_FIGURES_LOG"] = str(log)
        snapshot = Path(tmp) / "notebooks"
        shutil.copytree(NOTEBOOKS, snapshot, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        failed = []
        try:
            for name in names:
                events.clear()
                log.unlink(missing_ok=True)
                began = time.monotonic()
                print(f"== {name}", flush=True)
                try:
                    papermill.execute_notebook(str(snapshot / f"{name}.ipynb"), str(OUT / f"{name}.ipynb"),
                                               cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False,
                                               request_save_on_cell_execute=False, execution_timeout=1800)
                except papermill.PapermillExecutionError as exc:
                    failed.append(f"{name}: {exc.ename}: {exc.evalue}")
                cells = silences(events)
                worst = max(cells.items(), key=lambda kv: kv[1]["longest_silence_s"], default=(None, {}))
                timings[name] = {"total_s": round(time.monotonic() - began, 1), "cells": cells,
                                 "longest_silence_s": worst[1].get("longest_silence_s"), "worst_cell": worst[0]}
                print(f"   {timings[name]['total_s']} s; longest silent stretch {timings[name]['longest_silence_s']} s "
                      f"(cell {worst[0]})", flush=True)
                checks = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
                measured = {k: v for k, v in measured.items() if v.get("notebook") != name}
                measured.update({c["key"]: c for c in checks})
                _clean(OUT / f"{name}.ipynb")
        finally:
            if srv.started:
                srv.stop()
    timings_path.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
    measured.update(run_times(figures, timings))
    MEASURED.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
    for line in failed:
        print("FAILED", line)
    loud = {n: t["longest_silence_s"] for n, t in timings.items() if (t["longest_silence_s"] or 0) >= SILENCE_GOAL_S}
    if loud:
        print(f"silent stretches of {SILENCE_GOAL_S:g} s or more: {loud}")
    return max(report_drift(load_figures(), measured), 1 if failed else 0)


def run_times(figures: dict, timings: dict) -> dict:
    """The notebooks' run times (minutes, from timings.json) as measurements of their ``time_<notebook>`` figures."""
    out = {}
    for name, timing in timings.items():
        key = f"time_{name}"
        if key in figures:
            minutes = round(timing["total_s"] / 60, 2)
            out[key] = {"key": key, "notebook": name, "value": minutes, "compared": True,
                        "holds": figures[key].holds(minutes), "differs": {}}
    return out


def report_drift(figures: dict, measured: dict) -> int:
    """Print every figure against its measurement; 1 if one measured at the stated parameters left its interval."""
    bad = 0
    for key, fig in figures.items():
        m = measured.get(key)
        if m is None:
            print(f"  {key}: not measured (no expect() call ran for it)")
            bad = 1
            continue
        if not m["compared"]:
            state = "not compared (other parameters)"
        else:
            state = "ok" if m["value"] is not None and fig.holds(m["value"]) else "DRIFT"
        print(f"  {key}: text {fig.text!r}, interval {fig.low:g}-{fig.high:g}, measured {m['value']} -> {state}")
        bad |= state == "DRIFT" or not m["compared"]
    return int(bad)


def refresh_text(name: str) -> bool:
    """Put the notebook's markdown into its executed copy, if both hold the same code; False if they do not."""
    source = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    copy_path = OUT / f"{name}.ipynb"
    copy = json.loads(copy_path.read_text())
    executed = [c for c in copy["cells"] if c["cell_type"] == "code"]
    if ["".join(c["source"]) for c in source if c["cell_type"] == "code"] != ["".join(c["source"]) for c in executed]:
        return False
    outputs = iter(executed)
    copy["cells"] = [c if c["cell_type"] == "markdown" else next(outputs) for c in source]
    copy_path.write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n")
    return True


def _clean(path: Path) -> None:
    """Drop what changes on every run but teaches nothing: papermill's timing metadata and the widget state."""
    nb = json.loads(path.read_text())
    nb["metadata"].pop("widgets", None)
    for cell in nb["cells"]:
        cell["metadata"].pop("papermill", None)
        cell["metadata"].pop("execution", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
