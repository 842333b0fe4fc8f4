"""Server resolution and error paths that need no vLLM: unknown models, busy ports, silent URLs."""

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from evalkit import errors
from evalkit.serve import attach, resolve_model, serve
from evalkit.serve.client import normalize_base_url
from evalkit.serve.command import server_command, server_env
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
    assert cmd[1].endswith("vllm_fork.py")  # the engine process forked: one import of vLLM instead of two
    assert cmd[cmd.index("--distributed-executor-backend") + 1] == "uni"
    assert server_env("cpu", settings)["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"  # else vLLM turns uni into mp
    assert cmd[cmd.index("--dtype") + 1] == "float32" and "--enforce-eager" in cmd
    assert cmd[cmd.index("--served-model-name") + 1] == "stories260k"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--max-model-len") + 1] == "256"
    gpu = server_command(ref, 8123, "gpu", settings)
    assert "--gpu-memory-utilization" in gpu and "float32" not in gpu
    assert "--enforce-eager" not in gpu  # CUDA graphs on a GPU: a slower start for faster decoding
    assert gpu[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]  # vLLM's own defaults on a GPU
    assert "--distributed-executor-backend" not in gpu
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in server_env("gpu", settings)


def test_cpu_start_choices_can_be_set_back_to_vllms_defaults(settings):
    ref = resolve_model("stories260k", settings)
    plain = settings.model_copy(update={"cpu_fork_engine": False, "cpu_executor": "mp"})
    cmd = server_command(ref, 8123, "cpu", plain)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert "--distributed-executor-backend" not in cmd
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in server_env("cpu", plain)


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


def test_a_server_that_would_not_fit_is_refused_with_the_numbers_before_it_starts(settings, monkeypatch):
    from evalkit.serve import memory

    monkeypatch.setattr(memory, "available_gib", lambda device: 1.7)
    spawned = []
    monkeypatch.setattr("evalkit.proc.spawn", lambda *a, **k: spawned.append(a))
    with pytest.raises(errors.NotEnoughMemoryError) as info:
        serve("ladder-l", settings=settings.model_copy(update={"device": "cpu"}), echo=False)
    message = str(info.value)
    # weights of ladder-l (5.3 M float32 parameters), the 1 GiB KV cache, the measured runtime, what is free
    assert "start ladder-l: it needs about 2.4 GiB (weights 0.02 + KV cache 1.0 + runtime 1.4)" in message
    assert "1.7 GiB is free and 1.0 GiB is kept for the tools" in message and "evalkit stop --port" in message
    assert spawned == []


def test_memory_estimate_follows_the_start_up_choices_and_the_kv_cache(settings, monkeypatch):
    from evalkit.serve import memory

    monkeypatch.setattr(memory, "available_gib", lambda device: 64.0)
    ref = resolve_model("ladder-m", settings)
    fast = memory.server_memory(ref, "cpu", settings)
    plain = memory.server_memory(ref, "cpu", settings.model_copy(update={
        "cpu_fork_engine": False, "cpu_executor": "mp", "cpu_kvcache_gib": 4}))
    assert fast.fits and round(fast.runtime_gib, 1) == 1.4 and fast.kv_cache_gib == 1.0
    assert round(plain.runtime_gib, 1) == 2.2 and plain.kv_cache_gib == 4.0
    assert round(plain.need_gib - fast.need_gib, 1) == 3.8


def test_gpu_memory_is_read_from_nvidia_smi_lines():
    from evalkit.envreport import parse_gpus

    text = "NVIDIA L4, 23034, 22711\nNVIDIA H200, 143771, 140000\nnot a gpu line\n"
    assert parse_gpus(text) == [{"name": "NVIDIA L4", "memory_mib": 23034, "free_mib": 22711},
                                {"name": "NVIDIA H200", "memory_mib": 143771, "free_mib": 140000}]


def test_a_bfloat16_preset_is_served_in_float32_on_a_cpu_that_only_emulates_bfloat16(settings, monkeypatch):
    command = sys.modules[server_command.__module__]

    ref = resolve_model("smollm2-135m", settings)
    assert ref.preset.dtype == "bfloat16"
    monkeypatch.setattr(command, "native_bf16", lambda: False)  # AVX2 only: prefill 3-4 times slower in bfloat16
    cmd = server_command(ref, 8123, "cpu", settings)
    assert cmd[cmd.index("--dtype") + 1] == "float32"
    monkeypatch.setattr(command, "native_bf16", lambda: True)  # AVX512-BF16 or AMX: the preset's own dtype
    cmd = server_command(ref, 8123, "cpu", settings)
    assert cmd[cmd.index("--dtype") + 1] == "bfloat16"
