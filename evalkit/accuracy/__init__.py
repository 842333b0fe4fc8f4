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

from evalkit.accuracy.args import APIS, DEFAULT_TASKS, AccuracyArgs
from evalkit.accuracy.lmeval import LMEVAL_DEFAULTS, LOG_FILE, lm_eval_command, parse_results, read_samples
from evalkit.accuracy.prepare import PreparedTask, TokenCounter, prepare_tasks, preview
from evalkit.accuracy.reference import llama2_reference, mmlu_pro_categories, mmlu_pro_full
from evalkit.accuracy.result import (
    BANDS,
    METRICS,
    AccuracyResult,
    accuracy_runs,
    band_of,
    latest_by_model,
    side_by_side,
)
from evalkit.accuracy.run import evaluate
from evalkit.accuracy.tables import read_table, task_from_table
from evalkit.accuracy.taskfiles import list_tasks, resolve_tasks, task_config, task_index

__all__ = [
    "APIS",
    "BANDS",
    "band_of",
    "AccuracyArgs",
    "DEFAULT_TASKS",
    "LMEVAL_DEFAULTS",
    "LOG_FILE",
    "METRICS",
    "AccuracyResult",
    "PreparedTask",
    "TokenCounter",
    "accuracy_runs",
    "side_by_side",
    "evaluate",
    "latest_by_model",
    "list_tasks",
    "llama2_reference",
    "lm_eval_command",
    "mmlu_pro_categories",
    "mmlu_pro_full",
    "parse_results",
    "prepare_tasks",
    "preview",
    "read_samples",
    "read_table",
    "resolve_tasks",
    "task_config",
    "task_from_table",
    "task_index",
]
