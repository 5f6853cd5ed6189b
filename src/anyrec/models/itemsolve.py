"""The sparse path of EASE and the hybrid: each item's column of ``B`` solved over its neighbours only.

EASE's column ``j`` is the ridge regression of item ``j``'s users on the other items,
``B[:, j] = (G₋ⱼ₋ⱼ + λI)⁻¹ G₋ⱼⱼ`` (``G = XᵀX``; the zero diagonal is the item left out). The dense path solves
all columns at once with one ``items × items`` inverse. Here each column is solved over ``N(j)``, the
``neighbours`` items most often taken with ``j`` (and, for the hybrid, its ``text_k`` nearest by text):
``(G[N,N] + λI) β = G[N,j] + λ·a·T[N,j]``. With ``N(j)`` every other item this *is* the dense solution; with
fewer it is EASE restricted to co-occurring items (the neighbourhood restriction of SLIM's fsSLIM, Ning and
Karypis 2012), memory ``items × neighbours`` instead of ``items²``. The prior's scale ``a`` enters the
right-hand side linearly, so one solve per ``λ`` with two right-hand sides serves every ``a``:
``B(a) = B₀ + a·B₁``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

Progress = Callable[[str, int, int], None]


def cooccurring(gram: sp.csc_matrix, k: int) -> list[np.ndarray]:
    """Each item's ``k`` most co-occurring other items (by ``G``'s column), sorted by index."""
    gram = gram.tocsc()
    out = []
    for j in range(gram.shape[1]):
        lo, hi = gram.indptr[j], gram.indptr[j + 1]
        idx, val = gram.indices[lo:hi], gram.data[lo:hi]
        keep = (idx != j) & (val > 0)
        idx, val = idx[keep], val[keep]
        if len(idx) > k:
            idx = idx[np.argpartition(-val, k - 1)[:k]]
        out.append(np.sort(idx).astype(np.int64))
    return out


def text_neighbours(table: np.ndarray, k: int, block: int = 2048) -> sp.csc_matrix:
    """Each item's ``k`` nearest other items by cosine (rows of unit ``table``), negatives clipped to 0, as the
    columns of a sparse ``items × items`` matrix; built ``block`` columns at a time (never ``items²`` dense)."""
    n = len(table)
    k = min(k, n - 1)
    rows, cols, vals = [], [], []
    if k <= 0:
        return sp.csc_matrix((n, n))
    for j0 in range(0, n, block):
        j1 = min(n, j0 + block)
        cos = np.asarray(table @ table[j0:j1].T, dtype=np.float64)  # (items, block)
        cos[np.arange(j0, j1), np.arange(j1 - j0)] = -np.inf
        top = np.argpartition(-cos, k - 1, axis=0)[:k]  # (k, block)
        v = np.take_along_axis(cos, top, axis=0)
        rows.append(top.ravel(order="F"))
        cols.append(np.repeat(np.arange(j0, j1), k))
        vals.append(np.maximum(v, 0.0).ravel(order="F"))
    m = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    m.eliminate_zeros()
    return m


class Systems:
    """Each item's neighbourhood system, read once from ``G`` and kept for every λ: ``G[N, N]`` and the right-hand
    sides ``G[N, j]`` and ``T[N, j]``, so a λ search pays the slicing of ``G`` once and each further λ only the small
    solves. ``G[N, N]`` is kept in float32 (exact for counts of co-occurrence below 2²⁴); all are kept where they fit
    ``max_mb``, else sliced again per λ."""

    def __init__(self, gram: sp.csr_matrix, neighbours: list[np.ndarray], prior: sp.csc_matrix | None = None,
                 max_mb: float = 2048.0, matrix: sp.spmatrix | None = None) -> None:
        self.gram = gram.tocsr()
        self.matrix = matrix.tocsc() if matrix is not None else None  # X (users × items): G[N,N] = X[:,N]ᵀ X[:,N]
        self.neighbours = neighbours
        self.prior = prior.tocsc() if prior is not None else None
        need = sum(4 * len(nb) ** 2 + 16 * len(nb) for nb in neighbours) / 2**20
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] | None = [] if need <= max_mb else None
        # After ``spectral_after`` distinct λ, each batch's eigendecomposition (float64, ~twice the kept systems) serves
        # every further λ with two products. An eigendecomposition costs ~10 batched LU solves (measured on the
        # 21,843-item log: 203 s against 19 s), so a grid of 7 λ stays with the solves.
        self.spectra: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if 2.2 * need <= max_mb else None
        self.lambdas: set[float] = set()
        self.spectral_after = 10

    def system(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(G[N,N], G[N,j], T[N,j])`` of item ``j``."""
        if self.kept is not None and j < len(self.kept):
            return self.kept[j]
        nb = self.neighbours[j]
        if self.matrix is not None:  # a popular item's row of G lists every item it met; its column of X, its users
            xn = self.matrix[:, nb]
            a = np.asarray((xn.T @ xn).toarray(), dtype=np.float32)
        else:
            a = self.gram[nb][:, nb].toarray().astype(np.float32)
        g = np.asarray(self.gram[j].toarray(), dtype=np.float64).ravel()[nb]  # G is symmetric: row j, not a column
        t = None
        if self.prior is not None:
            t = np.zeros(len(nb), dtype=np.float64)
            lo, hi = self.prior.indptr[j], self.prior.indptr[j + 1]
            idx = self.prior.indices[lo:hi]
            where = np.searchsorted(nb, idx)
            ok = (
                (where < len(nb)) & (nb[np.minimum(where, max(len(nb) - 1, 0))] == idx)
                if len(nb)
                else np.zeros(0, bool)
            )
            t[where[ok]] = self.prior.data[lo:hi][ok]
        if self.kept is not None and j == len(self.kept):
            self.kept.append((a, g, t))
        return a, g, t


