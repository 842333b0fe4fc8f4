"""Sizing one planned server for a machine: dtype, context, tensor parallelism, weights and KV cache, or why not."""

from __future__ import annotations

from dataclasses import dataclass

from evalkit.models import GIB, RUNTIME_OVERHEAD_GIB, ModelPreset
from evalkit.plan.hardware import Hardware
from evalkit.serve.command import cpu_dtype
from evalkit.settings import Settings

TP_SIZES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Problem:
    """Why a plan does not fit: where (notebook and parameter), what, and the fix."""

    notebook: str
    parameter: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.notebook}, {self.parameter}: {self.message}"


def _serving_bytes_per_param(preset: ModelPreset, gpu: bool) -> int:
    """Bytes a served weight takes (as ``serve.command.server_command`` serves it).

    vLLM's "auto" dtype on a GPU halves float32; a CPU serves hub models in float32, and a bfloat16 preset too
    where it has no native bfloat16.
    """
    if gpu:
        return 2 if preset.dtype == "float32" else preset.bytes_per_param
    return 4 if cpu_dtype(preset) == "float32" else preset.bytes_per_param


def _context(preset: ModelPreset, settings: Settings) -> int:
    return min(settings.max_model_len or preset.serve_context or preset.max_context, preset.max_context)


def size_server(server, preset: ModelPreset, hw: Hardware, settings: Settings, share: float,
                where: tuple[str, str]) -> list[Problem]:
    """Fill in a planned server's dtype, context, parallelism and memory for ``hw``; return what does not fit.

    ``server`` is a :class:`~evalkit.plan.build.PlannedServer` (not imported here: the plan imports this module).
    """
    from evalkit.serve.memory import cpu_runtime_gib

    width = _serving_bytes_per_param(preset, hw.gpu)
    server.dtype = {2: "bfloat16" if preset.dtype != "float32" else "float16", 4: "float32"}[width]
    server.context = _context(preset, settings)
    weights = preset.params * width / GIB
    kv_per_token = 2 * preset.layers * preset.kv_heads * preset.head_dim * width
    notebook, parameter = where
    if not hw.gpu:
        server.weights_gib, server.kv_cache_gib = weights, float(settings.cpu_kvcache_gib)
        server.need_gib = weights + server.kv_cache_gib + cpu_runtime_gib(settings)
        server.kv_tokens = int(server.kv_cache_gib * GIB // kv_per_token)
        if server.kv_tokens < server.context:
            return [Problem(notebook, parameter, f"{preset.name}'s KV cache of {server.kv_cache_gib:.0f} GiB holds "
                            f"{server.kv_tokens} tokens, less than one sequence of its context ({server.context}).",
                            f"raise EVALKIT_CPU_KVCACHE_GIB, or set max_model_len to {server.kv_tokens} or less.")]
        return []
    budget = share * hw.gpu_memory_gib
    server.share = share
    if hw.bandwidth_gbs:  # one output token reads every weight once (each GPU its part, at the same time)
        server.decode_ceiling = hw.bandwidth_gbs * 1e9 / (preset.params * width)
    server.need_gib = budget
    tried = []
    for tp in (t for t in TP_SIZES if t <= hw.gpus and (preset.kv_heads % t == 0 or t % preset.kv_heads == 0)):
        room = budget - weights / tp - RUNTIME_OVERHEAD_GIB
        tokens = int(room * GIB // (kv_per_token / tp)) if room > 0 else 0
        tried.append((tp, room, tokens))
        if tokens >= server.context:
            server.tensor_parallel, server.weights_gib, server.kv_cache_gib = tp, weights / tp, room
            server.kv_tokens = tokens
            return []
    tp, room, tokens = tried[-1]
    server.tensor_parallel, server.weights_gib = tp, weights / tp
    server.kv_cache_gib, server.kv_tokens = max(room, 0.0), tokens
    over = f" over {tp} GPUs" if tp > 1 else ""
    if room <= 0:
        bigger = [row.name for row in _table_rows() if row.gpu and _fits_at_all(preset, row, share, width)]
        return [Problem(notebook, parameter, f"{preset.name} does not fit {hw.name}: {weights:.1f} GiB of weights"
                        f"{over} plus {RUNTIME_OVERHEAD_GIB} GiB runtime exceed its share {share} of "
                        f"{hw.gpu_memory_gib:.1f} GiB ({budget:.1f} GiB).",
                        "use a smaller model, a quantized one, a larger share if it runs alone, or hardware where "
                        f"it fits ({', '.join(bigger) or 'none in data/hardware.yaml'}; several GPUs shard it with "
                        "vLLM's tensor parallelism, `evalkit plan --hardware 2xL4`).")]
    return [Problem(notebook, parameter, f"{preset.name} at context {server.context}: its share {share} of "
                    f"{hw.gpu_memory_gib:.1f} GiB leaves {room:.1f} GiB of KV cache{over}, {tokens} tokens, less "
                    "than one sequence of its context (vLLM refuses to start).",
                    f"set max_model_len to {tokens} or less (profile settings or EVALKIT_MAX_MODEL_LEN), or give it "
                    "a larger share.")]


def _table_rows():
    from evalkit.plan.hardware import hardware_table

    return hardware_table().values()


def _fits_at_all(preset: ModelPreset, hw: Hardware, share: float, width: int) -> bool:
    most = max(t for t in TP_SIZES if t <= hw.gpus)
    return share * hw.gpu_memory_gib - preset.params * width / GIB / most - RUNTIME_OVERHEAD_GIB > 0
