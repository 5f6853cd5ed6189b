"""The sequential model's score-time terms beside the network, in the pretrained text space:

- ``text_blend`` × the text similarity of each item to the user's history: the cosine with the
  recency-weighted profile (half-life ``half_life`` items), or with ``kernel`` τ > 0 the history
  items soft-max pooled, ``τ log Σ_h p_h exp(cos(h, i) / τ)`` as zero-shot scores (each history item
  counts on its own; τ → 0 the closest one alone);
- ``popularity`` × the log-popularity prior of the training rows (standardised over the items they
  touch; items they do not touch get the average, 0).

Both are chosen on validation. They are what a network pretrained on other catalogs (``transfer``)
needs on a new one: whatever the network adds, it adds to the best text score, not to a weaker one.

A mixin of :class:`anyrec.models.sequential.Sequential`, kept apart so the model file reads in one sitting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from anyrec.models.scoring import recency_weights
from anyrec.models.textvectors import SimilarityCache, log_priors, pooled_kernel


class TextTerm:
    """Reads ``text_vectors_`` (and ``pretrained_vectors_`` after encoder fine-tuning), ``popularity_prior_``
    and the config's ``text_blend``, ``half_life``, ``kernel``, ``popularity``, ``use_text``."""

    config: Any
    text_vectors_: np.ndarray

    def _fit_priors(self, inter: Any, n_items: int) -> None:
        self.popularity_prior_ = log_priors(inter, n_items, 0.05)[0].astype(np.float32)

    def _prior(self, cols: np.ndarray | None = None) -> np.ndarray | None:
        """``popularity`` × the prior (of every item, or of ``cols``); ``None`` when off or never fitted."""
        prior = getattr(self, "popularity_prior_", None)
        if self.config.popularity <= 0 or prior is None:
            return None
        cached = getattr(self, "_scaled_prior", None)
        if (
            cached is None or cached[0] is not prior or cached[1] != self.config.popularity
        ):  # one array while nothing changes
            cached = self._scaled_prior = (prior, self.config.popularity, self.config.popularity * prior)
        return cached[2] if cols is None else cached[2][np.asarray(cols, dtype=np.int64)]

    @contextlib.contextmanager
    def reuse_similarities(self, memory_mb: int) -> Iterator[None]:
        """Keep, per scored batch of users and within ``memory_mb`` (half each), the network's scores (no
        score-time option moves them) and the text term (only its half-life and kernel do) while a
        validation search changes options: a grid point then costs additions, not a pass through the
        transformer. The same arrays are read, so results are identical with or without it."""
        half = memory_mb * 2**20 // 2
        self._kept_scores: tuple[SimilarityCache, SimilarityCache] | None = (
            SimilarityCache(half),
            SimilarityCache(half),
        )
        try:
            yield
        finally:
            self._kept_scores = None

    def _kept(self, which: int, group: Any, users: np.ndarray | None, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()``, or what it gave for the same ``users`` and ``group`` inside :meth:`reuse_similarities`
        (0: the network's scores, 1: the text term); callers never write into the array."""
        caches = getattr(self, "_kept_scores", None)
        if caches is None or users is None:
            return compute()
        key = np.asarray(users).tobytes()
        found = caches[which].get(group, key)
        if found is None:
            found = compute()
            caches[which].put(group, key, found)
        return found

    def _side_terms(
        self, seqs: list[np.ndarray], cols: np.ndarray | None = None, users: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Everything added to the network's score ``(len(seqs), items or cols)``: the text term and the
        prior; ``None`` when both are off. ``users``: the fitted users ``seqs`` are (their text term may be kept)."""
        out = None
        if self.config.text_blend > 0 and self.config.use_text:
            key = (self.config.half_life, self.config.kernel)
            text = self._kept(1, key, users if cols is None else None, lambda: self._text_similarity(seqs, cols))
            out = self.config.text_blend * text
        prior = self._prior(cols)
        if prior is not None:
            out = (
                np.broadcast_to(prior, (len(seqs), len(prior))).astype(np.float32)
                if out is None
                else out + prior[None, :]
            )
        return out

    def _unit_text_table(self) -> np.ndarray:
        base = getattr(self, "pretrained_vectors_", None)
        base = self.text_vectors_ if base is None else base
        cached = getattr(self, "_unit_text", None)
        if cached is None or cached[0] is not base:  # normalised once per table, not per call
            cached = (base, base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-12))
            self._unit_text = cached
        return cached[1]

    def _history_weights(self, s: np.ndarray) -> np.ndarray:
        """Recency weights of a history, oldest first (the last item weighs 1)."""
        return recency_weights(np.arange(len(s))[::-1], self.config.half_life)

    def _text_profiles(self, seqs: list[np.ndarray]) -> np.ndarray:
        """Each user's recent-items profile (unit length) in the pretrained text space ``(len(seqs), text_dim)``."""
        text = self._unit_text_table()
        prof = np.zeros((len(seqs), text.shape[1]), dtype=np.float32)
        for r, s in enumerate(seqs):
            if len(s):  # the whole history, as the zero-shot model reads it
                prof[r] = (self._history_weights(s)[:, None] * text[s - 1]).sum(0)
        prof /= np.maximum(np.linalg.norm(prof, axis=1, keepdims=True), 1e-12)
        return prof

    def _text_similarity(self, seqs: list[np.ndarray], cols: np.ndarray | None = None) -> np.ndarray:
        """Each item's (or each of ``cols``') text similarity to the user's history: with the profile, or with
        ``kernel`` τ pooled, ``τ log Σ_h p_h exp(cos(h, i) / τ)``, ``p`` the history's recency weights
        (:func:`anyrec.models.textvectors.pooled_kernel`; a row without history scores 0)."""
        text = self._unit_text_table()
        if self.config.kernel > 0:
            histories = [(s - 1, self._history_weights(s)) for s in seqs]
            return pooled_kernel(text, histories, float(self.config.kernel), cols).astype(np.float32)
        targets = text if cols is None else text[np.asarray(cols, dtype=np.int64)]
        return self._text_profiles(seqs) @ targets.T
