"""LoRA training on the real model, kept tiny: checkpoints, resume after an interruption, the exported adapter."""

import json

import torch

from evalkit.tune.fetch import model_dir
from evalkit.tune.train import CHECKPOINT, LoraSpec, export, train

ITEMS = [{"messages": [{"role": "user", "content": f"Say {w}."}, {"role": "assistant", "content": w}], "part": "chat"}
         for w in ("one", "two", "three", "four")] + [{"prompt": "Question: 2+2?\nAnswer:", "answer": " 4",
                                                       "part": "plain"}]
SPEC = LoraSpec("tiny", "smollm2-135m", "test", epochs=2, batch=2, max_len=64)  # 3 batches x 2 epochs = 6 steps


def test_an_interrupted_run_resumes_from_its_checkpoint_and_exports(tmp_path):
    seen: list[str] = []
    folder = tmp_path / "run"
    first = train(SPEC, model_dir(), ITEMS, folder, every=1, log=seen.append)
    assert first["steps"] == 6 and first["examples"] == 5 and first["parts"] == {"chat": 4, "plain": 1}
    saved = torch.load(folder / CHECKPOINT, weights_only=False)
    assert saved["state"]["step"] == 6
    saved["state"]["step"], saved["state"]["losses"] = 4, saved["state"]["losses"][:4]  # as if stopped after step 4
    torch.save(saved, folder / CHECKPOINT)
    again = train(SPEC, model_dir(), ITEMS, folder, every=1, log=seen.append)
    assert "tiny: resuming at step 4 of 6" in seen and len(torch.load(folder / CHECKPOINT, weights_only=False)[
        "state"]["losses"]) == 6  # only the two missing steps ran
    target = export(folder, tmp_path / "adapters" / "tiny", "smollm2-135m", "# card\n", again)
    config = json.loads((target / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m" and config["r"] == SPEC.rank
    assert (target / "adapter_model.safetensors").exists() and not list(target.parent.glob(".*partial"))


def test_a_checkpoint_of_another_recipe_is_not_resumed(tmp_path):
    seen: list[str] = []
    train(SPEC, model_dir(), ITEMS, tmp_path, every=1, log=seen.append)
    other = LoraSpec("tiny", "smollm2-135m", "test", epochs=2, batch=2, max_len=64, lr=1e-4)
    train(other, model_dir(), ITEMS, tmp_path, every=1, log=seen.append)
    assert any("of another recipe or data; starting again" in m for m in seen)
