"""Figures over a scorecard: the pyramid with each layer's gate verdict, and a two-run comparison."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from evalkit import layers

COLORS = {"pass": "#2e7d32", "fail": "#c62828", "none": "#9e9e9e"}


def pyramid(card) -> plt.Figure:
    """The evaluation pyramid, each tier coloured by its gates: green all pass, red any fails, grey none."""
    gates = card.gates()
    measured = set(card.df["layer"])
    top_down = layers.names()[::-1]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, layer in enumerate(top_down):
        half = 0.2 + 0.8 * i / len(top_down)
        rows = gates[gates["layer"] == layer]
        if len(rows):
            state = "pass" if rows["passed"].all() else "fail"
            label = f"{layer}: {int(rows['passed'].sum())}/{len(rows)} gates"
        else:
            state = "none"
            label = f"{layer}: {'measured, no gates' if layer in measured else 'no result'}"
        y = len(top_down) - 1 - i
        ax.fill([-half, half, half + 0.1, -half - 0.1],
                [y + 0.9, y + 0.9, y, y], color=COLORS[state])
        ax.text(0, y + 0.45, label, ha="center", va="center", color="white", fontsize=10, fontweight="bold")
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(0, len(top_down))
    ax.axis("off")
    ax.set_title(f"run {card.run_id}: gates {'PASS' if card.passed else 'FAIL'}")
    return fig


def compare_bars(table: pd.DataFrame) -> plt.Figure:
    """Ratio B / A per metric (from :func:`evalkit.scorecard.compare`), green where B is better."""
    both = table.dropna(subset=["a", "b"])
    both = both[both["a"] != 0]
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.3 * len(both) + 1)))
    if both.empty:
        ax.text(0.5, 0.5, "no metric measured in both runs", ha="center", va="center")
        ax.axis("off")
        return fig
    labels = both["layer"] + " · " + both["metric"]
    ratios = both["b"] / both["a"]
    colors = [COLORS["pass"] if b == "b" else COLORS["fail"] if b == "a" else COLORS["none"] for b in both["better"]]
    ax.barh(labels, ratios, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.invert_yaxis()
    ax.set_xlabel("B / A  (green: B better, red: A better)")
    ax.set_title(f"A = {table.attrs.get('run_a', 'A')}   B = {table.attrs.get('run_b', 'B')}", fontsize=9)
    fig.tight_layout()
    return fig
