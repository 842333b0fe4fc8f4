"""What an accuracy run may be asked: tasks, question limits, few-shot, request settings, endpoint."""

from __future__ import annotations

import typing
from typing import Literal

from pydantic import Field, model_validator

from evalkit.args import RunArgs
from evalkit.errors import ConfigError

DEFAULT_TASKS = ("mmlu_pro_mc",)


class AccuracyArgs(RunArgs):
    """The arguments of an lm-eval run.

    The defaults and limits of :func:`~evalkit.accuracy.evaluate`, ``evalkit accuracy``, the panel and the profiles'
    ``03_accuracy`` parameters.
    """

    tasks: list[str] | tuple[str, ...] | str = Field(DEFAULT_TASKS, description="task or group names")
    limit: int | dict[str, int | None] | None = Field(
        None, description="the first N questions of each task or category (None: all; a dict: per task)")
    num_fewshot: int = Field(0, ge=0, strict=True, description="solved examples before each question")
    concurrency: int | None = Field(None, ge=1, strict=True,
                                    description="requests in flight (None: the lmeval_concurrency setting)")
    batch_size: int | None = Field(None, ge=1, strict=True,
                                   description="prompts per completions request (None: the lmeval_batch_size setting)")
    max_gen_toks: int | None = Field(None, ge=1, strict=True, description="generation budget of generative tasks")
    api: Literal["auto", "completions", "chat"] = Field("auto", description="which endpoint lm-eval calls")
    mmlu_pro: Literal["subset", "full"] = Field("subset", description="MMLU-Pro: 20 per category, or the full split")
    max_length: int | None = Field(None, ge=2, strict=True, description="the context lm-eval assumes, in tokens")
    use_cache: bool = Field(True, description="reuse answers lm-eval cached for the same requests")

    @model_validator(mode="after")
    def _consistent(self) -> AccuracyArgs:
        names = [self.tasks] if isinstance(self.tasks, str) else list(self.tasks)
        if not names or not all(isinstance(t, str) and t for t in names):
            raise ConfigError(f"tasks={self.tasks!r}: give at least one task name.", fix="e.g. tasks=['mmlu_pro_mc'].")
        limits = self.limit.values() if isinstance(self.limit, dict) else [self.limit]
        for value in limits:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"limit={value!r} is not allowed: it must be a whole number >= 1.",
                                  fix="use None for all questions, or a positive number per task (category).")
        if isinstance(self.limit, dict) and set(self.limit) - set(names):
            extra = ", ".join(sorted(set(self.limit) - set(names)))
            raise ConfigError(f"limit names {extra}, which is not among tasks={names}.",
                              fix="use the same names in limit as in tasks.")
        self.tasks = names
        return self


APIS = typing.get_args(AccuracyArgs.model_fields["api"].annotation)
