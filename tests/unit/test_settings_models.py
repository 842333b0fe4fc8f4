"""Settings, presets and the memory arithmetic."""

import pytest

from evalkit import errors
from evalkit.models import (
    GIB,
    L4_MEMORY_GIB,
    PRESETS,
    RUNTIME_OVERHEAD_GIB,
    estimate_memory,
    get_preset,
    presets_table,
)
from evalkit.settings import Settings


def test_settings_read_environment(monkeypatch):
    monkeypatch.setenv("EVALKIT_PORT", "9123")
    monkeypatch.setenv("EVALKIT_MODEL", "qwen2.5-0.5b-instruct")
    s = Settings()
    assert s.port == 9123 and s.model == "qwen2.5-0.5b-instruct"


def test_settings_reject_bad_port(monkeypatch):
    monkeypatch.setenv("EVALKIT_PORT", "70000")
    with pytest.raises(ValueError):
        Settings()


def test_tool_env_is_offline_and_quiet():
    env = Settings().tool_env()
    assert env["HF_HUB_OFFLINE"] == "1" and env["HF_DATASETS_OFFLINE"] == "1"
    assert env["PROMPTFOO_DISABLE_TELEMETRY"] == "1"
    assert env["PROMPTFOO_DISABLE_REMOTE_GENERATION"] == "true"


def test_online_settings_do_not_force_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert "HF_HUB_OFFLINE" not in Settings(offline=False).tool_env()


def test_embedded_preset_points_at_data():
    preset = get_preset("stories260k")
    assert preset.embedded and (preset.path() / "config.json").exists()
    assert get_preset("Qwen/Qwen2.5-0.5B-Instruct").name == "qwen2.5-0.5b-instruct"


def test_unknown_model_names_the_presets():
    with pytest.raises(errors.UnknownModelError) as info:
        get_preset("gpt-17")
    assert "stories260k" in str(info.value) and "Fix:" in str(info.value)


def test_kv_bytes_per_token_by_hand():
    # Llama-3.1-8B: 2 (K and V) x 32 layers x 8 KV heads x 128 dims x 2 bytes = 131072 bytes = 128 KiB
    assert get_preset("llama-3.1-8b-instruct").kv_bytes_per_token == 131072
    # Qwen2.5-0.5B: 2 x 24 x 2 x 64 x 2 = 12288 bytes
    assert get_preset("qwen2.5-0.5b-instruct").kv_bytes_per_token == 12288


def test_estimate_memory_adds_up():
    est = estimate_memory("llama-3.1-8b-instruct", context_tokens=4096, concurrency=8, gpu_memory_utilization=0.9)
    assert est.weights_gib == pytest.approx(8_030_261_248 * 2 / GIB)
    assert est.kv_cache_gib == pytest.approx(131072 * 4096 * 8 / GIB)  # 4 GiB
    assert est.total_gib == pytest.approx(est.weights_gib + est.kv_cache_gib + RUNTIME_OVERHEAD_GIB)
    assert est.budget_gib == pytest.approx(L4_MEMORY_GIB * 0.9)
    assert est.fits is False  # 14.96 + 4 + 1.5 > 20.25
    room = est.budget_gib - est.weights_gib - RUNTIME_OVERHEAD_GIB
    assert est.max_concurrency_at_context == int(room // (131072 * 4096 / GIB))
    assert "does not fit" in est.why


def test_small_model_fits_and_big_model_does_not():
    assert estimate_memory("qwen2.5-1.5b-instruct", 4096, 8).fits
    big = estimate_memory("qwen2.5-14b-instruct", 1024, 1)
    assert not big.fits and "weights alone" in big.why and big.max_concurrency_at_context == 0


def test_context_is_capped_at_the_model_limit():
    assert estimate_memory("stories260k", context_tokens=4096, concurrency=1).context_tokens == 512


def test_estimate_rejects_nonsense():
    with pytest.raises(ValueError):
        estimate_memory("stories260k", context_tokens=0)


def test_presets_table_has_every_preset():
    table = presets_table()
    assert list(table["model"]) == list(PRESETS)
    fits = dict(zip(table["model"], table["fits_L4"], strict=True))
    assert fits["qwen2.5-0.5b-instruct"] and not fits["qwen2.5-14b-instruct"]
