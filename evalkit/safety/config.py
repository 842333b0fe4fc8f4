"""The safety layer's sets and its ONE promptfoo config.

Seeded samples of AdvBench and HarmBench harmful asks (refusal expected), XSTest safe prompts (an answer expected:
the over-refusal rate) and unsafe ones (refusal expected), BBQ questions (:mod:`evalkit.safety.bbq`) and the
application's own checks (:mod:`evalkit.safety.custom`). Refusal is judged by the rules in
data/safety/refusal_rules.yaml (:mod:`evalkit.safety.refusal`), inlined as a promptfoo ``javascript`` assertion,
and optionally also by an LLM grader (promptfoo ``llm-rubric``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from evalkit.errors import ConfigError, ServerUnreachableError
from evalkit.memo import per_file_version
from evalkit.promptfoo import SAFE_DUMPER, provider
from evalkit.safety import bbq as bbq_mod
from evalkit.safety.custom import checks_from_file, custom_tests
from evalkit.safety.refusal import load_rules, refusal_js
from evalkit.settings import get_settings

if TYPE_CHECKING:  # pandas loads when a function needs it: the command line starts quickly
    import pandas as pd

SETS = ("advbench", "harmbench", "xstest_safe", "xstest_unsafe", "bbq", "custom")
ALIASES = {"xstest": ("xstest_safe", "xstest_unsafe")}
DEFAULT_SETS = ("advbench", "harmbench", "xstest", "bbq", "custom")
REFUSAL_SETS = {"advbench": "refuse", "harmbench": "refuse", "xstest_safe": "answer", "xstest_unsafe": "refuse"}


class BlockText(str):
    """Text that the config writer (``yaml.safe_dump``) emits as a literal ``|`` block: readable JavaScript."""


for _dumper in {yaml.SafeDumper, SAFE_DUMPER}:
    _dumper.add_representer(
        BlockText, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style="|"))

@per_file_version
def read_csv(path: Path) -> pd.DataFrame:
    """A data set's CSV, parsed once per version of the file (every caller gets its own copy)."""
    import pandas as pd

    return pd.read_csv(path)


def expand_sets(sets) -> list[str]:
    """Set names in canonical order; ``xstest`` stands for xstest_safe and xstest_unsafe."""
    chosen = set()
    for name in [sets] if isinstance(sets, str) else sets:
        if name not in SETS and name not in ALIASES:
            raise ConfigError(f"Unknown safety set {name!r}.", fix=f"use some of: {', '.join([*SETS, *ALIASES])}.")
        chosen.update(ALIASES.get(name, (name,)))
    if not chosen:
        raise ConfigError("No safety set chosen.", fix=f"choose some of: {', '.join(SETS)}.")
    return [s for s in SETS if s in chosen]


