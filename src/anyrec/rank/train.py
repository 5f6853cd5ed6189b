"""Fit the click classifier for a fitted retriever on a split's training rows; tune the blend on validation.

Two ways to make training data (``ClickClassifierConfig.holdout``). Pointwise pairs: the latest
training positions of each user (yes) and the retriever's best items the user never touched (no:
hard negatives); that retriever trained on those very positions, so it ranks them better than it
ranks anything at serving time. Listwise lists (:func:`holdout_lists`): a second retriever fitted
without each user's last n items gives, for those positions, the same kind of list the stage
re-ranks at serving time, and the classifier learns on top of its scores.

Validation is the ranking stage's NDCG@10 on the validation targets (full ranking:
a target outside the retriever's top ``depth`` counts 0, as it would in the evaluator), read at
every blend of :data:`BLENDS`; the best blend and the epoch with the best NDCG are kept. The
test split is never looked at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.data.split import Split, phase_matrices, without_last
from anyrec.errors import ConfigError
from anyrec.models.base import Recommender
from anyrec.models.scoring import top_k
from anyrec.rank.cross import ClickClassifier
from anyrec.rank.cross_config import ClickClassifierConfig
from anyrec.rank.evidence import Evidence, fit_weights, standardised
from anyrec.rank.stage import Reranked, RerankedConfig, blend_scores, candidates, sequences, standardise

log = logging.getLogger(__name__)

BLENDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)  # fine near 0: a ranker may help most as a tie-breaker
POOL = 50  # hard negatives are drawn from the retriever's top POOL unseen items
HOLDOUT_KEEP = 2  # in the held-out fit a user keeps at least this many items


def hard_negatives(
    retriever: Recommender, users: np.ndarray, pool: int = POOL, batch: int = 256
) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for s in range(0, len(users), batch):
        scores = retriever.masked_scores(users[s : s + batch], exclude_seen=True)
        for r, row in enumerate(scores):
            out[int(users[s + r])] = top_k(row, pool)
    return out


def unfitted_copy(model: Recommender) -> Recommender:
    """A new model of the same class and config, writing no logs or checkpoints: it must neither
    overwrite the original's training folder nor resume from it."""
    cfg = model.config
    private = {k: v for k, v in (("log_dir", ""), ("resume", False)) if hasattr(cfg, k)}
    return type(model)(replace(cfg, **private) if private else cfg)


