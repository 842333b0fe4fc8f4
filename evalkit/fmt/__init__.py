"""Layer 2, format: does the output parse as JSON, and does it match the schema, with and without structured outputs.

The layer loads the JSON tasks (the extraction set in data/format, each item with a JSON Schema, and the IFEval
prompts that ask for JSON, picked from data/ifeval at run time), checks every schema before anything runs, and
writes ONE promptfooconfig.yaml in which each item appears once per mode, "plain" and "structured" (the same
prompt with a vLLM structured-outputs constraint). :func:`check_format` runs it with
:func:`evalkit.promptfoo.run_promptfoo` and returns a :class:`FormatResult`.

The package is split by concern: :mod:`~evalkit.fmt.items` (the data and its schemas), :mod:`~evalkit.fmt.config`
(the promptfoo config and the structured-outputs request), :mod:`~evalkit.fmt.result` (:class:`FormatResult`),
:mod:`~evalkit.fmt.run` (:func:`check_format`, :func:`check_under_load`) and :mod:`~evalkit.fmt.cli`. promptfoo
itself is one adapter shared with the safety layer (:mod:`evalkit.promptfoo`).
"""

from evalkit.fmt.args import FormatArgs
from evalkit.fmt.config import (
    IFEVAL_STRIP_FENCE,
    MODES,
    assertions,
    compact_grammar,
    format_config,
    modes_of,
    structured_request,
)
from evalkit.fmt.items import (
    EXTRACTION_PROMPT,
    IFEVAL_JSON,
    IFEVAL_SCHEMA,
    SETS,
    FormatItem,
    format_dir,
    items_table,
    load_extraction,
    load_ifeval,
    load_items,
    read_schema,
    shape,
    validate_schema,
    with_schema,
)
from evalkit.fmt.result import METRICS, FormatResult, rows_from_output, side_by_side
from evalkit.fmt.run import check_format, check_under_load

__all__ = [
    "FormatArgs",
    "EXTRACTION_PROMPT",
    "IFEVAL_JSON",
    "IFEVAL_SCHEMA",
    "IFEVAL_STRIP_FENCE",
    "METRICS",
    "MODES",
    "SETS",
    "FormatItem",
    "FormatResult",
    "assertions",
    "check_format",
    "check_under_load",
    "compact_grammar",
    "format_config",
    "format_dir",
    "items_table",
    "load_extraction",
    "load_ifeval",
    "load_items",
    "modes_of",
    "read_schema",
    "rows_from_output",
    "shape",
    "side_by_side",
    "structured_request",
    "validate_schema",
    "with_schema",
]
