"""Layer 3, accuracy: lm-evaluation-harness against the served model, by task, by subject and on your own data.

:func:`evaluate` runs ``lm-eval run`` (pinned) as a subprocess against ``srv.base_url``, offline: multiple-choice
tasks through ``local-completions`` (each option scored by its loglikelihood, which needs a completions endpoint
with echo + logprobs), generative tasks through ``local-chat-completions`` with the model's chat template. Tasks
come from ``data/tasks`` (MMLU-Pro by category, the company FAQ) and any folder given as ``include_path``.
lm-eval's own files stay in the run folder: ``lmeval/<endpoint>/**/results_*.json`` and ``samples_*.jsonl``, its
request cache (``cache/``: a rerun with the same settings reuses the answers), ``lm-eval.log``.

The package is split by concern: :mod:`~evalkit.accuracy.taskfiles` (task YAMLs: find, read, write, resolve),
:mod:`~evalkit.accuracy.render` (prompts as lm-eval renders them), :mod:`~evalkit.accuracy.prepare` (the tasks of
one run in ``<run_dir>/tasks``: context filter, few-shot, limit), :mod:`~evalkit.accuracy.tables` (a learner's
table as a task), :mod:`~evalkit.accuracy.reference` (MMLU-Pro helpers), :mod:`~evalkit.accuracy.lmeval` (the
adapter: the only module that knows lm-eval's command line and files), :mod:`~evalkit.accuracy.result`
(:class:`AccuracyResult`), :mod:`~evalkit.accuracy.run` (:func:`evaluate`) and :mod:`~evalkit.accuracy.cli`.
"""

from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "args": ("AccuracyArgs",),
    "lmeval": ("LMEVAL_DEFAULTS", "read_samples"),
    "prepare": ("preview",),
    "reference": ("llama2_reference",),
    "result": ("METRICS", "AccuracyResult", "latest_by_model", "side_by_side"),
    "run": ("evaluate",),
    "tables": ("task_from_table",),
    "taskfiles": ("list_tasks", "task_index"),
})
