"""The zero-shot recommender's options (:class:`ZeroShotConfig`); the model is :mod:`anyrec.models.zeroshot`."""

from __future__ import annotations

from dataclasses import dataclass, field

from anyrec.lm.encoder import EncoderConfig, nest_encoder


@dataclass(frozen=True)
class ZeroShotConfig:
    """Zero-shot settings; all but the encoder act at scoring time (cheap to tune).

    Attributes:
        encoder: the text encoder's settings (:class:`~anyrec.lm.encoder.EncoderConfig`: model, batch_size,
            threads, cache_dir, backend, …); ``encoder=NAME`` sets the model, ``encoder.FIELD=VALUE`` one setting.
        short_term: the short term's share of the profile (see :mod:`anyrec.models.feedback`): 0 is
            the plain mean of the history, 1 recency alone.
        half_life: the short term's recency, in interactions counted from the most recent (weight
            halves every ``half_life`` steps back); 0 makes the short term the plain mean too.
        ratings: ratings as signed weights on the scale ``rating_low`` – ``rating_high`` around ``rating_neutral``
            (0s: the log's range, neutral 3/8 up; 2.5 on 1–5): above it an item pulls, below it pushes its kin.
        push: the most one negative (low rating, dislike, skip) lowers a neighbour's score, in
            score units (cosines); it acts on its ``kin`` nearest items by text only.
        kin: how many of a negative item's nearest items it pushes down.
        kernel: 0 scores an item by its cosine with one profile (the weighted mean); τ > 0 by its
            similarity to each history item, soft-max pooled: ``τ log Σ_h w_h exp(cos(h, i) / τ)``
            (:func:`~anyrec.models.textvectors.kernel_scores`). An item is then recommended for the
            history items closest to it, each card has its own reasons, and one new event moves
            only the items near it.
        popularity: weight of the log-popularity prior (standardised over warm items).
        trend: weight of the trend prior (log of time-decayed counts, standardised).
        trend_half_life: half-life of the trend prior as a share of the log's time span.
        tune_encoder: minutes of in-domain training of a behaviour head on the encoder at fit (0 = none; see
            :meth:`~anyrec.models.whitening.WhitenedText.tune_to_log`); queries and new items go through it too.
        whiten: whitening of the catalog's text vectors (fitted on the catalog itself, applied to queries and new
            items too; see :func:`~anyrec.models.textvectors.whiten`): 0 off, 1 full (ZCA), between a part of it.
        interests: interest vectors per user (k-means over the history; the best one scores).
        seed: seed of the k-means initialisation.
        memmap_dir: a folder for the item vectors as a memory-mapped file (``item_vectors.npy``):
            the catalog is encoded into it chunk by chunk and normalised in place, so the vectors
            are held once, on disk and in the page cache, not in the process's memory ('' = in memory).
        image_encoder: a CLIP-style model (name or folder) that embeds the catalog's pictures ('' = text only; see
            :mod:`anyrec.lm.image`).
        image_weight: the pictures' share ``w`` of every cosine (0 = text alone; searched on validation where the
            catalog has pictures; see :mod:`anyrec.models.whitening`).
        weighting: how a weight column of counts is read: ``log`` (each history row's weight times
            ``log2(1 + count)``; the default where the log has counts) or ``binary``; searched on validation.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    short_term: float = 0.5
    half_life: float = 0.0
    ratings: bool = True
    rating_low: float = 0.0
    rating_high: float = 0.0
    rating_neutral: float = 0.0
    push: float = 0.05
    kin: int = 10
    kernel: float = 0.0
    popularity: float = 0.0
    trend: float = 0.0
    trend_half_life: float = 0.05
    tune_encoder: float = 0.0
    whiten: float = 0.0
    interests: int = 1
    seed: int = 0
    memmap_dir: str = ""
    weighting: str | None = None
    image_encoder: str = ""
    image_weight: float = 0.5

    def __post_init__(self) -> None:
        nest_encoder(self)
