"""The recommender contract shared by every model.

A model implements ``_fit`` and ``score``; this base owns masking of seen items,
business filters, top-k with a documented tie rule, and mapping to raw ids.

Tie rule for ``recommend``: equal scores are ordered by item index (catalog order,
fixed when the data is read, before any split). The evaluator uses a stricter rule
(see :mod:`anyrec.eval.evaluate`): a held-out item never wins a tie.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError, UnknownIdError
from anyrec.models.renamed import upgrade_options, with_options
from anyrec.models.scoring import mask_rows, top_k

if TYPE_CHECKING:
    from anyrec.lm.encoder import TextEncoder


@dataclass(frozen=True)
class Filters:
    """Business filters applied after scoring.

    Attributes:
        items: allow-list of item indices (available items, a category, the cold items …).
        exclude: extra exclusions, a users × items CSR matrix indexed by user index.
    """

    items: np.ndarray | None = None
    exclude: sp.csr_matrix | None = None


Progress = Callable[[str, int, int], None]
"""A progress callback ``(description, done, total)``; ``total`` 0 is a notice (see :mod:`anyrec.cli.progress`)."""


@dataclass
class FitReport:
    """What a fit says about itself, for the tables and the people that read it (``model.report_``).

    Attributes:
        sized: the options set from the data, each with the reason printed (``batch_size`` → ``256 (…)``).
        epochs: this fit's training log, one entry per epoch (not those of a resumed run before it).
        best_valid_ndcg: the validation figure of the weights kept by early stopping (``None``: not validated).
        checks: counts a model keeps about its own lists while scoring (the generative model's generated ids:
            lists, generated, invalid, short lists); :meth:`Recommender.reset_checks` starts them again.
        pictures: what became of the catalog's pictures (embedded, from the cache, skipped by reason), if it has any.
    """

    sized: dict[str, str] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_valid_ndcg: float | None = None
    checks: dict[str, int] | None = None
    pictures: dict[str, Any] | None = None


@dataclass(frozen=True)
class IndexQuery:
    """A live history's score as searches of the model's vector indexes (see :mod:`anyrec.index.bounded`):
    ``score(i) = Σ_name scale · <table_name[i], query> + prior[i]``, less at most ``slack`` for what
    dislikes subtract; ``exact(candidates)`` is the model's own score of those items."""

    terms: dict[str, tuple[np.ndarray, float]]  # index name → (query vector, scale ≥ 0)
    exact: Callable[[np.ndarray], np.ndarray]
    prior: np.ndarray | None = None  # (n_items,) the same for every request
    slack: float = 0.0


