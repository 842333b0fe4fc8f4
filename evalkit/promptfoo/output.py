"""What promptfoo wrote: its ``-o out.json`` as one row per test, its database's finished rows, the network audit."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads when a function needs it: the command line starts quickly
    import pandas as pd

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


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
