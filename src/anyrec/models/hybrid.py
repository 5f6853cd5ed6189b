"""``hybrid``: EASE pulled towards a text prior (see :mod:`anyrec.models.neighbourhood` for the solve).

``B = argmin ‖X − XB‖² + λ‖B − a·T‖²`` with ``diag(B) = 0``; ``T`` is either each item's ``text_k`` nearest by
cosine, or the L3AE prior (EASE fitted on the text vectors themselves); whitening, the prior's form and its ridge
are options searched on validation, ``T`` rebuilt from the saved vectors per option set (never refitted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.lm.encoder import EncoderConfig, TextEncoder, nest_encoder, shared_encoder
from anyrec.models import itemsolve
from anyrec.models.neighbourhood import EASE, EASEConfig
from anyrec.models.whitening import WhitenedText


@dataclass(frozen=True)
class HybridConfig(EASEConfig):
    """EASE with a text prior (see the module doc).

    Attributes:
        prior: the prior's scale ``a`` (0 = EASE), chosen on validation with ``l2``.
        text_k: each item's nearest items by text kept in ``T``.
        encoder: the text encoder's settings (as zero-shot's).
        whiten: the text vectors whitened before the prior is built (0 off, 1 full; see
            :class:`~anyrec.models.whitening.WhitenedText`); searched on validation.
        prior_form: ``"cosine"`` (``T`` = each item's ``text_k`` nearest by cosine) or ``"l3ae"`` (``T`` = EASE
            fitted on the text vectors with ridge ``prior_l2`` times the mean eigenvalue of ``VᵀV``, L3AE;
            see :func:`~anyrec.models.itemsolve.l3ae_neighbours`); both searched on validation.
        tune_encoder: minutes of in-domain behaviour training of a head on the encoder at fit (0 = none).
        image_encoder, image_weight: the catalog's pictures fused into the text vectors the prior is built from
            (as zero-shot's; ``image_weight`` searched on validation where there are pictures).
    """

    prior: float = 0.1
    prior_form: str = "cosine"
    prior_l2: float = 1.0
    text_k: int = 50
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    whiten: float = 0.0
    tune_encoder: float = 0.0
    seed: int = 0
    image_encoder: str = ""
    image_weight: float = 0.5

    def __post_init__(self) -> None:
        nest_encoder(self)


class Hybrid(WhitenedText, EASE):
    """``hybrid``: text + collaborative item-item weights in one closed-form solve."""

    name = "hybrid"
    Config = HybridConfig
    tuning_grid: ClassVar[dict[str, list[Any]]] = {"l2": [10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0],
                                                   "prior": [0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
                                                   "prior_form": ["cosine", "l3ae"], "prior_l2": [0.01, 0.1, 1.0, 10.0],
                                                   "whiten": [0.0, 0.5, 1.0]}
    space_options: ClassVar[tuple[str, ...]] = ("whiten",)  # it changes the prior the rest is tuned with

    def __init__(self, config: Any = None, *, item_vectors: np.ndarray | None = None, **kw: Any) -> None:
        super().__init__(config, **kw)
        self._given_vectors = item_vectors

    def _fit_prior(self, ds: Dataset) -> None:
        """The text vectors ``T`` is built from (:meth:`text_prior`, per option set), and ``T`` for the fit's
        options."""
        if self.config.prior_form not in ("cosine", "l3ae"):
            raise ConfigError(f"hybrid.prior_form is cosine or l3ae, not {self.config.prior_form!r}")
        if self._given_vectors is not None and len(self._given_vectors) == ds.n_items:
            vectors = np.asarray(self._given_vectors, dtype=np.float32)
        else:
            c = self.config
            vectors = TextEncoder(
                c.encoder
            ).encode(ds.catalog.texts())
        self.item_vectors_ = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.tune_to_log(ds)
        self.fit_whitening()
        self.fit_pictures(ds)
        self._texts: tuple[Any, sp.csc_matrix] | None = None
        self.text_prior()  # (the fit's own options: a bad prior_l2 is refused here, not at the first request)

    def _prior_key(self) -> Any:
        c = self.config
        return (self.space_key(), c.prior_form, float(c.prior_l2) if c.prior_form == "l3ae" else None, c.text_k)

    def text_prior(self) -> sp.csc_matrix:
        """``T`` for the current whitening and prior form (kept per option set; built from the saved vectors)."""
        kept: tuple[Any, sp.csc_matrix] | None = getattr(self, "_texts", None)
        if kept is None or kept[0] != self._prior_key():
            c = self.config
            table = np.asarray(self.table(), dtype=np.float64)
            if c.prior_form == "l3ae":
                scale = (
                    float(np.mean(np.einsum("ij,ij->i", table, table))) * len(table) / table.shape[1]
                )  # mean eigenvalue
                try:
                    text = itemsolve.l3ae_neighbours(table, float(c.prior_l2) * scale, c.text_k)
                except ValueError as exc:
                    raise ConfigError(f"hybrid: {exc}") from None
            elif c.prior_form == "cosine":
                text = itemsolve.text_neighbours(table, c.text_k)
            else:
                raise ConfigError(f"hybrid.prior_form is cosine or l3ae, not {c.prior_form!r}")
            kept = self._texts = (self._prior_key(), text)
        return kept[1]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_texts"] = None
        state.pop("_fused", None)
        state.pop("_pt", None)
        return state

    def _key(self) -> Any:
        return (self.config.l2, self.config.prior, self._prior_key())

    def _solve_key(self) -> tuple[Any, ...]:
        return (float(self.config.l2), self._prior_key())

    def _prior_product(self, lam: float, p: np.ndarray) -> np.ndarray:
        key = (lam, self._prior_key())
        kept: tuple[Any, np.ndarray] | None = getattr(self, "_pt", None)
        if kept is None or kept[0] != key:
            self._pt = None  # (free the last one first)
            t = self.text_prior().tocsr()
            kept = self._pt = (key, np.asarray((t.T @ p).T))  # PT = (TᵀP)ᵀ, P symmetric: a sparse-dense product
        return kept[1].copy()

    def _sparse_prior(self) -> sp.csc_matrix | None:
        return self.text_prior() if sp.issparse(self.gram_) else None

    def _prior_scale(self) -> float:
        return float(self.config.prior)

    def reads_text(self) -> bool:
        return True

    def use_item_vectors(self, vectors: np.ndarray) -> None:
        self._given_vectors = vectors

    def text_table(self) -> np.ndarray:
        return self.table()

    def encoded_items(self) -> np.ndarray:
        return self.raw_vectors_ if getattr(self, "raw_vectors_", None) is not None else self.item_vectors_

    def text_encoder(self) -> TextEncoder:
        return shared_encoder(self.config.encoder)
