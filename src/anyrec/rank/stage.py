"""retrieve (any model, top N) → rank (a slower, stronger scorer) → filter, as one recommender.

:class:`Reranked` wraps a fitted retriever and a ranker (anything with
``score(histories, candidates) -> (users, n)``: the click classifier, the LM scorer). For each
user the retriever's top ``depth`` unseen items are re-scored and placed, in the new order,
above every other item; the rest keep the retriever's order below them. So the same evaluator,
the same masks and the same tie rule read it as any other model.

The new order blends the two scores, each standardised within the user's candidate list:
``blend · z(ranker) + (1 − blend) · z(retriever)``; ``blend`` is chosen on validation (1 = the
ranker alone, 0 = the retriever alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.models.base import Filters, Recommender
from anyrec.models.scoring import mask_rows, top_k


class Ranker(Protocol):
    def score(self, histories: Sequence[np.ndarray], candidates: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class RerankedConfig:
    depth: int = 20
    blend: float = 1.0


def sequences(ds: Dataset) -> list[np.ndarray]:
    """Each user's items oldest first (ties in file order)."""
    return ds.interactions.sequences(ds.n_users)


def standardise(x: np.ndarray) -> np.ndarray:
    """Each row minus its mean over its std (over finite entries); non-finite entries become −1e6."""
    x = np.where(np.isfinite(x), x, np.nan)
    mu, sd = np.nanmean(x, axis=1, keepdims=True), np.nanstd(x, axis=1, keepdims=True)
    return np.nan_to_num((x - mu) / np.where(sd > 0, sd, 1.0), nan=-1e6)


def blend_scores(retrieved: np.ndarray, ranked: np.ndarray, blend: float) -> np.ndarray:
    """``blend · z(ranked) + (1 − blend) · z(retrieved)``, row-wise over candidate lists."""
    return blend * standardise(ranked) + (1.0 - blend) * standardise(retrieved)


def candidates(base: np.ndarray, depth: int) -> np.ndarray:
    """The top ``depth`` allowed items per row of retriever scores ``(users, depth)`` (−1 pads short rows)."""
    d = min(depth, base.shape[1])
    out = np.full((base.shape[0], d), -1, dtype=np.int64)
    for r, row in enumerate(base):
        best = top_k(row, d)
        out[r, : len(best)] = best
    return out


def rerank(base: np.ndarray, histories: Sequence[np.ndarray], ranker: Ranker, depth: int, blend: float) -> np.ndarray:
    """Scores with each row's top ``depth`` above the rest, in blended order; every other item as the
    retriever had it (``-inf`` stays ``-inf``: nothing masked comes back)."""
    cands = candidates(base, depth)
    valid = cands >= 0
    safe = np.where(valid, cands, 0)
    ranked = ranker.score(histories, safe)
    rows = np.arange(len(base))[:, None]
    retrieved = np.where(valid, base[rows, safe], -np.inf)
    new = blend_scores(retrieved, np.where(valid, ranked, -np.inf), blend)
    out = base.copy()
    finite = np.isfinite(base)
    top = np.where(finite.any(axis=1), np.where(finite, base, -np.inf).max(axis=1), 0.0)
    lift = top[:, None] + 1.0 + (new - new.min(axis=1, keepdims=True))  # every candidate above every other item
    r_idx, c_idx = np.nonzero(valid)
    out[r_idx, cands[r_idx, c_idx]] = lift[r_idx, c_idx]
    return out


class Reranked(Recommender):
    """A retriever's top ``depth`` re-ordered by a ranker (see the module doc)."""

    name = "reranked"
    Config = RerankedConfig

    def __init__(self, retriever: Recommender, ranker: Ranker, config: RerankedConfig | None = None, **kw: Any) -> None:
        super().__init__(config, **kw)
        self.retriever, self.ranker = retriever, ranker
        if retriever.is_fitted():
            self._adopt()

    def _adopt(self) -> None:
        r = self.retriever
        self.n_users_, self.n_items_, self.seen_ = r.n_users_, r.n_items_, r.seen_
        self.user_ids_, self.item_ids_ = r.user_ids_, r.item_ids_

    def _fit(self, ds: Dataset) -> None:
        self.retriever.fit(ds)
        self.seqs_ = sequences(ds)

    def set_history(self, ds: Dataset) -> None:
        self.retriever.set_history(ds)
        self._adopt()
        self.seqs_ = sequences(ds)

    def behind(self) -> Recommender:
        return self.retriever

    def candidates(self, base: np.ndarray) -> np.ndarray:
        return candidates(base, self.config.depth)

    def rerank(self, base: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        return rerank(base, histories, self.ranker, self.config.depth, self.config.blend)

    def score(self, users: np.ndarray) -> np.ndarray:
        base = self.retriever.masked_scores(users, exclude_seen=True)
        return self.rerank(base, [self.seqs_[int(u)] for u in users])

    def masked_scores(self, users: np.ndarray, exclude_seen: bool = True, filters: Filters | None = None) -> np.ndarray:
        """The candidates are the best items that survive the same masks and filters (a filter
        applied after re-ranking would leave fewer than ``depth`` re-ranked items in the list)."""
        users = self._checked_users(users)
        base = self.retriever.masked_scores(users, exclude_seen, filters)
        if exclude_seen:
            mask_rows(base, self.seen_, users)
        return self.rerank(base, [self.seqs_[int(u)] for u in users])

    def score_history(
        self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None
    ) -> np.ndarray | None:
        base = self.retriever.score_history(items, weights, values)
        if base is None:
            return None
        base = np.asarray(base, dtype=np.float64).copy()
        items = np.asarray(items, dtype=np.int64)
        base[items[items < len(base)]] = -np.inf  # candidates are items the user has not touched
        return self.rerank(base[None, :], [items[np.asarray(weights) > 0]])[0]
