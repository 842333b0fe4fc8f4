"""A server lives as long as someone uses it: the notebook that started it may close, a room shares one.

Real vLLM servers, real tools, real processes standing for notebook kernels and terminals (see conftest.py for
the census of what is left running).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from evalkit.serve.sharing import stop_servers, users_of
from evalkit.serve.state import project_servers
from evalkit.settings import Settings

ROOM_REPEATS = int(os.environ.get("EVALKIT_ROOM_REPEATS", "2"))  # rooms: half with a shared server, half kept
ROOM_SIZE = 6
STARTER = """
import sys
from evalkit.serve import serve
from evalkit.settings import Settings
srv = serve(sys.argv[3], settings=Settings(runs_dir=sys.argv[1], port=int(sys.argv[2])), echo=False)
print(srv.base_url, flush=True)
sys.stdin.readline()
"""  # notebook 00: starts the server, and later its kernel shuts down (a normal exit, no stop())


def test_closing_the_notebook_that_started_the_server_does_not_stop_a_sweep_in_another(faults, figures, tmp_path):
    before = faults.census()
    runs = tmp_path / "runs"
    a = subprocess.Popen([sys.executable, "-c", STARTER, str(runs), "8796", "ladder-m"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    url = a.stdout.readline().strip()
    b = faults.evalkit(["perf", "--base-url", url, "--profile", "constant", "--rate", "2", "--max-seconds", "15",
                        "--run-dir", str(tmp_path / "sweep")], {"EVALKIT_RUNS_DIR": str(runs)})
    faults.wait_for(b, "guidellm")
    time.sleep(8)  # well into the sweep (GuideLLM starts its requests after about 5 s)
    a.communicate("\n", timeout=60)  # A exits normally: notebook 00 closed
    figures["faults injected"] += 1
    out, err = b.communicate(timeout=300)
    ended = time.monotonic()
    assert b.returncode == 0, err[-3000:]
    result = json.loads((tmp_path / "sweep" / "result.json").read_text())
    assert result["complete"] and result["benchmarks"][0]["successful"] > 15  # nothing of B's sweep was lost
    before.clean(timeout_s=30)  # and the server went with B, its last user
    figures["seconds to stop after last user"] = max(figures["seconds to stop after last user"],
                                                     round(time.monotonic() - ended))


PARTICIPANT = """
import sys, time
from evalkit import fmt
from evalkit.errors import EvalkitError
from evalkit.serve import attach, serve
from evalkit.settings import Settings
runs, port, how, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
settings = Settings(runs_dir=runs, port=port)  # (and EVALKIT_API_KEY from the environment, if set)
srv = attach(f"http://127.0.0.1:{port}/v1", settings=settings) if how == "url" else serve(
    "ladder-s", settings=settings, echo=False)
print("attached", srv.started, flush=True)
sys.stdin.readline()  # everyone is in the room
time.sleep(delay)
try:
    result = fmt.check_format(srv, limit=1, run_dir=f"{runs}/calls/{sys.argv[5]}", echo=False)
    print("call ok", len(result.df), flush=True)
except EvalkitError as exc:
    print("call failed", type(exc).__name__, str(exc).splitlines()[0], flush=True)
ending = sys.stdin.readline().strip()
if ending == "leave":
    srv.stop()
"""


def _participant(runs, port: int, how: str, delay: float, name: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PARTICIPANT, str(runs), str(port), how, str(delay), name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def _attached(process: subprocess.Popen) -> None:
    line = process.stdout.readline()
    assert line.startswith("attached"), line + process.stderr.read()[-2000:]


@pytest.mark.parametrize("kept", [False, True], ids=["shared", "kept"])
def test_a_room_of_processes_shares_one_server_and_leaves_in_any_order(faults, figures, tmp_path, kept):
    """Six processes use one server, and they leave one by one in a random order while the others' calls run.

    Each runs a format check; each leaves (stop(), an exit, SIGTERM, SIGKILL) once its own check is done. No
    check fails because someone left, and when the last has gone no server is left. A kept server (the
    facilitator's, with an API key) serves every room and is the only one left between them.
    """
    rng = random.Random(21)
    failed = []
    runs, port = tmp_path / "runs", 8797
    key = {"EVALKIT_API_KEY": "room-key"} if kept else {}
    settings = Settings(runs_dir=runs, port=port, api_key=key.get("EVALKIT_API_KEY"))
    first = faults.census()
    if kept:  # the facilitator's server, for the whole day
        done = subprocess.run([sys.executable, "-m", "evalkit.cli", "serve", "--model", "ladder-s", "--port",
                               str(port)], env={**os.environ, "EVALKIT_RUNS_DIR": str(runs), **key},
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    for repeat in range(ROOM_REPEATS // 2):
        before = faults.census()
        # the first participant starts the shared server (or attaches to the kept one); the rest attach by
        # model or by URL, all at once
        room = [_participant(runs, port, "model", 0, "p0", key)]
        _attached(room[0])
        room += [_participant(runs, port, rng.choice(["model", "url"]), rng.uniform(0, 4), f"p{i}", key)
                 for i in range(1, ROOM_SIZE)]
        for process in room[1:]:
            _attached(process)
        [info] = project_servers(settings)
        assert len(users_of(info, settings)) == ROOM_SIZE
        for process in room:
            process.stdin.write("\n")
            process.stdin.flush()
        order = list(range(ROOM_SIZE))
        rng.shuffle(order)
        endings = [rng.choice(["leave", "exit", "SIGTERM", "SIGKILL"]) for _ in order]
        for i, ending in zip(order, endings, strict=True):  # each leaves as soon as its own call is done
            process = room[i]
            line = ""
            while not line.startswith("call") and process.poll() is None:  # (heartbeat lines come before)
                line = process.stdout.readline().strip()
            figures["room calls"] += 1
            if not line.startswith("call ok"):
                failed.append(f"room {repeat + 1}, participant {i}: {line or process.stderr.read()[-1500:]}")
            if ending in ("leave", "exit"):
                process.stdin.write(ending + "\n")
                process.stdin.flush()
            else:
                process.send_signal(getattr(signal, ending))
                figures["faults injected"] += 1
        for process in room:
            process.wait(60)
        figures["rooms run"] += 1
        before.clean()  # the shared server has gone with its last user; the kept one is older than `before`
        if kept:
            time.sleep(1.5)  # the keeper notices killed users within a second
            [info] = project_servers(settings)
            assert users_of(info, settings) == []  # everyone has left; it still serves the next room
        else:
            assert project_servers(settings) == []
    if kept:
        [(info, users)] = stop_servers(settings=settings)  # the facilitator ends the day
        assert users == []
    first.clean()
    figures["room calls failed"] += len(failed)
    assert failed == []
