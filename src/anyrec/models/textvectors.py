"""Helpers of the text-profile model: a bounded cache of scored batches, the soft-max pooled
(kernel) score and its exact shares, spherical k-means for multi-interest profiles, memory-mapped
item vectors, the priors counted from the log."""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp


def standardise_prior(raw: np.ndarray, warm: np.ndarray) -> np.ndarray:
    """z-scores of ``raw`` over warm items; cold items get 0, the warm average."""
    out = np.zeros_like(raw, dtype=np.float64)
    if warm.sum() > 1:
        vals = raw[warm]
        sd = vals.std()
        out[warm] = (vals - vals.mean()) / (sd if sd > 0 else 1.0)
    return out


def log_priors(inter: Any, n_items: int, trend_half_life: float) -> tuple[np.ndarray, np.ndarray]:
    """The popularity prior (log counts) and the trend prior (log of counts decayed with a half-life of
    ``trend_half_life`` of the log's time span), each standardised over the items the log touches.
    A log without rows (the low-resource protocol's share 0) gives zeros: no prior."""
    counts = np.bincount(inter.item, minlength=n_items).astype(np.float64)
    warm = counts > 0
    span = float(inter.time.max() - inter.time.min()) if len(inter) else 0.0
    tau = max(span * trend_half_life, 1e-9)
    latest = float(inter.time.max()) if len(inter) else 0.0
    decayed = np.bincount(inter.item, weights=0.5 ** ((latest - inter.time) / tau), minlength=n_items)
    return standardise_prior(np.log1p(counts), warm), standardise_prior(np.log1p(decayed * 1000.0), warm)


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


