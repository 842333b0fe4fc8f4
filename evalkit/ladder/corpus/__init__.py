r"""The ladder's training corpus, generated from the project's own data and templates, and its manifest.

Five parts, each rendered exactly as evalkit later asks the models (so what is learned is what is measured):

- ``reading``: a help-page paragraph of 2-4 facts about a generated fictional business, a question that names
  one of them, the answer (lm-eval's ``context\\nQuestion: ...\\nAnswer: answer``, the FAQ task's format). Several
  facts of the same kind share a paragraph, so the answer has to be found, not guessed from the question;
- ``faq``: light paraphrases (question wrappers, with or without the header) of HALF of the Harbor Bean FAQ rows,
  alternating within each topic; the other half is never trained, so notebook 03 can measure contamination;
- ``json``: extraction records in the shape of data/format (same schemas and prompt, generated texts and values;
  the items of data/format/extraction.jsonl are held out), plus objects of random shapes for breadth;
- ``refusal``: the training half of AdvBench (even row numbers) answered with short refusals. HarmBench and
  XSTest are never trained, and the safety layer samples AdvBench's held-out (odd) rows;
- ``helpful``: harmless requests with scary words (own templates, not XSTest's prompts) and plain requests,
  answered helpfully, so that "a request gets a refusal" is not what the model learns;
- ``story``: stories written by stories260k (distilled), so the ladder still tells stories.

Chat items are rendered as the ladder's chat template renders a user turn: ``Question: {prompt}\\nAnswer:``.
Every item is a ``(prompt, answer)`` pair; training puts the loss on the answer only (on all of a story).
:func:`check_held_out` refuses a corpus that contains a held-out prompt or shares an 8-word run with one.

The package holds one module per part: :mod:`~evalkit.ladder.corpus.reading` (reading, faq),
:mod:`~evalkit.ladder.corpus.records` (json), :mod:`~evalkit.ladder.corpus.chat` (refusal, helpful),
:mod:`~evalkit.ladder.corpus.heldout` (what must never be trained) and :mod:`~evalkit.ladder.corpus.assemble`
(the whole corpus and its manifest).
"""

from evalkit.fmt import EXTRACTION_PROMPT, shape
from evalkit.ladder.corpus.assemble import generate, manifest, read, write
from evalkit.ladder.corpus.chat import REFUSALS, advbench_split, helpful_items, refusal_items
from evalkit.ladder.corpus.heldout import check_held_out, held_out_texts
from evalkit.ladder.corpus.reading import CHAT, READING, faq_items, faq_split, reading_item
from evalkit.ladder.corpus.records import json_items

__all__ = [
    "CHAT",
    "EXTRACTION_PROMPT",
    "READING",
    "REFUSALS",
    "advbench_split",
    "check_held_out",
    "faq_items",
    "faq_split",
    "generate",
    "held_out_texts",
    "helpful_items",
    "json_items",
    "manifest",
    "read",
    "reading_item",
    "refusal_items",
    "shape",
    "write",
]
