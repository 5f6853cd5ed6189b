"""Item-item models for logs without order: EASE, RP3beta, and EASE with a text prior (``hybrid``).

- **EASE** (Steck 2019): ``B = argmin ‖X − XB‖² + λ‖B‖²`` with ``diag(B) = 0``, in closed form
  ``P = (XᵀX + λI)⁻¹``, ``B = I − P · diag(1 / diag(P))``; a user's scores are ``x_u B``.
- **RP3beta** (Paudel et al. 2017): a random walk item → user → item with transition
  probabilities raised to ``α``, divided by the target's popularity to the power ``β``, the
  ``k`` best kept per target item.
- **hybrid** (:mod:`anyrec.models.hybrid`): EASE pulled towards a text prior, ``B = argmin ‖X − XB‖² + λ‖B − a·T‖²``
  with ``diag(B) = 0``, ``T`` the items' text cosine (each item's ``text_k`` nearest, zero diagonal).
  Closed form: ``B = P(XᵀX + λaT) − P·diag(γ)``, ``γ_j = [P(XᵀX + λaT)]_jj / P_jj``. An item
  nobody touched has an empty column of ``XᵀX``: its column of ``B`` is ``a·(λP T)`` — text
  similarity to the user's items through the same solve — so cold items and new users (a live
  history of any items) are scored. ``a = 0`` is EASE.

All three read a live history (``score_history``: positive events, binary like the fitted
matrix; negative ones push their kin, see :mod:`anyrec.models.feedback`). The dense solve holds ``items² × 8`` bytes
five times (seven for the hybrid); when that is more than the fit may take (``max_memory_mb``, by default 80 % of
the memory available when the fit starts) EASE and the hybrid take their sparse path
(:mod:`anyrec.models.itemsolve`: each item's column over its ``neighbours`` most co-occurring items), and say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.machine import available_memory_mb
from anyrec.models import itemsolve
from anyrec.models.base import Recommender
from anyrec.models.feedback import kin_push
from anyrec.models.trainer import announce_sizing

log = logging.getLogger(__name__)


DENSE_COPIES = {"ease": 5, "hybrid": 7}
# Above this many items the dense solve's time, not its memory, rules it out by default: its cost grows as items³
# (21,843 items: one inverse over 3 minutes on 2 cores, a λ search's eigendecomposition 3 to 4 more), the sparse path's
# as items × neighbours³ (that catalog's λ points in 20 to 55 s). ``solver="dense"`` still forces it.
DENSE_MAX_ITEMS = 15_000


def gram_memory_mb(n_items: int, copies: int = 4) -> float:
    """What a dense model holds at once (float64 items × items): EASE keeps the Gram matrix, its
    inverse (reused across the prior's grid), the eigenvectors a λ search reuses, ``B`` and ``B``'s unit
    columns; the hybrid adds the text prior and its product with the inverse (:data:`DENSE_COPIES`)."""
    return copies * n_items * n_items * 8 / 2**20


@dataclass(frozen=True)
class EASEConfig:
    """EASE.

    Attributes:
        l2: the ridge weight λ (chosen on validation from ``tuning_grid``; each value is one solve).
        max_memory_mb: what the dense solve may take (``gram_memory_mb``); ``None``: 80 % of the memory
            available when the fit starts.
        solver: ``"dense"`` (every column at once; refused above ``max_memory_mb``), ``"sparse"`` (each
            item's column over its ``neighbours``, see :mod:`anyrec.models.itemsolve`) or ``None``: dense
            when it fits ``max_memory_mb`` and the catalog has at most :data:`DENSE_MAX_ITEMS` items, sparse
            otherwise (said at fit).
        neighbours: the sparse path's most co-occurring items per column.
        weighting: how a weight column of counts is read (``binary``, ``log``, ``bm25``; unset: ``log`` where the
            log has counts), searched on validation.
        push, kin: live negative events push their ``kin`` nearest items (by ``B``'s columns) down
            by at most ``push`` times the user's top score.
    """

    l2: float = 500.0
    max_memory_mb: float | None = None
    solver: str | None = None
    neighbours: int = 200
    weighting: str | None = None
    push: float = 0.05
    kin: int = 10


class EASE(Recommender):
    """Embarrassingly shallow autoencoder: a closed-form item-item regression on the binary matrix."""

    name = "ease"
    Config = EASEConfig
    count_weightings: ClassVar[tuple[str, ...]] = ("binary", "log", "bm25")
    _solved: tuple[Any, np.ndarray] | None = None  # (options, B), (λ, inverse), (options, B's unit columns):
    _inverse: tuple[Any, Any] | None = None  # kept between calls, never saved with the folder
    _unit: tuple[Any, np.ndarray] | None = None
    _eigen: tuple[np.ndarray, np.ndarray] | None = None  # (Λ, Q) of G once a search asks for a second λ
    tuning_grid: ClassVar[dict[str, list[Any]]] = {"l2": [10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0]}

    def _choose_solver(self, n_items: int) -> str:
        """Dense or sparse for this catalog and machine (see ``EASEConfig.solver``), said before the solve."""
        c = self.config
        need = gram_memory_mb(n_items, DENSE_COPIES[self.name])
        budget = c.max_memory_mb if c.max_memory_mb is not None else available_memory_mb(0.8)
        whence = f"{self.name}.max_memory_mb" if c.max_memory_mb is not None else "80 % of the memory available now"
        said = f"a dense solve over {n_items:,} items needs {need:,.0f} MB; {budget:,.0f} MB may be taken ({whence})"
        if c.solver not in (None, "dense", "sparse"):
            raise ConfigError(f"{self.name}.solver is dense, sparse or unset (chosen by memory), not {c.solver!r}")
        if c.solver == "dense" and need > budget:
            raise ConfigError(
                f"{self.name}: a dense solve over {n_items:,} items needs {need:,.0f} MB, above {budget:,.0f} MB "
                f"({whence}); raise {self.name}.max_memory_mb if the machine has the memory, or use "
                f"{self.name}.solver=sparse (or leave it unset)"
            )
        chosen = c.solver or ("dense" if need <= budget and n_items <= DENSE_MAX_ITEMS else "sparse")
        if c.solver is None and need <= budget and n_items > DENSE_MAX_ITEMS:
            said += (
                f"; above {DENSE_MAX_ITEMS:,} items a dense solve takes minutes per λ "
                f"({self.name}.solver=dense forces it)"
            )
        why = said + (
            "" if chosen == "dense" else f"; each item's column over its {c.neighbours} most co-occurring items"
        )
        self.report_.sized["solver"] = f"{chosen} ({why})"
        announce_sizing(self.name, {"solver": self.report_.sized["solver"]}, self.progress)
        return chosen

    def _fit_prior(self, ds: Dataset) -> None:
        """The hybrid's text prior, built after the solver is chosen (EASE has none)."""

    def _fit(self, ds: Dataset) -> None:
        self.solver_ = self._choose_solver(ds.n_items)
        self._fit_prior(ds)
        x = self.counts_matrix(ds).astype(np.float64)
        gram = (x.T @ x).tocsr()
        if self.solver_ == "dense":
            self.gram_ = np.asarray(gram.toarray(), dtype=np.float64)
        else:
            self.gram_ = gram
            self.fit_matrix_ = x.tocsr()  # (the sparse path reads each neighbourhood's G[N,N] from X's columns)
        self.history_ = x.tocsr()
        self._solved = self._inverse = self._unit = None
        self._eigen = None
        self._lambdas: set[float] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_solved"] = state["_unit"] = state["_inverse"] = state["_eigen"] = state["_systems"] = None
        state.pop("_lambdas", None)
        return state

    def set_history(self, ds: Dataset) -> None:
        super().set_history(ds)
        self.history_ = self.counts_matrix(ds).astype(np.float64).tocsr()

    def _key(self) -> Any:
        return (self.config.l2,)

    def _prior_product(self, lam: float, p: np.ndarray) -> np.ndarray:
        """``P·T`` (a fresh array) for the hybrid's dense path, kept per (λ, prior); EASE has no prior."""
        raise NotImplementedError

    def _sparse_prior(self) -> sp.csc_matrix | None:
        """``T`` (unscaled, sparse) for the hybrid's sparse path; EASE has none."""
        return None

    def _prior_scale(self) -> float:
        return 0.0

    def _solve_key(self) -> tuple[Any, ...]:
        """What the sparse path's per-λ solve depends on: λ first, then (the hybrid) its prior's options."""
        return (float(self.config.l2),)

    def weights(self) -> np.ndarray | sp.csr_matrix:
        """``B`` (items × items) for the current options, solved once per option set (sparse on the sparse path)."""
        solved: tuple[Any, Any] | None = getattr(self, "_solved", None)  # (not saved with the folder)
        if solved is None or solved[0] != self._key():
            solved = self._solved = self._unit = None  # (free the last B before the next)
            if sp.issparse(self.gram_):  # the sparse path (a saved folder keeps G sparse; older folders are dense)
                return self._sparse_weights()
            lam = float(self.config.l2)
            inverse: tuple[float, np.ndarray] | None = getattr(self, "_inverse", None)  # kept for the prior's grid
            if inverse is None or inverse[0] != lam:
                self._inverse = None
                inverse = self._inverse = (lam, self._dense_inverse(lam))
            p = inverse[1]
            a = self._prior_scale()
            if a == 0:
                b = -p / np.diag(p)[None, :]
            else:  # P(G + λaT) = I − λP + aλ·PT (PG = I − λP): one sparse product per (λ, T), not a dense one per a
                b = self._prior_product(lam, p)
                b *= a * lam
                b -= lam * p
                b[np.diag_indices_from(b)] += 1.0
                b -= p * (np.diag(b) / np.diag(p))[None, :]
            np.fill_diagonal(b, 0.0)
            solved = self._solved = (self._key(), b)
        return solved[1]

    def _dense_inverse(self, lam: float) -> np.ndarray:
        """``(G + λI)⁻¹``. The first λ inverts; from the second on (a validation search) one eigendecomposition
        ``G = QΛQᵀ`` serves every λ as ``Q diag(1/(Λ + λ)) Qᵀ``, a product instead of an inverse per point."""
        n = len(self.gram_)
        label = f"solve {self.name} · λ={lam:g}, dense, {n:,} items"
        eigen: tuple[np.ndarray, np.ndarray] | None = getattr(self, "_eigen", None)
        seen: set[float] = getattr(self, "_lambdas", set())
        self._lambdas = seen | {lam}
        if self.progress is not None:
            self.progress(label, 0, 1)
        if eigen is None and len(self._lambdas) > 1:
            if self.progress is not None:
                self.progress(f"{label}: one eigendecomposition for every λ to come", 0, 1)
            w, q = np.linalg.eigh(self.gram_)
            eigen = self._eigen = (w, q)
        p = (
            (eigen[1] / (eigen[0] + lam)[None, :]) @ eigen[1].T
            if eigen is not None
            else np.linalg.inv(self.gram_ + lam * np.eye(n))
        )
        if self.progress is not None:
            self.progress(label, 1, 1)
        return p

    def _sparse_weights(self) -> sp.csr_matrix:
        """The sparse path: ``B₀ (+ a·B₁)``, the per-λ solve kept for the prior's grid."""
        lam = float(self.config.l2)
        parts: tuple[Any, Any] | None = getattr(self, "_inverse", None)
        if parts is None or parts[0] != self._solve_key():
            self._inverse = None
            key = self._solve_key()[1:]  # what the neighbourhoods depend on (not λ)
            systems: tuple[Any, itemsolve.Systems] | None = getattr(self, "_systems", None)
            if systems is None or systems[0] != key:
                self._systems = None
                prior = self._sparse_prior()
                hoods = itemsolve.neighbourhoods(self.gram_, self.config.neighbours, prior)
                systems = self._systems = (key, itemsolve.Systems(self.gram_, hoods, prior,
                                                                  matrix=getattr(self, "fit_matrix_", None)))
            parts = self._inverse = (
                self._solve_key(),
                itemsolve.solve_columns(systems[1], lam, self.progress, f"solve {self.name}"),
            )
        b0, b1 = parts[1]
        a = self._prior_scale()
        b = b0 if b1 is None or a == 0 else (b0 + a * b1).tocsr()
        self._solved = (self._key(), b)
        return b

    def score(self, users: np.ndarray) -> np.ndarray:
        s = self.history_[np.asarray(users)] @ self.weights()
        return s.toarray() if sp.issparse(s) else np.asarray(s)

    def score_history(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """The fitted rule on a live history: each positive item once; negatives push their kin."""
        items, weights = np.asarray(items, dtype=np.int64), np.asarray(weights, dtype=np.float64)
        b = self.weights()
        n = b.shape[0]
        pos = np.unique(items[(weights > 0) & (items < n)])
        scores = np.asarray(b[pos].sum(axis=0), dtype=np.float64).ravel() if len(pos) else np.zeros(n)
        neg = (weights < 0) & (items < n)
        if neg.any() and self.config.push > 0:
            top = float(np.max(np.abs(scores))) or 1.0
            scores = scores - self.config.push * top * kin_push(
                self._unit_columns(), items[neg], weights[neg], self.config.kin, history=items
            )
        return scores

    def _unit_columns(self) -> np.ndarray | sp.csr_matrix:
        """Items as their unit-length columns of ``B`` (the kin a negative event pushes), kept with the solve."""
        b = self.weights()
        kept: tuple[Any, Any] | None = getattr(self, "_unit", None)
        if kept is None or kept[0] != self._key():  # (keyed by the options, not id(b): ids are reused)
            if sp.issparse(b):
                bt = sp.csr_matrix(b.T)
                norms = np.sqrt(np.asarray(bt.multiply(bt).sum(axis=1)).ravel())
                unit: Any = (sp.diags(1.0 / np.maximum(norms, 1e-12)) @ bt).tocsr()
            else:
                unit = b.T / np.maximum(np.linalg.norm(b.T, axis=1, keepdims=True), 1e-12)
            kept = self._unit = (self._key(), unit)
        return kept[1]

    def item_neighbours(self, item: int) -> np.ndarray | None:
        b = self.weights()
        if item >= b.shape[0]:
            return None
        return b[item].toarray().ravel() if sp.issparse(b) else np.asarray(b[item], dtype=np.float64)

    def history_attribution(self, history: np.ndarray, items: np.ndarray, weights: np.ndarray, targets: np.ndarray,
                            values: np.ndarray | None) -> tuple[np.ndarray, str]:
        """``B[h, t]``: what the score sums (zero for items whose latest sign is not positive)."""
        b = self.weights()
        n = b.shape[0]
        known = history < n
        shares = np.zeros((len(history), len(targets)))
        cols = np.minimum(targets, n - 1)
        shares[known] = b[history[known]][:, cols].toarray() if sp.issparse(b) else b[np.ix_(history[known], cols)]
        signs = np.array([1.0 if weights[items == h].sum() > 0 else 0.0 for h in history])
        return shares * signs[:, None], "item weights"


@dataclass(frozen=True)
class RP3betaConfig:
    """RP3beta.

    Attributes:
        alpha: exponent of the transition probabilities.
        beta: popularity penalty exponent of the target item.
        k: neighbours kept per target item.
        weighting: how a weight column of counts is read (``binary``, ``log``, ``bm25``; unset: ``log`` where the
            log has counts), searched on validation.
    """

    alpha: float = 1.0
    beta: float = 0.5
    k: int = 100
    weighting: str | None = None


WALK_BLOCK = 1 << 24  # floats of one dense block of target columns (128 MB): the walk never densifies the catalog


def walk_weights(p_iu: sp.csr_matrix, p_ui: sp.csc_matrix, popularity: np.ndarray, beta: float, k: int,
                 block: int = WALK_BLOCK) -> sp.csr_matrix:
    """RP3beta's item → item weights ``(p_iu @ p_ui) / popularity^β``, no self-loops, each target column's
    ``k`` largest kept: built a block of target columns at a time (at most ``block`` floats dense), so memory
    grows with the catalog times ``k``, not with its square."""
    n = p_iu.shape[0]
    step, k = max(1, block // max(1, n)), min(k, n - 1)
    parts = []
    for j0 in range(0, n, step):
        j1 = min(n, j0 + step)
        w = np.asarray((p_iu @ p_ui[:, j0:j1]).toarray())  # (items, block): item → the block's items
        w /= np.maximum(popularity[j0:j1], 1.0)[None, :] ** beta
        w[np.arange(j0, j1), np.arange(j1 - j0)] = 0.0
        if 0 < k < n - 1:
            np.put_along_axis(w, np.argpartition(-w, k, axis=0)[k:], 0.0, axis=0)
        parts.append(sp.csc_matrix(w))
    return sp.hstack(parts).tocsr() if parts else sp.csr_matrix((n, n))


class RP3beta(Recommender):
    """A three-step random walk (item → user → item) with a popularity penalty, item-kNN style."""

    name = "rp3beta"
    Config = RP3betaConfig
    count_weightings: ClassVar[tuple[str, ...]] = ("binary", "log", "bm25")
    tuning_grid: ClassVar[dict[str, list[Any]]] = {
        "beta": [0.0, 0.2, 0.4, 0.5, 0.6, 0.8],
        "alpha": [0.5, 0.75, 1.0, 1.25],
    }

    def _fit(self, ds: Dataset) -> None:
        x = self.counts_matrix(ds).astype(np.float64).tocsr()
        self.matrix_ = x
        self.history_ = x
        self.popularity_ = np.asarray(x.sum(axis=0)).ravel()
        self._solved: tuple[Any, sp.csr_matrix] | None = None

    def set_history(self, ds: Dataset) -> None:
        super().set_history(ds)
        self.history_ = self.counts_matrix(ds).astype(np.float64).tocsr()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_solved"] = None
        return state

    def weights(self) -> sp.csr_matrix:
        c = self.config
        key = (c.alpha, c.beta, c.k)
        solved: tuple[Any, sp.csr_matrix] | None = getattr(self, "_solved", None)
        if solved is None or solved[0] != key:
            x = self.matrix_
            user_deg = np.asarray(x.sum(axis=1)).ravel()
            p_ui = sp.diags(1.0 / np.maximum(user_deg, 1.0)) @ x  # user → item
            p_iu = (sp.diags(1.0 / np.maximum(self.popularity_, 1.0)) @ x.T).tocsr()  # item → user
            p_ui.data **= c.alpha
            p_iu.data **= c.alpha
            solved = self._solved = (key, walk_weights(p_iu, p_ui.tocsc(), self.popularity_, c.beta, c.k))
        return solved[1]

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.history_[np.asarray(users)] @ self.weights()).toarray())

    def score_history(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        items, weights = np.asarray(items, dtype=np.int64), np.asarray(weights, dtype=np.float64)
        w = self.weights()
        h = np.zeros(w.shape[0])
        for i, s in zip(items, weights):
            if i < len(h):
                h[i] = 1.0 if s > 0 else (-1.0 if s < 0 else h[i])
        return np.asarray(w.T @ h).ravel()
