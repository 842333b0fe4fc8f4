"""Run vLLM's OpenAI server with its engine process forked instead of spawned (the CPU build only).

Run as a script (``python .../vllm_fork.py <vllm serve arguments>``), not imported: it must not import evalkit.
vLLM's API server starts its engine core as a second Python process. With the ``spawn`` start method, which
vLLM's CPU platform forces, that process imports vLLM and torch again (8-10 s on a 2-core machine) before it
loads a model of a megabyte. Forked from the API server, it inherits what is already imported. The API server
has not initialised OpenMP or any accelerator when it starts the engine, which is what makes forking safe
here; the engine then runs the model in its own process with the single-process executor, as with spawn.
``benchmarks/bench_serve.py`` measures the ready time and decoding speed of each way of starting.

Set ``EVALKIT_CPU_FORK_ENGINE=false`` to start vLLM as ``python -m vllm.entrypoints.openai.api_server``.
"""

import os
import sys

# run as a script, this folder comes first on sys.path, where http.py would hide the standard library's http
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import runpy  # noqa: E402


def _keep_fork() -> None:
    """After the CPU platform sets its start method to spawn, set it back to fork."""
    from vllm.platforms import cpu

    original = cpu.CpuPlatform.check_and_update_config.__func__

    def check_and_update_config(cls, vllm_config):
        original(cls, vllm_config)
        os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "fork"

    cpu.CpuPlatform.check_and_update_config = classmethod(check_and_update_config)


if __name__ == "__main__":
    os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "fork"
    _keep_fork()
    runpy.run_module("vllm.entrypoints.openai.api_server", run_name="__main__", alter_sys=True)
