"""Retrieval from a saved version's vector indexes once the catalog is large.

The model says which indexes it searches and how its score splits into their terms
(:meth:`~anyrec.models.base.Recommender.index_query`). Zero-shot scores ``cos(item, profile) + prior``: its text index
gives the cosine term's best
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
        """``None`` unless the version has every FAISS index its model retrieves from."""
        faiss = {name: ix for name, ix in indexes.items() if isinstance(ix, FaissIndex)}
        names = model.retrieval_indexes()
        if not names or any(n not in faiss for n in names):
            return None
        return cls(model, {n: faiss[n] for n in names}, min_items)

    def applies(self, n_items: int) -> bool:
        return n_items >= self.min_items

    def add(self, start: int, vectors: np.ndarray) -> None:
        """New catalog items (already added to the model): their rows join every index — the text index
        their text vectors, any other index the model's table of that name."""
        ids = np.arange(start, start + len(vectors))
        tables = self.model.index_tables(approximate=True) if set(self.indexes) - {"text"} else {}
        for name, index in self.indexes.items():
            index.add(ids, self.model.text_query(vectors) if name == "text" else tables[name][0][start:])

    def top(
        self, items: np.ndarray, weights: np.ndarray, values: np.ndarray, allowed: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(items, scores)``, the exact top ``k`` among ``allowed`` items, or ``None``: score every item."""
        fetch = min(len(allowed), max(ANN_CANDIDATES, 4 * k) + int((~allowed).sum()))
        query = self.model.index_query(items, weights, values)
        if query is None:
            return None
        terms: list[Term | None] = [
            index_term(self.indexes[name], q, fetch, scale) for name, (q, scale) in query.terms.items()
        ]
        if query.prior is not None:
            terms.append(order_term(self._prior_order(query.prior), query.prior, fetch))
        return _cut(terms, query.exact, k, allowed, query.slack)

    def _prior_order(self, priors: np.ndarray) -> np.ndarray:
        """Items by prior, best first (cached per prior array: catalog changes and config make a new one)."""
        if self._prior_cache is None or self._prior_cache[0] is not priors:
            self._prior_cache = (priors, np.argsort(-priors, kind="stable"))
        return self._prior_cache[1]


def _cut(
    terms: list[Term | None], score: Callable[[np.ndarray], np.ndarray], k: int, allowed: np.ndarray, slack: float
) -> tuple[np.ndarray, np.ndarray] | None:
    found = [t for t in terms if t is not None]
    if len(found) < len(terms):
        return None  # an index searched too little of itself (e.g. IVF lists): no bound on the rest
    return bounded_top_k(found, score, k, allowed, slack)
