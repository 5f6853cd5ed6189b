"""Zero-shot recommender: a user is the weighted mean of their history's text vectors.

Nothing is trained on interactions. Items are scored by cosine similarity between the
user's profile and each item's text vector, optionally blended with two priors counted
from the log (popularity and trend). Items nobody has touched are scored from their text
like any other, and get the *average* prior, so a prior learned on warm items never
buries a new item.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from anyrec.data.dataset import Dataset
from anyrec.lm.encoder import DEFAULT_ENCODER, EncoderConfig, TextEncoder
from anyrec.models.base import IndexQuery, Recommender, recency_weights
from anyrec.models.textvectors import SimilarityCache, kmeans, text_contributions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZeroShotConfig:
    """Zero-shot settings; all but the encoder act at scoring time (cheap to tune).

    Attributes:
        encoder: encoder name or folder (see :class:`EncoderConfig`).
        cache_dir: embedding cache folder ('' = none).
        batch_size: encoder batch size.
        threads: torch CPU threads for the encoder (0 = torch's default).
        half_life: recency weighting of the history, in interactions counted from the most
            recent (weight halves every ``half_life`` steps back); 0 weighs all equally.
        dislike_below: ratings below this subtract from the profile (0 = off).
        dislike_weight: weight of a disliked item (subtracted).
        popularity: weight of the log-popularity prior (standardised over warm items).
        trend: weight of the trend prior (log of time-decayed counts, standardised).
        trend_half_life: half-life of the trend prior as a share of the log's time span.
        interests: interest vectors per user (k-means over the history; the best one scores).
        seed: seed of the k-means initialisation.
        backend: the encoder's runtime: ``torch``, ``onnx`` or ``onnx-int8`` (see :mod:`anyrec.lm.onnx`).
        memmap_dir: a folder for the item vectors as a memory-mapped file (``item_vectors.npy``):
            the catalog is encoded into it chunk by chunk and normalised in place, so the vectors
            are held once, on disk and in the page cache, not in the process's memory ('' = in memory).
    """

    encoder: str = DEFAULT_ENCODER
    cache_dir: str = ""
    batch_size: int = 64
    threads: int = 0
    half_life: float = 0.0
    dislike_below: float = 0.0
    dislike_weight: float = 0.5
    popularity: float = 0.0
    trend: float = 0.0
    trend_half_life: float = 0.05
    interests: int = 1
    seed: int = 0
    backend: str = "torch"
    memmap_dir: str = ""


def standardise_prior(raw: np.ndarray, warm: np.ndarray) -> np.ndarray:
    """z-scores of ``raw`` over warm items; cold items get 0, the warm average."""
    out = np.zeros_like(raw, dtype=np.float64)
    if warm.sum() > 1:
        vals = raw[warm]
        sd = vals.std()
        out[warm] = (vals - vals.mean()) / (sd if sd > 0 else 1.0)
    return out


class ZeroShot(Recommender):
    """User profile = weighted mean of history item vectors; score = cosine + priors."""

    name = "zeroshot"
    Config = ZeroShotConfig
    # Small grids for validation-only tuning (coordinate-wise, see eval.experiment).
    tuning_grid: ClassVar[dict[str, list[Any]]] = {
        "popularity": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
        "half_life": [0.0, 1.0, 3.0, 10.0],
        "trend": [0.0, 0.02, 0.05, 0.1],
        "dislike_below": [0.0, 2.5, 3.5],
    }
    # ``interests`` is left out of the grid: its per-user clustering costs far more than the
    # other options, and benchmarks/zeroshot.py measures it separately.

    def __init__(self, config: Any = None, *, encoder: TextEncoder | None = None, item_vectors: np.ndarray | None = None, **kw: Any) -> None:
        super().__init__(config, **kw)
        self._encoder = encoder
        self._given_vectors = item_vectors

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (saved, shipped to Ray workers) without the loaded encoder or kept products."""
        state = super().__getstate__()
        state["_encoder"] = None
        state.pop("_sim_cache", None)
        return state

    # ---- fitting ----------------------------------------------------------------
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            c = self.config
            self._encoder = TextEncoder(EncoderConfig(model=c.encoder, cache_dir=c.cache_dir, batch_size=c.batch_size,
                                                      threads=c.threads, backend=c.backend))
        return self._encoder

    def _fit(self, ds: Dataset) -> None:
        report = getattr(self, "progress", None)
        progress = (lambda d, t: report("embed catalog", d, t)) if report else None
        if self.config.memmap_dir:
            self.item_vectors_ = self._memmapped_vectors(ds, progress)
        else:
            if self._given_vectors is not None and self._given_vectors.shape[0] == ds.n_items:
                vectors = self._given_vectors
            else:
                vectors = self.encoder().encode(ds.catalog.texts(), progress=progress)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            self.item_vectors_ = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)  # (items, dim)
        inter = ds.interactions
        counts = np.bincount(inter.item, minlength=ds.n_items).astype(np.float64)
        warm = counts > 0
        self.popularity_prior_ = standardise_prior(np.log1p(counts), warm)
        span = float(inter.time.max() - inter.time.min()) if len(inter) else 0.0
        tau = max(span * self.config.trend_half_life, 1e-9)
        decayed = np.bincount(inter.item, weights=0.5 ** ((inter.time.max() - inter.time) / tau), minlength=ds.n_items)
        self.trend_prior_ = standardise_prior(np.log1p(decayed * 1000.0), warm)
        self._set_history(ds)

    def _memmapped_vectors(self, ds: Dataset, progress: Any, rows: int = 65_536) -> np.ndarray:
        """Unit item vectors in ``memmap_dir/item_vectors.npy``, opened read-only.

        Written to a new file that then replaces the old one: the vectors being replaced may be
        mapped from that very file (a refit handed its own vectors), and rewriting it in place
        would zero them under the reader.
        """
        path = Path(self.config.memmap_dir) / "item_vectors.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        given = self._given_vectors if self._given_vectors is not None and self._given_vectors.shape[0] == ds.n_items else None
        dim = given.shape[1] if given is not None else self.encoder().dim
        fd, tmp = tempfile.mkstemp(prefix="item_vectors-", suffix=".npy", dir=path.parent)
        os.close(fd)
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(ds.n_items, dim))
        if given is not None:
            mm[:] = given
        else:
            self.encoder().encode(ds.catalog.texts(), progress=progress, out=mm)
        for a in range(0, ds.n_items, rows):  # in place, a block at a time
            block = mm[a : a + rows]
            block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        mm.flush()
        del mm
        os.replace(tmp, path)
        return np.load(path, mmap_mode="r")

    def set_history(self, ds: Dataset) -> None:
        super().set_history(ds)
        self._set_history(ds)

    def _set_history(self, ds: Dataset) -> None:
        inter = ds.interactions
        index = inter.history(ds.n_users)
        order = index.order
        users = inter.user[order]
        from_end = np.repeat(index.offsets[1:], np.diff(index.offsets)) - 1 - np.arange(len(order))
        self.hist_user_ = users
        self.hist_item_ = inter.item[order]
        self.hist_from_end_ = from_end.astype(np.float64)
        self.hist_rating_ = inter.rating[order].astype(np.float64) if inter.rating is not None else None
        self._weights_key: tuple[float, float, float] | None = None

    def _profile_key(self) -> tuple[float, float, float]:
        """The options the profiles depend on (the dislike options only where there are ratings)."""
        c = self.config
        if self.hist_rating_ is None or c.dislike_below <= 0:
            return (c.half_life, 0.0, 0.0)
        return (c.half_life, c.dislike_below, c.dislike_weight)

    def history_weights(self) -> sp.csr_matrix:
        """Users × items matrix of profile weights under the current config (cached)."""
        c = self.config
        key = self._profile_key()
        if self._weights_key != key:
            w = recency_weights(self.hist_from_end_, c.half_life)
            if self.hist_rating_ is not None and c.dislike_below > 0:
                w = np.where(self.hist_rating_ < c.dislike_below, -c.dislike_weight * w, w)
            # float32 like the item vectors: a float64 matrix would make scipy upcast the whole
            # (items, dim) table on every product (46 ms per user at 100k items instead of 0.1 ms).
            self._weights = sp.csr_matrix((w, (self.hist_user_, self.hist_item_)), shape=(self.n_users_, self.n_items_),
                                          dtype=np.float32)
            self._weights_key = key
        return self._weights

    # ---- scoring ----------------------------------------------------------------
    def profiles(self, users: np.ndarray) -> np.ndarray:
        """Unit-length profile vectors ``(len(users), dim)`` (zero rows for users without history)."""
        prof = np.asarray(self.history_weights()[users] @ self.item_vectors_)  # (batch, dim)
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
        return self._similarities(users) + self.priors()[None, :]

    def _similarities(self, users: np.ndarray) -> np.ndarray:
        """The text term of :meth:`score` ``(batch, items)``; reused inside :meth:`reuse_similarities`."""
        cache: SimilarityCache | None = getattr(self, "_sim_cache", None)
        if cache is not None:
            group, key = (self._profile_key(), self.config.interests, self.config.seed), users.tobytes()
            found = cache.get(group, key)
            if found is not None:
                return found
        if self.config.interests > 1:
            sim = self._multi_interest(users)
        else:
            sim = self.profiles(users) @ self.item_vectors_.T  # (batch, items)
        if cache is not None:
            cache.put(group, key, sim)
        return sim

    @contextlib.contextmanager
    def reuse_similarities(self, memory_mb: int) -> Iterator[None]:
        """Keep the text term of the scored batches (within ``memory_mb``, see :class:`SimilarityCache`)
        while options that only move the priors change: a validation grid over ``popularity`` and
        ``trend`` then costs one matrix product per batch, not one per grid point. The scores are
        the same arrays, so results are identical with or without it."""
        self._sim_cache: SimilarityCache | None = SimilarityCache(memory_mb * 2**20)
        try:
            yield
        finally:
            self._sim_cache = None

    def _multi_interest(self, users: np.ndarray) -> np.ndarray:
        weights = self.history_weights()
        out = np.zeros((len(users), self.n_items_), dtype=np.float64)
        rng = np.random.default_rng(self.config.seed)
        for r, u in enumerate(users):
            row = weights[u]
            if row.nnz == 0:
                continue
            vecs, w = self.item_vectors_[row.indices], row.data
            labels = kmeans(vecs, min(self.config.interests, len(w)), rng)
            best = np.full(self.n_items_, -np.inf)
            for c in np.unique(labels):
                p = (w[labels == c, None] * vecs[labels == c]).sum(0)
                p /= max(float(np.linalg.norm(p)), 1e-12)
                best = np.maximum(best, self.item_vectors_ @ p)
            out[r] = best
        return out

    def contributions(self, user: int, items: np.ndarray, top: int = 3) -> list[list[tuple[int, float]]]:
        """For each item, the history items that add most to its text score: ``[(item, share)]``.

        The single-profile score is exactly ``Σ_h w_h cos(h, i) / |Σ_h w_h v_h|``, so each
        history item's term is its contribution.
        """
        row = self.history_weights()[user]
        if row.nnz == 0:
            return [[] for _ in items]
        vecs, w = self.item_vectors_[row.indices], row.data
        norm = max(float(np.linalg.norm((w[:, None] * vecs).sum(0))), 1e-12)
        terms = (w[:, None] * (vecs @ self.item_vectors_[np.asarray(items)].T)) / norm  # (history, items)
        out = []
        for j in range(terms.shape[1]):
            best = np.argsort(-terms[:, j], kind="stable")[:top]
            out.append([(int(row.indices[b]), float(terms[b, j])) for b in best])
        return out

    def score_history(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Profile from a live history: the same weights as :meth:`history_weights`, times the event weights."""
        return self.item_vectors_ @ self.history_profile(items, weights, values) + self.priors()

    def history_profile(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """The unit profile vector ``(dim,)`` of a live history (what :meth:`score_history` scores with)."""
        items = np.asarray(items, dtype=np.int64)
        w = self._live_weights(weights, values)
        prof = w @ self.item_vectors_[items] if len(items) else np.zeros(self.item_vectors_.shape[1])
        return (prof / max(float(np.linalg.norm(prof)), 1e-12)).astype(np.float32)

    def _live_weights(self, weights: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        c = self.config
        weights = np.asarray(weights, dtype=np.float64)
        w = recency_weights(np.arange(len(weights))[::-1], c.half_life) * weights
        if values is not None and c.dislike_below > 0:
            low = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=np.inf) < c.dislike_below
            w = np.where(low, -c.dislike_weight * np.abs(w), w)
        return w

    def history_contributions(self, items: np.ndarray, weights: np.ndarray, targets: np.ndarray,
                              values: np.ndarray | None = None, top: int = 3) -> list[list[tuple[int, float]]]:
        """:meth:`contributions` for a live history: each history item's term of the text score."""
        return text_contributions(self.item_vectors_, items, self._live_weights(weights, values), targets, top)

    def add_items(self, vectors: np.ndarray) -> None:
        """Append new items' text vectors (a catalog update while serving); their priors are the warm average."""
        v = np.asarray(vectors, dtype=np.float32)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        self.item_vectors_ = np.vstack([self.item_vectors_, v])
        self.popularity_prior_ = np.r_[self.popularity_prior_, np.zeros(len(v))]
        self.trend_prior_ = np.r_[self.trend_prior_, np.zeros(len(v))]
        self.n_items_ += len(v)

    # ---- capabilities (see Recommender) ---------------------------------------------
    def reads_text(self) -> bool:
        return True

    def use_item_vectors(self, vectors: np.ndarray) -> None:
        self._given_vectors = vectors

    def text_table(self) -> np.ndarray:
        return self.item_vectors_

    def text_encoder(self) -> TextEncoder:
        return self.encoder()

    def text_profiles(self, users: np.ndarray) -> np.ndarray:
        return self.profiles(users)

    def item_priors(self) -> np.ndarray:
        return self.priors()

    def history_attribution(self, history: np.ndarray, items: np.ndarray, weights: np.ndarray, targets: np.ndarray,
                            values: np.ndarray | None) -> tuple[np.ndarray, str]:
        """Exact terms: the text score is ``Σ_h w_h cos(h, i) / |Σ_h w_h v_h|``, each history item's term its share."""
        w = self._live_weights(weights, values)
        wu = np.array([w[items == h].sum() for h in history])
        unit = self.item_vectors_
        norm = max(float(np.linalg.norm(wu @ unit[history])), 1e-12)
        shares = wu[:, None] * (unit[history] @ unit[targets].T) / norm  # (history, targets)
        return shares.astype(np.float64), "text terms"

    def index_tables(self, approximate: bool) -> dict[str, tuple[np.ndarray, str | None]]:
        return {"text": (self.item_vectors_, None)}  # exact too: search and similar items use it

    def index_queries(self, items: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        return {"text": self.history_profile(items, weights)}

    def retrieval_indexes(self) -> tuple[str, ...] | None:
        return ("text",) if self.config.interests <= 1 else None

    def index_query(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> IndexQuery:
        """``cos(item, profile) + prior``: the text index gives the cosine term's best items, the priors
        (the same for every user) their own order."""
        prof = self.history_profile(items, weights, values)
        priors = self.priors()
        vectors = self.item_vectors_

        def exact(cand: np.ndarray) -> np.ndarray:
            return np.asarray(vectors[cand] @ prof + priors[cand], dtype=np.float64)

        # The index scores cosines; the term is <item, profile> = |profile| * cosine (unit item vectors).
        return IndexQuery({"text": (prof, float(np.linalg.norm(prof)))}, exact, priors)
