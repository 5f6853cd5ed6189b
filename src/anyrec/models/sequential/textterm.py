"""The sequential model's plain text-similarity term (``text_blend``): each item's pretrained text vector
against the recency-weighted profile of the user's history, in the pretrained text space.

A mixin of :class:`anyrec.models.sequential.Sequential`, kept apart so the model file reads in one sitting.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anyrec.models.base import recency_weights


class TextTerm:
    """Reads ``text_vectors_`` (and ``pretrained_vectors_`` after encoder fine-tuning) and ``config.text_half_life``."""

    config: Any
    text_vectors_: np.ndarray

    def _unit_text_table(self) -> np.ndarray:
        base = getattr(self, "pretrained_vectors_", None)
        base = self.text_vectors_ if base is None else base
        cached = getattr(self, "_unit_text", None)
        if cached is None or cached[0] is not base:  # normalised once per table, not per call
            cached = (base, base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-12))
            self._unit_text = cached
        return cached[1]

    def _text_profiles(self, seqs: list[np.ndarray]) -> np.ndarray:
        """Each user's recent-items profile (unit length) in the pretrained text space ``(len(seqs), text_dim)``."""
        text = self._unit_text_table()
        prof = np.zeros((len(seqs), text.shape[1]), dtype=np.float32)
        for r, s in enumerate(seqs):
            if len(s):  # the whole history, as the zero-shot model reads it
                w = recency_weights(np.arange(len(s))[::-1], self.config.text_half_life)
                prof[r] = (w[:, None] * text[s - 1]).sum(0)
        prof /= np.maximum(np.linalg.norm(prof, axis=1, keepdims=True), 1e-12)
        return prof

    def _text_similarity(self, seqs: list[np.ndarray], cols: np.ndarray | None = None) -> np.ndarray:
        """Cosine of each item's (or each of ``cols``') pretrained text vector with the user's profile."""
        text = self._unit_text_table()
        return self._text_profiles(seqs) @ (text if cols is None else text[cols]).T
