"""The full profile's plan replayed on a simulated L4 through the real serve() path: no vLLM, no GPU.

Every server the plan lists is started by ``serve()`` / ``serve_beside()`` as notebooks 03 and 04 call them, under
the real keeper, with the real vLLM command line; the program that runs is a stand-in (tests/fixtures/fake_vllm.py)
that answers /v1/models and holds its ``--gpu-memory-utilization`` of a simulated 22.5 GiB GPU, whose free memory
is what ``serve()``'s memory check reads.
"""

from __future__ import annotations

import importlib
import json
import socket
import sys
from pathlib import Path

import pytest

from evalkit.errors import NotEnoughMemoryError
from evalkit.plan.build import make_plan, profile_settings
from evalkit.settings import reload_settings, settings_applied

pytestmark = pytest.mark.unit

FAKE = Path(__file__).parents[1] / "fixtures" / "fake_vllm.py"
L4_GIB = 22.5


def _free_port_block(size: int = 6) -> int:
    for base in range(18600, 19600, 10):
        ok = True
        for port in range(base, base + size):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    pytest.skip("no free block of ports")  # pragma: no cover


@pytest.fixture
def simulated_l4(tmp_path, monkeypatch):
    """A GPU machine whose one L4 is simulated: servers are stand-ins that hold their share of it."""
    memory, resolve, start = (importlib.import_module(f"evalkit.serve.{m}") for m in ("memory", "resolve", "start"))

    ledger = tmp_path / "gpu"
    ledger.mkdir()
    monkeypatch.setenv("FAKE_GPU_LEDGER", str(ledger))
    monkeypatch.setenv("EVALKIT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("EVALKIT_DEVICE", "gpu")
    monkeypatch.setenv("EVALKIT_PORT", str(_free_port_block()))
    monkeypatch.setenv("EVALKIT_START_TIMEOUT_S", "60")

    def gpu_now():
        from evalkit import proc

        held = 0.0
        for claim in ledger.glob("*.json"):
            if proc.pid_alive(int(claim.stem)):
                held += json.loads(claim.read_text())["share"] * L4_GIB
        return L4_GIB, L4_GIB - held

    started: list[list[str]] = []
    real_launch = start.launch

    def launch(info, settings, env):  # the keeper runs the stand-in with vLLM's arguments
        started.append(list(info.command))
        info.command = [sys.executable, str(FAKE), *info.command[info.command.index("--model"):]]
        return real_launch(info, settings, env)

    monkeypatch.setattr(memory, "_gpu_now", gpu_now)
    monkeypatch.setattr(start, "launch", launch)
    monkeypatch.setattr(resolve, "in_hf_cache", lambda repo: True)  # the models were downloaded
    reload_settings()
    yield started, ledger
    reload_settings()


def _share(cmd: list[str]) -> float:
    return float(cmd[cmd.index("--gpu-memory-utilization") + 1])


def replay(plan) -> list[str]:
    """Walk the plan's steps the way evalkit run and the notebooks ask for servers; return what was asked."""
    from evalkit.serve import serve, serve_beside

    asked = []
    srv = serve(plan.model, echo=False)  # evalkit run's server
    try:
        for step in plan.steps:
            if step.action == "start" and step.notebook != "evalkit run":
                with serve_beside(step.model, [srv], echo=False) as other:  # notebooks 03 and 04
                    asked.append(other.model)
    finally:
        srv.stop()
    return asked


def test_the_full_profile_on_a_simulated_l4_starts_what_the_plan_lists_and_is_never_refused(simulated_l4):
    started, ledger = simulated_l4
    plan = make_plan("full", "L4", local=False)
    assert plan.fits, plan.text()
    with settings_applied(profile_settings("full")):
        asked = replay(plan)  # a NotEnoughMemoryError here is the failure this test is for
    listed = [(s.model, s.share) for s in plan.servers]
    ran = [(cmd[cmd.index("--served-model-name") + 1], _share(cmd)) for cmd in started]
    assert ran == listed, f"started {ran}, the plan listed {listed}"
    assert asked == [s.model for s in plan.servers[1:]]
    for ran_cmd, server in zip(started, plan.servers, strict=True):  # the plan's command line is what ran
        assert ran_cmd[ran_cmd.index("--model"):] == server.command[server.command.index("--model"):]
    assert not list(ledger.glob("*.json")), "a stand-in server was left holding the GPU"


def test_without_the_profile_s_shares_the_second_server_is_refused_as_the_plan_says(simulated_l4):
    """The full profile as it was (vLLM's 0.9 for every server): the plan refuses it, and so would serve()."""
    profiles = {"old-full": {"model": "qwen2.5-1.5b-instruct",
                             "notebooks": {"03_accuracy": {"CLIMB_MODELS": ["qwen2.5-0.5b-instruct"]},
                                           "04_safety": {"COMPARE_MODEL": None}}}}
    plan = make_plan("old-full", "L4", local=False, profiles=profiles)
    assert not plan.fits
    assert plan.problems[0].notebook == "03_accuracy" and plan.problems[0].parameter == "CLIMB_MODELS"
    with settings_applied({"gpu_memory_utilization_beside": 0.9}), pytest.raises(NotEnoughMemoryError) as err:
        replay(plan)
    assert "qwen2.5-0.5b-instruct" in str(err.value)
