"""The ``evalkit`` command line: serve, status, stop, and one command per layer.

Each layer module adds its own sub-command through a ``register_cli(subparsers)`` function, so a command's
options live beside the code they drive. Errors print their message (what went wrong, how to fix it) and exit
with code 2; a gate that fails exits 1; SIGTERM is handled like Ctrl-C so that servers this process started
are stopped and results written so far stay on disk.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import signal
import sys

from evalkit import layers
from evalkit.errors import EvalkitError
from evalkit.settings import get_settings

# modules with a register_cli(subparsers) besides the layers' packages: the commands over layers
COMMAND_MODULES = ["scorecard", "pipeline", "plan", "ladder.build", "tune.build"]


def _cmd_serve(args) -> int:
    from evalkit.serve import serve

    srv = serve(args.model, base_url=args.base_url, port=args.port, max_model_len=args.max_model_len, keep=True)
    print(json.dumps({"model": srv.model, "base_url": srv.base_url, "pid": srv.info.pid,
                      "log": srv.info.log_path, "ready_s": srv.info.ready_s}, indent=2))
    print("The server keeps running; `evalkit stop` ends it.", file=sys.stderr)
    return 0


def _cmd_status(args) -> int:
    from evalkit.serve.client import answers_at
    from evalkit.serve.sharing import users_of
    from evalkit.serve.state import scan_servers

    settings = get_settings()
    scan = scan_servers(settings)
    if not scan.servers:
        print("No server started by evalkit is running.")
    orphans = False
    for info in scan.servers:
        state = "answering" if answers_at(info.base_url, settings) else "NOT answering"
        users = users_of(info, settings)
        if info.legacy:
            life = (f"started by an earlier evalkit; ends with {info.owner or f'pid {info.owner_pid}'}"
                    if info.owner_pid else "started by an earlier evalkit; runs until `evalkit stop`")
            orphans |= bool(info.owner_pid) and not users
        else:
            life = ("kept: runs until `evalkit stop`" if info.keep else "shared: stops when its last user leaves"
                    ) + f"; started by {info.owner}"
        print(f"{info.model}  {info.base_url}  pid {info.pid}  {state}  log: {info.log_path}")
        print(f"    {life}")
        print(f"    users ({len(users)}): " + ("; ".join(str(u) for u in users) or "none"))
    if orphans:
        print("Servers whose owner has ended: `evalkit stop --orphans` stops them.")
    for note in scan.notes:
        print(note)
    if settings.base_url:
        state = "answering" if answers_at(settings.base_url, settings) else "NOT answering"
        print(f"EVALKIT_BASE_URL {settings.base_url}: {state}")
    return 0


def _cmd_stop(args) -> int:
    from evalkit.serve import stop_servers
    from evalkit.serve.state import scan_servers

    stopped = stop_servers(args.port, orphans=args.orphans)
    for info, users in stopped:
        used = "; ".join(str(u) for u in users) or "nobody"
        print(f"stopped {info.model} at {info.base_url} (pid {info.pid}); it was used by: {used}")
    if not stopped:
        what = "that nobody uses " if args.orphans else ""
        print(f"No server started by evalkit {what}was running" + (f" on port {args.port}." if args.port else "."))
    for note in scan_servers().notes:  # what it did not stop, and why
        print(note)
    return 0


def _cmd_env(args) -> int:
    from evalkit.envreport import env_report

    print(json.dumps(env_report(), indent=2))
    return 0


def _command_module(name: str):
    """``evalkit.<name>.cli`` for a package, else ``evalkit.<name>``; None if neither exists.

    Packages do not import their ``cli`` module, so importing evalkit does not import this one, and
    ``python -m evalkit.cli`` runs without runpy's warning about a module imported twice.
    """
    for candidate in (f"evalkit.{name}.cli", f"evalkit.{name}"):
        try:
            return importlib.import_module(candidate)
        except ModuleNotFoundError as exc:
            if exc.name not in (candidate, f"evalkit.{name}"):
                raise
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalkit", description="Evaluate an LLM bottom-up: the evaluation pyramid.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="start (or attach to) a vLLM server that outlives this command")
    p.add_argument("--model", default=None, help="preset name, model folder or hub id (default: settings)")
    p.add_argument("--base-url", default=None, help="attach to this OpenAI-compatible endpoint instead")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--max-model-len", type=int, default=None)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("status", help="list servers started by evalkit, whether they answer, and who uses them")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("stop", help="stop servers started by evalkit, for everyone using them")
    p.add_argument("--port", type=int, default=None, help="only the server on this port")
    p.add_argument("--orphans", action="store_true",
                   help="only servers nobody uses any more (a server started by an earlier evalkit whose owner "
                        "has ended; the servers of this version stop by themselves)")
    p.set_defaults(func=_cmd_stop)

    p = sub.add_parser("env", help="print versions, hardware and offline flags")
    p.set_defaults(func=_cmd_env)

    for name in [*(layer.module for layer in layers.LAYERS), *COMMAND_MODULES]:
        module = _command_module(name)
        register = getattr(module, "register_cli", None) if module else None
        if register:
            register(sub)
    return parser


# a full or read-only disk: what to do about it (any other OSError is a defect and keeps its traceback)
DISK_ERRORS = {
    errno.ENOSPC: "free some space, or point EVALKIT_RUNS_DIR at a disk with room.",
    errno.EDQUOT: "free some space within your quota, or point EVALKIT_RUNS_DIR elsewhere.",
    errno.EROFS: "point EVALKIT_RUNS_DIR (or --run-dir) at a folder on a writable disk.",
    errno.EACCES: "point EVALKIT_RUNS_DIR (or --run-dir) at a folder you may write to.",
}


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _sigterm)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EvalkitError as exc:
        print(f"evalkit {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"evalkit {args.command}: interrupted; results written so far are kept.", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(f"evalkit {args.command}: could not write{where}: {exc.strerror or exc}.\nFix: "
              + DISK_ERRORS[exc.errno] + " Results written before this are kept.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
