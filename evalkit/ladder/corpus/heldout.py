"""What the ladder must never see: every held-out text, and the 8-word-run check a corpus must pass."""

from __future__ import annotations

import json

from evalkit.ladder.corpus.chat import advbench_split, csv_column, word_runs
from evalkit.ladder.corpus.reading import faq_split
from evalkit.settings import get_settings


def held_out_texts() -> dict[str, list[str]]:
    """Every held-out prompt the corpus must not contain: FAQ held-out half, format items, XSTest, HarmBench."""
    data = get_settings().data_dir
    _, held = faq_split()
    texts = {"faq": [r["context"] + " " + r["question"] for r in held]}
    texts["format"] = [json.loads(line)["text"] for line in (data / "format" / "extraction.jsonl").read_text()
                       .splitlines() if line.strip()]
    texts["xstest"] = csv_column(data / "xstest" / "xstest_prompts.csv", "prompt")
    texts["harmbench"] = csv_column(data / "harmbench" / "harmbench_behaviors_text_all.csv", "Behavior")
    texts["advbench_held_out"] = advbench_split()[1]
    return texts


def check_held_out(items: list[dict]) -> dict[str, int]:
    """Count, per held-out set, trained items that share an 8-word run with a held-out text; raise if any."""
    from evalkit.errors import ConfigError

    held = held_out_texts()
    trained: set[tuple[str, ...]] = set()
    for item in {i["prompt"] + " " + i["answer"] for i in items}:
        trained |= word_runs(item)
    found = {name: sum(1 for text in texts if word_runs(text) & trained) for name, texts in held.items()}
    leaked = {k: v for k, v in found.items() if v}
    if leaked:
        raise ConfigError(f"The corpus contains held-out text: {leaked} (8-word runs shared).",
                          fix="change the templates so they do not repeat held-out prompts.")
    return {name: len(texts) for name, texts in held.items()}
