"""The text space of the models that read item text: a behaviour head tuned on the catalog's own log (optional,
``tune_encoder``), whitening (``whiten``) and the items' pictures (``image_encoder``, ``image_weight``), options of
each such model, chosen on validation.

With pictures, an item's row is ``[√(1−w)·text, √w·picture]`` (``w`` = ``image_weight``): every cosine the model
reads becomes ``(1−w)·cos(text) + w·cos(picture)``, ``w = 0`` the text alone. The picture side is the CLIP-style
model's vector of the item's picture (or of its text, where it has none: one shared space), and a text query's
picture side is the query through the same model's text tower — a search finds an item by what its picture shows.

Off-the-shelf sentence vectors crowd into a narrow cone (the same few directions dominate every cosine);
whitening them with the catalog's own mean and covariance (WhitenRec) spreads them out. Measured on the
held-out last items of the shared catalogs, text alone, all-MiniLM-L6-v2: Amazon Scientific 0.0669 →
0.0907 NDCG@10, Amazon Beauty 0.0172 → 0.0356 (benchmarks/README.md, "Whitening").
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

import anyrec.models.textvectors as tv
from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.lm.head import apply_head

log = logging.getLogger(__name__)

PICTURE_WEIGHTS = [0.0, 0.25, 0.5, 0.75, 1.0]


class WhitenedText:
    """The table a text model scores with: the encoder's unit vectors ``item_vectors_`` whitened by
    ``config.whiten`` (0 = the vectors themselves), the statistics fitted on the catalog at fit time and kept in
    the model's folder; :meth:`text_query` puts a query's (or a new item's) vectors in the same space."""

    item_vectors_: np.ndarray
    config: Any
    progress: Any
    report_: Any
    tuning_grid: ClassVar[dict[str, list[Any]]]
    space_options: ClassVar[tuple[str, ...]]

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
        cfg = BehaviourConfig(max_minutes=minutes, seed=c.seed, threads=c.encoder.threads)
        self.raw_vectors_ = np.asarray(self.item_vectors_, dtype=np.float32)
        self.head_, summary = tune_head(
            ds.name, ds.catalog.texts(), self.raw_vectors_, ds.interactions.sequences(ds.n_users), cfg, self.progress
        )
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

    def fit_pictures(self, ds: Dataset) -> None:
        """With ``config.image_encoder`` and a catalog with pictures: every item's vector in the picture model's
        space (``image_vectors_``), what became of the pictures (``report_.pictures``, also said in the log), and
        ``image_weight`` joins this model's validation search (an outer loop, like whitening)."""
        name = str(getattr(self.config, "image_encoder", "") or "")
        self.image_vectors_: np.ndarray | None = None
        vars(self).pop("tuning_grid", None)  # (a refit without pictures: the class's own grid again)
        vars(self).pop("space_options", None)
        if not name:
            return
        self.image_vectors_ = load_pictures(ds, name, self.config.encoder.cache_dir, self.progress, self.report_)
        # searched only where there are pictures (a grid point costs a pass over validation)
        self.tuning_grid = {**type(self).tuning_grid, "image_weight": PICTURE_WEIGHTS}  # type: ignore[misc]
        self.space_options = (*type(self).space_options, "image_weight")  # type: ignore[misc]

    def picture_weight(self) -> float:
        """``w`` of the fused rows, 0 without pictures."""
        if getattr(self, "image_vectors_", None) is None:
            return 0.0
        return min(max(float(getattr(self.config, "image_weight", 0.0)), 0.0), 1.0)

    def space_key(self) -> tuple[float, float]:
        """What the table's rows depend on beyond the catalog: whitening and the picture weight."""
        return (float(self.config.whiten), self.picture_weight())

    def table(self) -> np.ndarray:
        """The unit rows scores read: the text table (whitened), fused with the pictures' where there are."""
        text = self.text_only_table()
        w = self.picture_weight()
        if w <= 0:
            return text
        pics: np.ndarray = self.image_vectors_  # type: ignore[assignment]
        key = (self.space_key(), text.shape[0], pics.shape[0])
        cached: tuple[Any, np.ndarray] | None = getattr(self, "_fused", None)
        if cached is None or cached[0] != key:
            cached = (key, fuse_rows(text, pics, w))
            self._fused = cached
        return cached[1]

    def text_only_table(self) -> np.ndarray:
        """The unit text vectors (kept per ``whiten`` value and catalog size)."""
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
        """Encoder vectors in the table's space (with pictures: an empty picture side, as a new item has)."""
        v = self.to_space(vectors)
        if float(self.config.whiten) > 0:
            self.text_only_table()
            v = tv.whiten(v, self.text_mean_, self.text_basis_, self.text_variances_, float(self.config.whiten))
        w = self.picture_weight()
        if w <= 0:
            return v
        pics: np.ndarray = self.image_vectors_  # type: ignore[assignment]
        return fuse_rows(v, pics[:0], w)

    def query_vectors(self, texts: list[str], encoded: np.ndarray) -> np.ndarray:
        """Search texts (``encoded`` by the text encoder) in the table's space; with pictures the picture side is
        each text through the picture model's text tower, so a query finds what pictures show."""
        v = self.text_query(encoded)
        w = self.picture_weight()
        if w <= 0:
            return v
        return with_picture_side(v, texts, self.config.image_encoder, self.config.encoder.cache_dir, w)


def load_pictures(ds: Dataset, name: str, cache_dir: str, progress: Any, report: Any) -> np.ndarray:
    """Every item's vector in the picture model ``name``'s space (its picture's, else its text's through the model's
    text tower); what became of the pictures goes to ``report.pictures`` and the log. A catalog without pictures is
    refused by name: the option would do nothing."""
    images = ds.catalog.images()
    if images is None or not any(images):
        raise ConfigError(
            f"image_encoder is set ({name!r}) but the catalog has no pictures: map its image column "
            "with --image COLUMN ([data] image)"
        )
    from anyrec.lm.image import item_picture_vectors, shared_image_encoder

    step = (lambda d, t: progress("embed pictures", d, t)) if progress else None
    vectors, found = item_picture_vectors(shared_image_encoder(name, cache_dir), images, ds.catalog.texts(), step)
    report.pictures = found.as_dict()
    for line in found.lines():
        (log.warning if found.skipped else log.info)("%s: %s", ds.name, line)
    return vectors


def fuse_rows(text: np.ndarray, pictures: np.ndarray, w: float) -> np.ndarray:
    """``[√(1−w)·text, √w·picture]`` per row (unit rows in, unit rows out); rows past ``pictures`` (items added
    while serving, queries) get an empty picture side."""
    side = np.zeros((text.shape[0], pictures.shape[1]), dtype=np.float32)
    side[: min(len(pictures), len(side))] = pictures[: len(side)]
    return np.hstack([np.sqrt(1 - w) * np.asarray(text, dtype=np.float32), np.sqrt(w) * side]).astype(np.float32)


def with_picture_side(fused: np.ndarray, texts: list[str], name: str, cache_dir: str, w: float) -> np.ndarray:
    """Fused query rows (empty picture side) with each text's vector through the picture model's text tower."""
    from anyrec.lm.image import shared_image_encoder

    side = shared_image_encoder(name, cache_dir).encode_texts(texts)
    text_dim = fused.shape[1] - side.shape[1]
    return np.hstack([fused[:, :text_dim], np.sqrt(w) * side]).astype(np.float32)
