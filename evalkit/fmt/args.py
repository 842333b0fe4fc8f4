"""What a format run may be asked: sets, modes, output budget, item limit and promptfoo concurrency."""

from __future__ import annotations

from pydantic import Field

from evalkit.args import RunArgs
from evalkit.fmt.items import SETS


class FormatArgs(RunArgs):
    """The arguments of a format run.

    The defaults and limits of :func:`~evalkit.fmt.check_format`, ``evalkit format``, the panel and the profiles'
    ``02_format`` parameters.

    ``structured`` and ``whitespace`` are checked by :func:`~evalkit.fmt.config.modes_of` and
    :func:`~evalkit.fmt.config.structured_request`, which explain the choices.
    """

    sets: list[str] | tuple[str, ...] | str = Field(SETS, description="extraction and/or ifeval")
    structured: bool | str = Field("both", description="off, on or both: with vLLM structured outputs or not")
    max_tokens: int | None = Field(None, ge=1, strict=True,
                                   description="output tokens per answer (None: the format_max_tokens setting)")
    limit: int | None = Field(None, ge=1, strict=True, description="the first N items of each set (None: all)")
    concurrency: int | None = Field(None, ge=1, strict=True,
                                    description="promptfoo -j (None: the promptfoo_concurrency setting)")
    whitespace: str = Field("compact", description="compact (evalkit's grammar) or any (the server's)")
