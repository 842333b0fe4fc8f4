"""Whether the machine has room for one more server: estimated from the preset's figures, checked before a start.

On a CPU a server takes its weights, the KV cache it is given (``cpu_kvcache_gib``) and its processes' own
memory (Python, torch and vLLM: measured by ``benchmarks/bench_serve.py`` as the resident memory of the server's
process tree less weights and KV cache). On a GPU vLLM claims ``gpu_memory_utilization`` of the whole GPU,
whatever the model, so a second server fits only where the first left that much free. A start that would not
fit is refused with the numbers and the servers that hold the memory, before anything is spawned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import NotEnoughMemoryError
from evalkit.serve.resolve import ModelRef
from evalkit.serve.state import project_servers
from evalkit.settings import Settings

GIB = 1024**3
# the processes of a CPU server beside weights and KV cache, with both start-up choices on (one engine process
# forked from the API server): 2.35 GiB resident for ladder-m with a 1 GiB KV cache in bench_serve.py
CPU_RUNTIME_GIB = 1.4
CPU_WORKER_GIB = 0.6  # a worker process of its own (cpu_executor="mp")
CPU_SPAWN_GIB = 0.2  # an engine process that imported everything again instead of sharing the API server's pages
TOOLS_HEADROOM_GIB = 1.0  # what GuideLLM, lm-eval or promptfoo need beside the servers


@dataclass(frozen=True)
class ServerMemory:
    """What a new server would take and what the machine has free (GiB)."""

    model: str
    device: str
    weights_gib: float
    kv_cache_gib: float
    runtime_gib: float
    available_gib: float
    held: list[str] = field(default_factory=list)  # the servers evalkit runs now, "model on port N"

    @property
    def need_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib + self.runtime_gib

    @property
    def fits(self) -> bool:
        headroom = TOOLS_HEADROOM_GIB if self.device == "cpu" else 0.0
        return self.need_gib + headroom <= self.available_gib


def weights_bytes(ref: ModelRef) -> int:
    """Bytes of weights: the preset's figure, else the weight files of a local folder (0 when unknown)."""
    if ref.preset is not None:
        return ref.preset.weight_bytes
    folder = Path(ref.source)
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt"))


def available_gib(device: str) -> float:
    """Memory free for a new server: the system's available memory on a CPU, the first GPU's free memory."""
    if device == "cpu":
        import psutil

        return psutil.virtual_memory().available / GIB
    return _gpu_now()[1]


def _gpu_now() -> tuple[float, float]:
    """Total and free memory (GiB) of the first GPU, read now (0, 0 without one)."""
    from evalkit.envreport import query_gpus

    gpus = query_gpus()
    return (gpus[0]["memory_mib"] / 1024, gpus[0]["free_mib"] / 1024) if gpus else (0.0, 0.0)


def cpu_runtime_gib(settings: Settings) -> float:
    """The memory of a CPU server's processes beside weights and KV cache, for the settings' start-up choices."""
    return (CPU_RUNTIME_GIB + (CPU_WORKER_GIB if settings.cpu_executor == "mp" else 0.0)
            + (0.0 if settings.cpu_fork_engine else CPU_SPAWN_GIB))


def gpu_share(settings: Settings) -> float:
    """The share of the GPU a new server claims: the whole-run share alone, a smaller one beside another server.

    vLLM claims its share of the whole GPU at start, whatever the model needs, so a server started while another
    evalkit server runs takes ``gpu_memory_utilization_beside`` (a size climb, a side-by-side run).
    """
    beside = any(info.device != "cpu" for info in project_servers(settings))
    return settings.gpu_memory_utilization_beside if beside else settings.gpu_memory_utilization


def server_memory(ref: ModelRef, device: str, settings: Settings, share: float | None = None) -> ServerMemory:
    """Estimate what serving ``ref`` on ``device`` takes, and read what is free now."""
    held = [f"{s.model} on port {s.port}" for s in project_servers(settings)]
    weights = weights_bytes(ref) / GIB
    if device == "cpu":
        return ServerMemory(ref.name, device, weights, float(settings.cpu_kvcache_gib), cpu_runtime_gib(settings),
                            available_gib(device), held)
    total, free = _gpu_now()
    claim = total * (share or gpu_share(settings))  # vLLM takes this share whatever the model needs
    return ServerMemory(ref.name, device, weights, max(claim - weights, 0.0), 0.0, free, held)


def check_room(ref: ModelRef, device: str, settings: Settings, share: float | None = None) -> ServerMemory:
    """Return the estimate when a server for ``ref`` fits now; raise :class:`NotEnoughMemoryError` otherwise."""
    est = server_memory(ref, device, settings, share)
    if est.fits:
        return est
    where = "memory" if device == "cpu" else "GPU memory"
    parts = (f"weights {est.weights_gib:.2f} + KV cache {est.kv_cache_gib:.1f} + runtime {est.runtime_gib:.1f}"
             if device == "cpu" else f"vLLM claims gpu_memory_utilization={share or gpu_share(settings)} "
             "of the GPU")
    headroom = f" and {TOOLS_HEADROOM_GIB:.1f} GiB is kept for the tools" if device == "cpu" else ""
    running = f" Servers evalkit runs now: {', '.join(est.held)}." if est.held else ""
    raise NotEnoughMemoryError(
        f"Not enough {where} to start {ref.name}: it needs about {est.need_gib:.1f} GiB ({parts}), "
        f"{est.available_gib:.1f} GiB is free{headroom}.{running}",
        fix="stop a server you no longer need (`evalkit status`, then `evalkit stop --port N`)"
        + (", or give each server a smaller KV cache (EVALKIT_CPU_KVCACHE_GIB)."
           if device == "cpu" and settings.cpu_kvcache_gib > 1 else "." if device == "cpu" else
           ", or give the servers shares that add up to 0.9 or less (EVALKIT_GPU_MEMORY_UTILIZATION for the first, "
           "EVALKIT_GPU_MEMORY_UTILIZATION_BESIDE for one beside it; `evalkit plan` checks a profile's)."),
    )
