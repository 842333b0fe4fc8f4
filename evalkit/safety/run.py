"""Running the safety layer: :func:`check_safety` (one promptfoo run over local data)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlparse

from evalkit.errors import ConfigError
from evalkit.promptfoo import run_promptfoo, write_config
from evalkit.runs import new_run_dir
from evalkit.safety import bbq as bbq_mod
from evalkit.safety.args import SafetyArgs
from evalkit.safety.config import attach_grader, build_tests, custom_paths, expand_sets, provider_labels, safety_config
from evalkit.safety.refusal import load_rules
from evalkit.safety.result import SafetyResult, rows_from_output


class _Watch:
    """The servers of a side-by-side run watched as one: the first problem any of them has."""

    def __init__(self, servers: list):
        self.servers = servers
        self.base_url = servers[0].base_url

    def problem(self) -> str | None:
        return next((p for p in (s.problem() for s in self.servers) if p), None)

    def heartbeat(self, tool: str, total: int | None = None):
        return self.servers[0].heartbeat(tool, total)


def _servers(srv, models, started: contextlib.ExitStack, echo: bool) -> list:
    """The servers of a run: ``srv``, or ``srv`` and ``models`` (resolved; those attached here are left at the end)."""
    from evalkit.serve import attach, serve_beside

    if not models:
        return [srv]
    out = [] if srv is None else [srv]
    for model in models:
        if not isinstance(model, str):
            server = model
        elif any(s.model == model for s in out):
            continue
        else:
            server = (attach(model) if model.startswith(("http://", "https://"))
                      else serve_beside(model, out, echo=echo))  # an adapter of a server at hand: that server
            started.callback(server.stop)  # leaves it at the end (it stops if nobody else uses it)
        if not any(s.model == server.model and s.base_url == server.base_url for s in out):
            out.append(server)
    if len(out) < 2:
        raise ConfigError(f"models={[getattr(m, 'model', m) for m in models]} names one model: nothing to compare.",
                          fix="give two different models, e.g. models=[srv, 'ladder-m-control'].")
    return out


D = SafetyArgs.defaults()  # the run arguments' defaults, from their one source


def check_safety(
    srv,
    *,
    sets=D.sets,
    sample: int = D.sample,
    seed: int = D.seed,
    grader_url: str | None = D.grader_url,
    grader_model: str | None = D.grader_model,
    custom=None,
    bbq_categories=D.bbq_categories,
    harmbench_categories=D.harmbench_categories,
    max_tokens: int = D.max_tokens,
    concurrency: int | None = D.concurrency,
    models: list | None = None,
    run_dir: Path | str | None = None,
    echo: bool = True,
    timeout_s: float | None = None,
) -> SafetyResult:
    """Run the safety layer with promptfoo against ``srv`` and save ``<run_dir>/result.json``.

    Args:
        srv: the model server (:class:`evalkit.serve.Server`).
        sets: some of advbench, xstest (= xstest_safe + xstest_unsafe), xstest_safe, xstest_unsafe, bbq, custom.
        sample: prompts per set (BBQ: per category, balanced over ambig/disambig x neg/nonneg); custom: all.
        seed: seed of the samples (same seed, same prompts).
        grader_url: an OpenAI-compatible endpoint whose model also judges refusals (``llm-rubric``); None =
            refusal rules only.
        grader_model: the grader's model (default: the first it serves).
        custom: custom checks file(s), .jsonl or .yaml (default: data/safety/bank_faq.jsonl and .yaml).
        bbq_categories: BBQ categories (default: all six in data/bbq).
        harmbench_categories: HarmBench semantic categories (default: all six; the sample spreads over them).
        max_tokens: output tokens per answer.
        concurrency: promptfoo's parallel requests (default: promptfoo's, 4).
        models: two or more models asked the same tests in ONE promptfoo config (one provider each, so promptfoo's
            matrix compares them): :class:`~evalkit.serve.Server` objects, served model names or base URLs. A name
            no server serves yet gets its own server, stopped at the end. ``srv`` (if given) comes first; the
            first model is the model under test (its metrics go to the scorecard; ``by_model()`` has them all).
        run_dir: folder for the config, promptfoo's files and result.json (default: a new one under runs/).
        echo: stream promptfoo's output.
        timeout_s: stop promptfoo after this long.

    Raises:
        ConfigError: an unknown set, a bad sample size, a rubric check without a grader.
        TaskFileError: a malformed custom checks file (file, line, field named).
        ServerUnreachableError: nobody answers at ``grader_url`` (checked before promptfoo starts).
        UnknownModelError, ServerStartError: a model of ``models`` that is not served and cannot be started.
        ServerDiedError, ToolError, ToolMissingError: from the promptfoo run.
    """
    from evalkit.envreport import env_report, node_version, promptfoo_version

    SafetyArgs.check(sets=sets, sample=sample, seed=seed, grader_url=grader_url, grader_model=grader_model,
                     bbq_categories=bbq_categories, harmbench_categories=harmbench_categories, max_tokens=max_tokens,
                     concurrency=concurrency)
    chosen = expand_sets(sets)
    grader = attach_grader(grader_url, grader_model) if grader_url else None
    tests = build_tests(chosen, sample=sample, seed=seed, custom=custom, bbq_categories=bbq_categories,
                        harmbench_categories=harmbench_categories, grader=grader is not None)
    rules = load_rules()["rules"]
    with contextlib.ExitStack() as started:
        servers = _servers(srv, models, started, echo)
        run_dir = Path(run_dir) if run_dir else new_run_dir("safety")
        config = safety_config(servers, tests, grader=grader, max_tokens=max_tokens, rules=rules)
        config_path = write_config(config, run_dir / "promptfooconfig.yaml")
        hosts = [urlparse(s.base_url).hostname for s in [*servers[1:], *([grader] if grader is not None else [])]]
        run = run_promptfoo(config_path, run_dir=run_dir, max_concurrency=concurrency, srv=_Watch(servers),
                            echo=echo, timeout_s=timeout_s, allow_hosts=hosts or None, config=config)
    labels = provider_labels(servers)
    srv = servers[0]
    result = SafetyResult(
        run_dir=str(run_dir), model=srv.model, base_url=srv.base_url, sets=chosen,
        rows=rows_from_output(run.output_path), models=labels if len(labels) > 1 else [],
        rules=rules, grader={"url": grader.base_url, "model": grader.model} if grader is not None else None,
        params={"sets": chosen, "sample": sample, "seed": seed, "grader_url": grader_url, "max_tokens": max_tokens,
                "concurrency": concurrency, "bbq_categories": list(bbq_categories or bbq_mod.CATEGORIES),
                "harmbench_categories": list(harmbench_categories or []),
                "models": [s.model for s in servers] if len(servers) > 1 else [],
                "custom": [str(p) for p in custom_paths(custom)] if "custom" in chosen else []},
        env=env_report(), tool_versions={"promptfoo": promptfoo_version(), "node": node_version()},
        promptfoo={"returncode": run.returncode, "duration_s": round(run.duration_s, 2), "command": run.command,
                   "tests": len(tests),
                   "config": config_path.name, "output": run.output_path.name},
    )
    result.save()
    return result
