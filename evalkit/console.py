"""What a person watching a tool sees: a heartbeat line that a notebook updates in place instead of repeating."""

from __future__ import annotations

import sys


class Beat:
    """A quiet tool's heartbeat line.

    In a notebook it is one line updated in place (the saved notebook keeps the latest); in a terminal or a log,
    one new line each time.
    """

    def __init__(self):
        self.handle = None

    def show(self, line: str) -> None:
        if not in_kernel():
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            return
        from IPython.display import Pretty, display

        if self.handle is None:
            self.handle = display(Pretty(line), display_id=True)
        else:
            self.handle.update(Pretty(line))


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (IPython with a kernel: a notebook, papermill)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None
