"""What the commands share: the server options, the server a command attaches to or starts, a resumable build.

The ``cli`` and ``build`` modules import this module, not :mod:`evalkit.cli` (which imports them), so the
command line's imports run one way.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command that needs a server: which model or endpoint, and whether to keep what it starts."""
    parser.add_argument("--model", default=None, help="preset name, model folder or hub id (default: settings)")
    parser.add_argument("--base-url", default=None, help="attach to this OpenAI-compatible endpoint")
    parser.add_argument("--keep-server", action="store_true",
                        help="leave a server this command started running (`evalkit stop` ends it)")


@contextlib.contextmanager
def command_server(args):
    """The server of a command: attached or started, and left at the end (it stops if nobody else uses it).

    ``--keep-server`` keeps the server running until ``evalkit stop``, as ``evalkit serve`` does.
    """
    from evalkit.serve import serve

    srv = serve(args.model, base_url=args.base_url, keep=args.keep_server)
    try:
        yield srv
    finally:
        if args.keep_server:
            if srv.started:
                print(f"The server for {srv.model} keeps running at {srv.base_url}; `evalkit stop` ends it.",
                      file=sys.stderr)
        else:
            srv.stop()


def resumable(build: Callable[[], object], log: Callable[[str], None], kept: str) -> int:
    """Run a long resumable build (``evalkit ladder build``, ``evalkit tune build``); Ctrl-C says what was kept.

    Returns the command's exit code: 0, or 130 after an interrupt (``kept`` names what a rerun continues from).
    """
    try:
        build()
    except KeyboardInterrupt:
        log(f"interrupted: {kept}; rerun to continue")
        return 130
    return 0
