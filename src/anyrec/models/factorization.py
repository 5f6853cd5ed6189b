"""Matrix factorisation baselines from the ``implicit`` package: ALS and BPR."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
    """

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 2.0
    iterations: int = 15
    seed: int = 0
    threads: int = 0


@dataclass(frozen=True)
class BPRConfig:
    """Bayesian personalised ranking (Rendle et al. 2009) as implemented by ``implicit``.

    Attributes:
        factors, learning_rate, regularization, iterations: as in ``implicit``.
        seed: seed of initialisation and sampling.
        threads: 1 keeps runs reproducible (BPR's parallel SGD is racy by design).
    """

    factors: int = 64
    learning_rate: float = 0.05
    regularization: float = 0.01
    iterations: int = 100
    seed: int = 0
    threads: int = 1


class _Implicit(Recommender):
    def _make(self):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def _fit(self, ds: Dataset) -> None:
        user_items = ds.interactions.matrix(ds.n_users, ds.n_items)
        # implicit's own threads do the work; nested BLAS threads only slow it down.
        with threadpool_limits(limits=1, user_api="blas"):
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

    def _make(self):  # type: ignore[no-untyped-def]
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        return AlternatingLeastSquares(
            factors=c.factors, regularization=c.regularization, alpha=c.alpha, iterations=c.iterations,
            random_state=c.seed, num_threads=c.threads,
        )


class BPR(_Implicit):
    """Bayesian personalised ranking with uniformly sampled negatives (training only)."""

    name = "bpr"
    Config = BPRConfig

    def _make(self):  # type: ignore[no-untyped-def]
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        c = self.config
        return BayesianPersonalizedRanking(
            factors=c.factors, learning_rate=c.learning_rate, regularization=c.regularization,
            iterations=c.iterations, random_state=c.seed, num_threads=c.threads,
        )
