"""Two scorecards side by side, with a paired test per item metric where both runs kept their items."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evalkit import layers
from evalkit.scorecard.collect import Scorecard, collect


def compare(run_a: Path | str, run_b: Path | str) -> pd.DataFrame:
    """Side-by-side metrics of two runs: value in A and B, B - A, and which is better by the metric's direction."""
    a, b = collect(run_a), collect(run_b)
    key = ["layer", "metric", "unit", "direction"]
    left = a.frame()[key + ["value"]].rename(columns={"value": "a"})
    right = b.frame()[key + ["value"]].rename(columns={"value": "b"})
    both = left.merge(right, on=key, how="outer")
    both["delta"] = both["b"] - both["a"]

    def better(row) -> str:
        if pd.isna(row["a"]) or pd.isna(row["b"]):
            return "only one run"
        if row["a"] == row["b"]:
            return "same"
        b_higher = row["b"] > row["a"]
        return "b" if b_higher == (row["direction"] == "higher") else "a"

    both["better"] = both.apply(better, axis=1) if len(both) else []
    tests = paired_tests(a, b)
    both["paired"] = [tests.get((row.layer, row.metric), "") for row in both.itertuples()]
    order = {layer: i for i, layer in enumerate(layers.names())}
    both = both.sort_values(["layer", "metric"], key=lambda s: s.map(order) if s.name == "layer" else s)
    both.attrs.update(run_a=a.run_id, run_b=b.run_id)
    return both.reset_index(drop=True)


def paired_tests(a: Scorecard, b: Scorecard) -> dict[tuple[str, str], str]:
    """McNemar's test for every per-item metric both scorecards' results hold: ``(layer, metric) -> verdict``.

    Only items both runs judged count; a difference that could be noise reads "not significant at n=...".
    """
    from evalkit.stats import mcnemar

    out = {}
    results_a, results_b = a.results(), b.results()
    for layer in layers.names():
        if layer not in results_a or layer not in results_b:
            continue
        left, right = results_a[layer], results_b[layer]
        if not hasattr(left, "items"):
            continue
        items_a, items_b = left.items(), right.items()
        for metric in items_a.keys() & items_b.keys():
            out[(layer, metric)] = mcnemar(items_a[metric], items_b[metric]).verdict("a", "b")
    return out
