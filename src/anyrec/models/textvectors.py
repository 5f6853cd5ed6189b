"""Helpers of the text-profile model: a bounded cache of scored batches, a profile's exact terms,
spherical k-means for multi-interest profiles."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np


class SimilarityCache:
    """Arrays by ``(group, key)`` within ``budget`` bytes.

    When full, arrays of *other* groups go first (least recently used first); arrays of the group
    being stored are never pushed out by their own group: a sweep over more batches than fit would
    otherwise evict each batch just before the next sweep needs it, and keep nothing useful.
    """

    def __init__(self, budget: int) -> None:
        self.budget, self.used = budget, 0
        self.items: OrderedDict[tuple[Any, Any], np.ndarray] = OrderedDict()

    def get(self, group: Any, key: Any) -> np.ndarray | None:
        found = self.items.get((group, key))
        if found is not None:
            self.items.move_to_end((group, key))
        return found

    def put(self, group: Any, key: Any, value: np.ndarray) -> None:
        if value.nbytes > self.budget:
            return
        for old in [k for k in self.items if k[0] != group]:
            if self.used + value.nbytes <= self.budget:
                break
            self.used -= self.items.pop(old).nbytes
        if self.used + value.nbytes <= self.budget:
            self.items[(group, key)] = value
            self.used += value.nbytes


def text_contributions(unit: np.ndarray, items: np.ndarray, weights: np.ndarray, targets: np.ndarray,
                       top: int = 3) -> list[list[tuple[int, float]]]:
    """Per target, the history items with the largest positive terms of ``cos(profile, target)``.

    ``profile = Σ_h w_h v_h / |Σ_h w_h v_h|`` over unit text vectors ``unit``; a repeated item's
    weights add up, so the terms sum to the text score exactly.
    """
    items = np.asarray(items, dtype=np.int64)
    if not len(items):
        return [[] for _ in targets]
    uniq, inv = np.unique(items, return_inverse=True)
    wu = np.bincount(inv, weights=np.asarray(weights, dtype=np.float64))
    vecs = unit[uniq]
    norm = max(float(np.linalg.norm(wu @ vecs)), 1e-12)
    terms = wu[:, None] * (vecs @ unit[np.asarray(targets, dtype=np.int64)].T) / norm  # (history, targets)
    out = []
    for j in range(terms.shape[1]):
        best = np.argsort(-terms[:, j], kind="stable")[:top]
        out.append([(int(uniq[b]), float(terms[b, j])) for b in best if terms[b, j] > 0])
    return out


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 10) -> np.ndarray:
    """Spherical k-means labels for the rows of ``x`` (unit vectors)."""
    if k <= 1:
        return np.zeros(x.shape[0], dtype=np.int64)
    centres = x[rng.choice(x.shape[0], size=k, replace=False)]
    labels = np.zeros(x.shape[0], dtype=np.int64)
    for _ in range(iterations):
        labels = np.argmax(x @ centres.T, axis=1)
        for c in range(k):
            members = x[labels == c]
            if len(members):
                m = members.sum(0)
                centres[c] = m / max(float(np.linalg.norm(m)), 1e-12)
    return labels
