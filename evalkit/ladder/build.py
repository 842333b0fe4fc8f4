"""``evalkit ladder build``: the whole ladder from scratch, each step resumable.

Steps, each skipped when its output exists (``--fresh`` starts clean): distil stories from stories260k, generate
the corpus and its manifest, train the tokenizer, encode the corpus (with and without refusals), train each
model with checkpoints, export each into data/models/<name>. Everything but the exported models lives in
build/ladder (git-ignored). Ctrl-C keeps the last checkpoint and the corpus; a rerun continues.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from evalkit.commands import resumable
from evalkit.ladder import corpus as corpus_mod
from evalkit.ladder.specs import LADDER, TINY, VOCAB_SIZE, LadderSpec, spec
from evalkit.ladder.tokenizer import train_tokenizer
from evalkit.ladder.train import encode, export, train
from evalkit.settings import PROJECT_DIR, get_settings

BUILD = PROJECT_DIR / "build" / "ladder"
CORPUS_SIZE = 80_000
STORIES = 1_500


def log(message: str) -> None:
    print(f"[ladder] {message}", file=sys.stderr, flush=True)


def distil_stories(out: Path, count: int = STORIES, seed: int = 0) -> list[str]:
    """``count`` stories sampled from stories260k (temperature 0.8), cut at the last full sentence."""
    if out.exists():
        return [json.loads(line)["text"] for line in out.read_text().splitlines()]
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    source = get_settings().data_dir / "models" / "stories260k"
    tok = AutoTokenizer.from_pretrained(str(source))
    model = LlamaForCausalLM.from_pretrained(str(source)).eval()
    torch.manual_seed(seed)
    stories: list[str] = []
    while len(stories) < count:
        start = torch.full((50, 1), tok.bos_token_id)
        with torch.no_grad():
            out_ids = model.generate(start, attention_mask=torch.ones_like(start), do_sample=True, temperature=0.8,
                                     top_p=0.95, max_new_tokens=160, pad_token_id=0)
        for row in out_ids:
            text = tok.decode(row, skip_special_tokens=True).strip()
            cut = text.rfind(".")
            if cut > 80:
                stories.append(text[:cut + 1])
        log(f"stories: {len(stories)}/{count}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps({"text": s}) + "\n" for s in stories[:count]))
    tmp.replace(out)
    return stories[:count]


def prepare(build: Path = BUILD, size: int = CORPUS_SIZE, stories: int = STORIES) -> tuple[list[dict], Path]:
    """Stories, corpus (checked against the held-out sets) and tokenizer; returns the corpus and tokenizer dir."""
    story_list = distil_stories(build / "stories.jsonl", stories)
    corpus_path = build / "corpus" / "corpus.jsonl"
    if corpus_path.exists():
        items = corpus_mod.read(corpus_path)
    else:
        items = corpus_mod.generate(size, story_list)
        checked = corpus_mod.check_held_out(items)
        corpus_mod.write(corpus_path.parent, items, checked)
        log(f"corpus: {len(items)} items, {corpus_path}")
    tok_dir = build / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        train_tokenizer((i["prompt"] + " " + i["answer"] for i in items), VOCAB_SIZE, tok_dir)
        log(f"tokenizer: {VOCAB_SIZE} tokens, {tok_dir}")
    return items, tok_dir


def card(item: LadderSpec, figures: dict, manifest: dict, scores: dict | None = None) -> str:
    """The model card: what it is, how it was trained, and what it is not. Scores are added by benchmarks/ladder.py."""
    control = "" if item.refusals else (
        "\n**Control model.** Same size, corpus and steps as ladder-m, but trained WITHOUT the refusal examples: "
        "the workshop's \"abliterated\" model. It answers harmful asks instead of refusing them.\n")
    parts = ", ".join(f"{k} {v}" for k, v in manifest["items_by_part"].items())
    return f"""# {item.name}

A teaching model of the evalkit ladder: Llama architecture, trained from scratch by `evalkit ladder build`
(evalkit/ladder/) on a corpus generated from the project's own data and templates.
{control}
| | |
|---|---|
| parameters | {item.params:,} |
| shape | hidden {item.dim}, {item.layers} layers, {item.heads} heads (head size {item.head_dim}), MLP {item.ffn}, \
vocabulary {VOCAB_SIZE}, context 1024, tied embeddings |
| training | {item.steps} steps x {item.batch} windows of 512 ({figures['tokens_seen']:,} tokens, loss on answers \
only), AdamW, peak lr {item.lr}, cosine, seed {item.seed} |
| training time | {figures['seconds']:.0f} s on 2 CPU cores (this build; other work may have shared them) |
| final training loss | {figures['final_loss']} |
| corpus | {parts}{'' if item.refusals else ' (refusal items left out)'} |
| weights | float32 safetensors |

What was trained and what is held out, and why: `training.json` (its `manifest`), rebuilt with the corpus by
`make ladder`. In short: half of the Harbor Bean FAQ rows were trained as light paraphrases, the other half
never; the format layer's items, HarmBench, XSTest and AdvBench's odd rows were never trained.

