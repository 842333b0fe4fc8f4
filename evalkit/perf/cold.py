"""A server's cold start, measured apart from any load: one plain streamed request, timed to its first token.

The first request a fresh vLLM server answers can be slower than every later one (memory touched for the first
time, a compile or CUDA-graph capture on a GPU, the tokenizer's first call). That is the server's cold start, a
figure of its own. A load generator's own start (GuideLLM's worker process starting beside the server) is
another thing, which every benchmark leaves out through GuideLLM's warm-up phase (:func:`~evalkit.perf.guidellm.
warmup_phase`).
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class ColdStart:
    """One request's time to first token and total time, and whether it was the server's first."""

    ttft_ms: float
    latency_s: float
    output_tokens: int
    answered_before: int | None  # requests the server had answered before (vLLM's /metrics; None elsewhere)

    @property
    def first_request(self) -> bool | None:
        return None if self.answered_before is None else self.answered_before == 0

    def sentence(self) -> str:
        whose = {True: "the server's first request: its cold start", False: (
            f"not a cold start: the server had answered {self.answered_before} requests before"),
            None: "the server does not say how many requests it answered before"}[self.first_request]
        return (f"One plain request: first token after {self.ttft_ms:.0f} ms, {self.output_tokens} tokens in "
                f"{self.latency_s:.2f} s ({whose}).")


def cold_start(srv, prompt: str = "Write one sentence about the sea.", max_tokens: int = 16) -> ColdStart:
    """Send one streamed completion to ``srv`` and time it (call it first thing after the server starts)."""
    from evalkit.serve.client import requests_answered

    before = requests_answered(srv.root_url)
    payload = {"model": srv.model, "prompt": prompt, "max_tokens": max_tokens, "stream": True, "temperature": 0,
               "ignore_eos": True, "stream_options": {"include_usage": True}}
    headers = {"Content-Type": "application/json"}
    key = srv.settings.api_key_value()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{srv.base_url}/completions", json.dumps(payload).encode(), headers)
    started = time.perf_counter()
    first, tokens = None, 0
    with urllib.request.urlopen(request, timeout=120) as reply:
        for raw in reply:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                first = first or time.perf_counter()
            if chunk.get("usage"):  # the last chunk: the tokens the server counted
                tokens = chunk["usage"]["completion_tokens"]
    ended = time.perf_counter()
    return ColdStart(round(((first or ended) - started) * 1000, 1), round(ended - started, 3), tokens, before)
