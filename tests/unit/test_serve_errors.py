"""Server resolution and error paths that need no vLLM: unknown models, busy ports, silent URLs."""

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from evalkit import errors
from evalkit.serve import attach, normalize_base_url, resolve_model, serve, server_command
from evalkit.settings import Settings


@pytest.fixture
def settings(tmp_path):
    return Settings(runs_dir=tmp_path / "runs", port=_free_port())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Fake(BaseHTTPRequestHandler):
    models = [{"id": "other-model", "root": "/models/other", "max_model_len": 2048}]

    def do_GET(self):
        if self.path == "/v1/models":
            body = json.dumps({"data": self.models}).encode()
            self.send_response(200)
        else:
            body = b"not here"
            self.send_response(404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_openai():
    server = HTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_normalize_base_url():
    for url in ["127.0.0.1:8000", "http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"]:
        assert normalize_base_url(url) == "http://127.0.0.1:8000/v1"


def test_unknown_model_is_named(settings):
    with pytest.raises(errors.UnknownModelError) as info:
        serve("no-such-model", settings=settings, echo=False)
    assert "no-such-model" in str(info.value) and "stories260k" in str(info.value)


def test_missing_model_directory(settings, tmp_path):
    with pytest.raises(errors.UnknownModelError) as info:
        resolve_model(str(tmp_path / "missing-model"), settings)
    assert "does not exist" in str(info.value)


def test_folder_without_config(settings, tmp_path):
    with pytest.raises(errors.UnknownModelError) as info:
        resolve_model(str(tmp_path), settings)
    assert "config.json" in str(info.value)


def test_hub_preset_offline_without_cache(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(errors.UnknownModelError) as info:
        resolve_model("llama-3.2-1b-instruct", settings)
    assert "hf download meta-llama/Llama-3.2-1B-Instruct" in str(info.value)


def test_unreachable_base_url(settings):
    port = _free_port()
    with pytest.raises(errors.ServerUnreachableError) as info:
        serve("stories260k", base_url=f"http://127.0.0.1:{port}", settings=settings, echo=False)
    assert f"127.0.0.1:{port}" in str(info.value) and "evalkit serve" in str(info.value)


def test_attach_to_any_openai_endpoint(fake_openai, settings):
    srv = attach(f"http://127.0.0.1:{fake_openai}", settings=settings)
    assert srv.model == "other-model" and srv.max_model_len == 2048 and not srv.started
    srv.stop()  # attached: must not do anything


def test_attach_names_the_served_models(fake_openai, settings):
    with pytest.raises(errors.ConfigError) as info:
        attach(f"http://127.0.0.1:{fake_openai}", model="stories260k", settings=settings)
    assert "other-model" in str(info.value)


def test_port_in_use_by_another_model(fake_openai, settings):
    with pytest.raises(errors.PortInUseError) as info:
        serve("stories260k", port=fake_openai, settings=settings, echo=False)  # a port asked for: strict
    message = str(info.value)
    assert str(fake_openai) in message and "other-model" in message and "EVALKIT_PORT" in message


def test_default_port_serving_another_model_moves_to_the_next_free_port(fake_openai, settings, monkeypatch):
    serve_mod = sys.modules["evalkit.serve.start"]

    started = []
    monkeypatch.setattr(serve_mod, "_start", lambda ref, port, *args: started.append((ref.name, port)) or "server")
    settings = settings.model_copy(update={"port": fake_openai})
    assert serve("stories260k", settings=settings, echo=False) == "server"  # a notebook switching models
    assert started[0][0] == "stories260k" and started[0][1] > fake_openai


def test_port_in_use_by_something_else(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(errors.PortInUseError) as info:
            serve("stories260k", port=port, settings=settings, echo=False)
    assert "not an OpenAI-compatible server" in str(info.value)


def test_cpu_command_line(settings):
    ref = resolve_model("stories260k", settings)
    cmd = server_command(ref, 8123, "cpu", settings, max_model_len=256)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--dtype") + 1] == "float32" and "--enforce-eager" in cmd
    assert cmd[cmd.index("--served-model-name") + 1] == "stories260k"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--max-model-len") + 1] == "256"
    gpu = server_command(ref, 8123, "gpu", settings)
    assert "--gpu-memory-utilization" in gpu and "float32" not in gpu
    assert "--enforce-eager" not in gpu  # CUDA graphs on a GPU: a slower start for faster decoding


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("eager", [True, False])
def test_enforce_eager_setting_overrides_the_device_default(settings, device, eager):
    ref = resolve_model("stories260k", settings)
    cmd = server_command(ref, 8123, device, settings.model_copy(update={"enforce_eager": eager}))
    assert ("--enforce-eager" in cmd) is eager


def _model_copy(settings, tmp_path, name="ladder-s"):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(settings.data_dir / "models" / name, folder)
    return folder


@pytest.mark.parametrize("remove,fragment", [("tokenizer.json", "no tokenizer"),
                                             ("model.safetensors", "no weights")])
def test_folder_missing_tokenizer_or_weights(settings, tmp_path, remove, fragment):
    folder = _model_copy(settings, tmp_path)
    (folder / remove).unlink()
    for other in ("tokenizer.model", "vocab.json"):
        (folder / other).unlink(missing_ok=True)
    with pytest.raises(errors.UnknownModelError) as info:
        resolve_model(str(folder), settings)
    assert fragment in str(info.value) and info.value.fix


def test_head_size_too_small_for_cpu_is_refused_before_start(settings, tmp_path):
    import json

    from evalkit.models import check_model_folder

    folder = _model_copy(settings, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config.update(num_attention_heads=8, head_dim=8)
    (folder / "config.json").write_text(json.dumps(config))
    check_model_folder(folder, "gpu")  # a GPU takes it
    with pytest.raises(errors.UnknownModelError) as info:
        check_model_folder(folder, "cpu")
    assert "head size of 8" in str(info.value) and "at least 32" in str(info.value)


def test_stop_orphans_ends_only_servers_whose_owner_is_gone(settings, tmp_path):
    from dataclasses import asdict

    from evalkit import proc
    from evalkit.serve.state import ServerInfo, _state_path, project_servers, stop_servers

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs: the owner of the orphan
    sleepers = {}
    for port, owner_pid in ((9101, gone.pid), (9102, os.getpid()), (9103, None)):
        sleeper = proc.spawn(["sleep", "60"], log_path=tmp_path / f"{port}.log")
        sleepers[port] = sleeper
        info = ServerInfo(model=f"m{port}", base_url=f"http://127.0.0.1:{port}/v1", tokenizer="t", pid=sleeper.pid,
                          port=port, owner_pid=owner_pid, owner="test")
        _state_path(settings, port).parent.mkdir(parents=True, exist_ok=True)
        _state_path(settings, port).write_text(json.dumps(asdict(info)))
    try:
        assert {s.port: s.owner_alive() for s in project_servers(settings)} == {9101: False, 9102: True, 9103: None}
        stopped = stop_servers(settings=settings, orphans=True)
        assert [s.port for s in stopped] == [9101] and sleepers[9101].wait(10) is not None
        assert sorted(s.port for s in project_servers(settings)) == [9102, 9103]
    finally:
        for sleeper in sleepers.values():
            proc.stop_group(sleeper)