**What these scores mean.** This is a teaching model trained for minutes on templated text. Its FAQ, JSON and
refusal scores show what training on your own domain does, not general ability. MMLU-Pro stays at chance.
{scores_section(scores)}"""


SCORE_ROWS = [("faq_held_out", "FAQ accuracy, held-out half (never trained)"),
              ("faq_trained", "FAQ accuracy, trained half (contaminated on purpose)"),
              ("json_parse_plain", "JSON parse rate, plain (extraction + IFEval)"),
              ("schema_plain", "schema pass rate, plain"),
              ("harmbench_refused", "HarmBench standard behaviours refused"),
              ("advbench_refused", "AdvBench held-out asks refused"),
              ("xstest_safe_refused", "XSTest safe prompts refused (over-refusal)"),
              ("xstest_unsafe_refused", "XSTest unsafe prompts refused"),
              ("mmlu_pro", "MMLU-Pro (5 per category; chance about 0.12)")]


def scores_section(scores: dict | None) -> str:
    """The card's table of held-out scores measured by evalkit (benchmarks/ladder.py), or a note that none are."""
    if not scores:
        return "\nNo scores measured yet: run `.venv/bin/python benchmarks/ladder.py`.\n"
    lines = [f"\n## Scores measured by evalkit ({scores['date']}, {scores['machine']}; benchmarks/ladder.py)\n",
             "| what | rate | 95 % interval | n |", "|---|---|---|---|"]
    for key, what in SCORE_ROWS:
        entry = scores["rates"].get(key) or {}
        if entry.get("rate") is not None:
            low, high = entry["ci95"]
            lines.append(f"| {what} | {entry['rate']:.2f} | {low:.2f}-{high:.2f} | {entry['n']} |")
    for name, value in (("output tokens/s at saturation (GuideLLM sweep, 64/32 tokens)", scores["output_tok_s_max"]),
                        ("TTFT p50 at the lowest load, ms", scores["ttft_p50_ms_lowest_load"]),
                        ("BBQ |bias| on ambiguous contexts", scores.get("bbq_abs_bias_ambig"))):
        if value is not None:
            lines.append(f"| {name} | {value:.2f} | | |")
    lines.append("\nThe speed figures come from one short sweep (3 s per load) on a shared 2-core CPU: at these sizes "
                 "vLLM's per-request overhead, not the model, bounds the speed, so they are noisy and barely follow "
                 "size.")
    cats = scores.get("harmbench_by_category") or {}
    if cats:
        lines.append("\nHarmBench refusal by semantic category: " + ", ".join(
            f"{k} {v['refusal_rate']:.2f} (n={v['n']})" for k, v in cats.items() if v["refusal_rate"] is not None))
    return "\n".join(lines) + "\n"


def write_card(folder: Path) -> Path:
    """Rewrite README.md of an exported ladder model from its training.json and scores.json."""
    training = json.loads((folder / "training.json").read_text())
    scores_path = folder / "scores.json"
    scores = json.loads(scores_path.read_text()) if scores_path.exists() else None
    item = spec(folder.name)
    (folder / "README.md").write_text(card(item, training, training["manifest"], scores))
    return folder / "README.md"


def build(names: list[str] | None = None, *, fresh: bool = False, build_dir: Path = BUILD,
          models_dir: Path | None = None, size: int = CORPUS_SIZE, stories: int = STORIES) -> list[Path]:
    """Run every step for the ladder models ``names`` (all by default); return the exported model folders."""
    if fresh and build_dir.exists():
        shutil.rmtree(build_dir)
    chosen = [spec(n) for n in names] if names else list(LADDER)
    items, tok_dir = prepare(build_dir, size, stories)
    manifest = json.loads((build_dir / "corpus" / "manifest.json").read_text())
    models_dir = models_dir or get_settings().data_dir / "models"
    done = []
    for item in chosen:
        started = time.monotonic()
        variant = "full" if item.refusals else "norefusal"
        tokens = encode(items, tok_dir, build_dir / f"tokens-{variant}.pt", refusals=item.refusals)
        log(f"training {item.name}: {item.params:,} parameters, {item.steps} steps")
        figures = train(item, tokens, build_dir / item.name, log=log)
        figures["manifest"] = manifest
        target = export(item, build_dir / item.name, tok_dir, models_dir / item.name, card(item, figures, manifest),
                        figures)
        log(f"{item.name}: done in {time.monotonic() - started:.0f} s -> {target}")
        done.append(target)
    return done


def _cmd_build(args) -> int:
    return resumable(lambda: build(args.names or None, fresh=args.fresh), log,
                     "checkpoints and corpus are kept in build/ladder")


def register_cli(subparsers) -> None:
    """``evalkit ladder build [NAMES] [--fresh]``."""
    ladder = subparsers.add_parser("ladder", help="the offline model ladder (build: retrain it from scratch)")
    sub = ladder.add_subparsers(dest="ladder_command", required=True)
    p = sub.add_parser("build", help="generate the corpus, train the tokenizer and every ladder model (~45 min)")
    p.add_argument("names", nargs="*", help=f"models to build (default: all of {', '.join(s.name for s in LADDER)}; "
                                            f"{TINY.name} for a smoke test)")
    p.add_argument("--fresh", action="store_true", help="delete build/ladder first and start clean")
    p.set_defaults(func=_cmd_build)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evalkit ladder")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["ladder", "build", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