def memmapped_unit_vectors(path: Path, texts: list[str], encoder: Callable[[], Any], given: np.ndarray | None,
                           progress: Any, rows: int = 65_536) -> np.ndarray:
    """Unit text vectors of ``texts`` in the ``.npy`` file ``path``, opened read-only (``given``
    vectors are copied in instead of encoding; ``encoder()`` returns the text encoder).

    Written to a new file that then replaces the old one: the vectors being replaced may be
    mapped from that very file (a refit handed its own vectors), and rewriting it in place
    would zero them under the reader.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    dim = given.shape[1] if given is not None else encoder().dim
    fd, tmp = tempfile.mkstemp(prefix="item_vectors-", suffix=".npy", dir=path.parent)
    os.close(fd)
    mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(texts), dim))
    if given is not None:
        mm[:] = given
    else:
        encoder().encode(texts, progress=progress, out=mm)
    for a in range(0, len(texts), rows):  # in place, a block at a time
        block = mm[a : a + rows]
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
    mm.flush()
    del mm
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r")


def kernel_scores(unit: np.ndarray, items: np.ndarray, weights: np.ndarray, tau: float,
                  targets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Soft-max pooled similarity of each target to a history: ``τ log Σ_h p_h exp(cos(h, i) / τ)``.

    ``p`` are the positive ``weights`` normalised to sum 1, so the score lies between the history's
    lowest and highest cosine with the item (τ → 0: the closest history item alone; τ → ∞: the
    weighted mean cosine). Returns ``(scores, shares)``: ``shares[h, j]`` is history item ``h``'s
    part of target ``j``'s score (its soft-max weight times the score), adding up to the score.
    Rows of repeated items are merged (their weights add up).
    """
    items = np.asarray(items, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    keep = weights > 0
    cols = np.arange(len(unit)) if targets is None else np.asarray(targets, dtype=np.int64)
    if not keep.any():
        return np.zeros(len(cols)), np.zeros((0, len(cols)))
    uniq, inv = np.unique(items[keep], return_inverse=True)
    p = np.bincount(inv, weights=weights[keep])
    p = p / p.sum()
    logits = (np.asarray(unit[uniq] @ unit[cols].T, dtype=np.float64)) / tau + np.log(p)[:, None]  # (history, targets)
    top = logits.max(axis=0)
    e = np.exp(logits - top)
    total = e.sum(axis=0)
    scores = tau * (top + np.log(total))
    return scores, (e / total) * scores


def history_order(items: np.ndarray, weights: np.ndarray, history: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """``shares`` (rows: the distinct positive items of ``items``, sorted) re-indexed to ``history``'s order, zeros
    elsewhere."""
    items = np.asarray(items, dtype=np.int64)
    uniq = np.unique(items[np.asarray(weights) > 0])
    out = np.zeros((len(history), shares.shape[1]))
    pos = {int(u): r for r, u in enumerate(uniq)}
    for r, h in enumerate(history):
        if int(h) in pos:
            out[r] = shares[pos[int(h)]]
    return out


POOLED_BLOCK = 1 << 24  # similarities of one (histories, history length, items) block of pooled_kernel: 64 MB


def pooled_kernel(
    unit: np.ndarray,
    histories: list[tuple[np.ndarray, np.ndarray]],
    tau: float,
    targets: np.ndarray | None = None,
    block: int = POOLED_BLOCK,
) -> np.ndarray:
    """:func:`kernel_scores` of many histories at once, ``(len(histories), items or targets)``: each history is
    ``(item indices, weights)``, its positive weights normalised to sum 1 (a history without any scores 0).
    Histories of similar length share a block of at most ``block`` similarities, computed in torch (the
    cosines in float32, the soft-max in float64, as :func:`kernel_scores`): one product per block instead of
    one Python step per user, so catalogs above ``KERNEL_TABLE_MAX_ITEMS`` stay affordable."""
    import torch

    cols = unit if targets is None else unit[np.asarray(targets, dtype=np.int64)]
    out = np.zeros((len(histories), len(cols)), dtype=np.float64)
    kept = []
    for r, (items, weights) in enumerate(histories):
        w = np.asarray(weights, dtype=np.float64)
        pos = w > 0
        if pos.any():
            kept.append((r, np.asarray(items, dtype=np.int64)[pos], w[pos] / w[pos].sum()))
    kept.sort(key=lambda h: len(h[1]))
    lengths = np.array([len(h[1]) for h in kept], dtype=np.int64)
    t_cols = torch.from_numpy(np.ascontiguousarray(cols, dtype=np.float32))
    start = 0
    while start < len(kept):
        # The block is padded to its longest history: with lengths sorted, c histories from ``start`` need
        # c × lengths[start + c - 1] × columns similarities, which grows with c; take the most that fit
        # (at least one). Sizing by the first history's length let a block of short and long histories run
        # to 36 GB on a 50,000-user log.
        window = lengths[start : start + max(1, block // max(1, len(cols)))]  # no chunk can hold more histories
        count = np.arange(1, len(window) + 1) * window * max(1, len(cols))
        chunk = kept[start : start + max(1, int((count <= block).sum()))]
        n = len(chunk[-1][1])  # the longest in the chunk (sorted)
        hist = np.zeros((len(chunk), n, unit.shape[1]), dtype=np.float32)
        logp = np.full((len(chunk), n), -np.inf)
        for b, (_, items, p) in enumerate(chunk):
            hist[b, : len(items)] = unit[items]
            with np.errstate(divide="ignore"):  # a weight that underflowed to 0 counts for nothing: log 0 = −inf
                logp[b, : len(items)] = np.log(p)
        with torch.no_grad():
            sims = (
                torch.einsum("bld,nd->bln", torch.from_numpy(hist), t_cols).double() / tau
                + torch.from_numpy(logp)[:, :, None]
            )
            out[[r for r, _, _ in chunk]] = (tau * torch.logsumexp(sims, dim=1)).numpy()
        start += len(chunk)
    return out


def per_user_scores(
    unit: np.ndarray, weights: Any, users: np.ndarray, kernel: float, interests: int, seed: int
) -> np.ndarray:
    """Text scores ``(len(users), items)`` that need each user's history items, not one profile: the
    soft-max pooled similarity (``kernel > 0``, :func:`pooled_kernel`) or, else, the best of
    ``interests`` k-means interest profiles. ``weights``: users × items profile weights (CSR)."""
    if kernel > 0:
        return pooled_kernel(unit, [(weights[u].indices, weights[u].data) for u in users], kernel)
    out = np.zeros((len(users), len(unit)), dtype=np.float64)
    rng = np.random.default_rng(seed)
    for r, u in enumerate(users):
        row = weights[u]
        if row.nnz == 0:
            continue
        vecs, w = unit[row.indices], row.data
        labels = kmeans(vecs, min(interests, len(w)), rng)
        best = np.full(len(unit), -np.inf)
        for c in np.unique(labels):
            p = (w[labels == c, None] * vecs[labels == c]).sum(0)
            p /= max(float(np.linalg.norm(p)), 1e-12)
            best = np.maximum(best, unit @ p)
        out[r] = best
    return out


KERNEL_TABLE_MAX_ITEMS = 8192  # items × items float32: 268 MB at this size


def kernel_table(unit: np.ndarray, tau: float) -> np.ndarray | None:
    """``exp((cos(i, j) - 1) / τ)`` for every item pair (float32), or ``None`` above
    ``KERNEL_TABLE_MAX_ITEMS``: with it, :func:`kernel_scores` of any history is one product."""
    if len(unit) > KERNEL_TABLE_MAX_ITEMS:
        return None
    table = np.asarray(unit @ np.asarray(unit).T, dtype=np.float32)
    table -= 1.0
    table /= tau
    np.exp(table, out=table)
    return table


def pooled_scores(weights: Any, table: np.ndarray, tau: float) -> np.ndarray:
    """:func:`kernel_scores` of each row of the (sparse, non-negative) ``weights`` ``(rows, items)`` from a
    :func:`kernel_table`: ``1 + τ log Σ_h p_h exp((cos(h, i) - 1) / τ)``; rows without weight score 0."""
    rows = weights.tocsr().astype(np.float64)
    sums = np.asarray(rows.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    prod = np.asarray((sp.diags(scale) @ rows) @ table, dtype=np.float64)
    out = 1.0 + tau * np.log(np.maximum(prod, 1e-300))
    out[sums <= 0] = 0.0
    return out


def history_kernel_scores(
    unit: np.ndarray, items: np.ndarray, weights: np.ndarray, tau: float, table: np.ndarray | None
) -> np.ndarray:
    """:func:`kernel_scores` of one live history over every item, from the ``table`` when there is one."""
    if table is None:
        return kernel_scores(unit, items, weights, tau)[0]
    pos = np.asarray(weights) > 0
    one = sp.csr_matrix(
        (np.asarray(weights)[pos], (np.zeros(int(pos.sum()), dtype=np.int64), np.asarray(items)[pos])),
        shape=(1, len(unit)),
    )
    return pooled_scores(one, table, tau)[0]


def fit_whitening(vectors: np.ndarray, rows: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, basis, variances)`` of a catalog's unit text vectors (a seeded sample of ``rows`` on a larger
    catalog): the centre and the eigen-decomposition of their covariance, what :func:`whiten` needs."""
    x = np.asarray(vectors, dtype=np.float64)
    if len(x) > rows:
        x = x[np.random.default_rng(seed).choice(len(x), rows, replace=False)]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mean = x.mean(0)
    variances, basis = np.linalg.eigh(np.cov((x - mean).T) if len(x) > 1 else np.eye(x.shape[1]))
    return mean.astype(np.float32), basis.astype(np.float32), np.maximum(variances, 0.0).astype(np.float32)


def whiten(
    vectors: np.ndarray, mean: np.ndarray, basis: np.ndarray, variances: np.ndarray, strength: float
) -> np.ndarray:
    """Unit rows of ``(unit(v) − mean) · basis · diag(variances + ε)^(−strength/2) · basisᵀ`` (WhitenRec's ZCA
    whitening, ``strength`` 1; 0.5 half of it; ε = 10⁻⁶ of the largest variance): off-the-shelf sentence vectors
    crowd into a narrow cone (the same direction dominates every cosine), whitening spreads them out."""
    v = np.asarray(vectors, dtype=np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    scale = (variances + 1e-6 * max(float(variances.max()), 1e-12)) ** (-strength / 2)
    out = ((v - mean) @ basis) * scale.astype(np.float32) @ basis.T
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)
