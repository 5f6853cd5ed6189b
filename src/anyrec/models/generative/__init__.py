"""Generative retrieval: semantic ids from text vectors (:mod:`.codes`), the code trie (:mod:`.trie`),
the decoder (:mod:`.decoder`) and its training (:mod:`.train`), and the recommender over them (:mod:`.model`)."""

from anyrec.models.generative.config import GenerativeConfig
from anyrec.models.generative.model import Generative, describe

__all__ = ["Generative", "GenerativeConfig", "describe"]