def holdout_lists(
    retriever: Recommender,
    train: Dataset,
    n: int,
    depth: int,
    batch: int = 256,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Training lists for the listwise loss from a retriever that never saw the answers.

    A fresh copy of ``retriever`` (same class and config) is fitted on ``train`` without each user's
    last ``n`` items. For each of those positions (oldest first) its history is set to everything
    before the position, and its top ``depth`` unseen items form the list; a list counts when the
    clicked item is in it. Returns the histories, the lists ``(lists, depth)``, each answer's column,
    the retriever's scores of the lists, and counts. Where fewer than ``depth`` items are allowed,
    ``-1`` pads the list (score ``-inf``).
    """
    keep = HOLDOUT_KEEP
    inner = unfitted_copy(retriever)
    log.info("ranker lists: fitting a second %s without each user's last %d training items", retriever.name, n)
    t0 = time.perf_counter()
    inner.fit(without_last(train, n, keep))
    seqs = sequences(train)
    users = np.array([u for u, s in enumerate(seqs) if len(s) > n + keep], dtype=np.int64)
    hists: list[np.ndarray] = []
    lists, answers, scores = [], [], []
    for j in range(n, 0, -1):  # the target sits j items from the end; its history is everything before it
        inner.set_history(without_last(train, j, keep))
        for s in range(0, len(users), batch):
            us = users[s : s + batch]
            base = inner.masked_scores(us, exclude_seen=True)
            cands = candidates(base, depth)
            for r, u in enumerate(us):
                seq = seqs[int(u)]
                hit = np.flatnonzero(cands[r] == seq[len(seq) - j])
                if len(hit):
                    hists.append(seq[: len(seq) - j])
                    lists.append(cands[r])
                    answers.append(int(hit[0]))
                    scores.append(np.where(cands[r] >= 0, base[r, np.maximum(cands[r], 0)], -np.inf))
    counts = {
        "holdout": n,
        "positions": int(n * len(users)),
        "lists": len(lists),
        "answer_in_top": round(len(lists) / max(1, n * len(users)), 4),
        "inner_fit_seconds": round(time.perf_counter() - t0, 1),
    }
    log.info(
        "ranker lists: %d of %d positions have the answer in the retriever's top %d", len(lists), n * len(users), depth
    )
    return (
        hists,
        np.array(lists, dtype=np.int64).reshape(-1, depth),
        np.array(answers, dtype=np.int64),
        np.array(scores, dtype=np.float64).reshape(-1, depth),
        counts,
    )


def sample_lists(
    lists: np.ndarray,
    answers: np.ndarray,
    offsets: np.ndarray,
    negatives: int,
    seed: int,
    features: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Each list cut to its answer (first column) and ``negatives`` of its other items (seeded draw),
    with their offsets and features (standardised over the whole list, as at serving time); ``-1``
    pads lists with fewer others."""
    rng = np.random.default_rng(seed)
    width = negatives + 1
    out = np.full((len(lists), width), -1, dtype=np.int64)
    off = np.zeros((len(lists), width))
    feats = None if features is None else np.zeros((len(lists), width, features.shape[2]))
    for r, (row, a) in enumerate(zip(lists, answers)):
        others = np.flatnonzero((row >= 0) & (np.arange(len(row)) != a))
        pick = np.r_[a, rng.permutation(others)[:negatives]].astype(np.int64)
        out[r, : len(pick)], off[r, : len(pick)] = row[pick], offsets[r, pick]
        if feats is not None and features is not None:
            feats[r, : len(pick)] = features[r, pick]
    return out, np.zeros(len(lists), dtype=np.int64), off, feats


class StageValidator:
    """NDCG@10 of retrieve → rank on the validation targets, at every blend; candidates fixed once."""

    def __init__(self, retriever: Recommender, ds: Dataset, split: Split, depth: int, k: int = 10) -> None:
        relevant, _ = phase_matrices(ds, split, "valid")
        self.users = np.flatnonzero(np.diff(relevant.indptr) > 0)
        stage = Reranked(retriever, _NoRanker(), RerankedConfig(depth=depth))
        base = retriever.masked_scores(self.users, exclude_seen=True)
        self.cands = stage.candidates(base)
        self.retrieved = np.take_along_axis(base, np.where(self.cands >= 0, self.cands, 0), axis=1)
        rel = relevant[self.users]
        self.hit = np.array(
            [[rel[r, int(c)] > 0 if c >= 0 else False for c in row] for r, row in enumerate(self.cands)]
        )
        self.histories: list[np.ndarray] | None = None
        self.k = k

    def with_histories(self, seqs: list[np.ndarray]) -> StageValidator:
        self.histories = [seqs[int(u)] for u in self.users]
        return self

    def ndcg(self, order_scores: np.ndarray) -> float:
        """NDCG@k (one target per user) when candidates are ordered by ``order_scores``; ties pessimistic."""
        tscore = np.where(self.hit, order_scores, -np.inf).max(axis=1)
        rank = 1 + ((order_scores >= tscore[:, None]) & ~self.hit).sum(axis=1)
        gain = np.where(self.hit.any(axis=1) & (rank <= self.k), 1.0 / np.log2(rank + 1.0), 0.0)
        return float(gain.mean())

    def by_blend(self, ranked: np.ndarray) -> dict[float, float]:
        return {b: self.ndcg(blend_scores(self.retrieved, ranked, b)) for b in BLENDS}


class _NoRanker:
    def score(self, histories: Any, candidates: np.ndarray) -> np.ndarray:
        return np.zeros(candidates.shape)


def fit_click_stage(
    retriever: Recommender,
    ds: Dataset,
    split: Split,
    config: ClickClassifierConfig | None = None,
    depth: int = 20,
    out_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Reranked, dict[str, Any]]:
    """A click classifier trained on ``split``'s training rows behind ``retriever`` (fitted on them, its
    history the training rows), with the blend chosen on validation. Returns the stage and a report."""
    cfg = config or ClickClassifierConfig()
    train = split.train_dataset(ds)
    seqs = sequences(train)
    clf = ClickClassifier(ds.catalog, cfg)
    val = StageValidator(retriever, ds, split, depth).with_histories(seqs)

    def validate(model: ClickClassifier) -> tuple[float, dict[str, Any]]:
        ranked = model.score(val.histories or [], np.where(val.cands >= 0, val.cands, 0))
        by_blend = val.by_blend(ranked)
        log.info("validation NDCG@10 by blend: %s", {b: round(v, 5) for b, v in by_blend.items()})
        return max(by_blend.values()), {str(b): round(v, 6) for b, v in by_blend.items()}

    retriever_only = val.ndcg(val.retrieved)
    made: dict[str, Any] = {}
    if cfg.holdout > 0:
        hists, lists, answers, scores, made = holdout_lists(retriever, train, cfg.holdout, depth)
        if not len(lists):
            raise ConfigError(f"no training list: the clicked item was never in the retriever's top {depth} ({made})")
        offsets = standardise(scores)
        feats, beta0 = None, 1.0
        if clf.prior_ is not None:  # features from the table the inner retriever saw: the answers' clicks are not in it
            clf.set_evidence(train)
            inner = Evidence(clf.prior_.evidence.names, recent=cfg.history).fit(
                without_last(train, cfg.holdout, HOLDOUT_KEEP)
            )
            feats = standardised(inner.features(hists, lists), lists >= 0)
            clf.prior_.weights, beta0 = fit_weights(feats, offsets, answers, lists >= 0, seed=cfg.seed)
            alone = val.by_blend(clf.prior_.score(val.histories or [], val.cands))
            made["evidence_alone"] = {
                "weights": [round(float(w), 4) for w in clf.prior_.weights],
                "beta": round(beta0, 4),
                "valid_ndcg@10_by_blend": {str(b): round(v, 5) for b, v in alone.items()},
            }
            log.info(
                "evidence alone %s: validation NDCG@10 %.5f",
                dict(zip(clf.prior_.evidence.names, clf.prior_.weights.round(3))),
                max(alone.values()),
            )
        if cfg.list_negatives:
            lists, answers, offsets, feats = sample_lists(lists, answers, offsets, cfg.list_negatives, cfg.seed, feats)
        clf.fit_lists([clf.left(h) for h in hists], lists, answers, offsets, validate, out_dir, progress, feats, beta0)
    else:
        users = np.array([u for u, s in enumerate(seqs) if len(s) >= 2], dtype=np.int64)
        negs = hard_negatives(retriever, users)
        lefts, items, labels = clf.pairs(
            [seqs[u] if u in negs else np.zeros(0, dtype=np.int64) for u in range(len(seqs))],
            lambda u, seq: negs.get(u, np.zeros(0, dtype=np.int64)),
        )
        clf.fit(lefts, items, labels, validate, out_dir, progress)
    blends = [{float(b): v for b, v in e["detail"].items()} for e in clf.report_["epochs"]]
    best_epoch = int(np.argmax([max(b.values()) for b in blends]))
    best_blend = max(blends[best_epoch], key=lambda b: (blends[best_epoch][b], b))
    stage = Reranked(retriever, clf, RerankedConfig(depth=depth, blend=float(best_blend)))
    report = {
        **clf.report_,
        "validation_by_epoch_and_blend": [{str(b): round(v, 5) for b, v in e.items()} for e in blends],
        "retriever_valid_ndcg@10": round(retriever_only, 5),
        "blend": float(best_blend),
        "depth": depth,
        "config": asdict(cfg),
        **({"lists": made} if made else {}),
    }
    if out_dir is not None:
        clf.report_ = report
        clf.save(out_dir)
    return stage, report


def validate_stage(
    retriever: Recommender, ds: Dataset, split: Split, clf: ClickClassifier, depth: int = 20
) -> tuple[Reranked, dict[str, Any]]:
    """A trained classifier (e.g. loaded from its folder) behind ``retriever`` (its history the
    training rows), with the blend chosen again on validation: what a new blend grid or depth gives
    without training again."""
    train = split.train_dataset(ds)
    val = StageValidator(retriever, ds, split, depth).with_histories(sequences(train))
    clf.set_evidence(train)
    by_blend = val.by_blend(clf.score(val.histories or [], np.where(val.cands >= 0, val.cands, 0)))
    best = max(by_blend, key=lambda b: (by_blend[b], b))
    report = {
        "validation_by_blend": {str(b): round(v, 5) for b, v in by_blend.items()},
        "blend": float(best),
        "depth": depth,
        "retriever_valid_ndcg@10": round(val.ndcg(val.retrieved), 5),
        "best_valid": by_blend[best],
    }
    return Reranked(retriever, clf, RerankedConfig(depth=depth, blend=float(best))), report


def load_stage(retriever: Recommender, ds: Dataset, ranker_dir: str) -> Reranked:
    """A fitted retriever behind a saved click classifier, with the depth and blend it was validated at."""
    clf = ClickClassifier.load(ranker_dir, ds.catalog).set_evidence(
        ds
    )  # the evidence counts what the served data holds
    stage = Reranked(
        retriever,
        clf,
        RerankedConfig(depth=int(clf.report_.get("depth", 20)), blend=float(clf.report_.get("blend", 1.0))),
    )
    stage.set_history(ds)
    return stage
