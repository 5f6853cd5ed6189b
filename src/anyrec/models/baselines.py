"""Classic baselines: popularity, item-kNN and a biased rating baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from anyrec.data.dataset import Dataset
from anyrec.models.base import Recommender
from anyrec.models.feedback import live_term_weights, term_weights


@dataclass(frozen=True)
class PopularityConfig:
    """Popularity: every training interaction counts once; a log with counts can be read by ``weighting``.

    Attributes:
        weighting: how a weight column of counts is read (``binary``, ``log``, ``bm25``; unset: ``log`` where the
            log has counts; see :meth:`~anyrec.data.dataset.Interactions.confidence`), searched on validation.
    """

    weighting: str | None = None


class Popularity(Recommender):
    """Ranks items by their number of training interactions (the same list for everyone)."""

    name = "popularity"
    Config = PopularityConfig
    count_weightings: ClassVar[tuple[str, ...]] = ("binary", "log", "bm25")

    def _fit(self, ds: Dataset) -> None:
        if self.weighting(ds) == "binary":
            self.counts_ = np.bincount(ds.interactions.item, minlength=ds.n_items).astype(np.float64)
        else:
            self.counts_ = np.asarray(self.counts_matrix(ds).sum(axis=0), dtype=np.float64).ravel()

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(users), self.n_items_))

    def score_history(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        return self.counts_.copy()

    def history_attribution(self, history: np.ndarray, items: np.ndarray, weights: np.ndarray, targets: np.ndarray,
                            values: np.ndarray | None) -> tuple[np.ndarray, str]:
        return np.zeros((0, len(targets))), "none"  # nothing in a history moves the score


@dataclass(frozen=True)
class RandomConfig:
    """Uniform random scores: the chance level every model must clear.

    Attributes:
        seed: seed of the scores (one fixed random score per user and item).
    """

    seed: int = 0


class Random(Recommender):
    """Scores every item at random (seeded, fixed per user and item): chance level."""

    name = "random"
    Config = RandomConfig

    def _fit(self, ds: Dataset) -> None:
        pass

    def score(self, users: np.ndarray) -> np.ndarray:
        out = np.empty((len(users), self.n_items_))
        for r, u in enumerate(np.asarray(users)):
            out[r] = np.random.default_rng([self.config.seed, int(u)]).random(self.n_items_)
        return out


@dataclass(frozen=True)
class ItemKNNConfig:
    """Item-kNN over co-occurrence.

    Attributes:
        k: neighbours kept per target item.
        shrink: added to the cosine denominator; damps similarities built on few users.
        block: target items processed at once (memory: n_items × block floats).
        short_term, half_life: the history's long + short term weights (see
            :mod:`anyrec.models.feedback`); ``short_term = 0`` (the default) is the plain binary
            history of the classic model (and RecBole's). Chosen with the stability check when a
            version is fitted for serving (``serving_grid``); leaderboards keep the classic model.
        weighting: how a weight column of counts is read (``binary``, ``log``, ``bm25``; unset: ``log`` where the
            log has counts; see :meth:`~anyrec.data.dataset.Interactions.confidence`), searched on validation.
    """

    k: int = 100
    shrink: float = 0.0
    block: int = 512
    short_term: float = 0.0
    half_life: float = 0.0
    weighting: str | None = None


class ItemKNN(Recommender):
    """Cosine item-kNN over the binary user × item matrix.

    ``sim(i, j) = |U_i ∩ U_j| / (|U_i|^½ |U_j|^½ + shrink + 1e-6)``; for each target item j
    only its ``k`` most similar items i are kept (``sim(j, j) = 0``), and a user's score
    for j sums ``sim(i, j)`` over the items i in the user's history. The ``1e-6`` keeps
    the denominator positive, as in RecBole's ItemKNN, so the two agree at equal settings.
    """

    name = "itemknn"
    Config = ItemKNNConfig
    count_weightings: ClassVar[tuple[str, ...]] = ("binary", "log", "bm25")
    serving_grid: ClassVar[dict[str, list[Any]]] = {
        "half_life": [0.0, 1.0, 3.0, 10.0],
        "short_term": [0.0, 0.25, 0.5, 1.0],
    }

    def _fit(self, ds: Dataset) -> None:
        x = self.counts_matrix(ds).tocsc()  # (users, items): binary, or the counts' confidence
        norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel())
        xt = x.T.tocsr()
        n, k = ds.n_items, min(self.config.k, ds.n_items)
        rows, cols, vals = [], [], []
        for start in range(0, n, self.config.block):
            stop = min(start + self.config.block, n)
            co = (xt @ x[:, start:stop]).toarray()  # (items, block) co-occurrence counts
            co[np.arange(start, stop), np.arange(stop - start)] = 0.0
            sim = co / (norms[:, None] * norms[None, start:stop] + self.config.shrink + 1e-6)
            top = (
                np.argpartition(-sim, k - 1, axis=0)[:k]
                if k < n
                else np.broadcast_to(np.arange(n)[:, None], (n, stop - start))
            )
            top_vals = np.take_along_axis(sim, top, axis=0)
            keep = top_vals != 0.0
            rows.append(top[keep])
            cols.append(np.nonzero(keep)[1] + start)
            vals.append(top_vals[keep])
        self.similarity_ = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float64
        )
        self.set_history(ds)

    def set_history(self, ds: Dataset) -> None:
        super().set_history(ds)
        index = ds.interactions.history(ds.n_users)
        self.hist_user_ = ds.interactions.user[index.order]
        self.hist_item_ = ds.interactions.item[index.order]
        self.hist_from_end_ = (
            np.repeat(index.offsets[1:], np.diff(index.offsets)) - 1 - np.arange(len(index.order))
        ).astype(np.float64)
        self._history: tuple[tuple[float, float], sp.csr_matrix] | None = None

    def _weighted(self) -> bool:
        return self.config.short_term > 0 and self.config.half_life > 0

    def history_matrix(self) -> sp.csr_matrix:
        """Users × items history weights: binary (a repeated item counts once), or with the long + short
        term weights (scaled so the long term gives each event 1)."""
        key = (self.config.short_term, self.config.half_life) if self._weighted() else (0.0, 0.0)
        if self._history is None or self._history[0] != key:
            shape = (self.seen_.shape[0], self.seen_.shape[1])
            if self._weighted():
                w = term_weights(
                    self.hist_from_end_, self.hist_user_, shape[0], self.config.half_life, self.config.short_term
                )
                n = np.bincount(self.hist_user_, minlength=shape[0])[self.hist_user_]
                h = sp.csr_matrix((w * n, (self.hist_user_, self.hist_item_)), shape=shape, dtype=np.float64)
            else:
                h = self.seen_.astype(np.float64)
            self._history = (key, h)
        return self._history[1]

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.history_matrix()[users] @ self.similarity_).toarray()

    def score_history(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Signed neighbourhood score: liked items add their neighbours, disliked ones subtract them.

        The fitted history is binary (a repeated item counts once); a live history keeps that
        rule for positive events and lets the latest signed weight of an item decide its sign.
        """
        items, weights = np.asarray(items, dtype=np.int64), np.asarray(weights, dtype=np.float64)
        h = np.zeros(self.similarity_.shape[0])
        for i, w in zip(items, weights):
            if i < len(h):
                h[i] = 1.0 if w > 0 else (-1.0 if w < 0 else h[i])
        if self._weighted():  # the same items and signs, the positive ones weighed by their long + short term
            pos = weights > 0
            term = live_term_weights(int(pos.sum()), self.config.half_life, self.config.short_term) * pos.sum()
            known = items[pos] < len(h)
            summed = np.bincount(items[pos][known], weights=term[known], minlength=len(h))
            h = np.where(h > 0, summed, h)
        return np.asarray(self.similarity_.T @ h).ravel()

    def item_neighbours(self, item: int) -> np.ndarray | None:
        if item >= self.similarity_.shape[1]:
            return None
        return np.asarray(self.similarity_[:, item].toarray()).ravel()

    def history_attribution(
        self,
        history: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray,
        targets: np.ndarray,
        values: np.ndarray | None,
    ) -> tuple[np.ndarray, str]:
        """The item–item similarity, which is what the score sums (signed by the history item's events)."""
        sim = self.similarity_
        known = (history < sim.shape[0])[:, None] & (targets < sim.shape[1])[None, :]
        shares = np.zeros((len(history), len(targets)))
        rows, cols = np.nonzero(known)
        if len(rows):
            shares[rows, cols] = np.asarray(sim[history[rows], targets[cols]]).ravel()
        signs = np.array([np.sign(weights[items == h].sum()) for h in history])
        return shares * signs[:, None], "co-occurrence"


@dataclass(frozen=True)
class BiasConfig:
    """Rating baseline ``mean + b_user + b_item`` with ridge shrinkage.

    Attributes:
        reg_item, reg_user: shrinkage of the item and user biases towards 0.
        iterations: alternating least-squares passes.
    """

    reg_item: float = 10.0
    reg_user: float = 10.0
    iterations: int = 10


class Bias(Recommender):
    """Predicts ratings as global mean + user bias + item bias; ranks items by item bias."""

    name = "bias"
    Config = BiasConfig

    def _fit(self, ds: Dataset) -> None:
        inter = ds.interactions
        r = inter.rating if inter.rating is not None else np.ones(len(inter), dtype=np.float32)
        r = r.astype(np.float64)
        self.mean_ = float(r.mean())
        bu = np.zeros(ds.n_users)
        bi = np.zeros(ds.n_items)
        cfg = self.config
        for _ in range(cfg.iterations):
            resid = r - self.mean_ - bu[inter.user]
            bi = np.bincount(inter.item, resid, ds.n_items) / (
                np.bincount(inter.item, minlength=ds.n_items) + cfg.reg_item
            )
            resid = r - self.mean_ - bi[inter.item]
            bu = np.bincount(inter.user, resid, ds.n_users) / (
                np.bincount(inter.user, minlength=ds.n_users) + cfg.reg_user
            )
        self.user_bias_, self.item_bias_ = bu, bi

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_bias_, (len(users), self.n_items_))

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted rating of each ``(users[i], items[i])`` pair."""
        return self.mean_ + self.user_bias_[users] + self.item_bias_[items]
