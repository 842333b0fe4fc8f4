"""The self-contained HTML report of a run: the pyramid at a glance, each layer's tables and plots, the gates.

One file (``report.html``) with figures embedded as PNG data, so it can be uploaded as a CI artifact or mailed.
Each layer's section comes from ``report_sections`` in its module of ``evalkit.plots`` (named by the layer registry,
:mod:`evalkit.layers`); the report only arranges them.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import pandas as pd

from evalkit import layers
from evalkit.scorecard import Scorecard, load_layer_result

REPORT_FILE = "report.html"
STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}table{border-collapse:collapse;font-size:13px;margin:.5em 0}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:left}th{background:#f4f4f4}
.pass{color:#176d2c;font-weight:600}.fail{color:#b00020;font-weight:600}.none{color:#888}
.pyramid{display:flex;flex-direction:column;align-items:center;gap:4px;margin:1em 0}
.tier{padding:.5em 1em;text-align:center;border-radius:4px;color:#fff}
.tier.ok{background:#2e7d32}.tier.bad{background:#c62828}.tier.missing{background:#9e9e9e}
img{max-width:100%;border:1px solid #eee;margin:.3em 0}details{margin:.5em 0}
"""


def _figure_png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _table(frame: pd.DataFrame, max_rows: int = 40) -> str:
    if frame is None or frame.empty:
        return "<p class='none'>(empty)</p>"
    more = f"<p class='none'>{len(frame) - max_rows} more rows in the run folder</p>" if len(frame) > max_rows else ""
    return frame.head(max_rows).to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}", escape=True) + more


def _render(part) -> str:
    if isinstance(part, pd.DataFrame):
        return _table(part, 30)
    figure = getattr(part, "figure", part)  # plotting functions may return Axes
    return f"<img alt='figure' src='data:image/png;base64,{_figure_png(figure)}'>"


def _tier(layer: str, card: Scorecard | None, has_result: bool) -> str:
    if not has_result:
        return f"<div class='tier missing' style='width:{_width(layer)}'>{layer}: no result</div>"
    gates = card.gates() if card else pd.DataFrame()
    gates = gates[gates["layer"] == layer] if len(gates) else gates
    if len(gates) == 0:
        return f"<div class='tier ok' style='width:{_width(layer)}'>{layer}: measured, no gates</div>"
    ok = int(gates["passed"].sum())
    cls = "ok" if ok == len(gates) else "bad"
    return f"<div class='tier {cls}' style='width:{_width(layer)}'>{layer}: {ok}/{len(gates)} gates pass</div>"


def _width(layer: str) -> str:
    return f"{40 + 15 * (len(layers.LAYERS) - layers.get(layer).order)}%"  # the base is the widest


def write_report(folder: Path, card: Scorecard | None = None) -> Path:
    """Write ``report.html`` into a run folder and return its path."""
    folder = Path(folder)
    state = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    results = {}
    collected = card.results() if card is not None else {}  # what the scorecard already read
    for layer in layers.names():
        path = folder / layer / "result.json"
        if layer in collected and Path(card.sources[layer]) == path:
            results[layer] = collected[layer]
        elif path.exists():
            try:
                results[layer] = load_layer_result(path)
            except Exception as exc:
                results[layer] = exc
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>evalkit report {html.escape(folder.name)}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>evalkit report</h1><p class='sub'>run {html.escape(folder.name)} · profile "
             f"{html.escape(str(state.get('profile', '?')))} · model {html.escape(str(state.get('model', '?')))}"
             f" · {html.escape(str(state.get('created', '')))}</p>"]
    parts.append("<h2>The pyramid</h2><div class='pyramid'>")
    parts += [_tier(layer, card, layer in results) for layer in reversed(layers.names())]
    parts.append("</div>")
    if state.get("notebooks"):
        rows = [{"notebook": n, "status": r.get("status"), "seconds": r.get("duration_s"),
                 "error": (r.get("error") or "")[:300]} for n, r in state["notebooks"].items()]
        parts.append("<h2>Notebooks</h2>" + _table(pd.DataFrame(rows)))
    if card is not None:
        gates = card.gates()
        verdict = "<span class='pass'>PASSED</span>" if card.passed else "<span class='fail'>FAILED</span>"
        parts.append(f"<h2>Gates: {verdict}</h2>" + _table(gates[["layer", "metric", "value", "unit", "bound",
                                                                   "threshold", "passed", "note"]], 200))
        parts.append("<details><summary>All metrics</summary>" + _table(card.df, 500) + "</details>")
    elif state.get("gate_error"):
        parts.append(f"<h2>Gates</h2><p class='fail'>{html.escape(state['gate_error'])}</p>")
    for layer in layers.names():
        result = results.get(layer)
        parts.append(f"<h2>{layers.get(layer).title}</h2>")
        if result is None:
            parts.append("<p class='none'>No result: the notebook did not run or failed.</p>")
            continue
        if isinstance(result, Exception):
            parts.append(f"<p class='fail'>Result could not be read: {html.escape(str(result))}</p>")
            continue
        try:
            parts += [_render(part) for part in layers.get(layer).report_sections(result)]
        except Exception as exc:  # a figure must not sink the report: show the table and say what failed
            parts.append(f"<p class='fail'>figures failed: {html.escape(str(exc))}</p>" + _table(result.df, 30))
    parts.append("</body></html>")
    path = folder / REPORT_FILE
    path.write_text("\n".join(parts))
    return path
