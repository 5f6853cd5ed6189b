"""Zero-shot recommender: items scored by their text's similarity to the user's history, nothing trained.

The history is one profile (the long + short term mean of its text vectors) or, with ``kernel``, each
history item soft-max pooled; two priors counted from the log (popularity, trend) may join. Items
nobody has touched score from their text like any other and get the *average* prior."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

import anyrec.models.textvectors as tv
from anyrec.data.dataset import Dataset
from anyrec.lm.encoder import TextEncoder
from anyrec.models.base import IndexQuery, Recommender
from anyrec.models.feedback import KinPushes, RatingScale, check_ratings, kin_push, live_term_weights, term_weights
from anyrec.models.whitening import WhitenedText
from anyrec.models.zeroshot_config import ZeroShotConfig

log = logging.getLogger(__name__)


class ZeroShot(WhitenedText, Recommender):
    """User profile = weighted mean of history item vectors; score = cosine + priors."""

    name = "zeroshot"
    Config = ZeroShotConfig
    space_options: ClassVar[tuple[str, ...]] = ("whiten",)  # it rescales every cosine the rest is tuned to
    count_weightings: ClassVar[tuple[str, ...]] = ("binary", "log")
    tuning_grid: ClassVar[dict[str, list[Any]]] = {
        "whiten": [0.0, 0.5, 1.0],
        "popularity": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
        "half_life": [0.0, 1.0, 3.0, 10.0],
        "short_term": [0.0, 0.25, 0.5, 0.75, 1.0],
        "kernel": [0.0, 0.05, 0.1, 0.2],
        "trend": [0.0, 0.02, 0.05, 0.1],
    }
    # ``interests`` is left out of the grid: its per-user clustering costs far more (benchmarks/zeroshot.py).

    def __init__(
        self,
        config: Any = None,
        *,
        encoder: TextEncoder | None = None,
        item_vectors: np.ndarray | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(config, **kw)
        self._encoder = encoder
        self._given_vectors = item_vectors

    def __getstate__(self) -> dict[str, Any]:  # saved, shipped to Ray workers: without the encoder or kept products
        state = super().__getstate__()
        state["_encoder"] = None
        state.pop("_sim_cache", None)
        state.pop("_ktable", None)
        state.pop("_table", None)
        state.pop("_fused", None)
        state["_pushes"] = None
        return state

    # ---- fitting ----------------------------------------------------------------
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = TextEncoder(self.config.encoder)
        return self._encoder

    def _fit(self, ds: Dataset) -> None:
        report = self.progress
        progress = (lambda d, t: report("embed catalog", d, t)) if report else None
        if self.config.memmap_dir:
            given = (
                self._given_vectors
                if self._given_vectors is not None and self._given_vectors.shape[0] == ds.n_items
                else None
            )
            self.item_vectors_ = tv.memmapped_unit_vectors(
                Path(self.config.memmap_dir) / "item_vectors.npy", ds.catalog.texts(), self.encoder, given, progress
            )
        else:
            if self._given_vectors is not None and self._given_vectors.shape[0] == ds.n_items:
                vectors = self._given_vectors
            else:
                vectors = self.encoder().encode(ds.catalog.texts(), progress=progress)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            self.item_vectors_ = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)  # (items, dim)
        self.tune_to_log(ds)
        self.fit_whitening()
        self.fit_pictures(ds)
        self.popularity_prior_, self.trend_prior_ = tv.log_priors(
            ds.interactions, ds.n_items, self.config.trend_half_life
        )
        self._set_history(ds)

    def set_history(self, ds: Dataset) -> None:
        super().set_history(ds)
        self._set_history(ds)

    def _set_history(self, ds: Dataset) -> None:
        inter = ds.interactions
        index = inter.history(ds.n_users)
        order = index.order
        self.hist_user_, self.hist_item_ = inter.user[order], inter.item[order]
        self.hist_from_end_ = (np.repeat(index.offsets[1:], np.diff(index.offsets)) - 1 - np.arange(len(order))).astype(
            np.float64
        )
        # Ratings that are all the same carry no sign (an implicit log read with a constant "rating").
        rating = inter.rating
        rated = rating is not None and len(inter) > 0 and float(np.ptp(rating)) > 0
        self.hist_rating_ = rating[order].astype(np.float64) if rating is not None and rated else None
        counts = inter.weight if inter.weight is not None and self.weighting(ds) == "log" else None
        self.hist_count_ = None if counts is None else np.log2(1.0 + np.maximum(counts[order], 0.0)).astype(np.float64)
        ratings = self._ratings()
        if ratings is not None:
            self.rating_range_ = (float(np.nanmin(ratings)), float(np.nanmax(ratings)))
            if self.config.rating_high > self.config.rating_low:  # a declared scale: the log must fit it
                check_ratings(ratings, self.rating_scale(), "zeroshot")
        self._weights_key: tuple[float, ...] | None = None
        self._pushes: KinPushes | None = None

    def rating_scale(self) -> RatingScale:
        c = self.config  # declared, or (0 options) the log's range
        low, high = (
            (c.rating_low, c.rating_high)
            if c.rating_high > c.rating_low
            else getattr(self, "rating_range_", (1.0, 5.0))
        )
        return RatingScale(low, high, c.rating_neutral or low + 0.375 * (high - low))

    def _ratings(self) -> np.ndarray | None:
        """The history's ratings where they are read (the log has them and ``ratings`` is on)."""
        return self.hist_rating_ if self.config.ratings else None

    def _profile_key(self) -> tuple[float, ...]:
        """The options the profiles depend on (the rating scale only where the log has ratings)."""
        c = self.config
        terms = (c.half_life, c.short_term) if c.half_life > 0 else (0.0, 0.0)  # no recency: both terms are the mean
        return terms if self._ratings() is None else (*terms, c.rating_low, c.rating_high, c.rating_neutral)

    def _row_weights(self) -> np.ndarray:
        """Signed weight of each history row: its long + short term weight, times its rating's sign and size."""
        c = self.config
        w = term_weights(self.hist_from_end_, self.hist_user_, self.n_users_, c.half_life, c.short_term)
        if getattr(self, "hist_count_", None) is not None:  # counts: a row that counted more pulls more
            w = w * self.hist_count_
        ratings = self._ratings()
        return w if ratings is None else w * self.rating_scale().weight(np.nan_to_num(ratings, nan=c.rating_high))

    def history_weights(self) -> sp.csr_matrix:
        """Users × items matrix of profile weights under the current config (positive rows only; cached)."""
        key = self._profile_key()
        if self._weights_key != key:
            w = self._row_weights()
            pos = w > 0
            # float32 like the item vectors: a float64 matrix would make scipy upcast the whole
            # (items, dim) table on every product (46 ms per user at 100k items instead of 0.1 ms).
            self._weights = sp.csr_matrix(
                (w[pos], (self.hist_user_[pos], self.hist_item_[pos])),
                shape=(self.n_users_, self.n_items_),
                dtype=np.float32,
            )
            neg = w < 0
            ratings = self._ratings()
            strength = w[neg] if ratings is None else self.rating_scale().weight(ratings[neg])
            self._negatives = sp.csr_matrix(
                (np.abs(strength), (self.hist_user_[neg], self.hist_item_[neg])), shape=(self.n_users_, self.n_items_)
            )
            self._weights_key = key
        return self._weights

    def negative_weights(self) -> sp.csr_matrix:
        """Users × items matrix of the pushes (``|signed rating|`` of the items rated below neutral)."""
        self.history_weights()
        return self._negatives

    # ---- scoring ----------------------------------------------------------------
    def profiles(self, users: np.ndarray) -> np.ndarray:
        """Unit-length profile vectors ``(len(users), dim)`` (zero rows for users without history)."""
        prof = np.asarray(self.history_weights()[users] @ self.table())  # (batch, dim)
        norms = np.linalg.norm(prof, axis=1, keepdims=True)
        return (prof / np.maximum(norms, 1e-12)).astype(np.float32)

    def priors(self) -> np.ndarray:
        """``popularity · prior + trend · prior`` (cached per config and catalog size: serving calls it per request)."""
        c = self.config
        key = (c.popularity, c.trend, len(self.popularity_prior_))
        cached = getattr(self, "_priors", None)
        if cached is None or cached[0] != key:
            cached = (key, c.popularity * self.popularity_prior_ + c.trend * self.trend_prior_)
            self._priors = cached
        return cached[1]

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        scores = self._similarities(users) + self.priors()[None, :]
        if self.config.push > 0:
            pushes, neg = self._kin_pushes(), self.negative_weights()
            for r, u in enumerate(users):
                cols, vals = pushes.of(int(u), self.table(), neg[u], self.seen_[u].indices)
                scores[r, cols] -= self.config.push * vals
        return scores

    def _kin_pushes(self) -> KinPushes:
        key = (self.config.kin, self.space_key(), self._profile_key()[2:])  # not with the term weights nor the priors
        pushes: KinPushes | None = getattr(self, "_pushes", None)  # (absent in folders saved before it)
        if pushes is None or pushes.key != key:
            pushes = self._pushes = KinPushes(key, self.config.kin)
        return pushes

    def _similarities(self, users: np.ndarray) -> np.ndarray:
        """The text term of :meth:`score` ``(batch, items)``; reused inside :meth:`reuse_similarities`."""
        cache: tv.SimilarityCache | None = getattr(self, "_sim_cache", None)
        if cache is not None:
            group = (self._profile_key(), self.config.interests, self.config.seed, self.config.kernel, self.space_key())
            key = users.tobytes()
            found = cache.get(group, key)
            if found is not None:
                return found
        table = self._kernel_table()
        if table is not None:
            sim = tv.pooled_scores(self.history_weights()[users], table, self.config.kernel)
        elif self.config.kernel > 0 or self.config.interests > 1:
            sim = tv.per_user_scores(
                self.table(), self.history_weights(), users, self.config.kernel, self.config.interests, self.config.seed
            )
        else:
            sim = self.profiles(users) @ self.table().T  # (batch, items)
        if cache is not None:
            cache.put(group, key, sim)
        return sim

    @contextlib.contextmanager
    def reuse_similarities(self, memory_mb: int) -> Iterator[None]:
        """Keep the text term of the scored batches (within ``memory_mb``, see :class:`SimilarityCache`)
        while options that only move the priors change: a validation grid over ``popularity`` and
        ``trend`` then costs one matrix product per batch, not one per grid point. The scores are
        the same arrays, so results are identical with or without it."""
        self._sim_cache: tv.SimilarityCache | None = tv.SimilarityCache(memory_mb * 2**20)
        try:
            yield
        finally:
            self._sim_cache = None

    def score_history(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Scores for a live history (``weights`` the signed event weights, ratings already mapped):
        the positive events make the profile with :meth:`history_weights`' term weights, each
        negative one pushes its ``kin`` nearest items down by at most ``push``."""
        if self.config.kernel > 0:
            text = tv.history_kernel_scores(
                self.table(), items, self._live_weights(weights), self.config.kernel, self._kernel_table()
            )
        else:
            text = self.table() @ self.history_profile(items, weights, values)
        return text + self.priors() - self.live_push(items, weights)

    def live_push(self, items: np.ndarray, weights: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
        """What a live history's negative events take off each item's score (``0`` … ``push``)."""
        items, weights = np.asarray(items, dtype=np.int64), np.asarray(weights, dtype=np.float64)
        neg = (weights < 0) & (self.config.push > 0)
        return self.config.push * kin_push(self.table(), items[neg], weights[neg], self.config.kin, candidates, items)

    def history_profile(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """The unit profile vector ``(dim,)`` of a live history (what :meth:`score_history` scores with)."""
        items = np.asarray(items, dtype=np.int64)
        w = self._live_weights(weights, values)
        table = self.table()
        prof = w @ table[items] if len(items) else np.zeros(table.shape[1])
        return (prof / max(float(np.linalg.norm(prof)), 1e-12)).astype(np.float32)

    def _live_weights(self, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Profile weights of a live history: the positive events' long + short term weights times
        their event weights; negative events weigh 0 here (they push, see :meth:`live_push`)."""
        c = self.config
        weights = np.asarray(weights, dtype=np.float64)
        pos = weights > 0
        w = np.zeros(len(weights))
        w[pos] = live_term_weights(int(pos.sum()), c.half_life, c.short_term) * weights[pos]
        return w

    def _kernel_table(self) -> np.ndarray | None:
        """The item-pair table of the pooled kernel (kept per ``kernel`` and catalog size; small catalogs only)."""
        tau, n = self.config.kernel, self.item_vectors_.shape[0]
        if tau <= 0:
            return None
        cached = getattr(self, "_ktable", None)
        if cached is None or cached[0] != (tau, n, self.space_key()):
            cached = ((tau, n, self.space_key()), tv.kernel_table(self.table(), tau))
            self._ktable = cached
        return cached[1]

    def add_items(self, vectors: np.ndarray) -> bool:
        """Append new items' text vectors (a catalog update while serving); their priors are the warm average."""
        if getattr(self, "raw_vectors_", None) is not None:
            self.raw_vectors_ = np.vstack([self.raw_vectors_, np.asarray(vectors, dtype=np.float32)])
        self.item_vectors_ = np.vstack([self.item_vectors_, self.to_space(vectors)])
        self.popularity_prior_ = np.r_[self.popularity_prior_, np.zeros(len(vectors))]
        self.trend_prior_ = np.r_[self.trend_prior_, np.zeros(len(vectors))]
        self.n_items_ += len(vectors)
        return True

    # ---- capabilities (see Recommender) ---------------------------------------------
    def reads_text(self) -> bool:
        return True

    def learns_from_interactions(self) -> bool:
        return self.config.tune_encoder > 0  # else the pretrained encoder alone; the rows only feed its popularity term

    def use_item_vectors(self, vectors: np.ndarray) -> None:
        self._given_vectors = vectors

    def text_table(self) -> np.ndarray:
        return self.table()

    def encoded_items(self) -> np.ndarray:
        return self.raw_vectors_ if getattr(self, "raw_vectors_", None) is not None else self.item_vectors_

    def text_encoder(self) -> TextEncoder:
        return self.encoder()

    def text_profiles(self, users: np.ndarray) -> np.ndarray:
        return self.profiles(users)

    def item_priors(self) -> np.ndarray:
        return self.priors()

    def history_attribution(
        self,
        history: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray,
        targets: np.ndarray,
        values: np.ndarray | None,
    ) -> tuple[np.ndarray, str]:
        """Exact terms: the text score is ``Σ_h w_h cos(h, i) / |Σ_h w_h v_h|``, each history item's term its
        share; with ``kernel``, each history item's soft-max share of the pooled score."""
        w = self._live_weights(weights, values)
        if self.config.kernel > 0:
            _, parts = tv.kernel_scores(self.table(), items, w, self.config.kernel, targets)
            return tv.history_order(items, w, history, parts), "soft-max shares"
        wu = np.array([w[items == h].sum() for h in history])
        unit = self.table()
        norm = max(float(np.linalg.norm(wu @ unit[history])), 1e-12)
        shares = wu[:, None] * (unit[history] @ unit[targets].T) / norm  # (history, targets)
        return shares.astype(np.float64), "text terms"

    def index_tables(self, approximate: bool) -> dict[str, tuple[np.ndarray, str | None]]:
        return {"text": (self.table(), None)}  # exact too: search and similar items use it

    def index_queries(self, items: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        return {"text": self.history_profile(items, weights)}

    def retrieval_indexes(self) -> tuple[str, ...] | None:
        return ("text",) if self.config.interests <= 1 and self.config.kernel <= 0 else None

    def index_query(
        self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None
    ) -> IndexQuery | None:
        """``cos(item, profile) + prior``: the text index gives the cosine term's best items, the priors
        (the same for every user) their own order. ``None`` with ``kernel`` (no single query vector)."""
        if self.config.kernel > 0:
            return None
        prof = self.history_profile(items, weights, values)
        priors = self.priors()
        vectors = self.table()

        def exact(cand: np.ndarray) -> np.ndarray:
            return np.asarray(
                vectors[cand] @ prof + priors[cand] - self.live_push(items, weights, cand), dtype=np.float64
            )

        # The index scores cosines; the term is <item, profile> = |profile| * cosine (unit item vectors).
        # Negatives only take off (kin pushes are ≥ 0): the terms still bound every item, no slack needed.
        return IndexQuery({"text": (prof, float(np.linalg.norm(prof)))}, exact, priors)