class Recommender(ABC):
    """Base of all recommenders: ``fit(dataset) -> self``; ``recommend(users, k) -> (ids, scores)``."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type] = object

    # ---- options searched on validation (see anyrec.eval.search) -------------------------------
    tuning_grid: ClassVar[dict[str, list[Any]]] = {}
    """Score-time options searched on validation (coordinate-wise) without refitting."""
    serving_grid: ClassVar[dict[str, list[Any]]] = {}
    """Score-time options searched only when a version is fitted for serving (under the stability check)."""
    training_grid: ClassVar[dict[str, list[Any]]] = {}
    """Options that need a refit per value, searched by ``evaluate`` unless ``--no-tune-training``."""
    count_weightings: ClassVar[tuple[str, ...]] = ()
    """How it can read a weight column of counts (``config.weighting``, :meth:`Interactions.confidence`), searched
    where the log has counts; empty: every interaction alike."""
    space_options: ClassVar[tuple[str, ...]] = ()
    """Grid options that change the space the others are tuned in (whitening): the search's outer loop, each
    value with a search of the rest of its own."""

    # ---- what a fit is handed, and what it reports -----------------------------------------------
    progress: Progress | None = None
    """Where a model that embeds or trains reports its state; set by :meth:`fit` (``None``: silent)."""
    worker: tuple[int, int] = (0, 1)
    """``(rank, world)`` of a data-parallel fit (Ray Train sets it on each worker; see :attr:`data_parallel`)."""
    _validate: Callable[[Recommender], float] | None = None

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        cfg = config if config is not None else self.Config()
        if overrides:
            try:
                cfg = with_options(cfg, upgrade_options(self.name, type(cfg), overrides))
            except TypeError as exc:
                raise ConfigError(f"{self.name}: {exc}") from None
        self.config = cfg
        self.report_ = FitReport()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (shipped to Ray workers) without the callbacks of this process (progress, validation)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_validate", "progress")}
        return state

    # ---- to implement -----------------------------------------------------------
    @abstractmethod
    def _fit(self, ds: Dataset) -> None:
        """Learn from ``ds`` (its interactions are the training data)."""

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each user: ``(len(users), n_items)``, higher is better."""

    # ---- shared -----------------------------------------------------------------
    def fit(
        self, ds: Dataset, validate: Callable[[Recommender], float] | None = None, progress: Progress | None = None
    ) -> Self:
        """Fit on ``ds``; remembers each user's seen items for ``exclude_seen``.

        ``validate(model)`` returns the model's validation NDCG@10 as it stands: a model that
        :attr:`trains_with_validation` early-stops on it (and keeps its best weights); the others ignore it.
        ``progress`` receives the fit's state (embedding, epochs, what was sized from the data). What the
        fit says about itself is in :attr:`report_`.
        """
        if progress is not None:
            self.progress = progress
        self.report_ = FitReport()
        self.n_users_ = ds.n_users
        self.n_items_ = ds.n_items
        self.seen_ = ds.interactions.matrix(ds.n_users, ds.n_items)
        self.user_ids_ = ds.users
        self.item_ids_ = ds.catalog.ids
        self._validate = validate if self.trains_with_validation else None
        try:
            self._fit(ds)
        finally:
            self._validate = None
        return self

    def weighting(self, ds: Dataset) -> str:
        """How this fit reads ``ds``'s counts: ``config.weighting``, or unset ``log`` where the log has a weight
        column (said, as a setting sized from the data) and ``binary`` where it has none."""
        chosen = getattr(self.config, "weighting", None)
        if ds.interactions.weight is None or not self.count_weightings:
            return "binary"
        if chosen is None and "weighting" not in self.report_.sized:  # (said once per fit, not for a later history)
            self.report_.sized["weighting"] = "log (the log has a weight column of counts: log2(1 + count) per pair)"
            if self.progress is not None:
                self.progress(f"{self.name} settings for this log: weighting={self.report_.sized['weighting']}", 0, 0)
        chosen = chosen or "log"
        if chosen not in self.count_weightings:
            raise ConfigError(f"{self.name}.weighting is one of {', '.join(self.count_weightings)}, not {chosen!r}")
        return str(chosen)

    def counts_matrix(self, ds: Dataset) -> Any:
        """Users × items: each pair's confidence under :meth:`weighting` (1 per pair without counts)."""
        return ds.interactions.confidence(ds.n_users, ds.n_items, self.weighting(ds))

    def set_history(self, ds: Dataset) -> None:
        """Replace what counts as seen (and, for history-based models, the history) without refitting."""
        self.seen_ = ds.interactions.matrix(ds.n_users, ds.n_items)

    def score_history(
        self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Scores of every item ``(n_items,)`` for a history given at request time, or ``None``.

        ``items`` are item indices oldest first, ``weights`` their signed event weights (a like
        pulls, a dislike or skip pushes away), ``values`` ratings where known (NaN elsewhere).
        Models that read a history (text, sequence and neighbourhood models) implement it, so
        the service scores from the live event log; models whose user state is learned per
        user (ALS, BPR) return ``None`` and serve the users they were fitted on.
        """
        return None

    # ---- capabilities: what callers outside anyrec.models ask instead of checking the class ----------
    trains_with_validation: ClassVar[bool] = False
    """``fit(train, validate=…)`` early-stops on the validation callback; fitting for serving then trains
    once on the validation split and serves with the whole history, without a refit."""

    data_parallel: ClassVar[bool] = False
    """A Ray runner fits it with Ray Train, one replica per worker (see :mod:`anyrec.cluster`)."""

    def search_minutes(self) -> float:
        """The validation search's time budget in minutes, sized with the log (0: no budget)."""
        return 0.0

    def reuse_similarities(self, memory_mb: int) -> contextlib.AbstractContextManager[None]:
        """A context in which scored batches are kept (within ``memory_mb``) while only options that do not
        move them change, so a validation grid costs one product per batch; results are identical with or
        without it. The default keeps nothing."""
        return contextlib.nullcontext()

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """Predicted ratings of ``(users[i], items[i])`` pairs, for RMSE; ``None``: the model predicts no ratings."""
        return None

    def add_items(self, vectors: np.ndarray) -> bool:
        """Append new items by their text vectors (a catalog update while serving); ``False``: only by a refit."""
        return False

    def behind(self) -> Recommender | None:
        """The model whose scores this one re-orders (a ranking stage's retriever): explanations cite its history."""
        return None

    @property
    def label(self) -> str:
        """How tables and reports name this fitted model: its registry name (a blend names its parts)."""
        return self.name

    def sub_models(self) -> tuple[Recommender, ...]:
        """The fitted models this one is made of (a blend's parts), saved in folders of their own."""
        return ()

    def take_sub_models(self, parts: tuple[Recommender, ...]) -> None:
        """Receive :meth:`sub_models` read back from a saved folder; a model made of none takes none."""
        if parts:
            raise ConfigError(f"{self.name} is not made of other models")

    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or loading a saved folder) has given the model its users and items."""
        return hasattr(self, "seen_")

    def reset_checks(self) -> None:
        """Start the counts of :attr:`FitReport.checks` again (e.g. to count the test lists alone)."""
        self.report_.checks = None

    validation_users: int = 0
    """Early stopping scores a seeded sample of this many validation users (0 = all): for a model whose every
    list is costly to score (the generative model's beam search on a large log)."""

    def reads_text(self) -> bool:
        """Whether the items' text vectors are part of the score."""
        return False

    def learns_from_interactions(self) -> bool:
        """Whether fitting learns from the training rows (``False``: pretrained text alone; runs at a share of 0)."""
        return True

    def use_item_vectors(self, vectors: np.ndarray) -> None:
        """Take the catalog's text vectors (rows = items), computed elsewhere, instead of encoding it."""
        return None

    def text_table(self) -> np.ndarray | None:
        """Unit-length text vectors of every item ``(n_items, dim)``, the ones the model scores with; ``None`` without
        text."""
        return None

    def encoded_items(self) -> np.ndarray | None:
        """The catalog's vectors as the encoder gave them (what :meth:`use_item_vectors` takes); ``None``: no text."""
        return None

    def text_query(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors from :meth:`text_encoder` (a query's, new items') in :meth:`text_table`'s space, unit rows."""
        v = np.asarray(vectors, dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def query_vectors(self, texts: list[str], encoded: np.ndarray) -> np.ndarray:
        """Search texts (``encoded`` by :meth:`text_encoder`) in :meth:`text_table`'s space (pictures' side too)."""
        return self.text_query(encoded)

    def text_encoder(self) -> TextEncoder | None:
        """The encoder that put the catalog in :meth:`text_table`'s space (free-text queries go through it), if the
        model keeps one."""
        return None

    def text_profiles(self, users: np.ndarray) -> np.ndarray | None:
        """Fitted users' unit profiles in :meth:`text_table`'s space ``(len(users), dim)``; ``None`` without them."""
        return None

    def item_priors(self) -> np.ndarray | None:
        """A per-item term added to every user's score ``(n_items,)`` (zero-shot's log priors), shown apart."""
        return None

    def item_neighbours(self, item: int) -> np.ndarray | None:
        """Every item's similarity to ``item`` by the model's own item–item table ``(n_items,)``; ``None``
        where the model has none (or ``item`` is outside it): callers fall back to text."""
        return None

    def history_attribution(self, history: np.ndarray, items: np.ndarray, weights: np.ndarray, targets: np.ndarray,
                            values: np.ndarray | None) -> tuple[np.ndarray, str] | None:
        """The model's own account of a live history: ``(shares, method)`` with ``shares[h, j]`` the part of
        target ``j``'s score due to ``history[h]`` (the distinct ``items``); method ``"none"`` when nothing in a
        history drives the score. ``None``: no exact account (a deletion test reads :meth:`score_history`)."""
        return None

    def index_tables(self, approximate: bool) -> dict[str, tuple[np.ndarray, str | None]]:
        """The item tables a served version indexes, by name: ``(vectors, metric)``, metric ``None`` for the
        caller's choice. ``approximate``: the index spec is an approximate (FAISS) one."""
        return {}

    def index_queries(self, items: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        """One query per table of :meth:`index_tables` for a live history (to measure an index's recall)."""
        return {}

    def retrieval_indexes(self) -> tuple[str, ...] | None:
        """The indexes :meth:`index_query` searches under the current options; ``None``: it cannot retrieve from
        indexes."""
        return None

    def index_query(
        self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None
    ) -> IndexQuery | None:
        """A live history's score as index searches (see :class:`IndexQuery`); ``None``: score every item."""
        return None

    def describe(self) -> dict[str, Any] | None:
        """What a person fitting the model would want printed about it (e.g. the generative model's codes)."""
        return None

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise ConfigError(f"{self.name}: call fit() before recommend()")

    def _checked_users(self, users: np.ndarray) -> np.ndarray:
        """``users`` as int64 indices, after checking the model is fitted and every index is known."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        if users.size and (users.min() < 0 or users.max() >= self.n_users_):
            bad = int(users[(users < 0) | (users >= self.n_users_)][0])
            raise UnknownIdError(f"user index {bad} is outside 0..{self.n_users_ - 1}", field="users")
        return users

    def masked_scores(self, users: np.ndarray, exclude_seen: bool = True, filters: Filters | None = None) -> np.ndarray:
        """``score(users)`` as float64 with excluded items set to ``-inf``."""
        users = self._checked_users(users)
        scores = np.array(self.score(users), dtype=np.float64, copy=True)  # (batch, n_items)
        if exclude_seen:
            mask_rows(scores, self.seen_, users)
        if filters is not None:
            if filters.exclude is not None:
                mask_rows(scores, filters.exclude, users)
            if filters.items is not None:
                allowed = np.zeros(self.n_items_, dtype=bool)
                allowed[filters.items] = True
                scores[:, ~allowed] = -np.inf
        return scores

    def recommend(
        self, users: np.ndarray | list[int], k: int = 10, exclude_seen: bool = True, filters: Filters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores per user, best first.

        Rows with fewer than ``k`` allowed items are padded with index ``-1`` and score ``-inf``.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"{self.name}: k must be a whole number of at least 1, got {k!r}")
        scores = self.masked_scores(np.asarray(users), exclude_seen, filters)
        ids = np.full((scores.shape[0], k), -1, dtype=np.int64)
        top = np.full((scores.shape[0], k), -np.inf)
        for r in range(scores.shape[0]):
            best = top_k(scores[r], k)
            ids[r, : len(best)] = best
            top[r, : len(best)] = scores[r, best]
        return ids, top

    def recommend_raw(self, user: str, k: int = 10, filters: Filters | None = None) -> list[tuple[str, float]]:
        """Recommendations for one raw user id, as ``(raw item id, score)`` pairs."""
        self._check_fitted()
        u = self.user_ids_.index(user, what="user")
        ids, scores = self.recommend(np.array([u]), k, filters=filters)
        return [(self.item_ids_.raw(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

