"""LoRA training of an adapter on a base model folder: seeded, resumable, with a progress bar.

Examples are chat turns (rendered with the base model's chat template) or plain prompt/answer pairs; the loss
covers the answer tokens only. Batches come in a seeded order fixed for the whole run, so an interrupted run that
resumes from its last checkpoint (adapter, optimiser, step; written atomically every ``every`` steps) is the same
run. :func:`export` writes the adapter beside its target and renames it into place.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evalkit.envreport import native_bf16

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class LoraSpec:
    """An adapter's recipe."""

    name: str
    base: str
    data: str  # "safety" or "faq" (evalkit.tune.data)
    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    epochs: int = 2
    batch: int = 16
    lr: float = 1.5e-3
    max_len: int = 256
    seed: int = 0
    extra: dict = field(default_factory=dict)


def encode(items: list[dict], tokenizer, max_len: int) -> list[tuple[list[int], list[int]]]:
    """Token ids and loss mask (1 on answer tokens) per example; chat examples use the chat template."""
    encoded = []
    for item in items:
        if "messages" in item:
            prompt = tokenizer.apply_chat_template(item["messages"][:-1], tokenize=False, add_generation_prompt=True)
            answer = item["messages"][-1]["content"] + "<|im_end|>\n"
        else:
            prompt, answer = item["prompt"], item["answer"] + (tokenizer.eos_token or "")
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ids = (p_ids + a_ids)[-max_len:]
        mask = ([0] * len(p_ids) + [1] * len(a_ids))[-max_len:]
        encoded.append((ids, mask))
    return encoded


def _batches(count: int, spec: LoraSpec) -> list[list[int]]:
    rng = random.Random(spec.seed)
    order: list[list[int]] = []
    for _ in range(spec.epochs):
        idx = list(range(count))
        rng.shuffle(idx)
        order += [idx[i:i + spec.batch] for i in range(0, count, spec.batch)]
    return order


def train(spec: LoraSpec, base_dir: Path, items: list[dict], folder: Path, *, every: int = 10,
          log=print) -> dict:
    """Train the adapter ``spec`` on ``items``; checkpoints in ``folder``; return the training figures."""
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(spec.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=spec.rank, lora_alpha=spec.alpha, target_modules=list(spec.targets),
                                             lora_dropout=0.0, task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    data = encode(items, tokenizer, spec.max_len)
    batches = _batches(len(data), spec)
    steps = len(batches)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=spec.lr, weight_decay=0.0)
    folder.mkdir(parents=True, exist_ok=True)
    state = {"step": 0, "losses": [], "seconds": 0.0, "tokens": 0}
    checkpoint = folder / CHECKPOINT
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        if saved.get("spec") == asdict(spec) and saved.get("examples") == len(data):
            set_peft_model_state_dict(model, saved["adapter"])
            optimiser.load_state_dict(saved["optimiser"])
            state = saved["state"]
            log(f"{spec.name}: resuming at step {state['step']} of {steps}")
        else:
            log(f"{spec.name}: the checkpoint in {folder} is of another recipe or data; starting again")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    bf16 = native_bf16()  # bfloat16 autocast only where the CPU has it: emulated, it is ten times slower

    def save() -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"spec": asdict(spec), "examples": len(data), "adapter": get_peft_model_state_dict(model),
                    "optimiser": optimiser.state_dict(), "state": state}, tmp)
        os.replace(tmp, checkpoint)

    model.train()
    bar = tqdm(total=steps, initial=state["step"], desc=spec.name, unit="step", mininterval=2)
    started = time.monotonic() - state["seconds"]
    for step in range(state["step"], steps):
        rows = [data[i] for i in batches[step]]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (row_ids, mask) in enumerate(rows):
            ids[r, :len(row_ids)] = torch.tensor(row_ids)
            attention[r, :len(row_ids)] = 1
            labels[r, :len(row_ids)] = torch.tensor([t if m else -100 for t, m in zip(row_ids, mask, strict=True)])
        for group in optimiser.param_groups:  # linear warm-up over 5 % of the steps, then cosine to a tenth
            warm = max(1, steps // 20)
            progress = max(0.0, (step - warm) / max(1, steps - warm))
            group["lr"] = spec.lr * (min(1.0, (step + 1) / warm) if step < warm
                                     else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        state["step"] = step + 1
        state["losses"].append(round(loss.item(), 4))
        state["tokens"] += int(attention.sum())
        state["seconds"] = time.monotonic() - started
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if state["step"] % every == 0 or state["step"] == steps:
            save()
    bar.close()
    model.save_pretrained(folder / "adapter")
    losses = state["losses"]
    head = losses[: max(1, len(losses) // 10)]
    tail = losses[-max(1, len(losses) // 10):]
    return {"recipe": asdict(spec), "examples": len(data), "steps": steps, "trainable_params": trainable,
            "loss_first": round(sum(head) / len(head), 3), "loss_last": round(sum(tail) / len(tail), 3),
            "train_tokens": state["tokens"], "seconds": round(state["seconds"], 1),
            "precision": "bfloat16 autocast" if bf16 else "float32",
            "tokens_per_s": round(state["tokens"] / max(state["seconds"], 1e-9), 1),
            "parts": {p: sum(1 for i in items if i.get("part") == p) for p in sorted({i.get("part") for i in items})}}


def export(folder: Path, target: Path, base_name: str, card: str, figures: dict) -> Path:
    """Copy the trained adapter into ``target`` (written beside it, then renamed); its config names ``base_name``."""
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder / "adapter", staging)
    config_path = staging / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_name
    config_path.write_text(json.dumps(config, indent=2))
    (staging / "training.json").write_text(json.dumps(figures, indent=2))
    (staging / "README.md").write_text(card)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target
