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

from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "args": ("FormatArgs",),
    "config": ("MODES", "assertions", "compact_grammar", "format_config"),
    "items": ("EXTRACTION_PROMPT", "IFEVAL_SCHEMA", "SETS", "FormatItem", "format_dir", "items_table", "load_items",
        "read_schema", "shape", "with_schema"),
    "result": ("METRICS", "FormatResult", "rows_from_output", "side_by_side"),
    "run": ("check_format", "check_under_load"),
})
