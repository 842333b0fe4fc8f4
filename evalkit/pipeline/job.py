"""The main job: ``evalkit run`` executes every notebook of the pyramid against one server, then gates.

One run folder per run (``runs/<time>-<profile>/``): ``run.json`` (what ran, each notebook's status and time),
``notebooks/`` (the executed notebooks), one folder per layer with its tool outputs and ``result.json``, then
the scorecard, the gate files and ``report.html``. A notebook that fails is recorded and the others still
run; ``evalkit run --resume RUN`` reruns only what did not finish. Parameters come from a named profile in
``profiles.yaml`` (``quick``: minutes on a CPU; ``full``: the workshop on an L4). One run at a time per project.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from evalkit import layers
from evalkit.errors import ConfigError, EvalkitError, RunNotFoundError
from evalkit.pipeline.kernel import execute_notebook
from evalkit.pipeline.profiles import (NOTEBOOKS, load_profiles, notebook_model, profile_parameters,
                                       with_overrides)
from evalkit.runs import new_run_dir, resolve_run_dir, run_lock

RUN_FILE = "run.json"


class RunState:
    """run.json: the run's profile, model, server and the status of each notebook."""

    def __init__(self, folder: Path, data: dict):
        self.folder = folder
        self.data = data

    @classmethod
    def load(cls, folder: Path) -> RunState:
        path = folder / RUN_FILE
        if not path.exists():
            raise RunNotFoundError(f"{folder} has no {RUN_FILE}: it was not made by `evalkit run`.",
                                   fix="pass a folder that `evalkit run` created (see runs/).")
        return cls(folder, json.loads(path.read_text()))

    def save(self) -> None:
        (self.folder / RUN_FILE).write_text(json.dumps(self.data, indent=2))

    def status(self, notebook: str) -> str:
        return self.data["notebooks"].get(notebook, {}).get("status", "pending")

    def mark(self, notebook: str, **fields) -> None:
        self.data["notebooks"].setdefault(notebook, {}).update(fields)
        self.save()


def run(
    profile: str = "quick",
    *,
    model: str | None = None,
    base_url: str | None = None,
    resume: str | Path | None = None,
    only: list[str] | None = None,
    overrides: list[str] | None = None,
    thresholds: str | Path | None = None,
    echo: bool = True,
    server=None,
    when_timing_done: Callable[[], None] | None = None,
) -> Path:
    """Run the pyramid's notebooks in order against one server, then scorecard, gates and report.

    Args:
        profile: a profile name from profiles.yaml.
        model: model preset/folder/hub id (default: the profile's, then settings.model).
        base_url: attach to this endpoint instead of starting vLLM.
        resume: a run folder to continue: only notebooks that did not finish run again.
        only: run just these notebooks (names like "01_performance").
        overrides: ``NOTEBOOK.PARAM=VALUE`` items laid over the profile's values (``--set``); kept in run.json,
            so a resumed run uses them again (with any given to the resume after them).
        thresholds: thresholds file for the gates (default: thresholds.yaml).
        echo: print progress.
        server: a :class:`~evalkit.serve.Server` for the model, already started (it is stopped at the end).
        when_timing_done: called once the performance notebook is done (or before the first notebook when it
            does not run): from then on, another process's CPU use cannot disturb a latency measurement.

    Returns:
        The run folder.
    """
    from evalkit.plan.build import make_plan, profile_settings
    from evalkit.settings import settings_applied

    planned = {"model": model, "base_url": base_url}
    overrides = list(overrides or [])
    if resume:
        state = RunState.load(resolve_run_dir(resume))
        profile = state.data["profile"]
        planned = {"model": model or state.data.get("model"), "base_url": base_url or state.data.get("base_url")}
        overrides = state.data.get("set", []) + overrides
    profiles = with_overrides(load_profiles(), profile, overrides)
    params = profile_parameters(profile, profiles)  # raises for an unknown profile or parameter
    if only:
        unknown = [n for n in only if n not in NOTEBOOKS]
        if unknown:
            raise ConfigError(f"Unknown notebook(s): {', '.join(unknown)}.", fix=f"use: {', '.join(NOTEBOOKS)}.")
    # the profile's settings (a GPU share for each server, a context) hold for this process and the kernels; the
    # plan of its servers is checked against this machine before the first one starts
    with settings_applied(profile_settings(profile, profiles)) as settings:
        if server is None:
            make_plan(profile, **planned, profiles=profiles, notebooks=only).check()
        return _run_notebooks(profile, profiles, params, settings, model=model, base_url=base_url, resume=resume,
                              only=only, overrides=overrides, thresholds=thresholds, echo=echo, server=server,
                              when_timing_done=when_timing_done)