def solve_columns(
    systems: Systems, lam: float, progress: Progress | None = None, label: str = "solve"
) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """``B₀`` (and ``B₁`` with a prior ``T``): column ``j`` solved over its neighbourhood (see the module doc).

    The small systems are solved in batches (numpy's stacked solve), items grouped by neighbourhood size rounded up
    to a multiple of 16 and padded with the identity (a padded unknown solves to 0). ``progress`` hears ``label ·
    λ=…`` as the items are read."""
    n = systems.gram.shape[0]
    with_prior = systems.prior is not None
    sizes = np.array([len(nb) for nb in systems.neighbours])
    padded = (np.ceil(sizes / 16) * 16).astype(int)
    order = np.argsort(padded, kind="stable")
    rows_all, cols_all, v0_all, v1_all = [], [], [], []
    t0 = time.monotonic()
    done = 0
    start = int(np.searchsorted(padded[order], 1))  # items without neighbours have no column to solve
    i = start
    while i < n:
        m = int(padded[order[i]])
        batch_cap = max(1, int(64 * 2**20 // (8 * m * m)))  # ≤ 64 MB of stacked matrices at a time
        stop = i
        while stop < n and padded[order[stop]] == m and stop - i < batch_cap:
            stop += 1
        items = order[i:stop]
        spectral = systems.spectra is not None and len(systems.lambdas | {lam}) > systems.spectral_after
        cached = systems.spectra.get(i) if systems.spectra is not None else None
        a = np.zeros((len(items), m, m)) if cached is None else None
        rhs = np.zeros((len(items), m, 2 if with_prior else 1))
        for row, j in enumerate(items):
            aj, g, t = systems.system(int(j)) if systems.kept is None else _kept(systems, int(j))
            k = len(g)
            if a is not None:
                a[row, :k, :k] = aj
            rhs[row, :k, 0] = g
            if t is not None:
                rhs[row, :k, 1] = lam * t
        if spectral:  # (A + λI)⁻¹ = Q diag(1/(Λ + λ)) Qᵀ; padded unknowns (zero rows, zero right-hand side) solve to 0
            if cached is None:
                assert a is not None and systems.spectra is not None
                cached = systems.spectra[i] = np.linalg.eigh(a)
            w, q = cached
            beta = np.asarray(q @ ((np.swapaxes(q, 1, 2) @ rhs) / (w + lam)[:, :, None]), dtype=np.float64)
        else:
            assert a is not None
            a[:, np.arange(m), np.arange(m)] += lam
            for row, j in enumerate(items):  # the padding: identity rows and columns, solved to 0
                k = sizes[j]
                a[row, np.arange(k, m), np.arange(k, m)] = 1.0
            beta = np.asarray(np.linalg.solve(a, rhs), dtype=np.float64)
        for row, j in enumerate(items):
            k = sizes[j]
            rows_all.append(systems.neighbours[j])
            cols_all.append(np.full(k, j))
            v0_all.append(beta[row, :k, 0])
            if with_prior:
                v1_all.append(beta[row, :k, 1])
        done += len(items)
        if progress is not None:
            progress(f"{label} · λ={lam:g}, {n:,} items, {time.monotonic() - t0:.0f} s", start + done, n)
        i = stop
    systems.lambdas.add(lam)
    rows = np.concatenate(rows_all) if rows_all else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols_all) if cols_all else np.zeros(0, dtype=np.int64)
    b0 = sp.csr_matrix((np.concatenate(v0_all) if v0_all else np.zeros(0), (rows, cols)), shape=(n, n))
    b1 = sp.csr_matrix((np.concatenate(v1_all), (rows, cols)), shape=(n, n)) if with_prior and v1_all else None
    return b0, b1


def _kept(systems: Systems, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Item ``j``'s system from the kept ones, reading every item up to ``j`` first (they are kept in item order)."""
    assert systems.kept is not None
    while len(systems.kept) <= j:
        systems.system(len(systems.kept))
    return systems.kept[j]


def neighbourhoods(gram: sp.spmatrix, k: int, prior: sp.csc_matrix | None = None) -> list[np.ndarray]:
    """``N(j)``: the ``k`` most co-occurring items, and with a ``prior`` also the items it names for ``j``."""
    hoods = cooccurring(gram, k)
    if prior is None:
        return hoods
    prior = prior.tocsc()
    return [
        np.union1d(h, prior.indices[prior.indptr[j] : prior.indptr[j + 1]]).astype(np.int64)
        for j, h in enumerate(hoods)
    ]


def l3ae_neighbours(table: np.ndarray, lam: float, k: int, block: int = 2048) -> sp.csc_matrix:
    """The L3AE text prior (Moon et al. 2025): EASE fitted on the text vectors, ``B_X = argmin ‖Vᵀ − VᵀB‖² + λ_X‖B‖²``
    with ``diag(B) = 0`` (``V`` items × d, each dimension a "user"), each column's ``k`` largest kept, negatives 0.

    With ``M = (VᵀV + λ_X I)⁻¹`` (d × d, Woodbury) the closed form is ``B_X[i, j] = v_i M v_jᵀ / (1 − v_j M v_jᵀ)`` off
    the diagonal: never ``items²`` at once. ``λ_X`` may be below zero while ``VᵀV + λ_X I`` stays positive definite."""
    v = np.asarray(table, dtype=np.float64)
    n, d = v.shape
    k = min(k, n - 1)
    vtv = v.T @ v
    low = float(np.linalg.eigvalsh(vtv)[0])
    if low + lam <= 1e-9 * max(1.0, float(np.trace(vtv)) / d):
        raise ValueError(
            f"prior_l2={lam:g} leaves VᵀV + λI singular or indefinite (its smallest eigenvalue is {low:.4g}); "
            f"use a value above {-low:.4g}"
        )
    m = np.linalg.inv(vtv + lam * np.eye(d))
    vm = v @ m
    lev = np.einsum("ij,ij->i", vm, v)  # v_j M v_jᵀ
    rows, cols, vals = [], [], []
    if k <= 0:
        return sp.csc_matrix((n, n))
    for j0 in range(0, n, block):
        j1 = min(n, j0 + block)
        s = (vm @ v[j0:j1].T) / (1.0 - lev[j0:j1])[None, :]
        s[np.arange(j0, j1), np.arange(j1 - j0)] = -np.inf
        top = np.argpartition(-s, k - 1, axis=0)[:k]
        val = np.take_along_axis(s, top, axis=0)
        rows.append(top.ravel(order="F"))
        cols.append(np.repeat(np.arange(j0, j1), k))
        vals.append(np.maximum(val, 0.0).ravel(order="F"))
    out = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    out.eliminate_zeros()
    return out
