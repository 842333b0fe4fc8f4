"""Train one ladder model: packed windows, loss on answers only, resumable checkpoints, a progress log.

The corpus is encoded once per variant (with or without refusals) into one token stream and a loss mask;
windows of SEQ_LEN+1 tokens are drawn in a seeded order, so a run is the same run whether it was interrupted
or not. A checkpoint (model, optimiser, step) is written atomically every ``every`` steps and at the end; a
rerun continues from it. :func:`export` writes the finished model to a temporary folder and renames it into
place, so data/models never holds a half-written model.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

from evalkit.ladder.specs import SEQ_LEN, LadderSpec

CHECKPOINT = "checkpoint.pt"


def encode(items: list[dict], tokenizer_dir: Path, out: Path, *, refusals: bool = True) -> Path:
    """Encode the corpus into ``out`` (a torch file of ids and mask); skip refusal items when ``refusals`` is False."""
    import torch
    from tokenizers import Tokenizer

    if out.exists():
        return out
    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    tok.no_padding()
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    kept = [i for i in items if refusals or i["part"] != "refusal"]
    prompts = tok.encode_batch([i["prompt"] for i in kept], add_special_tokens=False)
    answers = tok.encode_batch([(" " if i["prompt"] else "") + i["answer"] for i in kept], add_special_tokens=False)
    ids: list[int] = []
    mask: list[int] = []
    for prompt, answer in zip(prompts, answers, strict=True):
        ids += [bos, *prompt.ids, *answer.ids, eos]
        mask += [0] * (1 + len(prompt.ids)) + [1] * (len(answer.ids) + 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save({"ids": torch.tensor(ids, dtype=torch.int16), "mask": torch.tensor(mask, dtype=torch.bool)}, tmp)
    tmp.replace(out)
    return out


def _lr(spec: LadderSpec, step: int) -> float:
    warmup = max(1, min(50, spec.steps // 10))
    if step < warmup:
        return spec.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, spec.steps - warmup)
    return spec.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(spec: LadderSpec, tokens: Path, folder: Path, *, every: int = 50, threads: int | None = None,
          log=print) -> dict:
    """Train ``spec`` on the encoded ``tokens``; checkpoints and train.log in ``folder``. Returns the run's figures."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(threads or os.cpu_count() or 1)
    folder.mkdir(parents=True, exist_ok=True)
    data = torch.load(tokens)
    ids, mask = data["ids"].long(), data["mask"]
    windows = (len(ids) - 1) // SEQ_LEN
    gen = torch.Generator().manual_seed(spec.seed)
    order = torch.randperm(windows, generator=gen)

    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(LlamaConfig(**spec.config()))
    optim = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.95), weight_decay=0.1)
    state = {"step": 0, "seconds": 0.0, "losses": []}
    ckpt = folder / CHECKPOINT
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        model.load_state_dict(saved["model"])
        optim.load_state_dict(saved["optim"])
        state = saved["state"]
        log(f"[{spec.name}] resuming at step {state['step']} of {spec.steps}")
    model.train()
    logfile = open(folder / "train.log", "a", encoding="utf-8")
    started = time.monotonic() - state["seconds"]
    window_loss = []
    try:
        from tqdm import tqdm

        bar = tqdm(total=spec.steps, initial=state["step"], desc=spec.name, unit="step", mininterval=5)
        while state["step"] < spec.steps:
            step = state["step"]
            picks = [order[(step * spec.batch + b) % windows].item() for b in range(spec.batch)]
            x = torch.stack([ids[p * SEQ_LEN:(p + 1) * SEQ_LEN + 1] for p in picks])
            m = torch.stack([mask[p * SEQ_LEN:(p + 1) * SEQ_LEN + 1] for p in picks])
            labels = x[:, 1:].clone()
            labels[~m[:, 1:]] = -100
            logits = model(input_ids=x[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                                     ignore_index=-100)
            for group in optim.param_groups:
                group["lr"] = _lr(spec, step)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            state["step"] += 1
            window_loss.append(loss.item())
            bar.update(1)
            if state["step"] % every == 0 or state["step"] == spec.steps:
                state["seconds"] = time.monotonic() - started
                mean = sum(window_loss) / len(window_loss)
                window_loss = []
                state["losses"].append([state["step"], round(mean, 4)])
                rate = state["step"] * spec.batch * SEQ_LEN / max(state["seconds"], 1e-9)
                line = (f"{spec.name} step {state['step']}/{spec.steps} loss {mean:.3f} "
                        f"{state['seconds']:.0f} s {rate:.0f} tok/s")
                logfile.write(line + "\n")
                logfile.flush()
                tmp = ckpt.with_suffix(".tmp")
                torch.save({"model": model.state_dict(), "optim": optim.state_dict(), "state": state}, tmp)
                tmp.replace(ckpt)
        bar.close()
    finally:
        logfile.close()
    return {"steps": spec.steps, "seconds": round(state["seconds"], 1), "final_loss": state["losses"][-1][1],
            "tokens_seen": spec.steps * spec.batch * SEQ_LEN, "losses": state["losses"]}


def export(spec: LadderSpec, folder: Path, tokenizer_dir: Path, target: Path, card: str, figures: dict) -> Path:
    """Write the trained model with its tokenizer and card to ``target``, atomically (temp folder, rename)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(**spec.config()))
    model.load_state_dict(torch.load(folder / CHECKPOINT, weights_only=False)["model"])
    model.generation_config.do_sample = False
    tmp = target.parent / f".{target.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        shutil.copy(tokenizer_dir / name, tmp / name)
    (tmp / "training.json").write_text(json.dumps({"spec": spec.__dict__, **figures}, indent=1) + "\n")
    (tmp / "README.md").write_text(card)
    old = target.parent / f".{target.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
