#!/usr/bin/env python3
"""Time to first token and decode speed of smollm2-135m served in bfloat16 and in float32 on this CPU.

evalkit serves smollm2-135m in bfloat16 on a CPU (``models.SMOLLM2_DTYPE``). On a CPU without native bfloat16
(no AVX512-BF16 or AMX) vLLM's CPU build logs "Failed to create oneDNN linear, fallback to torch linear" and the
prompt's prefill is slow. This script starts the same server evalkit starts (``serve.command.server_command``,
both adapters loaded), once per dtype, and times one streamed completion per prompt length, twice (the first
request at a new length can be slower than the next), the decode of 64 tokens and one prompt through the safety
adapter. Prompts are the word "hello" repeated (one token per word for this tokenizer, about). The CPU flags and
every timing go to ``benchmarks/results/cpu-dtype-<time>.json``.

    .venv/bin/python benchmarks/cpu_dtype.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalkit.serve.command import server_command, server_env  # noqa: E402
from evalkit.serve.resolve import resolve_model  # noqa: E402
from evalkit.settings import get_settings  # noqa: E402

LENGTHS = (64, 64, 256, 256, 512, 512)
PORT = 8813


def start(dtype: str) -> subprocess.Popen:
    settings = get_settings()
    cmd = server_command(resolve_model("smollm2-135m", settings), PORT, "cpu", settings)
    cmd[cmd.index("--dtype") + 1] = dtype
    (ROOT / "runs").mkdir(exist_ok=True)  # a fresh clone has no runs/ yet
    log = open(ROOT / "runs" / f"cpu-dtype-{dtype}.log", "w")  # noqa: SIM115 - open while the server runs
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=server_env("cpu", settings),
                              start_new_session=True)
    began = time.monotonic()
    while time.monotonic() - began < 300:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/v1/models", timeout=2)
            return server
        except OSError:
            time.sleep(1)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit(f"the {dtype} server did not answer within 300 s: see its log in runs/")


def timed(words: int, max_tokens: int = 8, model: str = "smollm2-135m") -> dict:
    body = json.dumps({"model": model, "prompt": " ".join(["hello"] * words), "max_tokens": max_tokens,
                       "stream": True, "ignore_eos": True}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}/v1/completions", body,
                                     {"Content-Type": "application/json"})
    began, first = time.monotonic(), None
    with urllib.request.urlopen(request, timeout=600) as response:
        for line in response:
            if first is None and line.startswith(b"data:") and b"[DONE]" not in line:
                first = time.monotonic() - began
    total = time.monotonic() - began
    return {"words": words, "max_tokens": max_tokens, "model": model, "ttft_ms": round(first * 1000),
            "total_s": round(total, 2), "ms_per_later_token": round((total - first) / (max_tokens - 1) * 1000)}


def main() -> int:
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    out = {"cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx"))), "cores": os.cpu_count(), "runs": {}}
    for dtype in ("bfloat16", "float32"):
        server = start(dtype)
        try:
            rows = [timed(n) for n in LENGTHS] + [timed(64, max_tokens=64), timed(256, model="smollm2-135m-safety")]
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)
        out["runs"][dtype] = rows
        for row in rows:
            print(dtype, row, flush=True)
    results = ROOT / "benchmarks" / "results" / f"cpu-dtype-{time.strftime('%Y%m%d-%H%M%S')}.json"
    results.write_text(json.dumps(out, indent=1) + "\n")
    print(f"written: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
