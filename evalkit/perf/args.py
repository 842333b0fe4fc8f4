"""What a performance run may be asked: profiles, endpoints, token counts and rates, checked before GuideLLM starts.

Token counts are checked against the model's context; rates, counts and lengths must be positive. Every check
raises a :class:`~evalkit.errors.ConfigError` (or :class:`~evalkit.errors.ContextLengthError`) with the fix.
"""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from evalkit.args import RunArgs
from evalkit.errors import ConfigError, ContextLengthError
from evalkit.perf.workloads import fit_workload

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


class PerfArgs(RunArgs):
    """The arguments of a GuideLLM run.

    The defaults and limits of :func:`~evalkit.perf.sweep`, ``evalkit perf``, the performance panel and the
    profiles' ``01_performance`` parameters.
    """

    profile: Literal["synchronous", "concurrent", "constant", "poisson", "throughput", "sweep", "goodput",
                     "knee"] = Field("sweep", description="load profile")
    rates: list[int | float] | float | None = Field(None, description="stream counts (concurrent) or requests/s")
    prompt_tokens: int = Field(64, gt=0, description="synthetic prompt length in tokens")
    output_tokens: int = Field(32, gt=0, description="tokens generated per request")
    prompt_tokens_stdev: float = Field(0, ge=0, allow_inf_nan=False, description="spread of prompt lengths")
    output_tokens_stdev: float = Field(0, ge=0, allow_inf_nan=False, description="spread of output lengths")
    data: str | Path | None = Field(None, description="prompts file (.txt, .csv, .jsonl) instead of synthetic text")
    max_seconds: float | None = Field(5.0, gt=0, allow_inf_nan=False, description="length of each benchmark")
    max_requests: int | None = Field(None, gt=0, description="stop each benchmark after this many requests")
    endpoint: Literal["completions", "chat"] = Field("completions", description="the API GuideLLM calls")
    sweep_size: int = Field(4, gt=0, description="benchmarks in a sweep")
    max_concurrency: int | None = Field(None, gt=0, description="cap on requests in flight (sweep, throughput)")
    workers: int | None = Field(None, gt=0, description="GuideLLM client processes")
    request_samples: int | None = Field(0, ge=0, description="requests kept with their text in the report")
    html: bool = Field(True, description="also write GuideLLM's HTML report")
    workload: Literal["chat", "rag", "summarization", "codegen"] | None = Field(
        None, description="a use-case preset that sets prompt and output tokens (fitted to the model's context)")
    workload_tokens: int | None = Field(
        None, gt=0, description="cap a workload's prompt + output tokens per request (scaled down, same ratio)")
    stop_over_saturation: bool = Field(
        False, description="let GuideLLM end a benchmark early when the server is over-saturated")
    attainment: float = Field(
        0.99, gt=0, lt=1, allow_inf_nan=False, description="goodput: the fraction of a load's requests that must "
        "keep every SLO limit for the load to pass (0.99: as the p99 limits)")
    warmup: int | None = Field(
        None, ge=0, description="finished requests at the start of each benchmark left out of its figures "
        "(GuideLLM's warm-up phase); None: evalkit's choice (warmup_phase: the first 30 % of a time-limited "
        "load's seconds, the first wave of a request-limited one), 0: none")

    @model_validator(mode="after")
    def _consistent(self) -> PerfArgs:
        rates = self.rates
        if rates is not None and not isinstance(rates, list):
            rates = [rates]
        if self.profile in ("concurrent", "constant", "poisson", "knee"):
            streams = self.profile in ("concurrent", "knee")
            unit = "stream counts" if streams else "request rates (requests/s)"
            if not rates:
                raise ConfigError(f"The {self.profile} profile needs rates: a list of {unit}.",
                                  fix=f"pass rates=[1, 2, 4] ({unit}), or use profile='sweep'.")
            for r in rates:
                _positive("rates (stream count)" if streams else "rates", r, int if streams else float)
            rates = [int(r) if streams else float(r) for r in rates]
            if self.profile == "knee" and (len(rates) < 5 or rates != sorted(set(rates))):
                raise ConfigError(f"GuideLLM's knee profile fits two lines to at least five stream counts in rising "
                                  f"order; got {rates}.", fix="pass rates=[1, 2, 4, 8, 16] (five or more, rising).")
        elif rates:
            raise ConfigError(f"The {self.profile} profile takes no rates (got {rates}).",
                              fix="use profile='concurrent' (stream counts) or 'constant'/'poisson' (requests/s), or "
                              "drop rates; a sweep picks its own rates (sweep_size).")
        if self.warmup and self.max_requests is not None and self.warmup >= self.max_requests:
            raise ConfigError(f"warmup={self.warmup} would leave none of the {self.max_requests} requests of a "
                              "benchmark to measure.", fix=f"use warmup below {self.max_requests}, or more requests.")
        if self.max_seconds is None and self.max_requests is None:
            raise ConfigError("Nothing would stop each benchmark: both max_seconds and max_requests are None.",
                              fix="give max_seconds (e.g. 5) and/or max_requests (e.g. 50).")
        if self.profile == "sweep" and self.sweep_size < 2:
            raise ConfigError(f"sweep_size={self.sweep_size} is too small.",
                              fix="a sweep needs at least 2 points (synchronous and throughput).")
        if self.data is not None:
            data = Path(self.data).expanduser()
            if not data.is_file():
                raise ConfigError(f"Prompts file {data} does not exist.",
                                  fix="give the path of a .txt, .csv or .jsonl file.")
            if data.suffix.lower() not in DATA_KINDS:
                raise ConfigError(f"Prompts file {data.name} has an unknown type.",
                                  fix=f"use one of {', '.join(DATA_KINDS)} (one prompt per line or a 'prompt' "
                                  "column).")
            self.data = str(data.resolve())
        self.rates = rates
        return self

    def check_context(self, max_model_len: int | None, model: str) -> None:
        """Raise :class:`ContextLengthError` when the longest request (mean + 3 stdev) exceeds the context."""
        out_max = self.output_tokens + STDEV_SPAN * self.output_tokens_stdev
        if self.data is not None:
            need, what = out_max, f"{out_max:g} output tokens"
        else:
            in_max = self.prompt_tokens + STDEV_SPAN * self.prompt_tokens_stdev
            need, what = in_max + out_max, f"{in_max:g} prompt + {out_max:g} output tokens"
        if max_model_len and need > max_model_len:
            spread = " (mean + 3 standard deviations)" if self.prompt_tokens_stdev or self.output_tokens_stdev else ""
            raise ContextLengthError(
                f"{what}{spread} = {need:g} tokens exceed the context of {model}: max_model_len = {max_model_len} "
                "tokens.",
                fix=f"lower prompt_tokens/output_tokens (or their stdev) so they sum to at most {max_model_len}, or "
                "serve the model with a longer --max-model-len if it supports one.",
            )


def check_params(p: dict, max_model_len: int | None, model: str) -> dict:
    """Validate run parameters (before anything starts) and return them normalized, as a dict.

    A ``workload`` sets prompt and output tokens, fitted to ``max_model_len``; the fit is kept in the result
    (``workload``, ``workload_scale``, ``workload_note``).
    """
    fitted = fit_workload(p["workload"], max_model_len, model, p.get("workload_tokens")) if p.get("workload") else None
    if fitted is not None:
        p = {**p, "prompt_tokens": fitted.prompt_tokens, "output_tokens": fitted.output_tokens}
    args = PerfArgs.check(**p)
    args.check_context(max_model_len, model)
    return {**args.model_dump(), **(fitted.record() if fitted is not None else {})}


PROFILES = typing.get_args(PerfArgs.model_fields["profile"].annotation)
