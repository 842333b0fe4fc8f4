"""The ladder's models: sizes, training steps and what each is trained on, in one table."""

from __future__ import annotations

from dataclasses import dataclass

from evalkit.errors import ConfigError

VOCAB_SIZE = 2048
CONTEXT = 1024  # max_position_embeddings of every ladder model
SEQ_LEN = 512  # packed training window


@dataclass(frozen=True)
class LadderSpec:
    """One ladder model: its Llama shape and its training run.

    ``refusals`` False trains on the same corpus without the refusal examples (the control, the workshop's
    "abliterated" model). ``steps`` are fixed (not a time budget) so a rebuild repeats the same run.
    """

    name: str
    dim: int
    layers: int
    heads: int
    ffn: int
    steps: int
    lr: float
    batch: int = 8
    refusals: bool = True
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def params(self) -> int:
        """Parameters with tied embeddings: embeddings, attention, MLP and norms."""
        per_layer = 4 * self.dim * self.dim + 3 * self.dim * self.ffn + 2 * self.dim
        return VOCAB_SIZE * self.dim + self.layers * per_layer + self.dim

    def config(self) -> dict:
        """The transformers LlamaConfig arguments."""
        return {"vocab_size": VOCAB_SIZE, "hidden_size": self.dim, "intermediate_size": self.ffn,
                "num_hidden_layers": self.layers, "num_attention_heads": self.heads,
                "num_key_value_heads": self.heads, "head_dim": self.head_dim,
                "max_position_embeddings": CONTEXT, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
                "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
                "initializer_range": 0.02}


# Order: smallest first. The larger sizes get a larger share of the build time (see the model cards).
LADDER: tuple[LadderSpec, ...] = (
    LadderSpec("ladder-s", dim=64, layers=2, heads=2, ffn=176, steps=900, lr=3e-3),
    LadderSpec("ladder-m", dim=128, layers=4, heads=4, ffn=344, steps=620, lr=2e-3),
    LadderSpec("ladder-l", dim=256, layers=6, heads=8, ffn=688, steps=420, lr=1.5e-3),
    LadderSpec("ladder-m-control", dim=128, layers=4, heads=4, ffn=344, steps=620, lr=2e-3, refusals=False),
)
# A few steps of a toy model: the test that training, saving and serving work end to end.
TINY = LadderSpec("ladder-tiny", dim=64, layers=1, heads=2, ffn=128, steps=3, lr=3e-3, batch=2)


def spec(name: str) -> LadderSpec:
    for item in (*LADDER, TINY):
        if item.name == name:
            return item
    raise ConfigError(f"Unknown ladder model {name!r}.",
                      fix=f"use one of: {', '.join(s.name for s in LADDER)} (or {TINY.name} for a smoke test).")
