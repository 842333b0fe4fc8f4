"""Every bad input a learner can give, in one table: the message says what went wrong, the exit code is 2.

Each row is ``(name, evalkit arguments, environment, message fragment, exit code)``; ``{...}`` fields are filled
from the fixtures (the session server's URL, a closed port, prepared files). Rows whose exit code is 0 are
inputs that look odd but are fine (spaces and non-ASCII letters in paths): they must work. A full disk and a
read-only runs folder are real file systems: a 64 KiB tmpfs and a read-only one, mounted in a private mount
namespace (``unshare``), so nothing outside the test sees them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from evalkit.accuracy import task_from_table

TABLE = "question,choices,answer\nWhat colour is the sky?,blue|green,blue\nCaf\u00e9 or tea?,caf\u00e9|tea,tea\n"

CASES = [
    ("server state cut short by hand", ["status"], {"EVALKIT_RUNS_DIR": "{cut_state}"},
     "was not a server's state", 0),
    ("server state from a newer evalkit", ["stop"], {"EVALKIT_RUNS_DIR": "{newer_state}"},
     "written by a newer evalkit (9.0)", 0),
    ("server state naming a reused pid", ["stop"], {"EVALKIT_RUNS_DIR": "{reused_state}"},
     "No server started by evalkit was running", 0),  # the pid is this test's own process: not signalled
    ("unknown model", ["perf", "--model", "no-such-model"], {}, "Unknown model 'no-such-model'", 2),
    ("unknown model among several", ["run", "--models", "ladder-s,no-such-model"], {}, "Unknown model", 2),
    ("unreachable server", ["perf", "--base-url", "http://127.0.0.1:{closed}/v1"], {}, "Nobody answers at", 2),
    ("port in use", ["serve", "--model", "stories260k", "--port", "{busy}"], {}, "is already in use", 2),
    ("ports exhausted", ["perf", "--model", "stories260k"], {"EVALKIT_PORT": "{crowded}"}, "are all in use too", 2),
    ("tokens beyond the context", ["perf", "--base-url", "{url}", "--prompt-tokens", "100000"], {},
     "context", 2),
    ("malformed task file", ["accuracy", "--base-url", "{url}", "--include-path", "{broken_task}", "--tasks",
                             "broken"], {}, "broken.yaml", 2),
    ("task table in Latin-1", ["accuracy", "--base-url", "{url}", "--include-path", "{latin1_task}", "--tasks",
                               "cafe_latin1", "--limit", "2"], {}, "is not UTF-8 text: line 3 has the byte 0xe9", 2),
    ("task table with a BOM", ["accuracy", "--base-url", "{url}", "--include-path", "{bom_task}", "--tasks",
                               "cafe_bom", "--limit", "2"], {}, "cafe_bom", 0),
    ("unicode and spaces in paths", ["accuracy", "--base-url", "{url}", "--include-path", "{odd_task}", "--tasks",
                                     "cafe_odd", "--limit", "2", "--run-dir", "{odd_run}"], {},
     "results: {odd_run}/result.json", 0),
    ("unicode and spaces in the runs folder", ["format", "--base-url", "{url}", "--limit", "1", "--structured",
                                               "off"], {"EVALKIT_RUNS_DIR": "{odd_runs}"}, "saved {odd_runs}/", 0),
    ("missing Node", ["format", "--base-url", "{url}", "--limit", "1"],
     {"EVALKIT_NODE_DIR": "{empty}", "PATH": "{empty}"}, "Node", 2),
    ("malformed thresholds", ["gate", "{empty}", "--thresholds", "{bad_thresholds}"], {}, "is not valid YAML", 2),
    ("malformed profiles", ["run", "--base-url", "{url}"], {"EVALKIT_PROJECT_DIR": "{bad_project}"},
     "Cannot read profiles", 2),
    ("unknown profile", ["run", "--profile", "nosuch", "--base-url", "{url}"], {}, "nosuch", 2),
    ("unknown notebook", ["run", "--only", "07_nothing", "--base-url", "{url}"], {}, "Unknown notebook", 2),
    ("setting of the wrong type", ["status"], {"EVALKIT_PORT": "eighty"}, "EVALKIT_PORT='eighty'", 2),
    ("setting out of range", ["status"], {"EVALKIT_PROMPTFOO_CONCURRENCY": "0"}, "EVALKIT_PROMPTFOO_CONCURRENCY", 2),
    ("setting with an unknown choice", ["status"], {"EVALKIT_DEVICE": "tpu"}, "EVALKIT_DEVICE='tpu'", 2),
    ("result.json cut short", ["scorecard", "{cut_run}"], {}, "result.json", 2),
    ("full disk", ["format", "--base-url", "{url}", "--limit", "2", "--run-dir", "{full}/format"], {"MOUNT": "full"},
     "No space left on device", 2),
    ("read-only runs folder", ["format", "--base-url", "{url}", "--limit", "1"],
     {"MOUNT": "read-only", "EVALKIT_RUNS_DIR": "{read_only}/runs"}, "Read-only file system", 2),
]


class _OtherModel(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"data": [{"id": "other-model", "max_model_len": 2048}]}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def places(server, tmp_path_factory):
    """The values of the table's ``{...}`` fields; sockets held open until the module's tests end."""
    root = tmp_path_factory.mktemp("bad inputs ü")
    held = []

    def listening(port: int = 0) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        sock.listen()
        held.append(sock)
        return sock.getsockname()[1]

    closed_sock = socket.socket()
    closed_sock.bind(("127.0.0.1", 0))
    closed = closed_sock.getsockname()[1]
    closed_sock.close()
    # another model on one port, and the 20 ports after it taken: nowhere to start stories260k
    other = HTTPServer(("127.0.0.1", 0), _OtherModel)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    crowded = other.server_address[1]
    for port in range(crowded + 1, crowded + 21):
        try:
            listening(port)
        except OSError:
            pass  # taken by someone else already: just as crowded

    broken = root / "broken"
    broken.mkdir()
    (broken / "broken.yaml").write_text("task: broken\ndataset_path: json\n  output_type: [oops\n")
    tables = {}
    for name, encoding in (("cafe_latin1", "latin-1"), ("cafe_bom", "utf-8-sig"), ("cafe_odd", "utf-8")):
        folder = root / ("tasks with spaces \u00e9\u00fc" if name == "cafe_odd" else name)
        folder.mkdir()
        table = folder / f"{name}.csv"
        table.write_text(TABLE, encoding="utf-8")
        task_from_table(table, name=name, out_dir=folder)
        table.write_bytes(TABLE.encode(encoding))  # evalkit rereads the table at every run
        tables[name] = folder
    empty = root / "empty"
    empty.mkdir()
    bad_thresholds = root / "thresholds.yaml"
    bad_thresholds.write_text("performance: [oops\n")
    bad_project = root / "project"
    bad_project.mkdir()
    (bad_project / "profiles.yaml").write_text("quick: {notebooks: [\n")
    cut_run = root / "cut-run"
    (cut_run / "format").mkdir(parents=True)
    (cut_run / "format" / "result.json").write_text('{"schema": 1, "kind": "format", "rows": [{"item": ')
    states = {}
    for name, state in {"cut_state": None, "newer_state": {"schema": 99, "evalkit": "9.0"},
                        "reused_state": {"keeper_pid": os.getpid(), "keeper_start": 1, "pid": os.getpid(),
                                         "pid_start": 1}}.items():
        states[name] = root / name
        live = states[name] / "servers" / "live"
        live.mkdir(parents=True)
        text = json.dumps({"model": "m", "base_url": f"http://127.0.0.1:{closed}/v1", "tokenizer": "t",
                           "port": closed, "id": "x", **(state or {})})
        (live / f"{closed}.json").write_text(text if state else text[:30])
    values = {
        **states,
        "url": server.base_url, "closed": closed, "busy": listening(), "crowded": crowded,
        "broken_task": broken, "latin1_task": tables["cafe_latin1"], "bom_task": tables["cafe_bom"],
        "odd_task": tables["cafe_odd"], "odd_run": root / "run \u00e9 \u4e2d", "odd_runs": root / "runs \u00fc \u00e9",
        "empty": empty, "bad_thresholds": bad_thresholds, "bad_project": bad_project, "cut_run": cut_run,
        "full": root / "full", "read_only": root / "read-only",
    }
    yield {k: str(v) for k, v in values.items()}
    other.shutdown()
    for sock in held:
        sock.close()


def _command(argv: list[str], mount: str | None, places: dict) -> list[str]:
    command = [sys.executable, "-m", "evalkit.cli", *argv]
    if mount is None:
        return command
    if shutil.which("unshare") is None:
        pytest.fail("the full-disk and read-only rows need util-linux's unshare (a private tmpfs mount)")
    target = places["full" if mount == "full" else "read_only"]
    options = "size=64k" if mount == "full" else "ro,size=1m"
    script = f'mkdir -p "$1" && mount -t tmpfs -o {options} tmpfs "$1" && shift && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", target, *command]


@pytest.mark.parametrize(("name", "argv", "env", "fragment", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_message(name, argv, env, fragment, code, places, tmp_path, figures):
    env = {k: v.format(**places) for k, v in env.items()}
    mount = env.pop("MOUNT", None)
    full_env = {**os.environ, "EVALKIT_RUNS_DIR": str(tmp_path / "runs"), **env}
    argv = [a.format(**places) for a in argv]
    fragment = fragment.format(**places)
    done = subprocess.run(_command(argv, mount, places), env=full_env, capture_output=True, text=True, timeout=600)
    figures["bad inputs tried"] += 1
    shown = done.stdout + done.stderr
    assert done.returncode == code, shown[-3000:]
    assert fragment in shown, shown[-3000:]
    assert "Traceback" not in shown, shown[-3000:]
    if code == 2:
        assert "Fix:" in done.stderr, done.stderr  # every refusal says what to do
