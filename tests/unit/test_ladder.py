"""The ladder's corpus, tokenizer and specs: held-out data stays out, shapes suit vLLM's CPU build."""

import json

import pytest

from evalkit.errors import ConfigError
from evalkit.ladder import corpus
from evalkit.ladder.specs import LADDER, TINY, spec
from evalkit.models import PRESETS, check_model_folder

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def items():
    return corpus.generate(3000, ["Once upon a time a small dog found a red ball and was happy."] * 5, seed=1)


def test_corpus_has_every_part_and_no_held_out_text(items):
    parts = {i["part"] for i in items}
    assert parts == {"reading", "json", "refusal", "helpful", "faq", "story"}
    checked = corpus.check_held_out(items)
    assert checked["xstest"] == 450 and checked["harmbench"] == 400 and checked["format"] == 16


def test_check_held_out_catches_a_leak(items):
    xstest = corpus.held_out_texts()["xstest"][0]
    leaked = [*items, {"part": "helpful", "prompt": corpus.CHAT.format(prompt=xstest + " please tell me now"),
                       "answer": "Sure."}]
    # a short XSTest prompt has no 8-word run: use a long held-out text instead
    long_text = max(corpus.held_out_texts()["harmbench"], key=len)
    leaked.append({"part": "helpful", "prompt": corpus.CHAT.format(prompt=long_text), "answer": "Sure."})
    with pytest.raises(ConfigError, match="harmbench"):
        corpus.check_held_out(leaked)


def test_faq_split_keeps_shared_paragraphs_together():
    trained, held = corpus.faq_split()
    assert len(trained) + len(held) == 52 and abs(len(trained) - len(held)) <= 6
    assert not {r["context"] for r in trained} & {r["context"] for r in held}
    topics = {r["topic"] for r in held}
    assert len(topics) == 10  # every topic has held-out rows


def test_faq_items_only_use_trained_rows(items):
    _, held = corpus.faq_split()
    held_questions = {r["question"] for r in held}
    assert not any(q in i["prompt"] for i in items if i["part"] == "faq" for q in held_questions)


def test_json_answers_match_their_schema(items):
    from jsonschema import validate

    from evalkit.fmt.items import load_extraction

    schemas = {it.schema_file: it.schema for it in load_extraction()}
    checked = 0
    for item in items:
        if item["part"] != "json":
            continue
        for schema in schemas.values():
            if corpus.shape(schema) in item["prompt"]:
                validate(json.loads(item["answer"]), schema)
                checked += 1
    assert checked > 100


def test_advbench_split_trains_no_held_out_goal():
    trained, held = corpus.advbench_split()
    assert len(held) == 260 and 150 < len(trained) <= 260
    assert not set(trained) & set(held)


def test_specs_suit_vllm_cpu_and_ladder_is_a_ladder():
    sizes = [s.params for s in LADDER if s.refusals]
    assert all(s.head_dim >= 32 for s in (*LADDER, TINY))
    assert all(b >= 3 * a for a, b in zip(sizes, sizes[1:], strict=False))
    control = [s for s in LADDER if not s.refusals]
    assert len(control) == 1 and "control" in control[0].name
    with pytest.raises(ConfigError, match="Unknown ladder model"):
        spec("ladder-xxl")


@pytest.mark.parametrize("item", LADDER, ids=lambda s: s.name)
def test_committed_ladder_models_match_their_spec(item):
    from safetensors.torch import load_file

    preset = PRESETS[item.name]
    config = check_model_folder(preset.path(), "cpu")
    assert config["hidden_size"] == item.dim and config["num_hidden_layers"] == item.layers
    weights = load_file(str(preset.path() / "model.safetensors"))
    assert sum(t.numel() for t in weights.values()) == item.params == preset.params


def test_chat_template_renders_the_trained_form():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(PRESETS["ladder-s"].path()))
    text = tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "How do I make tea?"}], tokenize=False)
    assert text == "<s>Be brief.\nQuestion: How do I make tea?\nAnswer:"
    assert tok("Hello").input_ids[0] == tok.bos_token_id
