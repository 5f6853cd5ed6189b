"""Retrieval from a saved version's vector indexes once the catalog is large.

Zero-shot scores ``cos(item, profile) + prior``: its text index gives the cosine term's best
items, the priors (the same for every user) their own order. Sequential scores
``<item, q>`` in the model's space, plus ``text_blend * cos(item, profile)``: its model-space
index (inner product) and its text index give the two lists. Either way the union is scored
exactly by the model and kept only when the threshold rule proves it is the catalog's top k
(:mod:`anyrec.index.bounded`); otherwise the caller scores every item.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from anyrec.index.bounded import Term, bounded_top_k, index_term, order_term
from anyrec.index.vector import FaissIndex, VectorIndex
from anyrec.models.base import Recommender
from anyrec.models.sequential import Sequential
from anyrec.models.zeroshot import ZeroShot

ANN_CANDIDATES = 1_000  # retrieved per term and request before exact scoring


class AnnRetrieval:
    """The indexes of one model version and the rule that cuts its lists from them."""

    def __init__(self, model: Recommender, indexes: dict[str, VectorIndex], min_items: int) -> None:
        self.model = model
        self.indexes = indexes
        self.min_items = min_items
        self._prior_cache: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def for_model(cls, model: Recommender, indexes: dict[str, VectorIndex], min_items: int) -> AnnRetrieval | None:
        """``None`` unless the version has the FAISS indexes its model retrieves from."""
        faiss = {name: ix for name, ix in indexes.items() if isinstance(ix, FaissIndex)}
        if isinstance(model, ZeroShot) and "text" in faiss and model.config.interests <= 1:
            return cls(model, {"text": faiss["text"]}, min_items)
        if isinstance(model, Sequential) and "model" in faiss:
            cfg = model.config
            needs_text = cfg.text_blend > 0 and cfg.use_text
            if needs_text and "text" not in faiss:
                return None
            return cls(model, {k: v for k, v in faiss.items() if k == "model" or needs_text}, min_items)
        return None

    def applies(self, n_items: int) -> bool:
        return n_items >= self.min_items

    def add(self, start: int, vectors: np.ndarray) -> None:
        """New catalog items (already added to the model): their rows join every index."""
        ids = np.arange(start, start + len(vectors))
        if "text" in self.indexes:
            self.indexes["text"].add(ids, vectors)
        if "model" in self.indexes:
            assert isinstance(self.model, Sequential)
            self.indexes["model"].add(ids, self.model.item_space()[start:])

    def top(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray, allowed: np.ndarray,
            k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(items, scores)``, the exact top ``k`` among ``allowed`` items, or ``None``: score every item."""
        fetch = min(len(allowed), max(ANN_CANDIDATES, 4 * k) + int((~allowed).sum()))
        model = self.model
        terms: list[Term | None]
        if isinstance(model, ZeroShot):
            prof = model.history_profile(items, weights, values)
            priors = model.priors()
            # The index scores cosines; the term is <item, profile> = |profile| * cosine (unit item vectors).
            terms = [index_term(self.indexes["text"], prof, fetch, float(np.linalg.norm(prof))),
                     order_term(self._prior_order(priors), priors, fetch)]
            vectors = model.item_vectors_

            def score(cand: np.ndarray) -> np.ndarray:
                return np.asarray(vectors[cand] @ prof + priors[cand], dtype=np.float64)

            return _cut(terms, score, k, allowed, 0.0)
        assert isinstance(model, Sequential)
        queries = model.retrieval_queries(items, weights)
        if queries is None:
            return None
        q, profile, slack = queries
        terms = [index_term(self.indexes["model"], q, fetch)]
        if profile is not None:
            terms.append(index_term(self.indexes["text"], profile, fetch, model.config.text_blend))
        return _cut(terms, lambda cand: model.score_candidates(queries, items, weights, cand), k, allowed, slack)

    def _prior_order(self, priors: np.ndarray) -> np.ndarray:
        """Items by prior, best first (cached per prior array: catalog changes and config make a new one)."""
        if self._prior_cache is None or self._prior_cache[0] is not priors:
            self._prior_cache = (priors, np.argsort(-priors, kind="stable"))
        return self._prior_cache[1]


def _cut(terms: list[Term | None], score: Callable[[np.ndarray], np.ndarray], k: int, allowed: np.ndarray,
         slack: float) -> tuple[np.ndarray, np.ndarray] | None:
    found = [t for t in terms if t is not None]
    if len(found) < len(terms):
        return None  # an index searched too little of itself (e.g. IVF lists): no bound on the rest
    return bounded_top_k(found, score, k, allowed, slack)
