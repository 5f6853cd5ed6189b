"""Is an explanation true to the model? A deletion check against a random control.

For each recommended item, the history items its explanation cites are removed from the
user's history and the model scores again: a faithful explanation cites items whose removal
lowers the item's score (and its rank). The control removes as many history items drawn at
random. Both are reported, so "the score fell" is measured against what any removal does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.explain.attribution import attribute, history_of, live_scores
from anyrec.explain.sentence import SentenceGuard, explain_sentence
from anyrec.models.base import Recommender

log = logging.getLogger(__name__)


@dataclass
class Tally:
    n: int = 0
    lowered: int = 0
    rank_worse: int = 0
    drops: list[float] = field(default_factory=list)
    rank_changes: list[int] = field(default_factory=list)

    def add(self, before: float, after: float, rank_before: int, rank_after: int) -> None:
        self.n += 1
        self.lowered += int(after < before - 1e-9)
        self.rank_worse += int(rank_after > rank_before)
        self.drops.append(before - after)
        self.rank_changes.append(rank_after - rank_before)

    def report(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "score_lowered": self.lowered / max(1, self.n),
            "rank_worse": self.rank_worse / max(1, self.n),
            "mean_score_drop": float(np.mean(self.drops)) if self.drops else 0.0,
            "median_rank_change": float(np.median(self.rank_changes)) if self.rank_changes else 0.0,
        }


def _rank(scores: np.ndarray, target: int, hidden: np.ndarray) -> int:
    """1 + the items, other than the user's whole original history, that score above the target."""
    above = scores > scores[target]
    above[hidden] = False
    return int(above.sum()) + 1


def faithfulness(
    model: Recommender,
    ds: Dataset,
    users: np.ndarray,
    k: int = 5,
    cite: int = 3,
    seed: int = 0,
    generator: Callable[[str], str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Deletion check over ``users``' top-``k`` lists (seen items excluded); see the module doc.

    Users whose history has no more than ``cite`` distinct items are skipped (counted): removing
    every item leaves no history to compare with. Each recommendation's explanation sentence is
    also written and checked: ``named_outside_history`` counts sentences shown that name an item
    other than the cited history items and the recommended one (the guard's job is to keep it 0).
    """
    rng = np.random.default_rng(seed)
    guard = SentenceGuard(ds.catalog)
    cited_t, random_t = Tally(), Tally()
    skipped_short, uncited, named_outside, generated = 0, 0, 0, 0
    methods: set[str] = set()
    for u in users:
        items, weights = history_of(ds, int(u))
        hist = np.unique(items)
        if len(hist) <= cite:
            skipped_short += 1
            continue
        full = live_scores(model, items, weights)
        masked = full.copy()
        masked[hist] = -np.inf
        recs = np.argsort(-masked, kind="stable")[:k]
        att = attribute(model, items, weights, recs)
        methods.add(att.method)
        for j, target in enumerate(recs):
            top = [h for h, _ in att.top(j, cite)]
            if not top:
                uncited += 1
                continue
            before = _rank(full, int(target), hist)
            for chosen, tally in ((np.array(top), cited_t), (rng.choice(hist, size=len(top), replace=False), random_t)):
                keep = ~np.isin(items, chosen)
                after = live_scores(model, items[keep], weights[keep])
                tally.add(float(full[target]), float(after[target]), before, _rank(after, int(target), hist))
            sentence, source = explain_sentence(ds.catalog, int(target), top, guard, generator)
            generated += source == "generator"
            if sentence is not None:
                stray, bad_quotes = guard.strays(sentence.split(" (shared: ")[0], {int(target), *hist.tolist()})
                named_outside += int(bool(stray or bad_quotes))
        if progress is not None:
            progress(1)
    return {
        "users": int(len(users)),
        "skipped_short_history": skipped_short,
        "recommendations_uncited": uncited,
        "method": sorted(methods),
        "cite": cite,
        "k": k,
        "cited": cited_t.report(),
        "random": random_t.report(),
        "sentences": cited_t.n,
        "sentences_from_generator": generated,
        "generator_rejected": guard.rejected,
        "sentences_unbuilt": guard.unbuilt,
        "named_outside_history": named_outside,
    }
