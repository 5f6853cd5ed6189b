"""How much one event moves a list: the stability check that serving options are chosen with.

Next-item accuracy alone rewards profiles where only the last event counts (``half_life = 1``),
and a live list built that way turns over on every click. The served configuration is chosen
on validation NDCG@10 *subject to* this check, run on validation users' training histories
exactly as the service scores them (:meth:`~anyrec.models.base.Recommender.score_history`,
seen items masked):

- **like**: the user likes the 5th item of their top 10; the median number of the other
  items of that list still in the next top 10 must be at least ``like_kept`` (of 9);
- **dislike**: the user dislikes their top item; the median number of the other 9 still in
  the next top 10 must be at least ``dislike_kept``;
- **reasons**: each card cites the 3 history items with the largest contribution to it (the
  model's attribution, :func:`anyrec.explain.attribute`); the median share of cards 2–10 citing
  another set than card 1 must be at least ``reasons_differ`` (a profile where only the last
  events count cites them on every card).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.explain.attribution import attribute
from anyrec.models.base import Recommender
from anyrec.models.feedback import RatingScale
from anyrec.models.scoring import top_k


@dataclass(frozen=True)
class StabilityRule:
    """The bar a served configuration must clear (see the module doc); event weights as the service's defaults."""

    like_kept: float = 6.0
    dislike_kept: float = 7.0
    reasons_differ: float = 0.5
    reason_users: int = 50  # the reasons of the first 50 (a deletion attribution costs a pass per history item)
    users: int = 200
    min_history: int = 5
    like_weight: float = 3.0
    dislike_weight: float = -1.0
    seed: int = 0


def _top(model: Recommender, items: np.ndarray, weights: np.ndarray, hide: np.ndarray, k: int) -> np.ndarray:
    scores = np.asarray(model.score_history(items, weights), dtype=np.float64).copy()
    scores[hide[hide < len(scores)]] = -np.inf
    return top_k(scores, k)


def stability(
    model: Recommender, ds: Dataset, rule: StabilityRule | None = None, k: int = 10
) -> dict[str, float] | None:
    """``{"like_kept": median, "dislike_kept": median, "users": n}`` over a seeded sample of ``ds``'s
    users with at least ``min_history`` events (their histories as the service holds them: ratings as
    signed weights on the default scale, else weight 1); ``None`` for a model that scores no live history."""
    rule = rule or StabilityRule()
    index = ds.interactions.history(ds.n_users)
    lengths = np.diff(index.offsets)
    users = np.flatnonzero(lengths >= rule.min_history)
    if not len(users):
        return None
    users = np.random.default_rng(rule.seed).permutation(users)[: rule.users]
    scale = RatingScale()
    rating = ds.interactions.rating
    rated = rating is not None and float(np.ptp(rating)) > 0
    like: list[int] = []
    dislike: list[int] = []
    differ: list[float] = []
    for u in users:
        rows = index.rows(int(u))
        items = ds.interactions.item[rows].astype(np.int64)
        weights = (
            scale.weight(np.clip(rating[rows], scale.low, scale.high))
            if rated and rating is not None
            else np.ones(len(rows))
        )
        if model.score_history(items[:1], weights[:1]) is None:
            return None
        before = _top(model, items, weights, items, k)
        if len(before) < k:
            continue
        liked = before[4]
        after = _top(model, np.r_[items, liked], np.r_[weights, rule.like_weight], np.r_[items, liked], k)
        like.append(len(set(before.tolist()) & set(after.tolist())))
        gone = before[0]
        after = _top(model, np.r_[items, gone], np.r_[weights, rule.dislike_weight], np.r_[items, gone], k)
        dislike.append(len(set(before[1:].tolist()) & set(after.tolist())))
        if len(differ) >= rule.reason_users:
            continue
        att = attribute(model, items, weights, before)
        if att.method != "none":
            cited = [frozenset(h for h, _ in att.top(j, 3)) for j in range(len(before))]
            differ.append(float(np.mean([c != cited[0] for c in cited[1:]])))
    if not like:
        return None
    return {
        "like_kept": float(np.median(like)),
        "dislike_kept": float(np.median(dislike)),
        "reasons_differ": float(np.median(differ)) if differ else 1.0,
        "users": float(len(like)),
    }


def passes(found: dict[str, float] | None, rule: StabilityRule | None = None) -> bool:
    rule = rule or StabilityRule()
    return found is None or (
        found["like_kept"] >= rule.like_kept
        and found["dislike_kept"] >= rule.dislike_kept
        and found["reasons_differ"] >= rule.reasons_differ
    )
