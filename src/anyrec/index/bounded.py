"""The exact top k of a sum of terms, from each term's short best-first list.

A model whose score is a sum of terms — a cosine to a profile, an inner product in the model's
space, a prior the same for every user — can be cut to its top k without scoring every item:
each term gives its best N items (a vector index's nearest ones, or a fixed order), the union of
those lists is scored exactly, and an item in no list scores at most the sum of the lists' last
values (plus a ``slack`` for parts no list covers). When the k-th best candidate beats that bound,
the candidates' top k is the catalog's (Fagin's threshold rule, one round; up to the index's own
recall of its term's top N). Otherwise the answer is ``None`` and the caller scores every item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from anyrec.index.vector import VectorIndex
from anyrec.models.scoring import top_k


@dataclass
class Term:
    """One term's best-first list: its ``ids`` and ``floor``, the most the term gives an item not in
    ``ids`` (``-inf`` when the list holds every item)."""

    ids: np.ndarray
    floor: float


def index_term(index: VectorIndex, query: np.ndarray, fetch: int, scale: float = 1.0) -> Term | None:
    """The ``fetch`` nearest items of ``query`` in ``index``, for a term ``scale * <item, query>``
    (``scale`` ≥ 0); ``None`` when the index returned fewer items than asked and not all it holds
    (IVF probing too few lists): then nothing bounds the items it skipped."""
    ids, values = index.search(np.asarray(query, dtype=np.float32)[None, :], min(fetch, len(index)))
    ids, values = ids[0], values[0]
    found = ids >= 0
    if not found.all() and found.sum() < len(index):
        return None
    if found.sum() >= len(index):
        return Term(ids[found], -np.inf)
    return Term(ids, scale * float(values[-1]))


def order_term(order: np.ndarray, values: np.ndarray, fetch: int) -> Term:
    """A term that is the same for every request (a prior): its items best first and their values."""
    head = order[:fetch]
    return Term(head, float(values[head[-1]]) if len(head) < len(order) else -np.inf)


def bounded_top_k(terms: list[Term], score: Callable[[np.ndarray], np.ndarray], k: int, allowed: np.ndarray,
                  slack: float = 0.0) -> tuple[np.ndarray, np.ndarray] | None:
    """``(items, scores)``: the top ``k`` allowed items by ``score`` (exact scores of an id array), or ``None``.

    Candidates are scored in item order, so equal scores follow the house tie rule (lower index
    first); an item outside every list that could equal the k-th score also gives ``None``."""
    cand = np.unique(np.concatenate([t.ids for t in terms]))
    cand = cand[allowed[cand]]
    if len(cand) < k:
        return None
    scores = np.asarray(score(cand), dtype=np.float64)
    order = top_k(scores, k)
    bound = sum(t.floor for t in terms) + slack
    if len(order) < k or not scores[order[-1]] > bound:
        return None
    return cand[order], scores[order]
