"""Figures of the safety layer: refusal rates against what each set expects, XSTest by prompt type, BBQ bias.

They draw a :class:`evalkit.safety.SafetyResult` and never run anything. Rates with no judged answer and bias
scores that are undefined are written as "n/a" on the plot instead of being drawn as 0.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt

EXPECT = {"advbench": "AdvBench: refuse", "harmbench": "HarmBench: refuse", "xstest_unsafe": "XSTest unsafe: refuse",
          "xstest_safe": "XSTest safe: answer"}


def _na(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def refusal_chart(result, ax=None):
    """Refusal rate per set (refusal rules; the LLM grader beside it when there was one), with n per bar."""
    table = result.refusals()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.2))
    graded = result.grader is not None
    width = 0.38 if graded else 0.6
    for i, row in enumerate(table.itertuples()):
        bars = [("rules", row.refusal_rate, row.judged, "tab:blue", 0.0)]
        if graded:
            bars = [("rules", row.refusal_rate, row.judged, "tab:blue", -width / 2),
                    ("grader", row.grader_refusal_rate, row.graded, "tab:orange", width / 2)]
        for label, value, n, color, dx in bars:
            x = i + dx
            if _na(value):
                ax.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=8)
                continue
            ax.bar(x, value, width, color=color, label=label if i == 0 else None)
            ax.text(x, value + 0.02, f"{value:.0%}\nn={n}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(table)), [EXPECT.get(s, s) for s in table["set"]])
    ax.set_xlim(-0.6, len(table) - 0.4)
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("refused")
    ax.set_title(f"Refusal rate, {result.model} (want: high on harmful/unsafe, low on safe)")
    if graded:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def xstest_chart(result, ax=None):
    """Refusal rate per XSTest prompt type, safe and unsafe types apart."""
    table = result.refusals(by="category")
    table = table[table["set"].str.startswith("xstest")]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 0.3 * max(len(table), 4) + 1))
    labels = [f"{row.category} ({'safe' if row.set == 'xstest_safe' else 'unsafe'}, n={row.judged})"
              for row in table.itertuples()]
    values = [0 if _na(v) else v for v in table["refusal_rate"]]
    colors = ["tab:green" if s == "xstest_safe" else "tab:red" for s in table["set"]]
    ax.barh(range(len(table)), values, color=colors)
    for i, value in enumerate(table["refusal_rate"]):
        ax.text(0 if _na(value) else value, i, " n/a" if _na(value) else f" {value:.0%}", va="center", fontsize=8)
    ax.set_yticks(range(len(table)), labels, fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("refused (refusal rules)")
    ax.set_title("XSTest by prompt type: safe (green) should be 0%, unsafe (red) 100%", fontsize=10)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def harmbench_chart(result, ax=None):
    """Refusal rate per HarmBench semantic category (want: 100% everywhere), with n per bar."""
    table = result.refusals(by="category")
    table = table[table["set"] == "harmbench"]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 0.35 * max(len(table), 4) + 1))
    values = [0 if _na(v) else v for v in table["refusal_rate"]]
    ax.barh(range(len(table)), values, color="tab:red")
    for i, (value, n) in enumerate(zip(table["refusal_rate"], table["judged"], strict=True)):
        ax.text(0 if _na(value) else value, i, " n/a" if _na(value) else f" {value:.0%} (n={n})", va="center",
                fontsize=8)
    ax.set_yticks(range(len(table)), [c.replace("_", " ") for c in table["category"]], fontsize=8)
    ax.set_xlim(0, 1.25)
    ax.set_xlabel("refused (refusal rules)")
    ax.set_title(f"HarmBench by semantic category, {result.model}: should be 100%", fontsize=10)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def bbq_chart(result, ax=None):
    """BBQ bias score per category (ambiguous and disambiguated); undefined scores are marked "n/a"."""
    table = result.bbq()
    cats = list(dict.fromkeys(table["category"]))
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.2))
    for j, (cond, color) in enumerate((("ambig", "tab:purple"), ("disambig", "tab:gray"))):
        part = table[table["context_condition"] == cond].set_index("category")
        for i, cat in enumerate(cats):
            x = i + (j - 0.5) * 0.38
            value = part["bias_score"].get(cat)
            if _na(value):
                ax.text(x, 0.03, "n/a", ha="center", va="bottom", fontsize=7)
                continue
            ax.bar(x, value, 0.38, color=color, label=cond if i == 0 else None)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(cats)), [c.replace("_", " ") for c in cats], rotation=20, fontsize=8)
    ax.set_xlim(-0.6, len(cats) - 0.4)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("bias score (+1 = stereotype)")
    valid = table[table["category"] == "all"]["n_valid"].sum()
    total = table[table["category"] == "all"]["n"].sum()
    ax.set_title(f"BBQ bias score, {result.model} ({valid} of {total} answers named an option)")
    if table["bias_score"].isna().all():
        ax.text(0.5, 0.75, "undefined: no answer named a person", transform=ax.transAxes, ha="center", color="gray")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def report_sections(result) -> list:
    """The report's section for a safety result: refusals against expectations, BBQ bias, the summary."""
    return [refusal_chart(result), bbq_chart(result), result.summary()]
