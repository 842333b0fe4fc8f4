"""The vLLM command line of a server: the argument list, its LoRA options and its environment (no side effects).

:func:`server_command` is what :func:`~evalkit.serve.start.serve` runs and what ``evalkit plan`` shows and checks
with vLLM's own argument parser.
"""

from __future__ import annotations

import sys
from pathlib import Path

from evalkit.envreport import gpu_info, native_bf16
from evalkit.errors import ConfigError
from evalkit.models import adapters_of, check_adapter
from evalkit.serve.resolve import ModelRef
from evalkit.settings import Settings


def detect_device(settings: Settings) -> str:
    if settings.device != "auto":
        return settings.device
    return "gpu" if gpu_info() else "cpu"


def cpu_dtype(preset) -> str:
    """The dtype a model is served in on a CPU (``evalkit plan`` sizes it with the same answer).

    The embedded presets say which dtype serves them best (the ladder and stories260k are float32 models), hub
    models are served in float32, and bfloat16 only where the CPU computes in it: emulated, its prefill took 3-4
    times as long (benchmarks/cpu_dtype.py).
    """
    dtype = preset.dtype if preset and preset.embedded else "float32"
    return dtype if dtype != "bfloat16" or native_bf16() else "float32"


def server_command(ref: ModelRef, port: int, device: str, settings: Settings,
                   max_model_len: int | None = None, extra_args: list[str] | None = None,
                   share: float | None = None) -> list[str]:
    """The argument list that starts vLLM's OpenAI server for ``ref``.

    On a CPU the server is started through :mod:`evalkit.serve.vllm_fork` unless ``settings.cpu_fork_engine``
    is off; :func:`server_env` gives the environment that goes with the command. ``share``: vLLM's
    ``--gpu-memory-utilization`` on a GPU (default: ``settings.gpu_memory_utilization``).
    """
    if device == "cpu" and settings.cpu_fork_engine:
        entry = [str(Path(__file__).with_name("vllm_fork.py"))]
    else:
        entry = ["-m", "vllm.entrypoints.openai.api_server"]
    cmd = [
        sys.executable, *entry,
        "--model", ref.source,
        "--served-model-name", ref.name,
        "--host", settings.host,
        "--port", str(port),
        "--seed", "0",
    ]
    if device == "cpu":
        cmd += ["--dtype", cpu_dtype(ref.preset)]
        if settings.cpu_executor == "uni":
            cmd += ["--distributed-executor-backend", "uni"]
    else:
        cmd += ["--dtype", "auto", "--gpu-memory-utilization", str(share or settings.gpu_memory_utilization)]
        if settings.tensor_parallel_size > 1:
            cmd += ["--tensor-parallel-size", str(settings.tensor_parallel_size)]
    eager = settings.enforce_eager if settings.enforce_eager is not None else device == "cpu"
    if eager:  # on a CPU the compile warm-up costs more than it gives (benchmarks/bench_serve.py)
        cmd.append("--enforce-eager")
    limit = max_model_len or settings.max_model_len or (ref.preset.serve_context if ref.preset else None)
    if limit:
        cmd += ["--max-model-len", str(limit)]
    extra = list(settings.extra_server_args) + list(extra_args or [])
    return cmd + (lora_args(ref, extra) if settings.serve_adapters else []) + extra


def lora_args(ref: ModelRef, extra: list[str] | None = None) -> list[str]:
    """``--enable-lora`` and one ``--lora-modules`` entry per committed adapter of ``ref`` (none for other models).

    The rank limit is the largest adapter's rank; a ``--max-lora-rank`` in ``extra`` below it is refused here,
    before vLLM starts, instead of at the first request.
    """
    adapters = adapters_of(ref.name) if ref.preset else []
    if not adapters:
        return []
    ranks = {p.name: check_adapter(p)["r"] for p in adapters}
    need = max(ranks.values())
    extra = extra or []
    if "--max-lora-rank" in extra:
        given = int(extra[extra.index("--max-lora-rank") + 1])
        if given < need:
            worst = max(ranks, key=ranks.get)
            raise ConfigError(f"--max-lora-rank {given} is below the rank of the adapter {worst} ({need}).",
                              fix=f"use --max-lora-rank {need} or more, or leave it out (evalkit sets it).")
    args = ["--enable-lora", "--max-loras", str(len(adapters)), "--lora-modules",
            *(f"{p.name}={p.path()}" for p in adapters)]
    if "--max-lora-rank" not in extra:
        args += ["--max-lora-rank", str(next(r for r in VLLM_LORA_RANKS if r >= need))]
    return args


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank takes


def server_env(device: str, settings: Settings) -> dict[str, str]:
    """The environment of a new server: the tools' offline environment plus what the CPU choices need."""
    extra = {"VLLM_API_KEY": settings.api_key_value()} if settings.api_key is not None else {}
    if device != "cpu":
        return settings.tool_env(extra)
    extra["VLLM_CPU_KVCACHE_SPACE"] = str(settings.cpu_kvcache_gib)
    if settings.cpu_executor == "uni":
        # vLLM's CPU platform replaces 'uni' by 'mp' unless its engine multiprocessing switch is off; the
        # switch does not change how the API server runs its engine (always a process of its own)
        extra["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    return settings.tool_env(extra)
