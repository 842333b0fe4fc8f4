"""evalkit plan: every profile on every hardware row, the shares and contexts it checks, and what it refuses."""

from __future__ import annotations

import pytest

from evalkit.errors import ConfigError
from evalkit.pipeline.profiles import NOTEBOOKS, load_profiles
from evalkit.plan.build import RUN, PlanError, make_plan
from evalkit.plan.hardware import detect_hardware, get_hardware, hardware_table, match_gpus

pytestmark = pytest.mark.unit

ROWS = ["CPU", *hardware_table()]


@pytest.fixture(autouse=True)
def downloaded(monkeypatch):
    """Hub models count as downloaded unless a test says otherwise (planning for another machine)."""
    import importlib

    monkeypatch.setattr(importlib.import_module("evalkit.serve.resolve"), "in_hf_cache", lambda repo: True)


@pytest.mark.parametrize("hardware", ROWS)
@pytest.mark.parametrize("profile", list(load_profiles()))
def test_every_profile_on_every_row_fits_or_is_refused_with_where_and_the_fix(profile, hardware):
    plan = make_plan(profile, hardware)
    assert plan.servers and plan.steps[0].notebook == RUN
    for problem in plan.problems:
        assert problem.notebook in (RUN, *NOTEBOOKS) and problem.parameter and problem.fix
    if not plan.fits:
        with pytest.raises(PlanError) as err:
            plan.check()
        assert plan.problems[0].notebook in str(err.value) and "Fix:" in str(err.value)
    shares_up = [step.used for step in plan.steps]
    if plan.hardware.gpu and plan.fits:
        assert max(shares_up) <= 0.9 + 1e-9
    assert "FITS" in plan.text() if plan.fits else "DOES NOT FIT" in plan.text()


@pytest.mark.parametrize("hardware", ["L4", "A10G", "A100-40", "A100-80", "H100", "2xL4", "4xL4", "8xH100"])
def test_the_quick_and_full_profiles_fit_every_gpu_of_24_gb_or_more(hardware):
    for profile in ("quick", "full"):
        plan = make_plan(profile, hardware)
        assert plan.fits, plan.text()


def test_the_full_profile_on_one_l4_starts_each_climb_server_after_the_last_stopped():
    plan = make_plan("full", "L4")
    assert plan.fits
    run, *beside = plan.servers
    assert (run.model, run.share, run.context) == ("qwen2.5-1.5b-instruct", 0.45, 8192)
    assert [s.model for s in beside] == ["qwen2.5-0.5b-instruct", "qwen2.5-3b-instruct", "qwen2.5-0.5b-instruct"]
    assert all(s.share == 0.45 and s.stopped_after for s in beside)
    assert max(len(step.up) for step in plan.steps) == 2  # never more than the run's server and one beside it
    assert all("--gpu-memory-utilization" in s.command for s in plan.servers)


def test_the_full_profile_on_a_16_gb_t4_is_refused_at_the_3b_model_with_the_rows_where_it_fits():
    plan = make_plan("full", "T4")
    assert not plan.fits
    problem = plan.problems[0]
    assert (problem.notebook, problem.parameter) == ("03_accuracy", "CLIMB_MODELS")
    assert "qwen2.5-3b-instruct" in problem.message and "L4" in problem.fix


def test_the_full_profile_as_it_was_would_stop_in_notebook_03():
    profiles = load_profiles()
    old = {**profiles["full"], "settings": {}}  # vLLM's 0.9 for every server
    plan = make_plan("old", "L4", profiles={"old": old})
    assert not plan.fits
    assert (plan.problems[0].notebook, plan.problems[0].parameter) == ("03_accuracy", "CLIMB_MODELS")
    assert "1.35 of a GPU" in plan.problems[0].message


TEAM = {"team": {"model": "qwen2.5-14b-instruct", "notebooks": {"04_safety": {"COMPARE_MODEL": None},
                                                                "03_accuracy": {"CLIMB_MODELS": []}}}}


def test_a_14b_model_is_sharded_over_two_l4s_and_refused_on_one():
    one = make_plan("team", "L4", profiles=TEAM)
    assert not one.fits and one.problems[0].notebook == RUN
    assert "27.5 GiB of weights" in one.problems[0].message and "2xL4" in one.problems[0].fix
    two = make_plan("team", "2xL4", profiles=TEAM, check_args=True)
    assert two.fits, two.text()
    server = two.servers[0]
    assert server.tensor_parallel == 2 and server.command[server.command.index("--tensor-parallel-size") + 1] == "2"
    assert two.args_checked.startswith("each parsed by vLLM")


