"""Model against model: the scorecards of several runs side by side, plots against size, paired tests.

``evalkit run --models a,b,c`` runs the pyramid once per model (each on its own server) and then calls
:func:`write_comparison`, which writes into one folder ``compare.json``, ``compare.md``, ``compare.html`` and
``size.png``: every metric of every run in one table, six headline metrics plotted against parameter count,
and McNemar's test between neighbours on every per-item metric ("not significant at n=..." where a gap is noise).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from evalkit.scorecard.collect import Scorecard, collect
from evalkit.scorecard.compare import paired_tests

# (layer, metric, axis label) plotted against parameter count
HEADLINE = [
    ("performance", "max_output_tokens_per_s", "output tok/s at saturation"),
    ("performance", "ttft_p50_ms_at_lowest_load", "TTFT p50 (ms), lowest load"),
    ("format", "json_parse_rate_plain", "JSON parse rate, plain"),
    ("accuracy", "faq_mc_held_out_accuracy", "FAQ accuracy, held-out half"),
    ("safety", "harmbench_refusal_rate", "HarmBench refused"),
    ("safety", "over_refusal_rate", "XSTest safe refused (over-refusal)"),
]


def _params(model: str) -> int | None:
    from evalkit.models import PRESETS

    preset = PRESETS.get(model)
    return preset.params if preset else None


def side_by_side(cards: Mapping[str, Scorecard]) -> pd.DataFrame:
    """One row per (layer, metric), one column per model (``cards``: model -> its run's scorecard)."""
    frames = []
    for model, card in cards.items():
        frame = card.frame()[["layer", "metric", "unit", "direction", "value"]]
        frames.append(frame.rename(columns={"value": model}))
    table = frames[0]
    for frame in frames[1:]:
        table = table.merge(frame, on=["layer", "metric", "unit", "direction"], how="outer")
    return table


def neighbour_tests(cards: Mapping[str, Scorecard]) -> pd.DataFrame:
    """McNemar's test for each pair of neighbouring models on every per-item metric both hold."""
    names = list(cards)
    rows = []
    for a, b in zip(names, names[1:], strict=False):
        for (layer, metric), verdict in sorted(paired_tests(cards[a], cards[b]).items()):
            rows.append({"a": a, "b": b, "layer": layer, "metric": metric,
                         "verdict": verdict.replace("a ahead", f"{a} ahead").replace("b ahead", f"{b} ahead")})
    return pd.DataFrame(rows, columns=["a", "b", "layer", "metric", "verdict"])


def size_figure(table: pd.DataFrame, models: list[str]):
    """The six headline metrics against parameter count (log scale); models without a count are left out."""
    import matplotlib.pyplot as plt

    sized = [(m, _params(m)) for m in models if _params(m)]
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    for ax, (layer, metric, label) in zip(axes.flat, HEADLINE, strict=True):
        row = table[(table["layer"] == layer) & (table["metric"] == metric)]
        for model, params in sized:
            value = row[model].iloc[0] if len(row) and model in row else None
            if value is None or pd.isna(value):
                continue
            ax.scatter(params, value, color="tab:red" if "control" in model else "tab:blue")
            ax.annotate(model, (params, value), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("parameters", fontsize=8)
    fig.suptitle("The pyramid against model size (red: a control trained without refusals)")
    fig.tight_layout()
    return fig


def _markdown(table: pd.DataFrame) -> str:
    cells = [[str(c) for c in table.columns]] + [["" if v is None else str(v) for v in row]
                                                  for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in cells]
    return "\n".join([lines[0], "|" + "---|" * len(table.columns), *lines[1:]])


def write_comparison(runs: dict[str, Path], out_dir: Path) -> Path:
    """Write compare.json/.md/.html and size.png into ``out_dir``; return the HTML path."""
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    models = list(runs)
    cards = {model: collect(folder) for model, folder in runs.items()}
    table = side_by_side(cards)
    tests = neighbour_tests(cards)
    fig = size_figure(table, models)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    fig.savefig(out_dir / "size.png", dpi=100)
    plt.close(fig)
    (out_dir / "compare.json").write_text(json.dumps({
        "runs": {m: str(f) for m, f in runs.items()}, "params": {m: _params(m) for m in models},
        "metrics": json.loads(table.to_json(orient="records")), "paired": tests.to_dict("records")}, indent=1))
    shown = table.copy()
    for model in models:
        shown[model] = shown[model].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.3g}")
    (out_dir / "compare.md").write_text(
        f"# Model against model: {', '.join(models)}\n\n" + _markdown(shown)
        + "\n\n## Paired tests between neighbours (McNemar, exact)\n\n" + _markdown(tests) + "\n")
    image = base64.b64encode(buffer.getvalue()).decode()
    page = (f"<!doctype html><meta charset='utf-8'><title>evalkit: {html.escape(', '.join(models))}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
            "td,th{border:1px solid #ccc;padding:3px 6px}</style>"
            f"<h1>Model against model</h1><p>Runs: {html.escape(', '.join(f'{m} = {f}' for m, f in runs.items()))}</p>"
            f"<img alt='metrics against parameter count' src='data:image/png;base64,{image}'>"
            "<h2>Every metric</h2>" + shown.to_html(index=False, escape=True)
            + "<h2>Paired tests between neighbours</h2><p>McNemar's exact test on the items both runs judged.</p>"
            + tests.to_html(index=False, escape=True))
    path = out_dir / "compare.html"
    path.write_text(page)
    return path
