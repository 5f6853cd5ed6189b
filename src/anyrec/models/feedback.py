"""How a history becomes a profile, and how negative feedback acts on a list.

Three rules every history model that serves live shares:

- **A long and a short term.** A history item's weight is ``(1 - short_term) / n`` (the long
  term: every item alike) plus ``short_term · r / Σ r`` with ``r = 0.5 ** (steps back / half_life)``
  (the short term: the latest items). Each part sums to 1, so ``short_term`` is the short term's
  share of the profile whatever the history's length; ``short_term = 1`` is the old recency-only
  profile, ``0`` the plain mean.
- **Ratings mean what they say.** A rating is a signed weight on a declared scale
  (:class:`RatingScale`): above the neutral point it pulls, below it pushes away.
- **Negative feedback nudges.** A disliked (or low-rated) item is never subtracted from the
  profile — that inverts it, and one dislike then turns the list into "least like that item".
  It demotes its ``kin`` nearest items by text, graded by closeness (from ``push / 2`` to ``push``
  score units) (:func:`kin_push`); every other item keeps its score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from anyrec.errors import ConfigError
from anyrec.models.scoring import recency_weights


@dataclass(frozen=True)
class RatingScale:
    """A declared rating scale: ``low``–``high`` with ``neutral`` in between (MovieLens: 1–5, 2.5).

    :meth:`weight` maps a rating to ``[-1, 1]``: ``high`` → 1, ``neutral`` → 0, ``low`` → −1,
    linear on each side (on 1–5 with 2.5: 5 → 1, 4 → 0.6, 3 → 0.2, 2 → −0.33, 1 → −1).
    """

    low: float = 1.0
    high: float = 5.0
    neutral: float = 2.5

    def __post_init__(self) -> None:
        if not self.low < self.neutral < self.high:
            raise ConfigError(f"a rating scale needs low < neutral < high; got {self.low}, {self.neutral}, {self.high}")

    def weight(self, values: np.ndarray | float) -> np.ndarray:
        v = np.clip(np.asarray(values, dtype=np.float64), self.low, self.high)
        up = (v - self.neutral) / (self.high - self.neutral)
        down = (v - self.neutral) / (self.neutral - self.low)
        return np.where(v >= self.neutral, up, down)

    def describe(self) -> str:
        return f"{self.low:g}–{self.high:g}, neutral {self.neutral:g}"


def check_ratings(ratings: np.ndarray, scale: RatingScale, model: str) -> None:
    """A :class:`ConfigError` naming the options when a log's ratings run outside the declared scale."""
    low, high = float(np.nanmin(ratings)), float(np.nanmax(ratings))
    if low < scale.low or high > scale.high:
        raise ConfigError(
            f"{model}: the log's ratings run {low:g}–{high:g}, outside the declared scale {scale.describe()}: "
            f"set {model}.rating_low / rating_high / rating_neutral to the catalog's scale, or {model}.ratings=false"
        )


def term_weights(
    from_end: np.ndarray, group: np.ndarray, n_groups: int, half_life: float, short_term: float
) -> np.ndarray:
    """Per history row, its weight in the long + short term profile (see the module doc).

    ``from_end``: steps back from the group's latest row (0 = latest); ``group``: the user of each
    row (one group for a single live history).
    """
    if not 0.0 <= short_term <= 1.0:
        raise ConfigError(f"short_term must be in [0, 1], got {short_term}")
    group = np.asarray(group, dtype=np.int64)
    ones = np.ones(len(group))
    count = np.bincount(group, weights=ones, minlength=n_groups)
    long = 1.0 / np.maximum(count[group], 1.0)
    if short_term == 0.0:
        return long
    r = recency_weights(np.asarray(from_end, dtype=np.float64), half_life)
    total = np.bincount(group, weights=r, minlength=n_groups)
    short = r / np.maximum(total[group], 1e-300)
    return (1.0 - short_term) * long + short_term * short


def live_term_weights(n: int, half_life: float, short_term: float) -> np.ndarray:
    """:func:`term_weights` of one live history of ``n`` events, oldest first."""
    return term_weights(np.arange(n)[::-1], np.zeros(n, dtype=np.int64), 1, half_life, short_term)


def kin_push(
    table: np.ndarray,
    negatives: np.ndarray,
    strength: np.ndarray,
    kin: int,
    candidates: np.ndarray | None = None,
    history: np.ndarray | None = None,
) -> np.ndarray:
    """How much each item (or each of ``candidates``) is pushed down, in ``[0, 1]``.

    For each negative item ``n`` (a row of the unit vectors ``table``), its ``kin`` nearest other
    items by cosine are pushed by ``strength_n · (½ + ½ (cos(n, i) - c) / (1 - c))``, ``c`` the
    cosine of its ``kin + 1``-th nearest (so the nearest is pushed most, the ``kin``-th by half as
    much); other items not at all. Several negatives: the largest push counts. ``strength`` is capped to ``[0, 1]``.
    The kin are chosen among items outside ``history`` (the user's own items are not listed anyway).
    """
    negatives = np.asarray(negatives, dtype=np.int64)
    n_items = table.shape[0]
    n_out = n_items if candidates is None else len(candidates)
    strength = np.clip(np.abs(np.asarray(strength, dtype=np.float64)), 0.0, 1.0)
    keep = (strength > 0) & (negatives < n_items)
    negatives, strength = negatives[keep], strength[keep]
    kin = min(kin, n_items - 1)
    if not len(negatives) or kin <= 0:
        return np.zeros(n_out)
    if sp.issparse(table):  # (EASE's sparse path: its unit columns are sparse)
        cos = np.asarray((table @ table[negatives].T).toarray(), dtype=np.float64)
    else:
        cos = np.asarray(table @ np.asarray(table[negatives]).T, dtype=np.float64)  # (items, negatives), one product
    cos[negatives, np.arange(len(negatives))] = -np.inf
    if history is not None and len(history):
        cos[np.asarray(history, dtype=np.int64)] = -np.inf
    enough = np.isfinite(cos).sum(axis=0) > kin
    if not enough.any():
        return np.zeros(n_out)
    cos, strength = cos[:, enough], strength[enough]
    edge = -np.partition(-cos, kin, axis=0)[kin]  # the (kin + 1)-th largest cosine of each negative
    closeness = np.clip((cos - edge) / np.maximum(1.0 - edge, 1e-9), 0.0, 1.0)
    graded = np.where(cos > edge, 0.5 + 0.5 * closeness, 0.0) * strength
    graded[~np.isfinite(cos)] = 0.0  # the item itself is hidden, not pushed; the history is not listed
    out = graded.max(axis=1)
    return out if candidates is None else out[np.asarray(candidates, dtype=np.int64)]


class KinPushes:
    """The kin pushes of each fitted user's negatives, ``(columns, amounts)``, computed once: they depend on
    the negatives, the history and ``kin`` (``key``), not on the options a validation search moves."""

    def __init__(self, key: object, kin: int) -> None:
        self.key, self.kin = key, kin
        self.rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def of(self, user: int, table: np.ndarray, negatives: Any, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``negatives``: the user's row of the users × items push strengths (sparse)."""
        found = self.rows.get(user)
        if found is None:
            push = (
                kin_push(table, negatives.indices, negatives.data, self.kin, history=history)
                if negatives.nnz
                else np.zeros(0)
            )
            found = (np.flatnonzero(push), push[push > 0])
            self.rows[user] = found
        return found
