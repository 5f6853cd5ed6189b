"""Matrix factorisation baselines from the ``implicit`` package: ALS and BPR."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from anyrec.data.dataset import Dataset
from anyrec.models.base import Recommender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ALSConfig:
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) as implemented by ``implicit``.

    Attributes:
        factors: latent dimension.
        regularization: L2 weight.
        alpha: confidence scale of an observed interaction.
        iterations: ALS sweeps.
        seed: initialisation seed.
        threads: solver threads (0 = all cores). ALS is deterministic at any thread count.
        weighting: how a weight column of counts is read (``binary``, ``log``, ``bm25``; unset: ``log`` where the
            log has counts; see :meth:`~anyrec.data.dataset.Interactions.confidence`), searched on validation.

    Defaults were picked by validation NDCG@10 on ml-100k leave-one-out (a 18-point grid
    over factors, regularization and alpha; test figures were not looked at to choose).
    """

    factors: int = 32
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15
    seed: int = 0
    threads: int = 0
    weighting: str | None = None


@dataclass(frozen=True)
class BPRConfig:
    """Bayesian personalised ranking (Rendle et al. 2009) as implemented by ``implicit``.

    Attributes:
        factors, learning_rate, regularization, iterations: as in ``implicit``.
        seed: seed of initialisation and sampling.
        threads: 1 keeps runs reproducible (BPR's parallel SGD is racy by design).

    Defaults were picked by validation NDCG@10 on ml-100k leave-one-out (an 8-point grid
    over learning rate, regularization and iterations).
    """

    factors: int = 64
    learning_rate: float = 0.01
    regularization: float = 0.01
    iterations: int = 100
    seed: int = 0
    threads: int = 1


class _Implicit(Recommender):
    def _make(self) -> Any:
        raise NotImplementedError

    def _fit(self, ds: Dataset) -> None:
        user_items = self.counts_matrix(ds)  # binary for BPR (pairs, not amounts); ALS reads counts as confidence
        # implicit's own threads do the work; nested BLAS threads only slow it down.
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            # implicit warns about BLAS threads by inspecting every loaded BLAS; they are limited here.
            warnings.filterwarnings("ignore", message="OpenBLAS is configured", category=RuntimeWarning)
            model = self._make()
            model.fit(user_items, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T


class ALS(_Implicit):
    """Alternating least squares on binary implicit feedback."""

    name = "als"
    Config = ALSConfig
    count_weightings: ClassVar[tuple[str, ...]] = ("binary", "log", "bm25")

    def _make(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        return AlternatingLeastSquares(
            factors=c.factors, regularization=c.regularization, alpha=c.alpha, iterations=c.iterations,
            random_state=c.seed, num_threads=c.threads,
        )


    def set_history(self, ds: Dataset) -> None:
        """Fold in users whose history changed: re-solve their factors with item factors fixed.

        Solves ``(YᵀY + reg·I + Σ_i (c_i − 1) y_i y_iᵀ) x = Σ_i c_i y_i`` with ``c_i = alpha``,
        the same least-squares step ALS takes for a user (as in ``implicit``'s solver).
        """
        old = self.seen_
        super().set_history(ds)
        changed = np.flatnonzero(np.asarray((abs(self.seen_ - old)).sum(axis=1)).ravel() > 0)
        if changed.size == 0:
            return
        y = self.item_factors_.astype(np.float64)
        c = self.config
        base = y.T @ y + c.regularization * np.eye(y.shape[1])
        for u in changed:
            items = self.seen_.indices[self.seen_.indptr[u] : self.seen_.indptr[u + 1]]
            if items.size == 0:
                self.user_factors_[u] = 0.0
                continue
            yi = y[items]
            a = base + (c.alpha - 1.0) * yi.T @ yi
            self.user_factors_[u] = np.linalg.solve(a, c.alpha * yi.sum(0)).astype(np.float32)


class BPR(_Implicit):
    """Bayesian personalised ranking with uniformly sampled negatives (training only)."""

    name = "bpr"
    Config = BPRConfig

    def _make(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        c = self.config
        return BayesianPersonalizedRanking(
            factors=c.factors, learning_rate=c.learning_rate, regularization=c.regularization,
            iterations=c.iterations, random_state=c.seed, num_threads=c.threads,
        )