def _run_notebooks(profile, profiles, params, settings, *, model, base_url, resume, only, overrides, thresholds, echo,
                   server, when_timing_done) -> Path:
    from evalkit.serve import serve

    folder = resolve_run_dir(resume) if resume else None
    state = RunState.load(folder) if resume else None
    with run_lock(settings.runs_dir, "evalkit run"):
        if not resume:
            folder = new_run_dir(profile)
            state = RunState(folder, {
                # attached to a base URL without --model: whatever model it serves, not the profile's
                "run_id": folder.name, "profile": profile, "model": model or (None if base_url else (
                    profiles[profile].get("model") or settings.model)), "base_url": base_url,
                "created": datetime.now().isoformat(timespec="seconds"),
                "notebooks": {},
            })
        state.data["set"] = overrides
        state.save()
        model = model or state.data["model"]
        if echo:
            print(f"[evalkit] run folder: {folder}", flush=True)
        todo = [n for n in NOTEBOOKS if (not only or n in only) and state.status(n) != "ok"]
        srv = server or serve(model, base_url=base_url or state.data.get("base_url"), echo=echo)
        timed = layers.get("performance").notebook
        started = time.monotonic()
        try:
            state.data["server"] = {"base_url": srv.base_url, "model": srv.model, "started_here": srv.started,
                                    "ready_s": srv.info.ready_s}
            state.save()
            (folder / "notebooks").mkdir(exist_ok=True)
            if when_timing_done and timed not in todo:
                when_timing_done()
            for name in todo:
                if not srv.healthy():
                    state.mark(name, status="skipped", error=srv.problem() or "server not answering")
                    continue
                sub = NOTEBOOKS[name]
                run_dir = folder / sub if sub else folder
                values = {"MODEL": srv.model, "BASE_URL": srv.base_url, "RUN_DIR": str(run_dir),
                          **params.get(name, {})}
                values["MODEL"] = notebook_model(values["MODEL"], srv.model)
                state.mark(name, status="running")
                state.mark(name, **execute_notebook(name, folder / "notebooks", values, echo))
                if when_timing_done and name == timed:
                    when_timing_done()
        except KeyboardInterrupt:
            for name in todo:
                if state.status(name) == "running":
                    state.mark(name, status="interrupted")
            raise
        finally:
            srv.stop()
            state.data["duration_s"] = round(state.data.get("duration_s", 0) + time.monotonic() - started, 1)
            state.save()
        finish(folder, thresholds, echo)
    return folder


def finish(folder: Path, thresholds=None, echo: bool = True) -> None:
    """Scorecard, gates and report of a run folder (whatever results it holds)."""
    from evalkit.report import write_report
    from evalkit.scorecard import gate

    state = RunState.load(folder)
    try:
        card = gate(folder, thresholds, out_dir=folder)
        state.data["gates_passed"] = card.passed
    except EvalkitError as exc:
        state.data["gates_passed"] = False
        state.data["gate_error"] = str(exc)
        card = None
    state.save()
    report = write_report(folder, card)
    if echo:
        failed = [n for n, r in state.data["notebooks"].items() if r.get("status") != "ok"]
        print(f"[evalkit] notebooks: {len(state.data['notebooks']) - len(failed)} ok"
              + (f", not ok: {', '.join(failed)}" if failed else ""), flush=True)
        if card is not None:
            print(f"[evalkit] gates: {'PASSED' if card.passed else 'FAILED'} "
                  f"({int(card.gates()['passed'].sum())}/{len(card.gates())})", flush=True)
        print(f"[evalkit] report: {report}\n[evalkit] results: {folder}", flush=True)


def exit_code(folder: Path) -> int:
    """0 when every notebook finished and every gate passed; 1 when a gate failed; 3 when a notebook failed."""
    state = RunState.load(folder)
    if any(r.get("status") != "ok" for r in state.data["notebooks"].values()):
        return 3
    return 0 if state.data.get("gates_passed") else 1


def run_models(profile: str, models: list[str], *, only: list[str] | None = None,
               overrides: list[str] | None = None, thresholds=None, echo: bool = True) -> tuple[Path, dict[str, Path]]:
    """The pyramid once per model (each on its own server, one after the other), then one comparison.

    The next model's server starts while the current model's pyramid runs, once its performance layer is done
    (a start would disturb its latencies) and when memory allows two servers (else after the current one stops).

    Returns:
        The comparison folder (``runs/<time>-compare``, with compare.html) and ``{model: run folder}``.
    """
    from evalkit.scorecard.by_model import write_comparison
    from evalkit.serve import Starting, prestart, resolve_model

    if len(models) < 2 or len(set(models)) != len(models):
        raise ConfigError(f"--models needs two or more different models, got {models}.",
                          fix="e.g. --models ladder-s,ladder-m,ladder-l.")
    for name in models:  # an unknown name is refused before anything runs
        resolve_model(name)
    runs: dict[str, Path] = {}
    pending: list[Starting] = []
    try:
        for i, name in enumerate(models):
            if echo:
                print(f"[evalkit] model {i + 1} of {len(models)}: {name}", flush=True)
            server = pending.pop().ready() if pending else None
            wanted = resolve_model(name).name
            if server is not None and server.model != wanted:  # an adapter of the base server started ahead
                base, server = server, server.for_model(wanted)
                base.stop()  # the adapter's handle holds the server now

            def start_next(following=models[i + 1] if i + 1 < len(models) else None):
                nxt = following and prestart(following, echo=echo)
                if nxt:
                    pending.append(nxt)

            runs[name] = run(profile, model=name, only=only, overrides=overrides, thresholds=thresholds, echo=echo,
                             server=server, when_timing_done=start_next)
    finally:
        for nxt in pending:  # an error or an interrupt: the next server is not left starting
            nxt.stop()
    out = new_run_dir("compare")
    page = write_comparison(runs, out)
    if echo:
        print(f"[evalkit] comparison: {page}", flush=True)
    return out, runs
