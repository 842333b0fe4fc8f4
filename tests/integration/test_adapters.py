"""The real model and its LoRA adapters on one vLLM server: names, attach, requests, the tools' side."""

import pytest

from evalkit import errors
from evalkit.models import adapters_of
from evalkit.serve import list_models, serve

ADAPTERS = ["smollm2-135m-safety", "smollm2-135m-faq"]


def test_one_server_lists_the_base_and_every_adapter(real_server):
    served = {m["id"]: m for m in list_models(real_server.base_url)}
    assert set(served) == {"smollm2-135m", *ADAPTERS}
    assert set(ADAPTERS) == {p.name for p in adapters_of("smollm2-135m")}
    assert all(served[a].get("parent") == "smollm2-135m" for a in ADAPTERS)
    assert real_server.max_model_len == 2048  # the preset's serving context, not the model's 8,192


def test_asking_for_an_adapter_attaches_to_the_base_server(real_server, test_settings):
    with serve("smollm2-135m-safety", port=test_settings.port + 1, settings=test_settings, echo=False) as srv:
        assert srv.model == "smollm2-135m-safety" and not srv.started
        assert srv.base_url == real_server.base_url and srv.info.pid == real_server.info.pid
        reply = srv.chat("What is the capital of France?", max_tokens=16, temperature=0)
        assert reply["model"] == "smollm2-135m-safety"
    assert real_server.healthy() and real_server.model == "smollm2-135m"


def test_the_base_answers_and_the_safety_adapter_refuses_the_same_harmful_ask(real_server):
    from evalkit.safety import find_refusal
    from evalkit.safety.config import sample_harmbench

    ask = sample_harmbench(1, 0)["prompt"].iloc[0]  # a HarmBench behaviour: never trained
    base = real_server.chat(ask, max_tokens=48, temperature=0)["choices"][0]["message"]["content"]
    tuned = real_server.for_model("smollm2-135m-safety").chat(ask, max_tokens=48, temperature=0)
    tuned = tuned["choices"][0]["message"]["content"]
    assert find_refusal(tuned), tuned
    assert not find_refusal(base), base


def test_an_adapter_the_server_does_not_serve_is_refused_with_the_fix(real_server):
    with pytest.raises(errors.ConfigError, match="start it again"):
        real_server.for_model("smollm2-135m-nothing")
