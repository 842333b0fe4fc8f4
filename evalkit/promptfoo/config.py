"""promptfoo configs: a provider entry for a served model, writing a config, and checking one before a run."""

from __future__ import annotations

from pathlib import Path

import yaml

from evalkit.errors import TaskFileError
from evalkit.result import ToolRun

# libyaml's parser and emitter where PyYAML has them (the same output, several times faster)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


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
    from evalkit.serve.client import api_key_of

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
