"""Measure the offline models with evalkit (the ladder, or the real model and its adapters), print one table.

For each model: its own vLLM server, then the FAQ (all 52 rows: trained half and held-out half apart) and
MMLU-Pro (5 per category) with lm-eval, the format layer's extraction and IFEval JSON prompts with and without
structured outputs, the safety layer (AdvBench held-out rows, HarmBench by semantic category, XSTest safe and
unsafe, BBQ) with promptfoo, and a short GuideLLM sweep. Neighbours on the ladder are compared item by item
(McNemar's exact test); rates carry 95 % bootstrap intervals.

    .venv/bin/python benchmarks/ladder.py                      # the whole ladder and stories260k (about 15 min)
    .venv/bin/python benchmarks/ladder.py --models ladder-s ladder-l
    .venv/bin/python benchmarks/ladder.py --real     # smollm2-135m, its two adapters and ladder-m (about 25 min)

Writes benchmarks/results/ladder-<date>.json (real-model-<date>.json with --real) and the scores beside each
model: data/models/<name>/scores.json for the ladder, data/adapters/<name>/scores.json for an adapter (its card
is rewritten), data/models/smollm2-135m.scores.json for the real model (its folder is built, not committed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalkit import serve  # noqa: E402
from evalkit.accuracy import evaluate  # noqa: E402
from evalkit.fmt import check_format  # noqa: E402
from evalkit.ladder.build import write_card  # noqa: E402
from evalkit.models import PRESETS  # noqa: E402
from evalkit.perf import sweep  # noqa: E402
from evalkit.safety import check_safety  # noqa: E402
from evalkit.settings import get_settings  # noqa: E402
from evalkit.stats import bootstrap_ci, mcnemar  # noqa: E402
from evalkit.tune.build import write_card as write_adapter_card  # noqa: E402
from evalkit.tune.fetch import write_card as write_model_card  # noqa: E402

MODELS = ["stories260k", "ladder-s", "ladder-m", "ladder-l", "ladder-m-control"]
PAIRS = [("ladder-s", "ladder-m"), ("ladder-m", "ladder-l"), ("ladder-s", "ladder-l"), ("ladder-m", "ladder-m-control"),
         ("stories260k", "ladder-s")]
REAL = ["smollm2-135m", "smollm2-135m-safety", "smollm2-135m-faq", "ladder-m"]
REAL_PAIRS = [("smollm2-135m", "smollm2-135m-safety"), ("smollm2-135m", "smollm2-135m-faq"),
              ("ladder-m", "smollm2-135m")]
ITEM_METRICS = ["faq_held_out", "faq_trained", "json_parse_plain", "schema_plain", "harmbench_refused",
                "advbench_refused", "xstest_safe_refused", "xstest_unsafe_refused", "mmlu_pro"]


def measure(name: str, run_root: Path, port: int, sample: int, perf_seconds: float = 3) -> dict:
    """Every layer on one model; returns per-item verdicts, rates and the performance figures."""
    started = time.monotonic()
    folder = run_root / name
    with serve(name, port=port, echo=False) as srv:
        ready_s = time.monotonic() - started
        acc = evaluate(srv, ["faq_mc", "mmlu_pro_mc"], limit={"faq_mc": None, "mmlu_pro_mc": 5},
                       run_dir=folder / "accuracy", echo=False)
        fmt = check_format(srv, sets=["extraction", "ifeval"], structured="both", run_dir=folder / "format",
                           echo=False)
        saf = check_safety(srv, sets=["advbench", "harmbench", "xstest", "bbq"], sample=sample,
                           bbq_categories=["Age", "Religion"], run_dir=folder / "safety", echo=False)
        perf = sweep(srv, profile="sweep", sweep_size=4, max_seconds=perf_seconds, prompt_tokens=64, output_tokens=32,
                     run_dir=folder / "performance", echo=False, html=False)
    items: dict[str, dict] = acc.items()  # per-question verdicts, the FAQ halves among them
    items["faq_trained"] = items.pop("faq_mc_trained_accuracy")
    items["faq_held_out"] = items.pop("faq_mc_held_out_accuracy")
    items["mmlu_pro"] = items.pop("mmlu_pro_mc_accuracy")
    found = {**fmt.items(), **saf.items()}
    for key, metric in (("json_parse_plain", "json_parse_rate_plain"), ("schema_plain", "schema_pass_rate_plain"),
                        ("harmbench_refused", "harmbench_refusal_rate"), ("advbench_refused", "harmful_refusal_rate"),
                        ("xstest_safe_refused", "over_refusal_rate"),
                        ("xstest_unsafe_refused", "xstest_unsafe_refusal_rate")):
        items[key] = found.get(metric, {})
    by_cat = saf.refusals(by="category")
    harm_cats = {r.category: {"refusal_rate": r.refusal_rate, "n": int(r.judged)}
                 for r in by_cat[by_cat["set"] == "harmbench"].itertuples()}
    metrics = {m.metric: m.value for m in [*fmt.metrics(), *saf.metrics(), *perf.metrics()]}
    low = perf.df.sort_values("load_order").iloc[0]
    rates = {}
    for key, verdicts in items.items():
        flags = [v for v in verdicts.values() if v is not None]
        ci = bootstrap_ci(flags)
        rates[key] = {"rate": sum(flags) / len(flags) if flags else None, "n": len(flags),
                      "ci95": [round(ci[0], 3), round(ci[1], 3)] if ci else None}
    return {
        "model": name, "ready_s": round(ready_s, 1), "total_s": round(time.monotonic() - started, 1),
        "rates": rates, "items": items, "harmbench_by_category": harm_cats,
        "json_parse_structured": metrics.get("json_parse_rate_structured"),
        "schema_structured": metrics.get("schema_pass_rate_structured"),
        "bbq_abs_bias_ambig": metrics.get("bbq_abs_bias_ambig"),
        "bbq_accuracy_ambig": metrics.get("bbq_accuracy_ambig"),
        "output_tok_s_max": metrics.get("max_output_tokens_per_s"),
        "ttft_p50_ms_lowest_load": float(low["ttft_p50_ms"]),
        "run_dir": str(folder),
    }


def fmt_rate(entry: dict | None) -> str:
    if not entry or entry["rate"] is None:
        return "n/a"
    low, high = entry["ci95"]
    return f"{entry['rate']:.2f} [{low:.2f}-{high:.2f}] n={entry['n']}"


def table(results: dict[str, dict]) -> str:
    head = ["model", "params", "FAQ held-out", "FAQ trained", "JSON parse (plain)", "schema (plain)",
            "HarmBench refused", "AdvBench refused", "XSTest safe refused", "XSTest unsafe refused", "BBQ |bias| ambig",
            "MMLU-Pro", "out tok/s max", "TTFT p50 ms", "ready s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        rate = r["rates"]
        bias = r["bbq_abs_bias_ambig"]
        lines.append("| " + " | ".join([
            name, f"{PRESETS[name].params / 1e6:.2f} M", fmt_rate(rate["faq_held_out"]), fmt_rate(rate["faq_trained"]),
            fmt_rate(rate["json_parse_plain"]), fmt_rate(rate["schema_plain"]), fmt_rate(rate["harmbench_refused"]),
            fmt_rate(rate["advbench_refused"]), fmt_rate(rate["xstest_safe_refused"]),
            fmt_rate(rate["xstest_unsafe_refused"]), "n/a" if bias is None else f"{bias:.2f}",
            fmt_rate(rate["mmlu_pro"]), f"{r['output_tok_s_max']:.0f}", f"{r['ttft_p50_ms_lowest_load']:.0f}",
            f"{r['ready_s']:.0f}"]) + " |")
    return "\n".join(lines)


def paired(results: dict[str, dict], pairs=PAIRS) -> list[dict]:
    out = []
    for a, b in pairs:
        if a in results and b in results:
            for key in ITEM_METRICS:
                test = mcnemar(results[a]["items"][key], results[b]["items"][key])
                out.append({"a": a, "b": b, "metric": key, "n": test.n, "a_only": test.a_only, "b_only": test.b_only,
                            "p_value": round(test.p_value, 4), "verdict": test.verdict(a, b)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--real", action="store_true", help=f"measure {', '.join(REAL)} (pairs: the adapters "
                                                             "against their base, ladder-m against it)")
    parser.add_argument("--perf-seconds", type=float, default=None, help="seconds per load of the sweep")
    parser.add_argument("--sample", type=int, default=30, help="prompts per safety set (BBQ: per category)")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--merge", default=None, help="results JSON of an earlier run: its models join the table")
    args = parser.parse_args(argv)
    args.models = args.models or (REAL if args.real else MODELS)
    perf_seconds = args.perf_seconds or (8.0 if args.real else 3.0)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_root = get_settings().runs_dir / f"{stamp}-ladder-bench"
    results = json.loads(Path(args.merge).read_text())["results"] if args.merge else {}
    for name in args.models:
        print(f"[ladder bench] {name} ...", file=sys.stderr, flush=True)
        results[name] = measure(name, run_root, args.port, args.sample, perf_seconds)
        print(f"[ladder bench] {name}: {results[name]['total_s']:.0f} s", file=sys.stderr, flush=True)
    tests = paired(results, REAL_PAIRS if args.real else PAIRS)
    report = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
              "sample": args.sample, "results": results, "paired": tests}
    out = ROOT / "benchmarks" / "results" / f"{'real-model' if args.real else 'ladder'}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    data = get_settings().data_dir
    for name, r in results.items():
        if name not in args.models:
            continue
        keep = {k: v for k, v in r.items() if k not in ("items", "run_dir")}
        scores = json.dumps({"date": report["date"], "machine": report["machine"], "sample": args.sample, **keep},
                            indent=1) + "\n"
        if name.startswith("ladder-") and (data / "models" / name).is_dir():
            (data / "models" / name / "scores.json").write_text(scores)
            write_card(data / "models" / name)
        elif PRESETS[name].adapter:
            (data / "adapters" / name / "scores.json").write_text(scores)
            write_adapter_card(name)
        elif PRESETS[name].built:
            (data / "models" / f"{name}.scores.json").write_text(scores)
            write_model_card()
    print(table(results))
    print()
    for t in tests:
        print(f"{t['metric']:>22}  {t['a']} vs {t['b']}: {t['verdict']}")
    print(f"\nsaved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
