"""Which history items drove a recommendation, by the model's own account.

Every model answers with the same shape: the user's distinct history items (rows) × the
recommended items (columns), each cell that history item's contribution to the item's score.

- ``zeroshot``: exact terms. The text score is ``Σ_h w_h cos(h, i) / |Σ_h w_h v_h|``, so each
  history item's term is its share and the terms add up to the score.
- ``itemknn``: the item–item similarity, which is what the score sums.
- every other model that scores a live history (``sequential``, ``sasrec``, ``generative``):
  a deletion test — the item's score with the whole history minus its score with that one
  history item removed. What removing an item does to the score is what it contributed.

Models without a history-based score (ALS, BPR: learned user rows; popularity: no history)
have no attribution; their rows are empty and the explanation says so rather than inventing one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.models.base import Recommender
from anyrec.models.feedback import RatingScale


@dataclass
class Attribution:
    """``shares[h, j]``: contribution of history item ``history[h]`` to target ``targets[j]``."""

    history: np.ndarray  # (n_history,) distinct history items, in order of first appearance
    targets: np.ndarray  # (n_targets,)
    shares: np.ndarray  # (n_history, n_targets)
    method: str  # "text terms" | "co-occurrence" | "deletion" | "none"

    def top(self, j: int, n: int = 3) -> list[tuple[int, float]]:
        """The ``n`` history items with the largest positive share for target ``j``, largest first."""
        if not len(self.history):
            return []
        col = self.shares[:, j]
        order = np.argsort(-col, kind="stable")[:n]
        return [(int(self.history[b]), float(col[b])) for b in order if col[b] > 0]


def _finite(scores: np.ndarray) -> np.ndarray:
    """Scores outside a model's candidate set (``-inf``, e.g. outside the generative beam) sit just
    below the lowest finite score, so a deletion that drops an item out of the beam counts as a fall."""
    scores = np.asarray(scores, dtype=np.float64)
    fin = np.isfinite(scores)
    if fin.all():
        return scores
    floor = float(scores[fin].min()) - 1.0 if fin.any() else 0.0
    return np.where(fin, scores, floor)


def live_scores(
    model: Recommender, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None
) -> np.ndarray:
    """``model.score_history`` with ``-inf`` mapped as :func:`_finite` does; an error for models that read no
    history."""
    scores = model.score_history(items, weights, values)
    if scores is None:
        raise ConfigError(
            f"model {model.name!r} scores fitted user rows, not a given history: it has no deletion attribution"
        )
    return _finite(scores)


def attribute(
    model: Recommender, items: np.ndarray, weights: np.ndarray, targets: np.ndarray, values: np.ndarray | None = None
) -> Attribution:
    """Contributions of a history (``items`` oldest first, event ``weights``, optional rating
    ``values``) to the scores of ``targets``, by the model's own attribution (see the module doc)."""
    items = np.asarray(items, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    _, first = np.unique(items, return_index=True)
    hist = items[np.sort(first)]
    empty = Attribution(hist[:0], targets, np.zeros((0, len(targets))), "none")
    inner = model.behind()
    if inner is not None:  # a ranking stage: the history behind the retrieval (a deletion through
        att = attribute(inner, items, weights, targets, values)  # the ranker costs depth × history pairs per item)
        return Attribution(att.history, att.targets, att.shares, f"{att.method} (retriever)")
    if not len(items):
        return empty
    own = model.history_attribution(hist, items, weights, targets, values)
    if own is not None:  # the model's exact account (zero-shot's text terms, item-kNN's similarities)
        shares, method = own
        return empty if method == "none" else Attribution(hist, targets, shares, method)
    if (
        type(model).score_history is Recommender.score_history
    ):  # learned user rows (ALS, BPR): no history to delete from
        return empty
    base = live_scores(model, items, weights, values)[targets]
    shares = np.zeros((len(hist), len(targets)))
    for r, h in enumerate(hist):
        keep = items != h
        shares[r] = (
            base
            - live_scores(model, items[keep], weights[keep], None if values is None else np.asarray(values)[keep])[
                targets
            ]
        )
    return Attribution(hist, targets, shares, "deletion")


def history_of(ds: Dataset, user: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted user's history as the service holds it: items oldest first (ties by row), each of
    weight 1 — or, where the log has ratings, their signed weights on the default scale
    (:class:`~anyrec.models.feedback.RatingScale`), as the rating events a store seeded from this
    log holds. Low-rated items then push rather than pull, and are never cited as reasons."""
    index = ds.interactions.history(ds.n_users)
    items = np.array(index.of(user), dtype=np.int64)
    rating = ds.interactions.rating
    if rating is None or not len(rating) or float(np.ptp(rating)) == 0:
        return items, np.ones(len(items))
    scale = RatingScale()
    values = np.clip(np.asarray(rating[index.rows(user)], dtype=np.float64), scale.low, scale.high)
    return items, scale.weight(values)
