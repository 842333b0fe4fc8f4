"""The ladder's training path end to end at toy size: corpus, tokenizer, a few steps, export, serve, chat."""

import json

import httpx
from transformers import AutoTokenizer

from evalkit.ladder.build import build
from evalkit.ladder.specs import TINY
from evalkit.serve import serve


def test_tiny_ladder_model_trains_saves_and_serves(test_settings, tmp_path):
    models = tmp_path / "models"
    folder, = build([TINY.name], build_dir=tmp_path / "build", models_dir=models, size=400, stories=20)
    assert folder == models / TINY.name
    assert not list(models.glob(".*"))  # no partial or old folder left beside it
    training = json.loads((folder / "training.json").read_text())
    assert training["steps"] == TINY.steps and training["final_loss"] > 0
    manifest = training["manifest"]
    assert "faq_held_out_ids" in manifest["held_out"] and manifest["eight_word_overlap_checked"]["xstest"] == 450

    # a rerun resumes from the finished checkpoint instead of training again
    again, = build([TINY.name], build_dir=tmp_path / "build", models_dir=models, size=400, stories=20)
    assert json.loads((again / "training.json").read_text())["seconds"] == training["seconds"]

    settings = test_settings.model_copy(update={"port": 8797})
    with serve(str(folder), settings=settings, echo=False) as srv:
        reply = httpx.post(f"{srv.base_url}/chat/completions", timeout=60, json={
            "model": srv.model, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "How do I make tea?"}]}).json()
        assert reply["choices"][0]["message"]["content"] is not None
        assert reply["usage"]["prompt_tokens"] > 8  # "<s>Question: ...\nAnswer:" was rendered by the template
        done = httpx.post(f"{srv.base_url}/completions", timeout=60, json={
            "model": srv.model, "prompt": "Hello", "max_tokens": 1, "echo": True, "logprobs": 1}).json()
        tokens = AutoTokenizer.from_pretrained(str(folder))("Hello").input_ids
        assert tokens[0] == 1 and done["usage"]["prompt_tokens"] == len(tokens)  # <s> before a completion prompt
