"""Full-ranking evaluation of one fitted model on one phase of a split.

Every user with at least one held-out item is ranked over the whole catalog (or the
phase's candidate items, for the cold-item protocol), with their earlier items removed:
training items, and for the test phase validation items too. No negatives are sampled.

Tie rule: items with exactly equal scores are ordered with the user's held-out items
*after* the others, so a held-out item can never win a tie by construction (a model that
gives every item the same score gets zero, not a lucky hit).

Masking rule (``mask``): what is removed from the ranking before the top-k is cut.

- ``history`` (anyrec's rule, the default): every item of the user's earlier history.
- ``history-minus-targets``: the history except the held-out items themselves (RecBole 1.2.1's
  rule for its *general* models); a repeat target stays rankable.
- ``none``: nothing (RecBole 1.2.1's rule for its *sequential* models: their full-sort loader
  returns no history, so already-seen items stay in the list).

A comparison holds only when every row uses the same rule; peers' scores can be ranked here
(see :class:`anyrec.models.external.ExternalScores`) so that they do.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from anyrec.cluster import LOCAL, Runner
from anyrec.data.dataset import Dataset
from anyrec.data.split import Split, phase_matrices
from anyrec.eval import metrics as M
from anyrec.models.base import Filters, Recommender

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None] | None
"""Called as ``progress(done, total)`` after each batch of users."""


TIE_RULES = ("pessimistic", "optimistic")
MASK_RULES = ("history", "history-minus-targets", "none")


def unreachable_targets(ds: Dataset, split: Split, phase: str = "test") -> int:
    """Held-out (user, item) pairs whose item is already in the user's earlier history.

    Repeat consumption: those items are masked like every seen item, so no model can
    rank them; they count as misses for every model alike.
    """
    relevant, exclude = phase_matrices(ds, split, phase)
    return int(relevant.multiply(exclude).sum())


def rank_top(
    scores: np.ndarray, relevant: np.ndarray, k: int, ties: str = "pessimistic"
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item indices per row, and their hit flags.

    Args:
        scores: ``(users, items)`` with ``-inf`` for excluded items.
        relevant: ``(users, items)`` boolean.
        k: list length.
        ties: ``pessimistic`` (the default everywhere) puts held-out items last among
            equal scores; ``optimistic`` puts them first. The optimistic rule exists only
            to bound how much a peer's unspecified tie order can move its figures.

    The order is exactly that of a full sort by (score descending, held-out last or first, item
    index), but only the ``k`` best of each row are sorted: a partial selection finds them, and
    only rows whose k-th score is tied with items outside the selection fall back to sorting
    the items at or above that score.
    """
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    n_rows, n_items = scores.shape
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > n_items:  # a list cut at K over fewer items: the places past the catalog stay empty (-1, no hit)
        top, hits = (
            rank_top(scores, relevant, n_items, ties)
            if n_items
            else (np.zeros((n_rows, 0), np.int64), np.zeros((n_rows, 0), bool))
        )
        pad = ((0, 0), (0, k - n_items))
        return np.pad(top, pad, constant_values=-1), np.pad(hits, pad, constant_values=False)
    if n_rows == 0:
        return np.zeros((n_rows, k), dtype=np.int64), np.zeros((n_rows, k), dtype=bool)
    second = relevant if ties == "pessimistic" else ~relevant
    if k < n_items:
        part = select_k(scores, k)  # (rows, k): the k best, unordered
        kth = np.take_along_axis(scores, part, axis=1).min(1)  # (rows,)
        at_or_above = (scores >= kth[:, None]).sum(1)
        ambiguous = np.flatnonzero((at_or_above > k) | np.isnan(kth))
    else:
        part = np.broadcast_to(np.arange(n_items), (n_rows, n_items)).copy()
        ambiguous = np.zeros(0, dtype=np.int64)
    # lexsort: last key is primary. Score descending, then relevant last (or first), then item index.
    sub = np.lexsort(
        (part, np.take_along_axis(second, part, axis=1), -np.take_along_axis(scores, part, axis=1)), axis=1
    )
    order = np.take_along_axis(part, sub, axis=1)
    for r in ambiguous:  # the k-th score is shared with items outside the selection: settle the tie rule here
        cand = np.flatnonzero(scores[r] >= kth[r]) if not np.isnan(kth[r]) else np.arange(n_items)
        order[r] = cand[np.lexsort((cand, second[r, cand], -scores[r, cand]))[:k]]
    valid = np.isfinite(np.take_along_axis(scores, order, axis=1))
    hits = np.take_along_axis(relevant, order, axis=1) & valid
    return np.where(valid, order, -1), hits


