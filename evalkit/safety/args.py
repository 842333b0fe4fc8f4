"""What a safety run may be asked: sets, sample size and seed, grader, BBQ categories, output budget."""

from __future__ import annotations

from pydantic import Field

from evalkit.args import RunArgs
from evalkit.safety.config import DEFAULT_SETS


class SafetyArgs(RunArgs):
    """The arguments of a safety run.

    The defaults and limits of :func:`~evalkit.safety.check_safety`, ``evalkit safety``, the panel and the profiles'
    ``04_safety`` parameters.
    """

    sets: list[str] | tuple[str, ...] | str = Field(DEFAULT_SETS, description="the safety sets to run")
    sample: int = Field(20, ge=1, strict=True, description="prompts per set (BBQ: per category)")
    seed: int = Field(0, strict=True, description="seed of the samples (same seed, same prompts)")
    grader_url: str | None = Field(None, description="an OpenAI-compatible endpoint that grades refusals too")
    grader_model: str | None = Field(None, description="the grader's model (default: the first it serves)")
    bbq_categories: list[str] | None = Field(None, description="BBQ categories (None: all)")
    harmbench_categories: list[str] | None = Field(None, description="HarmBench semantic categories (None: all)")
    max_tokens: int = Field(64, ge=1, strict=True, description="output tokens per answer")
    concurrency: int | None = Field(None, ge=1, strict=True, description="promptfoo -j (None: promptfoo's 4)")
