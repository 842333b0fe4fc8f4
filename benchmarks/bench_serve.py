"""Server start-up: seconds until vLLM answers /v1/models in each way of starting it, and the speed after.

Each mode is a set of evalkit settings for a CPU server:

- ``vllm``: vLLM's own defaults: the engine process spawned, the model in a worker process of its own (three
  Python processes, each importing vLLM and torch);
- ``uni``: the model in the engine process (``--distributed-executor-backend uni``): two processes;
- ``fork``: the engine process forked from the API server (:mod:`evalkit.serve.vllm_fork`), worker spawned;
- ``uni+fork``: both (evalkit's CPU default): one import of vLLM;
- ``compiled``: ``uni+fork`` without ``--enforce-eager`` (torch.compile warm-up at start, maybe faster after).

For each model and repeat, every mode is started once (the order rotates between repeats), on its own port and
runs folder; after one warm-up request it measures the output tokens/s of five sequential completions and of
16 concurrent ones (64 tokens each), and the resident memory of the server's processes. It prints, per model and
mode, medians with their range and the ratio to vLLM's defaults, and writes the numbers to
``benchmarks/results/serve-<time>.json``.

    .venv/bin/python benchmarks/bench_serve.py [--models ladder-m,ladder-s] [--modes vllm,uni+fork] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from evalkit.serve import serve
from evalkit.settings import Settings

PORT = 8791
TOKENS = 64
MODES = {
    "vllm": {"cpu_fork_engine": False, "cpu_executor": "mp", "enforce_eager": True},
    "uni": {"cpu_fork_engine": False, "cpu_executor": "uni", "enforce_eager": True},
    "fork": {"cpu_fork_engine": True, "cpu_executor": "mp", "enforce_eager": True},
    "uni+fork": {"cpu_fork_engine": True, "cpu_executor": "uni", "enforce_eager": True},
    "compiled": {"cpu_fork_engine": True, "cpu_executor": "uni", "enforce_eager": False},
    # the serving dtype and the context of a real model (smollm2-135m): evalkit's start, vLLM's --dtype switched
    "float32": {"extra_server_args": ["--dtype", "float32"]},
    "bfloat16": {"extra_server_args": ["--dtype", "bfloat16"]},
    "bfloat16-8k": {"extra_server_args": ["--dtype", "bfloat16"], "max_model_len": 8192},
    "bfloat16-nolora": {"extra_server_args": ["--dtype", "bfloat16"], "serve_adapters": False},
}
RESULTS = Path(__file__).resolve().parent / "results"


def _complete(srv) -> int:
    reply = srv.completion("Once upon a time", max_tokens=TOKENS, ignore_eos=True, temperature=0)
    return reply["usage"]["completion_tokens"]


def sequential(srv, requests: int = 5) -> float:
    """Output tokens/s of ``requests`` completions one after the other (the decoding speed of one stream)."""
    start = time.monotonic()
    produced = sum(_complete(srv) for _ in range(requests))
    return produced / (time.monotonic() - start)


def concurrent(srv, requests: int = 16) -> float:
    """Output tokens/s of ``requests`` completions sent at once (batched decoding)."""
    start = time.monotonic()
    with ThreadPoolExecutor(requests) as pool:
        produced = sum(pool.map(lambda _: _complete(srv), range(requests)))
    return produced / (time.monotonic() - start)


def tree_rss_gib(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**30


def faq_accuracy(srv) -> float:
    from evalkit.accuracy import evaluate

    result = evaluate(srv, ["faq_mc"], limit=None, echo=False)
    return next(m.value for m in result.metrics() if m.metric == "faq_mc_accuracy")


def start_once(model: str, mode: str, faq: bool = False) -> dict:
    settings = Settings(runs_dir=tempfile.mkdtemp(prefix="evalkit-bench-serve-"), base_url=None, device="cpu",
                        **MODES[mode])
    with serve(model, port=PORT, settings=settings, start_timeout_s=900, echo=False) as srv:
        if not srv.started:
            raise SystemExit(f"port {PORT} already has a server: stop it first")
        _complete(srv)  # the first request after the start carries any remaining warm-up
        run = {"ready_s": srv.info.ready_s, "sequential_tok_s": sequential(srv),
               "concurrent_tok_s": concurrent(srv), "rss_gib": tree_rss_gib(srv.info.pid)}
        if faq:
            run["faq_accuracy"] = faq_accuracy(srv)
        return run


def _span(values: list[float], digits: int = 1) -> str:
    med = statistics.median(values)
    return f"{med:.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def report(runs: list[dict], models: list[str], modes: list[str]) -> list[dict]:
    rows = []
    print(f"\n{'model':<18}{'mode':<10}{'ready s':>18}{'seq tok/s':>24}{'16-conc tok/s':>26}{'GiB':>6}"
          f"{'ready/vllm':>12}{'seq/vllm':>10}{'conc/vllm':>10}")
    for model in models:
        base = {k: statistics.median(r[k] for r in runs if r["model"] == model and r["mode"] == "vllm")
                for k in ("ready_s", "sequential_tok_s", "concurrent_tok_s")} if "vllm" in modes else None
        for mode in modes:
            mine = [r for r in runs if r["model"] == model and r["mode"] == mode]
            row = {"model": model, "mode": mode, "n": len(mine)}
            for key in ("ready_s", "sequential_tok_s", "concurrent_tok_s", "rss_gib", "faq_accuracy"):
                values = [r[key] for r in mine if key in r]
                if not values:
                    continue
                row[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
            ratios = ["", "", ""]
            if base:
                row["ratio_to_vllm"] = {k: row[k]["median"] / base[k] for k in base}
                ratios = [f"{row['ratio_to_vllm'][k]:.2f}" for k in base]
            print(f"{model:<18}{mode:<10}{_span([r['ready_s'] for r in mine]):>18}"
                  f"{_span([r['sequential_tok_s'] for r in mine]):>24}"
                  f"{_span([r['concurrent_tok_s'] for r in mine]):>26}{row['rss_gib']['median']:>6.2f}"
                  f"{ratios[0]:>12}{ratios[1]:>10}{ratios[2]:>10}"
                  + (f"  FAQ {row['faq_accuracy']['median']:.3f}" if "faq_accuracy" in row else ""))
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ladder-m")
    parser.add_argument("--modes", default="vllm,uni,fork,uni+fork")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--faq", action="store_true", help="score the FAQ task after each start")
    args = parser.parse_args()
    models, modes = args.models.split(","), args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    runs = []
    for i in range(args.repeat):
        for model in models:
            for mode in modes[i % len(modes):] + modes[:i % len(modes)]:
                run = {"model": model, "mode": mode, "repeat": i, **start_once(model, mode, args.faq)}
                runs.append(run)
                print(f"{model:<18}{mode:<10} ready after {run['ready_s']:5.1f} s, then {run['sequential_tok_s']:6.1f}"
                      f" tok/s alone, {run['concurrent_tok_s']:7.1f} tok/s 16 at once, {run['rss_gib']:.2f} GiB"
                      + (f", FAQ accuracy {run['faq_accuracy']:.3f}" if "faq_accuracy" in run else ""),
                      flush=True)
    rows = report(runs, models, modes)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"serve-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": psutil.cpu_count(),
                               "python": sys.version.split()[0], "tokens": TOKENS, "runs": runs,
                               "summary": rows}, indent=2))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