def select_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of ``k`` largest scores per row, in no particular order; which of several equal
    scores is picked is arbitrary (:func:`rank_top` settles ties itself).

    ``torch.topk`` when torch is installed (multi-threaded, about 25× numpy's single-threaded
    ``argpartition`` on 12k-item rows), else ``argpartition``.
    """
    if _torch_topk() is not None and scores.dtype in (np.float32, np.float64) and scores.flags.c_contiguous:
        return _torch_topk()(scores, k)  # type: ignore[misc]
    return np.argpartition(-scores, k - 1, axis=1)[:, :k]


@functools.cache
def _torch_topk() -> Callable[[np.ndarray, int], np.ndarray] | None:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    def topk(scores: np.ndarray, k: int) -> np.ndarray:
        return torch.topk(torch.from_numpy(scores), k, dim=1, sorted=False).indices.numpy()

    return topk


def users_per_batch(n_items: int, memory_mb: int = 256) -> int:
    """Users per scoring batch: about 32 bytes per item per user (float64 scores, the mask, the
    partial sort's indices and copies) within ``memory_mb``; between 1 and 4,096."""
    return int(max(1, min(4_096, memory_mb * 2**20 // (32 * max(1, n_items)))))


@dataclass(frozen=True)
class _BatchScorer:
    """What scoring one batch of users needs (shipped once to each worker of a runner)."""

    model: Recommender
    relevant: sp.csr_matrix
    filters: Filters
    ks: tuple[int, ...]
    ties: str


def _score_batch(s: _BatchScorer, batch: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-user metrics and the top ``max(ks)`` items of one batch of users."""
    scores = s.model.masked_scores(batch, exclude_seen=False, filters=s.filters)
    rel = s.relevant[batch].toarray() > 0
    top, hits = rank_top(scores, rel, max(s.ks), s.ties)
    n_rel = rel.sum(1)
    metrics = {f"{m}@{k}": M.PER_USER[m](hits, n_rel, k) for k in s.ks for m in M.RANKING_METRICS}
    return metrics, top


def evaluate_model(
    model: Recommender,
    ds: Dataset,
    split: Split,
    phase: str = "test",
    ks: tuple[int, ...] = (10, 20),
    batch_size: int | None = None,
    progress: Progress = None,
    ties: str = "pessimistic",
    mask: str = "history",
    memory_mb: int = 256,
    runner: Runner | None = None,
) -> dict[str, float]:
    """Metrics of a fitted ``model`` on ``phase``: ``{"ndcg@10": …, "recall@10": …, …, "users": n}``.

    The model must have been fitted on ``split``'s training rows of ``ds``. ``ties`` and
    ``mask`` (see the module docstring) exist to read results under peers' conventions; the
    defaults are anyrec's rules. Users are scored in batches sized so the score rows and their
    temporaries stay near ``memory_mb`` (``batch_size`` overrides). A Ray ``runner`` scores the
    batches on its workers (the model shipped once); the metrics are identical to the local run.
    """
    users, per_user, tops, n_candidates = _per_user(model, ds, split, phase, ks, batch_size, progress, ties, mask,
                                                    memory_mb, runner)
    kmax = max(ks)
    out = {name: float(vals.mean()) if len(vals) else 0.0 for name, vals in per_user.items()}
    all_top = np.concatenate(tops) if tops else np.zeros((0, kmax), dtype=np.int64)
    for k in ks:
        out[f"coverage@{k}"] = M.coverage(all_top, k, n_candidates)
    out["users"] = float(len(users))
    rows = split.valid if phase == "valid" else split.test
    if ds.interactions.rating is not None and len(rows):
        inter = ds.interactions.subset(rows)
        pred = model.predict_ratings(inter.user, inter.item)
        if pred is not None:
            actual = ds.interactions.rating[rows]
            out["mae"] = M.mae(pred, actual)
            out["rmse"] = M.rmse(pred, actual)
    return out


def per_user_metric(
    model: Recommender,
    ds: Dataset,
    split: Split,
    phase: str = "valid",
    metric: str = "ndcg@10",
    mask: str = "history",
    progress: Progress = None,
) -> np.ndarray:
    """One figure per user of ``phase`` (the users :func:`evaluate_model` averages over, in the same order): what a
    paired comparison of two models on the same users reads. ``progress(done, total)`` after each batch of users."""
    name, _, k = metric.partition("@")
    _, per_user, _, _ = _per_user(model, ds, split, phase, (int(k),), None, progress, "pessimistic", mask, 256, None)
    return per_user[f"{name}@{k}"]


def _per_user(
    model: Recommender, ds: Dataset, split: Split, phase: str, ks: tuple[int, ...], batch_size: int | None,
    progress: Progress, ties: str, mask: str, memory_mb: int, runner: Runner | None,
) -> tuple[np.ndarray, dict[str, np.ndarray], list[np.ndarray], int]:
    """(users, per-user metrics, the top lists of each batch, the number of candidate items): see
    :func:`evaluate_model`."""
    if mask not in MASK_RULES:
        raise ValueError(f"mask must be one of {MASK_RULES}, got {mask!r}")
    relevant, exclude = phase_matrices(ds, split, phase)
    if mask == "history-minus-targets":
        # It tells the model which of the user's earlier items is the answer: peer comparisons only.
        exclude = (exclude - exclude.multiply(relevant)).tocsr()
        exclude.eliminate_zeros()
    elif mask == "none":
        exclude = sp.csr_matrix(exclude.shape, dtype=exclude.dtype)
    # Held-out items already in the user's history are masked, so they are unreachable:
    # they stay in the denominator (every model pays the same); see unreachable_targets().
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    candidates = split.valid_candidates if phase == "valid" else split.test_candidates
    n_candidates = ds.n_items if candidates is None else int(candidates.shape[0])
    filters = Filters(items=candidates, exclude=exclude)
    if batch_size is None:
        batch_size = users_per_batch(ds.n_items, memory_mb)
    batches = [users[start : start + batch_size] for start in range(0, len(users), batch_size)]
    report = None
    if progress is not None:
        report = lambda done, total: progress(min(done * batch_size, len(users)), len(users))  # noqa: E731
    shared = _BatchScorer(model, relevant, filters, ks, ties)
    parts = (runner or LOCAL).map_tasks(_score_batch, shared, batches, report)
    per_user = {name: [p[0][name] for p in parts] for name in (f"{m}@{k}" for m in M.RANKING_METRICS for k in ks)}
    tops = [p[1] for p in parts]
    metrics = {name: np.concatenate(vals) if vals else np.zeros(0) for name, vals in per_user.items()}
    return users, metrics, tops, n_candidates
