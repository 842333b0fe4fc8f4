"""The offline model ladder: small Llama models trained by the project so that model size and tuning show.

``corpus`` writes the training text from the project's own data and templates (and a manifest of what is
trained and what is held out), ``tokenizer`` builds a byte-level BPE tokenizer with a chat template,
``train`` trains one model with resumable checkpoints, ``build`` runs the whole ladder (``evalkit ladder build``,
``make ladder``). The committed models live in data/models/ladder-*; nothing here runs at evaluation time.
"""

from evalkit.ladder.specs import LADDER, LadderSpec, spec

__all__ = ["LADDER", "LadderSpec", "spec"]
