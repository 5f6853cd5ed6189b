"""``--model auto``: the models that suit a log, fitted side by side and chosen on validation NDCG@10.

What suits a log, and why (each candidate carries its reason, printed before anything is fitted):

- ``popularity``, ``itemknn``, ``als``: always (cheap, and the baselines every choice is read against);
- ``ease`` and, with text, ``hybrid``: always; dense when the solve fits ``memory_mb``
  (:func:`~anyrec.models.neighbourhood.gram_memory_mb`), their sparse path otherwise (stated);
- ``zeroshot``: when the catalog has text;
- ``sequential``: when the log is ordered (most users' events carry distinct times) and a
  training budget is given or the log is small (≤ 200,000 events); its fit then gets
  ``max_minutes``.

Test is never looked at to choose: the winner is the best validation NDCG@10 (ties: the earlier
candidate, i.e. the cheaper one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.data.split import Split
from anyrec.eval.evaluate import per_user_metric
from anyrec.models.neighbourhood import DENSE_COPIES, gram_memory_mb

if TYPE_CHECKING:
    from anyrec.models.blend import Blend

SMALL_LOG = 200_000


@dataclass(frozen=True)
class Candidate:
    name: str
    reason: str


def ordered_share(ds: Dataset) -> float:
    """Share of users with two or more events whose events carry at least two distinct times."""
    inter = ds.interactions
    if not len(inter):
        return 0.0
    index = inter.history(ds.n_users)
    t = inter.time[index.order]
    lengths = np.diff(index.offsets)
    many = lengths >= 2
    if not many.any():
        return 0.0
    lo = np.minimum.reduceat(t, index.offsets[:-1][lengths > 0])
    hi = np.maximum.reduceat(t, index.offsets[:-1][lengths > 0])
    spread = np.zeros(ds.n_users, dtype=bool)
    spread[np.flatnonzero(lengths > 0)] = hi > lo
    return float(spread[many].mean())


def has_text(ds: Dataset) -> bool:
    """Whether the catalog's texts say more than an id (at least half of them carry a word beyond the id)."""
    sample = range(0, len(ds.catalog), max(1, len(ds.catalog) // 200))
    worded = [len(ds.catalog.text(i).split()) > 1 for i in sample]
    return bool(worded) and float(np.mean(worded)) >= 0.5


def candidates(ds: Dataset, memory_mb: float, max_minutes: float | None = None) -> list[Candidate]:
    """The models ``auto`` fits on ``ds``, each with the reason it is in; ``memory_mb`` what a dense solve may take."""
    text = has_text(ds)
    order = ordered_share(ds)
    events = len(ds.interactions)
    dense, dense_h = (
        gram_memory_mb(ds.n_items, DENSE_COPIES["ease"]),
        gram_memory_mb(ds.n_items, DENSE_COPIES["hybrid"]),
    )
    out = [
        Candidate("popularity", "always: the floor every row is read against"),
        Candidate("itemknn", "always: co-occurrence, cheap"),
        Candidate("als", "always: factorisation, cheap"),
    ]

    def solve(need: float) -> str:
        return (
            f"dense solve over {ds.n_items:,} items, {need:,.0f} MB of {memory_mb:,.0f}"
            if need <= memory_mb
            else f"sparse path: a dense solve over {ds.n_items:,} items would need {need:,.0f} MB, "
            f"more than {memory_mb:,.0f}"
        )

    out.append(Candidate("ease", f"closed-form item-item regression ({solve(dense)})"))
    if text:
        out.append(Candidate("zeroshot", "the catalog has text: it also serves new items and new users"))
        out.append(Candidate("hybrid", f"text + co-occurrence in one solve ({solve(dense_h)})"))
    if order >= 0.5 and (max_minutes is not None or events <= SMALL_LOG):
        budget = (
            f"{max_minutes:g} min budget"
            if max_minutes is not None
            else f"a small log ({events:,} events ≤ {SMALL_LOG:,})"
        )
        out.append(
            Candidate("sequential", f"the log is ordered ({order:.0%} of users' events carry distinct times); {budget}")
        )
    return out


def skipped(ds: Dataset, chosen: list[Candidate], max_minutes: float | None = None) -> list[str]:
    """Why the models left out are out (printed beside the candidates)."""
    names = {c.name for c in chosen}
    notes = []
    if "zeroshot" not in names:
        notes.append("zeroshot, hybrid: the catalog has no text beyond ids")
    if "sequential" not in names:
        order = ordered_share(ds)
        notes.append(
            "sequential: "
            + (
                f"the log has no usable order ({order:.0%} of users' events carry distinct times)"
                if order < 0.5
                else f"a large log ({len(ds.interactions):,} events): give --max-minutes to include it"
            )
        )
    return notes


def choose(validation: dict[str, float]) -> str:
    """The best validation NDCG@10; ties go to the earlier (cheaper) candidate."""
    best = max(validation.values())
    return next(name for name, v in validation.items() if v == best)


BLEND_MIN_Z = 2.0
"""How sure ``auto`` must be that its blend beats its best part before it is kept: the cross-fitted gain over
validation users at least this many standard errors above zero."""


@dataclass(frozen=True)
class BlendChoice:
    """What :func:`weigh_blend` found: the weight (best validation mean), the validation NDCG there, and whether the
    blend is kept: its *cross-fitted* gain over the first part alone (each half of the validation users scored at the
    weight the other half chose, so the gain is not the search's own luck) is ``z`` standard errors above zero."""

    weight: float
    valid: float
    gain: float
    z: float
    kept: bool

    def reason(self, first: str) -> str:
        said = f"cross-fitted gain over {first} {self.gain:+.4f} NDCG@10 on validation, {self.z:.1f} standard errors"
        return said + (" (kept)" if self.kept else f" (not kept: below {BLEND_MIN_Z:g})")


def cross_fitted_gain(table: np.ndarray, alone: int, seed: int = 0) -> tuple[float, float]:
    """``table``: weights × users (one validation figure per user at each weight); ``alone``: the row that is the
    first part alone. The users are halved at random; each half is read at the weight the other half scores best,
    less the first part alone. Returns (mean gain, its z: mean ÷ standard error; 0 when every gain is 0)."""
    n = table.shape[1]
    half = np.random.default_rng(seed).permutation(n) < n // 2
    gains = np.empty(n)
    for mine in (half, ~half):
        chosen = int(np.argmax(table[:, ~mine].mean(axis=1)))
        gains[mine] = table[chosen, mine] - table[alone, mine]
    spread = gains.std(ddof=1) if n > 1 else 0.0
    mean = float(gains.mean()) if n else 0.0
    return mean, (float(mean / (spread / np.sqrt(n))) if spread > 0 else 0.0)


def weigh_blend(
    blend: Blend,
    ds: Dataset,
    split: Split,
    k: int = 10,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> BlendChoice:
    """Every weight of the blend's grid read per validation user (the parts keep the histories they were validated
    with), the best mean taken, and the keep test of :class:`BlendChoice`. ``blend``'s weight is left at the choice."""
    weights = list(blend.tuning_grid["weight"])
    rows = []
    for i, w in enumerate(weights):
        blend.config = replace(blend.config, weight=w)
        step = None  # a line per batch of users: one weight over a large log's users takes minutes
        if progress is not None:
            step = lambda done, total, i=i: progress(i * total + done, len(weights) * total)  # noqa: E731
        rows.append(per_user_metric(blend, ds, split, "valid", f"ndcg@{k}", progress=step))
    table = np.vstack(rows)
    best = int(np.argmax(table.mean(axis=1)))
    blend.config = replace(blend.config, weight=weights[best])
    gain, z = cross_fitted_gain(table, weights.index(1.0), seed)
    return BlendChoice(float(weights[best]), float(table[best].mean()), gain, z, bool(z >= BLEND_MIN_Z))
