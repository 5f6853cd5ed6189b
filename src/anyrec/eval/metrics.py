"""Ranking and rating metrics, computed from top-K hit matrices.

``hits`` is a boolean ``(users, K)`` matrix: ``hits[u, r]`` is true when the item at
rank ``r`` (0-based) of user ``u``'s list is relevant. ``n_relevant[u]`` is the size of
the user's relevant set. Every metric is computed per user, then averaged over users.
"""

from __future__ import annotations

import numpy as np

RANKING_METRICS = ("recall", "ndcg", "mrr", "hit", "precision", "f1", "map")


def _check(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    if hits.ndim != 2 or hits.shape[0] != n_relevant.shape[0]:
        raise ValueError(
            f"hits must be (users, K) with one row per n_relevant entry, got {hits.shape} and {n_relevant.shape}"
        )
    if k < 1 or k > hits.shape[1]:
        raise ValueError(f"k={k} must lie in 1..{hits.shape[1]}")
    if (n_relevant < 1).any():
        raise ValueError("every user needs at least one relevant item")
    return hits[:, :k].astype(np.float64)


def recall(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user share of relevant items found in the top k."""
    return _check(hits, n_relevant, k).sum(1) / n_relevant


def precision(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user share of the top k that is relevant."""
    return _check(hits, n_relevant, k).sum(1) / k


def hit_rate(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """1 if any relevant item is in the top k."""
    return (_check(hits, n_relevant, k).sum(1) > 0).astype(np.float64)


def f1(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user harmonic mean of precision@k and recall@k (0 when both are 0)."""
    p, r = precision(hits, n_relevant, k), recall(hits, n_relevant, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p + r > 0, 2 * p * r / (p + r), 0.0)


def ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Binary-relevance NDCG@k; the ideal DCG places min(|relevant|, k) hits first."""
    h = _check(hits, n_relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = h @ discounts
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return dcg / ideal


def mrr(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank of the first relevant item within the top k (0 if none)."""
    h = _check(hits, n_relevant, k)
    first = h.argmax(1)
    return np.where(h.any(1), 1.0 / (first + 1), 0.0)


def average_precision(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """AP@k = Σ_r precision@r · rel_r / min(|relevant|, k)."""
    h = _check(hits, n_relevant, k)
    prec_at = np.cumsum(h, 1) / np.arange(1, k + 1)
    return (prec_at * h).sum(1) / np.minimum(n_relevant, k)


PER_USER = {
    "recall": recall,
    "ndcg": ndcg,
    "mrr": mrr,
    "hit": hit_rate,
    "precision": precision,
    "f1": f1,
    "map": average_precision,
}


def coverage(top_items: np.ndarray, k: int, n_candidates: int) -> float:
    """Share of the candidate items that appear in at least one user's top k (``-1`` pads ignored)."""
    shown = top_items[:, :k]
    return float(np.unique(shown[shown >= 0]).shape[0]) / max(1, n_candidates)


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(predicted, dtype=np.float64) - actual)))


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(predicted, dtype=np.float64) - actual) ** 2)))
