"""What every panel's run button does around its work: disable, say "running", show any error, enable again.

A press must never leave the panel saying "running" forever: an evalkit error shows its message (which names
the fix) in the status line, and any other exception shows its type and message there with the traceback in
the panel's output area, so a learner sees what happened and the notebook keeps working.
"""

from __future__ import annotations

import html
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from evalkit.errors import EvalkitError


@dataclass
class Press:
    """The outcome of one press: ``error`` is the exception that ended it, or None when it finished."""

    error: BaseException | None = None


def error_html(exc: BaseException) -> str:
    """An exception as one HTML status line: its type in bold, its message (escaped, line breaks kept)."""
    message = html.escape(str(exc)).replace("\n", "<br>")
    return f"<span style='color:crimson'><b>{type(exc).__name__}</b>: {message}</span>"


@contextmanager
def pressed(button, status, busy: str, *, output=None) -> Iterator[Press]:
    """Run the block with ``button`` disabled and ``busy`` in ``status``; errors go to ``status``, not upwards.

    Args:
        button: the panel's run button (disabled while the block runs).
        status: an HTML widget for the one-line status.
        busy: the status while the block runs (plain text).
        output: an Output widget that gets the traceback of an unexpected (non-evalkit) exception.
    """
    press = Press()
    button.disabled = True
    status.value = html.escape(busy)
    try:
        yield press
    except EvalkitError as exc:
        press.error = exc
        status.value = error_html(exc)
    except Exception as exc:  # noqa: BLE001 - a panel shows every failure instead of hanging on "running"
        press.error = exc
        status.value = error_html(exc) + " (traceback below)"
        if output is not None:
            with output:
                traceback.print_exc()
    finally:
        button.disabled = False