def test_vllm_s_own_parser_checks_the_command_lines_and_refuses_a_wrong_argument(monkeypatch):
    plan = make_plan("full", "L4", check_args=True)
    assert plan.fits and "parsed by vLLM" in plan.args_checked
    monkeypatch.setenv("EVALKIT_EXTRA_SERVER_ARGS", '["--no-such-flag", "1"]')
    from evalkit.settings import reload_settings

    reload_settings()
    try:
        bad = make_plan("quick", "L4", check_args=True)
    finally:
        monkeypatch.delenv("EVALKIT_EXTRA_SERVER_ARGS")
        reload_settings()
    assert not bad.fits and "--no-such-flag" in bad.problems[0].message


def test_token_counts_beyond_the_context_name_the_notebook_and_the_parameter():
    profiles = load_profiles()
    long = {**profiles["full"], "notebooks": {**profiles["full"]["notebooks"],
                                              "01_performance": {"GRID_PROMPT_TOKENS": [8192]}}}
    plan = make_plan("long", "L4", profiles={"long": long})
    problem = plan.problems[0]
    assert (problem.notebook, problem.parameter) == ("01_performance", "GRID_PROMPT_TOKENS + GRID_OUTPUT_TOKENS")
    assert "8192" in problem.fix or "32768" in problem.fix


def test_a_context_the_kv_cache_cannot_hold_says_the_largest_that_fits(monkeypatch):
    profiles = {"long": {"model": "llama-3.1-8b-instruct", "settings": {"max_model_len": 131072},
                         "notebooks": {"03_accuracy": {"CLIMB_MODELS": []}, "04_safety": {"COMPARE_MODEL": None}}}}
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    plan = make_plan("long", "L4", profiles=profiles)
    problem = plan.problems[0]
    assert "less than one sequence of its context" in problem.message and "max_model_len to" in problem.fix


