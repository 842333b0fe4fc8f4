r"""The ladder's tokenizer: byte-level BPE trained on the corpus, with a chat template vLLM can render.

A user turn renders as ``Question: {content}\\nAnswer:`` and an assistant turn as `` {content}</s>``, the form
the corpus trains; a system message is put before the first question on a line of its own. Completions get a
``<s>`` in front from the post-processor; the chat template writes its own, so chat prompts carry exactly one.
"""

from __future__ import annotations

import json
from pathlib import Path

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n"
    "{% elif m['role'] == 'user' %}Question: {{ m['content'] }}\nAnswer:"
    "{% else %} {{ m['content'] }}{{ eos_token }}\n{% endif %}{% endfor %}"
)
FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def train_tokenizer(texts, vocab_size: int, folder: Path) -> Path:
    """Train the BPE on ``texts`` (an iterable of strings) and write the tokenizer files into ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS], min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A $B",
                                                             special_tokens=[(BOS, 1)])
    if [tokenizer.token_to_id(t) for t in (PAD, BOS, EOS)] != [0, 1, 2]:
        raise RuntimeError("the special tokens did not get ids 0, 1, 2")
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS, "eos_token": EOS, "pad_token": PAD,
              "unk_token": None, "add_bos_token": True, "add_eos_token": False, "model_max_length": 1024,
              "clean_up_tokenization_spaces": False, "chat_template": CHAT_TEMPLATE}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n")
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}, indent=1) + "\n")
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return folder


def load(folder: Path):
    """The tokenizer as transformers loads it (what vLLM and lm-eval use)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))
