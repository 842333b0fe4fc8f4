"""What a performance run may be asked: profiles, endpoints, token counts and rates, checked before GuideLLM starts.

Token counts are checked against the model's context; rates, counts and lengths must be positive. Every check
raises a :class:`~evalkit.errors.ConfigError` (or :class:`~evalkit.errors.ContextLengthError`) with the fix.
"""

from __future__ import annotations

import math
from pathlib import Path

from evalkit.errors import (
    ConfigError,
    ContextLengthError,
)

PROFILES = ("synchronous", "concurrent", "constant", "poisson", "throughput", "sweep")
ENDPOINTS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
DATA_KINDS = {".txt": "text_file", ".csv": "csv_file", ".json": "json_file", ".jsonl": "json_file"}
DEFAULT_MAX_CONCURRENCY = 512  # GuideLLM's own default for sweep and throughput
STDEV_SPAN = 3  # synthetic token counts are clipped to mean +- 3 standard deviations


def _positive(name: str, value, kind=float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if ok and kind is int:
        ok = float(value).is_integer()
    if not ok:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name}={value!r} must be {what} > 0.", fix=f"give {name} {what} greater than zero.")


def _check_params(p: dict, max_model_len: int | None, model: str) -> dict:
    """Validate sweep parameters (before anything starts) and return them normalized."""
    profile = p["profile"]
    if profile not in PROFILES:
        raise ConfigError(f"Unknown profile {profile!r}.", fix=f"use one of: {', '.join(PROFILES)}.")
    if p["endpoint"] not in ENDPOINTS:
        raise ConfigError(f"Unknown endpoint {p['endpoint']!r}.", fix=f"use one of: {', '.join(ENDPOINTS)}.")
    rates = p["rates"]
    if rates is not None and not isinstance(rates, (list, tuple)):
        rates = [rates]
    if profile in ("concurrent", "constant", "poisson"):
        unit = "stream counts" if profile == "concurrent" else "request rates (requests/s)"
        if not rates:
            raise ConfigError(f"The {profile} profile needs rates: a list of {unit}.",
                              fix=f"pass rates=[1, 2, 4] ({unit}), or use profile='sweep'.")
        for r in rates:
            _positive("rates" if profile != "concurrent" else "rates (stream count)", r,
                      int if profile == "concurrent" else float)
        rates = [int(r) if profile == "concurrent" else float(r) for r in rates]
    elif rates:
        raise ConfigError(f"The {profile} profile takes no rates (got {rates}).",
                          fix="use profile='concurrent' (stream counts) or 'constant'/'poisson' (requests/s), or "
                          "drop rates; a sweep picks its own rates (sweep_size).")
    if p["max_seconds"] is None and p["max_requests"] is None:
        raise ConfigError("Nothing would stop each benchmark: both max_seconds and max_requests are None.",
                          fix="give max_seconds (e.g. 5) and/or max_requests (e.g. 50).")
    if p["max_seconds"] is not None:
        _positive("max_seconds", p["max_seconds"])
    if p["max_requests"] is not None:
        _positive("max_requests", p["max_requests"], int)
    _positive("sweep_size", p["sweep_size"], int)
    if profile == "sweep" and p["sweep_size"] < 2:
        raise ConfigError(f"sweep_size={p['sweep_size']} is too small.",
                          fix="a sweep needs at least 2 points (synchronous and throughput).")
    if p["max_concurrency"] is not None:
        _positive("max_concurrency", p["max_concurrency"], int)
    if p["workers"] is not None:
        _positive("workers", p["workers"], int)
    _positive("output_tokens", p["output_tokens"], int)
    for name in ("prompt_tokens_stdev", "output_tokens_stdev"):
        if not isinstance(p[name], (int, float)) or p[name] < 0:
            raise ConfigError(f"{name}={p[name]!r} must be >= 0.", fix=f"give {name}=0 for fixed token counts.")
    out_max = p["output_tokens"] + STDEV_SPAN * p["output_tokens_stdev"]
    if p["data"] is not None:
        data = Path(p["data"]).expanduser()
        if not data.is_file():
            raise ConfigError(f"Prompts file {data} does not exist.",
                              fix="give the path of a .txt, .csv or .jsonl file.")
        if data.suffix.lower() not in DATA_KINDS:
            raise ConfigError(f"Prompts file {data.name} has an unknown type.",
                              fix=f"use one of {', '.join(DATA_KINDS)} (one prompt per line or a 'prompt' column).")
        need, what = out_max, f"{out_max} output tokens"
    else:
        _positive("prompt_tokens", p["prompt_tokens"], int)
        in_max = p["prompt_tokens"] + STDEV_SPAN * p["prompt_tokens_stdev"]
        need, what = in_max + out_max, f"{in_max} prompt + {out_max} output tokens"
    if max_model_len and need > max_model_len:
        spread = " (mean + 3 standard deviations)" if p["prompt_tokens_stdev"] or p["output_tokens_stdev"] else ""
        raise ContextLengthError(
            f"{what}{spread} = {need} tokens exceed the context of {model}: max_model_len = {max_model_len} tokens.",
            fix=f"lower prompt_tokens/output_tokens (or their stdev) so they sum to at most {max_model_len}, or "
            "serve the model with a longer --max-model-len if it supports one.",
        )
    return {**p, "rates": rates, "data": str(Path(p["data"]).expanduser().resolve()) if p["data"] else None}