def sample_advbench(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` AdvBench harmful behaviours (id = row number in the CSV), chosen reproducibly from ``seed``.

    Only odd row numbers are sampled: the even ones are the refusal examples the offline ladder models were
    trained on (evalkit/ladder/corpus.py), so every model is measured on asks it never saw.
    """
    table = read_csv(get_settings().data_dir / "advbench" / "harmful_behaviors.csv")
    table.insert(0, "id", range(1, len(table) + 1))
    table = table[table["id"] % 2 == 1]
    return table.sample(n=min(n, len(table)), random_state=seed).sort_index().rename(columns={"goal": "prompt"})


def harmbench_categories() -> list[str]:
    """HarmBench's semantic categories of the ``standard`` behaviours."""
    return sorted(_harmbench()["type"].unique())


def _harmbench() -> pd.DataFrame:

    table = read_csv(get_settings().data_dir / "harmbench" / "harmbench_behaviors_text_all.csv")
    table = table[table["FunctionalCategory"] == "standard"]
    return table.rename(columns={"BehaviorID": "id", "Behavior": "prompt", "SemanticCategory": "type"})


def sample_harmbench(n: int, seed: int = 0, categories=None) -> pd.DataFrame:
    """``n`` HarmBench ``standard`` behaviours spread evenly over the semantic categories (type = category).

    Raises:
        ConfigError: a category HarmBench does not have (the categories are listed).
    """
    table = _harmbench()
    if categories:
        known = sorted(table["type"].unique())
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise ConfigError(f"Unknown HarmBench category {', '.join(map(repr, unknown))}.",
                              fix=f"use some of: {', '.join(known)}.")
        table = table[table["type"].isin(categories)]
    return bbq_mod.stratified(table[["id", "prompt", "type"]], ["type"], n, seed)


def sample_xstest(n: int, seed: int = 0, label: str = "safe") -> pd.DataFrame:
    """``n`` XSTest prompts with ``label`` (safe/unsafe), spread evenly over the prompt types."""
    table = read_csv(get_settings().data_dir / "xstest" / "xstest_prompts.csv")
    return bbq_mod.stratified(table[table["label"] == label], ["type"], n, seed)


def refusal_tests(table: pd.DataFrame, set_name: str, *, grader: bool, rubrics: dict) -> list[dict]:
    """The promptfoo tests of one refusal set: the rule template, and an ``llm-rubric`` when there is a grader."""
    expect = REFUSAL_SETS[set_name]
    template = "refuses" if expect == "refuse" else "answers"
    tests = []
    for _, row in table.iterrows():
        asserts = [{"$ref": f"#/assertionTemplates/{template}"}]
        if grader:
            asserts.append({"type": "llm-rubric", "value": rubrics[template], "metric": "grader"})
        kind = str(row.get("type", "")) if "type" in row else ""
        tests.append({
            "description": f"{set_name}: {row['id']}" + (f" ({kind})" if kind else ""),
            "vars": {"messages": json.dumps([{"role": "user", "content": row["prompt"]}], ensure_ascii=False),
                     "text": row["prompt"]},
            "assert": asserts,
            "metadata": {"set": set_name, "id": str(row["id"]), "category": kind, "expect": expect},
        })
    return tests


def build_tests(sets=DEFAULT_SETS, *, sample: int = 20, seed: int = 0, custom=None, bbq_categories=None,
                harmbench_categories=None, grader: bool = False) -> list[dict]:
    """All promptfoo tests of a safety run (``sample`` per set; for BBQ per category; custom checks: all)."""
    if not isinstance(sample, int) or sample < 1:
        raise ConfigError(f"sample must be a whole number >= 1, got {sample!r}.", fix="pass e.g. sample=20.")
    rubrics = load_rules()["rubrics"]
    tests: list[dict] = []
    for name in expand_sets(sets):
        if name == "advbench":
            tests += refusal_tests(sample_advbench(sample, seed), name, grader=grader, rubrics=rubrics)
        elif name == "harmbench":
            tests += refusal_tests(sample_harmbench(sample, seed, harmbench_categories), name, grader=grader,
                                   rubrics=rubrics)
        elif name in ("xstest_safe", "xstest_unsafe"):
            table = sample_xstest(sample, seed, name.split("_")[1])
            tests += refusal_tests(table, name, grader=grader, rubrics=rubrics)
        elif name == "bbq":
            tests += bbq_mod.bbq_tests(bbq_mod.sample_bbq(sample, seed, bbq_categories))
        else:
            for path in custom_paths(custom):
                tests += custom_tests(checks_from_file(path), grader=grader)
    return tests


def custom_paths(custom) -> list[Path]:
    """The custom checks files: ``custom`` (a path or a list), or the bank FAQ examples in data/safety."""
    if custom is None:
        folder = get_settings().data_dir / "safety"
        return [folder / "bank_faq.jsonl", folder / "bank_faq.yaml"]
    return [Path(p) for p in ([custom] if isinstance(custom, (str, Path)) else custom)]


def provider_labels(servers: list) -> list[str]:
    """The promptfoo label of each model: its name, or name@base_url where one model is served twice."""
    names = [s.model for s in servers]
    return [s.model if names.count(s.model) == 1 else f"{s.model}@{s.base_url}" for s in servers]


def safety_config(srv, tests: list[dict], *, grader=None, max_tokens: int = 64, rules: list[dict] | None = None,
                  grader_max_tokens: int = 128) -> dict:
    """The promptfoo config: one chat prompt (``{{ messages }}``), the model(s), assertion templates, the tests.

    ``srv`` is one server or a list of them: with several, each is a provider of the same config, so promptfoo
    asks every model every test and its own matrix compares them (labels are the model names).
    """
    rules = rules or load_rules()["rules"]
    servers = list(srv) if isinstance(srv, (list, tuple)) else [srv]
    labels = provider_labels(servers)
    config = {
        "description": "evalkit safety: refusals (AdvBench, XSTest), bias (BBQ), custom checks",
        "prompts": ["{{ messages }}"],
        "providers": [provider(s, max_tokens=max_tokens, label=label) for s, label in zip(servers, labels,
                                                                                           strict=True)],
        "assertionTemplates": {
            "refuses": {"type": "javascript", "value": BlockText(refusal_js(rules, True)), "metric": "refusal_rules"},
            "answers": {"type": "javascript", "value": BlockText(refusal_js(rules, False)), "metric": "refusal_rules"},
            "bbq_choice": {"type": "javascript", "value": BlockText(bbq_mod.JUDGE_JS), "metric": "bbq_choice"},
        },
        "tests": tests,
    }
    if grader is not None:
        config["defaultTest"] = {"options": {"provider": provider(grader, max_tokens=grader_max_tokens,
                                                                  label=f"grader {grader.model}",
                                                                  response_format=VERDICT_FORMAT)}}
    return config


# llm-rubric's verdict as a JSON Schema: with vLLM's structured outputs even a small grader writes a verdict
# promptfoo can read (without it smollm2-135m wrote prose: "Could not extract JSON from llm-rubric response")
VERDICT_FORMAT = {"type": "json_schema", "json_schema": {"name": "verdict", "strict": True, "schema": {
    "type": "object", "additionalProperties": False, "required": ["reason", "pass", "score"],
    "properties": {"reason": {"type": "string", "maxLength": 300}, "pass": {"type": "boolean"},
                   "score": {"type": "number", "minimum": 0, "maximum": 1}}}}}


def attach_grader(grader_url: str, grader_model: str | None = None):
    """Check that the grader endpoint answers before promptfoo runs; raise ServerUnreachableError if not."""
    from evalkit.serve import attach

    try:
        return attach(grader_url, grader_model)
    except ServerUnreachableError as exc:
        raise ServerUnreachableError(
            f"The LLM grader at {grader_url} is unreachable: {exc.problem}",
            fix="start an OpenAI-compatible server there (e.g. `evalkit serve --model qwen2.5-1.5b-instruct "
                "--port 8001`), pass another grader_url (--grader-url), or grader_url=None to judge by the "
                "refusal rules only.",
        ) from None
