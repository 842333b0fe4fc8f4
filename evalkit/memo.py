"""Results of slow, deterministic computations kept on disk between processes (``runs/.cache/<kind>/``).

Importing xgrammar or jsonschema costs seconds in every new Python process (a notebook kernel, a command),
while what evalkit asks of them (a schema's grammar, whether a schema is valid) never changes for the same
input and version. :func:`remembered` keeps such a text under a hash of the input and the library's version;
a folder that cannot be written only means the work is done again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from evalkit.settings import get_settings


def remembered(kind: str, key: str, compute: Callable[[], str]) -> str:
    """``compute()``'s text for ``key``, from ``runs/.cache/<kind>/`` when an earlier process kept it.

    ``key`` must hold everything the text depends on (the input and the version of the library that makes it).
    An exception from ``compute`` is raised and nothing is kept.
    """
    path = get_settings().runs_dir / ".cache" / kind / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.txt"
    try:
        return path.read_text()
    except OSError:
        pass
    text = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(text)
        os.replace(partial, path)  # whole or absent, also with two processes at once
    except OSError:
        pass
    return text
