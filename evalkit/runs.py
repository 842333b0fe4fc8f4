"""Run folders: where every call that runs a tool writes, their lock, and the scan for results in them.

Every call that runs a tool writes into a run folder (``runs/<time>-<label>/`` unless one is given): the tool's
own output files, its log, and ``result.json``, the typed result that :meth:`evalkit.result.LayerResult.load`
reads back. :func:`scan_results` finds the readable result files under runs/.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from datetime import datetime
from pathlib import Path

from evalkit.errors import ResultFileError, RunLockedError, RunNotFoundError
from evalkit.result import RESULT_FILE, read_result
from evalkit.settings import get_settings


def new_run_dir(label: str, root: Path | None = None) -> Path:
    """Create ``<root>/<YYYYmmdd-HHMMSS>-<label>`` (suffixed if it exists) and return it."""
    root = Path(root) if root else get_settings().runs_dir
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "run"
    base = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def resolve_run_dir(run: str | Path) -> Path:
    """A run folder given as a path or as a name under runs/; raise if it does not exist."""
    path = Path(run)
    if not path.exists():
        candidate = get_settings().runs_dir / str(run)
        path = candidate if candidate.exists() else path
    if not path.is_dir():
        raise RunNotFoundError(
            f"Run folder {run} does not exist.",
            fix=f"list the runs with `ls {get_settings().runs_dir}` and pass one of them.",
        )
    return path


@contextlib.contextmanager
def run_lock(folder: Path, what: str = "evalkit run"):
    """Hold an exclusive lock on ``folder/.lock``; raise :class:`RunLockedError` if another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise RunLockedError(
            f"{what} is already running on {folder} ({holder}).",
            fix="wait for it to finish, or stop it (Ctrl-C in its terminal, or kill that pid) and try again.",
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} since {datetime.now().isoformat(timespec='seconds')}")
    fh.flush()
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def scan_results(root: Path | None = None, *, deep: bool = False) -> list[tuple[Path, dict]]:
    """Readable result files under ``root`` (default runs/) and their contents, skipping unreadable ones.

    Looks at ``<root>/<run>/result.json`` and ``<root>/<run>/<folder>/result.json``; ``deep`` looks at every
    depth (explorations nested in a layer's folder too).
    """
    root = Path(root) if root else get_settings().runs_dir
    paths = root.rglob(RESULT_FILE) if deep else [*root.glob(f"*/{RESULT_FILE}"), *root.glob(f"*/*/{RESULT_FILE}")]
    found = []
    for path in paths:
        try:
            found.append((path, read_result(path)))
        except ResultFileError:
            continue
    return found