def test_a_gated_model_without_a_token_is_refused_before_anything_starts(monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("evalkit.serve.resolve"), "in_hf_cache", lambda repo: False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    plan = make_plan("quick", "L4", model="llama-3.2-1b-instruct")
    assert "gated" in plan.problems[0].message and "HF_TOKEN" in plan.problems[0].fix


def test_a_hub_model_not_downloaded_is_a_note_elsewhere_and_a_problem_on_this_machine(monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("evalkit.serve.resolve"), "in_hf_cache", lambda repo: False)
    elsewhere = make_plan("full", "L4")
    assert elsewhere.fits and any("hf download Qwen/Qwen2.5-1.5B-Instruct" in n for n in elsewhere.notes)
    here = make_plan("full", "L4", local=True)
    assert not here.fits and "not in the local Hugging Face cache" in here.problems[0].message


def test_unknown_hardware_and_unknown_models_are_one_message_each():
    with pytest.raises(ConfigError, match="Unknown hardware 'X9'") as err:
        get_hardware("X9")
    assert "L4" in err.value.fix
    plan = make_plan("quick", "L4", model="no-such-model")
    assert "unknown model" in plan.problems[0].message


def test_a_gpu_the_table_does_not_know_is_planned_with_the_memory_it_reports():
    row = match_gpus([{"name": "NVIDIA Imaginary 48GB", "memory_mib": 49152, "free_mib": 49000}])
    assert row.gpu_memory_gib == 48.0 and "not in data/hardware.yaml" in row.note
    plan = make_plan("full", row)
    assert plan.fits and row.note in plan.notes
    assert match_gpus([{"name": "NVIDIA L4", "memory_mib": 23034, "free_mib": 22000}] * 2).name == "2xL4"
    assert match_gpus([{"name": "NVIDIA L4", "memory_mib": 23034, "free_mib": 22000}] * 3).gpus == 3


def test_this_machine_is_planned_with_its_available_memory():
    row = detect_hardware()
    if row.gpu:  # pragma: no cover - a GPU machine
        pytest.skip("this machine has a GPU")
    assert row.memory_gib and row.memory_gib > 0
    plan = make_plan("quick")
    assert plan.fits, plan.text()


def test_on_a_cpu_the_plan_serves_the_dtype_the_server_command_does(monkeypatch):
    import sys

    command = sys.modules["evalkit.serve.command"]
    for native, dtype, tokens in ((True, "bfloat16", 46603), (False, "float32", 23301)):
        monkeypatch.setattr(command, "native_bf16", lambda native=native: native)
        server = make_plan("quick", hardware="CPU").servers[0]
        assert (server.dtype, server.kv_tokens) == (dtype, tokens)  # float32: twice the bytes a token


def test_evalkit_run_refuses_a_plan_that_cannot_fit_before_any_server_starts(monkeypatch, tmp_path):
    import importlib

    job = importlib.import_module("evalkit.pipeline.job")
    profiles = {**load_profiles(), "huge": {"model": "qwen2.5-14b-instruct"}}
    monkeypatch.setattr(job, "load_profiles", lambda: profiles)
    monkeypatch.setenv("EVALKIT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("EVALKIT_DEVICE", "gpu")
    monkeypatch.setattr(importlib.import_module("evalkit.envreport"), "query_gpus",
                        lambda: [{"name": "NVIDIA L4", "memory_mib": 23034, "free_mib": 22800}])

    def no_server(*a, **k):
        raise AssertionError("a server was started")

    monkeypatch.setattr(importlib.import_module("evalkit.serve.start"), "serve", no_server)
    from evalkit.settings import reload_settings

    reload_settings()
    try:
        with pytest.raises(PlanError, match="does not fit L4") as err:
            job.run("huge", echo=False)
    finally:
        reload_settings()
    assert "qwen2.5-14b-instruct" in str(err.value) and "Fix:" in str(err.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_profile_s_settings_hold_within_its_run_and_are_restored(monkeypatch):
    import os

    from evalkit.plan.build import profile_settings
    from evalkit.settings import get_settings, settings_applied

    monkeypatch.delenv("EVALKIT_GPU_MEMORY_UTILIZATION", raising=False)
    with settings_applied(profile_settings("full")) as inside:
        assert inside.gpu_memory_utilization == 0.45 and inside.max_model_len == 8192
        assert os.environ["EVALKIT_GPU_MEMORY_UTILIZATION_BESIDE"] == "0.45"  # the kernels read it too
    assert get_settings().gpu_memory_utilization == 0.9 and "EVALKIT_MAX_MODEL_LEN" not in os.environ
    with pytest.raises(ConfigError, match="unknown setting"):
        profile_settings("x", {"x": {"settings": {"gpu_share": 0.5}}})


def test_the_l4_values_the_notebooks_quote_are_the_full_profile_s():
    """Each notebook's "On an L4" paragraph names the full profile's values, and every one of them."""
    import ast
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    full = load_profiles()["full"]
    seen = 0
    for name in NOTEBOOKS:
        cells = json.loads((root / "notebooks" / f"{name}.ipynb").read_text())["cells"]
        text = next(("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
                     and "**On an L4** (the `full` profile" in "".join(c["source"])), None)
        if text is None:
            continue
        text = text.split("**On an L4**", 1)[1].split("Beyond the profile", 1)[0]
        quoted = {k: ast.literal_eval(v) for k, v in re.findall(r"`([A-Z_]+) = ([^`]+)`", text)}
        given = {"MODEL": full["model"], **(full["notebooks"].get(name) or {})}
        for key, value in quoted.items():
            assert given.get(key, "missing") == value, f"{name}: {key} = {value!r}, not {given.get(key)!r}"
        seen += len(quoted)
    assert seen >= 20


def test_on_an_l4_ek_expect_shows_the_sourced_l4_figure_as_not_measured_and_compares_nothing(monkeypatch, capsys):
    import evalkit.figures as figures

    monkeypatch.setattr(figures, "run_gpu", lambda: "L4")
    check = figures.expect("perf_sync_output_tps", 71.0, MODEL="qwen2.5-1.5b-instruct")
    said = capsys.readouterr().out
    assert said.startswith("Expected on an L4 (not measured here): at most about 97 output tokens/s")
    assert "ai.wmx.dev" in said and check.compared is False and check.holds is None
    other = figures.expect("fmt_schema_plain", 0.9)
    assert "measured on a 2-core CPU, not compared" in capsys.readouterr().out and other.holds is None
    monkeypatch.setattr(figures, "run_gpu", lambda: "")
    assert figures.expect("fmt_schema_plain", 0.5).holds is True  # on a CPU the figure is compared as before


def test_every_gpu_figure_has_a_source_or_says_it_is_an_estimate():
    import re

    from evalkit.figures import load_figures

    rows = [(key, hw, row) for key, fig in load_figures().items() for hw, row in fig.gpu.items()]
    assert len(rows) >= 5
    for key, hw, row in rows:
        assert row["source"] and row["text"], key
        assert hw in hardware_table(), f"{key}: {hw} is not a row of data/hardware.yaml"
        published = re.search(r"\b[\w-]+\.(dev|io|com|org)\b", row["source"]) or "TIGER-Lab" in row["source"]
        assert published or "derived" in row["source"] or row["source"].startswith("estimate"), key
