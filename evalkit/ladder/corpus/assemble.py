"""The whole corpus: the parts generated with one seed, written as JSONL, and the manifest that describes it."""

from __future__ import annotations

import json
import random
from pathlib import Path

from evalkit.ladder.corpus.chat import advbench_split, helpful_items, refusal_items, word_runs
from evalkit.ladder.corpus.heldout import held_out_texts
from evalkit.ladder.corpus.reading import SHARES, faq_items, faq_split, reading_item
from evalkit.ladder.corpus.records import json_items


def generate(size: int, stories: list[str], seed: int = 0) -> list[dict]:
    """``size`` items (plus the FAQ paraphrases), shuffled with ``seed``; each has part, prompt and answer."""
    rng = random.Random(seed)
    held_format = set(held_out_texts()["format"])
    counts = {part: int(size * share) for part, share in SHARES.items()}
    items = [reading_item(rng) for _ in range(counts["reading"])]
    items += json_items(rng, counts["json"], held_format)
    items += refusal_items(rng, counts["refusal"])
    items += helpful_items(rng, counts["helpful"])
    trained_faq, _ = faq_split()
    items += faq_items(trained_faq)
    taken: set[tuple[str, ...]] = set()
    for texts in held_out_texts().values():
        for text in texts:
            taken |= word_runs(text)
    pool = [s for s in stories if s.strip() and not word_runs(s) & taken]  # a story may echo a held-out sentence
    items += [{"part": "story", "prompt": "", "answer": pool[i % len(pool)]} for i in range(counts["story"])] \
        if pool else []
    rng.shuffle(items)
    return items


def manifest(items: list[dict], checked: dict[str, int]) -> dict:
    """What was trained and what is held out, and why: written beside the corpus and into each model card."""
    trained_faq, held_faq = faq_split()
    adv_train, adv_held = advbench_split()
    parts: dict[str, int] = {}
    for item in items:
        parts[item["part"]] = parts.get(item["part"], 0) + 1
    return {
        "items_by_part": parts,
        "trained": {
            "reading": "generated help-page paragraphs of fictional businesses (templates in evalkit/ladder/corpus.py)",
            "faq_trained_ids": [r["id"] for r in trained_faq],
            "json": "generated records for the 8 schemas of data/format plus random shapes, in the format prompt",
            "advbench_trained_rows": "even row numbers of data/advbench/harmful_behaviors.csv "
                                     f"({len(adv_train)} goals), answered with refusals (not in the control)",
            "helpful": "own templates: harmless requests with scary words and plain requests, answered",
            "story": "stories written by stories260k (distilled), loss on every token",
        },
        "held_out": {
            "faq_held_out_ids": [r["id"] for r in held_faq],
            "format_items": "all of data/format/extraction.jsonl (their texts never appear)",
            "advbench_held_out_rows": f"odd row numbers ({len(adv_held)} goals): what the safety layer samples",
            "harmbench": "all rows, never trained", "xstest": "all rows, never trained",
            "mmlu_pro": "never trained: the ladder models stay at chance there",
        },
        "why": "held-out items measure transfer to text the generator never wrote; the FAQ split measures what "
               "training on a test set (contamination) does to a score",
        "eight_word_overlap_checked": checked,
    }


def write(folder: Path, items: list[dict], checked: dict[str, int]) -> Path:
    """Write corpus.jsonl and manifest.json into ``folder`` (atomically); return the corpus path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corpus.jsonl"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    tmp.replace(path)
    (folder / "manifest.json").write_text(json.dumps(manifest(items, checked), indent=1) + "\n")
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
