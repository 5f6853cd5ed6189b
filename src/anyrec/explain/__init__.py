"""Explanations a person can check: the model's own attribution, a faithfulness check, guarded sentences."""

from anyrec.explain.attribution import Attribution, attribute, history_of
from anyrec.explain.sentence import SentenceGuard, explain_sentence, shared_words, template_sentence

__all__ = [
    "Attribution",
    "SentenceGuard",
    "attribute",
    "explain_sentence",
    "history_of",
    "shared_words",
    "template_sentence",
]
