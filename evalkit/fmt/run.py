"""Running the format layer: :func:`check_format` (one promptfoo run), :func:`check_under_load` (several)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from evalkit.errors import ConfigError, ContextLengthError, ToolError
from evalkit.fmt.args import FormatArgs
from evalkit.fmt.config import MODES, Structured, Whitespace, format_config, modes_of, structured_request
from evalkit.fmt.items import SETS, FormatItem, load_items, read_schema, validate_schema
from evalkit.fmt.result import FormatResult, rows_from_output
from evalkit.promptfoo import check_config_file, eval_stats, run_promptfoo, write_config
from evalkit.runs import new_run_dir
from evalkit.settings import get_settings

D = FormatArgs.defaults()  # the run arguments' defaults, from their one source


def check_format(
    srv,
    *,
    sets=D.sets,
    structured: Structured = D.structured,
    max_tokens: int | None = D.max_tokens,
    limit: int | None = D.limit,
    concurrency: int | None = D.concurrency,
    whitespace: Whitespace = D.whitespace,
    items: list[FormatItem] | None = None,
    config: str | Path | None = None,
    run_dir: str | Path | None = None,
    echo: bool = True,
    timeout_s: float | None = None,
) -> FormatResult:
    """Run the format layer with promptfoo against ``srv`` and save ``<run_dir>/result.json``.

    Args:
        srv: the model server (:class:`evalkit.serve.Server`).
        sets: some of "extraction" (data/format, with schemas) and "ifeval" (IFEval's JSON prompts, parse only).
        structured: False (prompt only), True (with structured outputs) or "both" ("off"/"on" work too).
        max_tokens: output tokens per answer; also the safety net that ends a runaway output (default: the
            ``format_max_tokens`` setting, 192).
        limit: the first ``limit`` items of each set (None: all).
        concurrency: promptfoo's parallel requests, ``-j`` (default: the ``promptfoo_concurrency`` setting, 32).
        whitespace: "compact" (evalkit sends a grammar without free whitespace) or "any" (plain
            ``response_format: json_schema``; on a default vLLM server a small model may emit whitespace until
            ``max_tokens``).
        items: run these items instead of ``sets``/``limit`` (see :func:`load_items`, :func:`with_schema`).
        config: run a promptfooconfig.yaml of your own instead; its ``is-json`` checks (or assertions with
            ``metric: json_parse`` / ``metric: schema``) give the rates, its test ``metadata`` the set/item.
        run_dir: folder for the config, promptfoo's files and result.json (default: a new one under runs/).
        echo: stream promptfoo's output.
        timeout_s: stop promptfoo after this long.

    Raises:
        ConfigError: an unknown set or structured/whitespace value, a bad limit or concurrency.
        ContextLengthError: ``max_tokens`` does not fit the model's context, or prompts were refused as too long.
        TaskFileError: an invalid JSON Schema (file and jsonschema message named), a malformed data or config file.
        ServerDiedError, ToolError, ToolMissingError: from the promptfoo run.
    """
    from evalkit.envreport import env_report, node_version, promptfoo_version

    FormatArgs.check(sets=sets, structured=structured, max_tokens=max_tokens, limit=limit, concurrency=concurrency,
                     whitespace=whitespace)
    max_tokens = get_settings().format_max_tokens if max_tokens is None else max_tokens
    if srv.max_model_len and max_tokens >= srv.max_model_len:
        raise ContextLengthError(f"max_tokens={max_tokens} leaves no room for the prompt in {srv.model}'s context of "
                                 f"{srv.max_model_len} tokens.", fix=f"use max_tokens well below {srv.max_model_len}.")
    concurrency = concurrency or get_settings().promptfoo_concurrency
    modes = modes_of(structured)
    if whitespace not in ("compact", "any"):
        structured_request({}, whitespace)  # raises the ConfigError
    labels: set[str] = set()
    if config is not None:
        config_path = Path(config).resolve()
        labels, contents = _check_own_config(config_path)
        items = []
        chosen_sets = ["custom"]
    else:
        items = list(items) if items is not None else load_items(sets, limit=limit)
        if not items:
            raise ConfigError("No items to check.", fix="check `sets`, `limit` and `schema`.")
        for item in items:
            if item.schema is not None:
                validate_schema(item.schema, f"{item.set} item {item.item} ({item.schema_file})")
        chosen_sets = sorted({i.set for i in items}, key=lambda s: SETS.index(s) if s in SETS else len(SETS))
    run_dir = Path(run_dir) if run_dir else new_run_dir("format")
    run_dir.mkdir(parents=True, exist_ok=True)
    if config is None:
        contents = format_config(srv, items, structured=structured, max_tokens=max_tokens, whitespace=whitespace)
        config_path = write_config(contents, run_dir / "promptfooconfig.yaml")
    run = run_promptfoo(config_path, run_dir=run_dir, max_concurrency=concurrency, srv=srv, echo=echo,
                        timeout_s=timeout_s, config=contents)
    rows = rows_from_output(run.output_path, max_tokens=max_tokens if config is None else None, items=items,
                            structured_labels=labels)
    _raise_request_errors(rows, run_dir, max_tokens)
    result = FormatResult(
        run_dir=str(run_dir), model=srv.model, base_url=srv.base_url, sets=chosen_sets, rows=rows,
        params={"sets": chosen_sets, "structured": [MODES[m] for m in modes] if config is None else None,
                "max_tokens": max_tokens if config is None else None, "limit": limit, "concurrency": concurrency,
                "whitespace": whitespace if config is None else None,
                "config": str(config_path) if config is not None else None, "items": len(items) or None},
        env=env_report(), tool_versions={"promptfoo": promptfoo_version(), "node": node_version()},
        promptfoo={"returncode": run.returncode, "duration_s": round(run.duration_s, 2), "command": run.command,
                   "config": config_path.name,
                   "output": run.output_path.name, **eval_stats(run.output_path)},
    )
    result.save()
    return result


def _check_own_config(path: Path) -> tuple[set[str], dict]:
    """Validate the JSON Schemas in a learner's config.

    Returns the labels of the providers that constrain output, and the config's contents (read once: promptfoo's
    run takes them as they are).
    """
    data = check_config_file(path)
    for i, test in enumerate(data.get("tests") or [], start=1):
        if not isinstance(test, dict):
            continue
        for check in test.get("assert") or []:
            value = check.get("value") if isinstance(check, dict) else None
            if value is not None and check.get("type") in ("is-json", "contains-json"):
                if isinstance(value, str) and value.startswith("file://"):
                    value = read_schema(path.parent / value[len("file://"):])
                elif isinstance(value, str):
                    value = yaml.safe_load(value)
                validate_schema(value, f"{path}, test {i} ({test.get('description') or 'no description'})")
    labels = set()
    for entry in data.get("providers") or []:
        if isinstance(entry, dict):
            conf = entry.get("config") or {}
            passthrough = conf.get("passthrough") or {}
            if conf.get("response_format") or passthrough.get("response_format") or \
                    passthrough.get("structured_outputs"):
                labels.add(entry.get("label") or entry.get("id"))
    return labels, data


def _raise_request_errors(rows: list[dict], run_dir: Path, max_tokens: int) -> None:
    """Requests refused as too long raise ContextLengthError; a run where every request failed raises ToolError."""
    errors = [r["error"] for r in rows if r["error"]]
    if not errors:
        return
    too_long = [e for e in errors if re.search(r"context length|maximum context|too long|max_model_len", e, re.I)]
    if too_long:
        raise ContextLengthError(f"{len(too_long)} of {len(rows)} requests were refused as too long: "
                                 f"{too_long[0][:300]}", fix=f"lower max_tokens (now {max_tokens}) or use --limit / "
                                 "shorter prompts.", kept=run_dir)
    if len(errors) == len(rows):
        raise ToolError(f"Every request failed; the first: {errors[0][:400]}",
                        fix="check the server (`evalkit status`) and the request fields in promptfooconfig.yaml.",
                        kept=run_dir)


def check_under_load(srv, *, concurrencies=None, run_dir: str | Path | None = None,
                     **kwargs) -> dict[str, FormatResult]:
    """The same check at several promptfoo concurrencies (one subfolder each), to see if compliance degrades.

    Args:
        srv: the model server.
        concurrencies: promptfoo ``-j`` values (default: 1 and the ``promptfoo_concurrency`` setting).
        run_dir: the parent folder of the runs (default: a new one under runs/).
        **kwargs: passed to :func:`check_format`.

    Returns:
        ``{"c1": result, "c16": result, ...}``; pass it to :func:`side_by_side`.
    """
    concurrencies = concurrencies or (1, get_settings().promptfoo_concurrency)
    root = Path(run_dir) if run_dir else new_run_dir("format-load")
    runs = {}
    for c in concurrencies:
        print(f"[evalkit] format check with {c} request(s) in flight (promptfoo -j {c})", flush=True)
        runs[f"c{c}"] = check_format(srv, concurrency=c, run_dir=root / f"c{c}", **kwargs)
    return runs
