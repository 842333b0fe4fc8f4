"""Run vLLM's OpenAI server with its engine process forked instead of spawned (the CPU build only).

Run as a script (``python .../vllm_fork.py <vllm serve arguments>``), not imported: it must not import evalkit.
vLLM's API server starts its engine core as a second Python process. With the ``spawn`` start method, which
vLLM's CPU platform forces, that process imports vLLM and torch again (8-10 s on a 2-core machine) before it
loads a model of a megabyte. Forked from the API server, it inherits what is already imported. The API server
has not initialised OpenMP or any accelerator when it starts the engine, which is what makes forking safe
here; the engine then runs the model in its own process with the single-process executor, as with spawn.
``benchmarks/bench_serve.py`` measures the ready time and decoding speed of each way of starting.

It also mends a vLLM bug of the CPU build that evalkit's adapters meet (vLLM issues 16668 and 29955): with
``--enable-lora``, a request for prompt log-probabilities (lm-eval's loglikelihood, the accuracy layer) gives the
output layer's LoRA step one adapter index per *sampled* token but the hidden states of every *prompt* token, and
the engine dies ("einsum(): subscript b has size ..."), for the base model's requests too. No adapter here
changes the output layer (lm_head), so its LoRA step adds nothing: where the sizes differ and every adapter's
lm_head weights are zero, the step is skipped and the logits are exact; otherwise it still fails loudly.

Set ``EVALKIT_CPU_FORK_ENGINE=false`` to start vLLM as ``python -m vllm.entrypoints.openai.api_server`` (without
either change: LoRA and prompt log-probabilities then crash as above).
"""

import os
import sys

# run as a script, this folder comes first on sys.path: its modules are evalkit's, not top-level ones
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


def _lora_prompt_logprobs() -> None:
    """Skip the output layer's LoRA step where it would crash on prompt log-probabilities and add nothing."""
    import torch
    from vllm.lora.punica_wrapper import punica_cpu

    original = punica_cpu.PunicaWrapperCPU.add_lora_logits

    def add_lora_logits(self, y, x, lora_a_stacked, lora_b_stacked, scale, *args, **kwargs):
        rows = x.reshape(-1, x.shape[-1]).size(0)
        if rows != self.sampler_indices.size(0):
            if not torch.any(lora_b_stacked):
                return None  # no adapter has lm_head weights: the base logits are already the adapted ones
            raise RuntimeError("prompt log-probabilities with a LoRA adapter that changes lm_head are not "
                               "supported by vLLM's CPU build; serve such adapters without prompt log-probabilities")
        return original(self, y, x, lora_a_stacked, lora_b_stacked, scale, *args, **kwargs)

    punica_cpu.PunicaWrapperCPU.add_lora_logits = add_lora_logits


if __name__ == "__main__":
    os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "fork"
    _keep_fork()
    if "--enable-lora" in sys.argv:
        _lora_prompt_logprobs()
    runpy.run_module("vllm.entrypoints.openai.api_server", run_name="__main__", alter_sys=True)
