"""Use-case workloads: the token shapes of chat, RAG, summarization and code generation, fitted to a model.

Each preset is a prompt/output token pair with what it stresses. A model whose context is smaller than a preset
gets the preset scaled down with the same prompt:output ratio; the scaling is said in words and recorded in the
run's parameters, never done silently. :func:`~evalkit.perf.run.run_workloads` runs one GuideLLM benchmark set
per preset and :func:`~evalkit.perf.run.workload_table` puts their throughput and latency percentiles side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalkit.errors import ConfigError, ContextLengthError

if TYPE_CHECKING:  # pandas loads when a function needs it: the command line starts quickly
    import pandas as pd

MIN_PROMPT_TOKENS = 16  # a scaled prompt shorter than this no longer resembles the use case


@dataclass(frozen=True)
class Workload:
    """A use case's request shape: prompt and output tokens, and which phase of inference it loads most."""

    name: str
    prompt_tokens: int
    output_tokens: int
    stresses: str


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("chat", 512, 256, "balanced: a conversation turn in, an answer out; latency per token (ITL) matters"),
    Workload("rag", 4096, 512, "prefill: a long retrieved context is read before the first token (TTFT grows)"),
    Workload("summarization", 1024, 256, "prefill: a document in, a short summary out"),
    Workload("codegen", 512, 512, "decode: long outputs, so inter-token latency and output throughput dominate"),
)}


@dataclass(frozen=True)
class FittedWorkload:
    """A workload as it will run on one model: its token counts and, if it was scaled, why and how."""

    workload: Workload
    prompt_tokens: int
    output_tokens: int
    scale: float  # 1.0 when it fits as it is
    note: str

    def record(self) -> dict:
        """What the run's parameters keep about the workload."""
        return {"workload": self.workload.name, "workload_scale": round(self.scale, 4), "workload_note": self.note}


def get_workload(name: str) -> Workload:
    if name not in WORKLOADS:
        raise ConfigError(f"Unknown workload {name!r}.", fix=f"use one of: {', '.join(WORKLOADS)}.")
    return WORKLOADS[name]


def fit_workload(name: str, max_model_len: int | None, model: str = "the model",
                 budget: int | None = None) -> FittedWorkload:
    """The workload's token counts for a context of ``max_model_len`` tokens (None: no limit known).

    ``budget`` caps prompt + output tokens per request below the context (a slow machine's short run): the
    workload is scaled down with the same prompt:output ratio, and the note says which limit did it.

    Raises:
        ConfigError: an unknown workload name (the names are listed).
        ContextLengthError: the context is so small that the scaled prompt would be under 16 tokens.
    """
    w = get_workload(name)
    need = w.prompt_tokens + w.output_tokens
    limit = min(x for x in (max_model_len, budget) if x) if (max_model_len or budget) else None
    if not limit or need <= limit:
        return FittedWorkload(w, w.prompt_tokens, w.output_tokens, 1.0,
                              f"{w.name}: {w.prompt_tokens} prompt + {w.output_tokens} output tokens, as specified")
    scale = limit / need
    prompt, output = math.floor(w.prompt_tokens * scale), max(1, math.floor(w.output_tokens * scale))
    what = (f"the {max_model_len}-token context of {model}" if limit == max_model_len
            else f"the budget of {budget} tokens per request (workload_tokens)")
    if prompt < MIN_PROMPT_TOKENS:
        raise ContextLengthError(
            f"The {w.name} workload ({w.prompt_tokens} prompt + {w.output_tokens} output tokens) cannot be scaled to "
            f"{what}: the prompt would be {prompt} tokens (under {MIN_PROMPT_TOKENS}).",
            fix="serve a model with a longer context, raise workload_tokens, or give prompt_tokens and "
            "output_tokens yourself.")
    note = (f"{w.name}: {w.prompt_tokens} + {w.output_tokens} tokens do not fit {what}; scaled by {scale:.3f} to "
            f"{prompt} prompt + {output} output tokens (same ratio)")
    return FittedWorkload(w, prompt, output, scale, note)


def workload_presets(max_model_len: int | None = None, model: str = "the model",
                    budget: int | None = None) -> pd.DataFrame:
    """The presets, what each stresses, and (with a context) the token counts they run with."""
    import pandas as pd

    rows = []
    for name, w in WORKLOADS.items():
        row = {"workload": name, "prompt_tokens": w.prompt_tokens, "output_tokens": w.output_tokens,
               "stresses": w.stresses}
        if max_model_len or budget:
            fitted = fit_workload(name, max_model_len, model, budget)
            row |= {"runs_with": f"{fitted.prompt_tokens}/{fitted.output_tokens}", "scale": round(fitted.scale, 3)}
        rows.append(row)
    return pd.DataFrame(rows)
