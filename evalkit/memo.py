"""Results of slow, deterministic work kept for later: on disk between processes, or per file version in one.

Importing xgrammar or jsonschema costs seconds in every new Python process (a notebook kernel, a command),
while what evalkit asks of them (a schema's grammar, whether a schema is valid) never changes for the same
input and version. :func:`remembered` keeps such a text under a hash of the input and the library's version;
a folder that cannot be written only means the work is done again. :func:`per_file_version` reads a data file
once per version (size and modification time) in a process, so a layer called again does not parse its data
again.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from evalkit.settings import get_settings

T = TypeVar("T")


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


def per_file_version(read: Callable[[Path], T]) -> Callable[[Path], T]:
    """``read(path)``, run once per version of the file (its size and modification time) in this process.

    Every call gets its own deep copy, so a caller may change what it got; an error (a missing or malformed
    file) is raised again on every call, never kept.
    """
    @functools.lru_cache(maxsize=32)
    def cached(path: str, size: int, mtime_ns: int):
        return read(Path(path))

    @functools.wraps(read)
    def wrapper(path: Path) -> T:
        try:
            stat = Path(path).stat()
        except OSError:
            return read(Path(path))  # its own error, with its own message
        return copy.deepcopy(cached(str(path), stat.st_size, stat.st_mtime_ns))

    return wrapper
