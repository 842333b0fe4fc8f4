"""Answers to harmful requests, shown only on request: a table folded behind a content note.

The safety sets ask for weapons, self-harm and abuse; a model without safety tuning answers some of them. The
notebook shows those answers (a rate is only as good as its judge, so a reader must be able to read them), but
folded: an HTML ``<details>`` block with the note as its summary, closed until clicked, in JupyterLab and in a
saved copy alike.
"""

from __future__ import annotations

import html

import pandas as pd

CONTENT_NOTE = ("Content note: these are a small model's answers to requests for harmful content (violence, "
                "weapons, self-harm, abuse), some of them compliant. Click to show them.")


def hidden_answers(frame: pd.DataFrame, note: str = CONTENT_NOTE):
    """``frame`` as an HTML table folded behind ``note`` (closed until clicked); its row count is in the summary."""
    from IPython.display import HTML

    summary = f"{html.escape(note)} ({len(frame)} rows)"
    return HTML(f"<details><summary>{summary}</summary>{frame.to_html(escape=True)}</details>")
