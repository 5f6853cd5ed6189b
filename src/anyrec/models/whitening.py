"""The text space of the models that read item text: a behaviour head tuned on the catalog's own log (optional,
``tune_encoder``) and whitening (``whiten``), both options of each such model, chosen on validation.

Off-the-shelf sentence vectors crowd into a narrow cone (the same few directions dominate every cosine);
whitening them with the catalog's own mean and covariance (WhitenRec) spreads them out. Measured on the
held-out last items of the shared catalogs, text alone, all-MiniLM-L6-v2: Amazon Scientific 0.0669 →
0.0907 NDCG@10, Amazon Beauty 0.0172 → 0.0356 (benchmarks/README.md, "Whitening").
"""

from __future__ import annotations

from typing import Any

import numpy as np

import anyrec.models.textvectors as tv
from anyrec.data.dataset import Dataset
from anyrec.lm.head import apply_head


class WhitenedText:
    """The table a text model scores with: the encoder's unit vectors ``item_vectors_`` whitened by
    ``config.whiten`` (0 = the vectors themselves), the statistics fitted on the catalog at fit time and kept in
    the model's folder; :meth:`text_query` puts a query's (or a new item's) vectors in the same space."""

    item_vectors_: np.ndarray
    config: Any
    progress: Any

    def tune_to_log(self, ds: Dataset) -> None:
        """With ``config.tune_encoder`` > 0 (minutes): a behaviour head trained on the catalog's training sequences
        (:func:`anyrec.lm.behaviour.tune_head`: the next item after a history, every other item a negative, the
        best round on the held-out last items of the training users; the identity when none beats the encoder as it
        came); ``item_vectors_`` then hold the vectors through it and ``raw_vectors_`` the encoder's own."""
        minutes = float(getattr(self.config, "tune_encoder", 0.0))
        if minutes <= 0:
            return
        from anyrec.lm.behaviour import BehaviourConfig, tune_head

        c = self.config
        cfg = BehaviourConfig(max_minutes=minutes, seed=c.seed, threads=c.threads)
        self.raw_vectors_ = np.asarray(self.item_vectors_, dtype=np.float32)
        self.head_, summary = tune_head(ds.name, ds.catalog.texts(), self.raw_vectors_, ds.interactions.sequences(ds.n_users),
                                        cfg, self.progress)
        self.item_vectors_ = apply_head(self.head_, self.raw_vectors_)
        self.tuned_rounds_ = summary["history"]

    def to_space(self, vectors: np.ndarray) -> np.ndarray:
        """Encoder vectors in the space of ``item_vectors_`` (through the head when there is one), unit rows."""
        v = np.asarray(vectors, dtype=np.float32)
        if getattr(self, "head_", None) is not None:
            return apply_head(self.head_, v)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def fit_whitening(self) -> None:
        """Fit the catalog's mean and covariance basis (every model does, whatever ``whiten``: a validation search
        over it needs them)."""
        self.text_mean_, self.text_basis_, self.text_variances_ = tv.fit_whitening(self.item_vectors_)

    def table(self) -> np.ndarray:
        """The unit text vectors scores read (kept per ``whiten`` value and catalog size)."""
        w = float(self.config.whiten)
        if w <= 0:
            return self.item_vectors_
        key = (w, self.item_vectors_.shape[0])
        cached: tuple[Any, np.ndarray] | None = getattr(self, "_table", None)
        if cached is None or cached[0] != key:
            if not hasattr(self, "text_mean_"):  # a folder saved before whitening existed: fitted on its vectors now
                self.fit_whitening()
            cached = (key, tv.whiten(self.item_vectors_, self.text_mean_, self.text_basis_, self.text_variances_, w))
            self._table = cached
        return cached[1]

    def text_query(self, vectors: np.ndarray) -> np.ndarray:
        v = self.to_space(vectors)
        if float(self.config.whiten) <= 0:
            return v
        self.table()
        return tv.whiten(v, self.text_mean_, self.text_basis_, self.text_variances_, float(self.config.whiten))
