"""A model version at work: the fitted model, the live catalog, and scoring from the event log.

The user's state is their event history in the store. Each request reads it and the model
scores from it (:meth:`Recommender.score_history`), so an event changes the very next list
without a retrain. Models whose user state is learned per user (ALS, BPR) serve the users
they were fitted on from their fitted rows, and cold-start everyone else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.app.persist import load_indexes, load_model
from anyrec.app.pipeline import search_scores
from anyrec.data.dataset import Catalog, IdMap
from anyrec.errors import ConfigError
from anyrec.explain import SentenceGuard
from anyrec.lm.encoder import EncoderConfig, TextEncoder
from anyrec.models.base import Recommender
from anyrec.models.feedback import RatingScale
from anyrec.models.scoring import top_k
from anyrec.serve.reasons import DEFAULT_VERBS, card_reasons, latest_events
from anyrec.serve.retrieval import AnnRetrieval
from anyrec.store import Store, StoredItem

log = logging.getLogger(__name__)

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "rating", "like", "dislike", "skip")


@dataclass(frozen=True)
class EventWeights:
    """How much each event type pulls (positive) or pushes (negative) a user's list.

    A rating's weight is its signed weight on the declared scale ``rating_low`` – ``rating_high``
    around ``rating_neutral`` (:class:`~anyrec.models.feedback.RatingScale`; on 1–5 with 2.5:
    5 → +1, 3 → +0.2, 2 → −0.33, 1 → −1). Positive events make the profile; a negative one
    (dislike, skip, low rating) pushes its nearest items down by a bounded amount and never
    enters the profile. Items with any event whose type is not in ``keep_types`` are not
    recommended again.
    """

    weights: dict[str, float] = field(default_factory=lambda: {
        "view": 1.0, "click": 1.0, "add_to_cart": 2.0, "purchase": 3.0, "like": 3.0, "dislike": -1.0, "skip": -0.5})
    rating_low: float = 1.0
    rating_high: float = 5.0
    rating_neutral: float = 2.5
    keep_types: tuple[str, ...] = ("skip",)
    verbs: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_VERBS)
    )  # what a card's sentence says the user did

    def scale(self) -> RatingScale:
        return RatingScale(self.rating_low, self.rating_high, self.rating_neutral)

    def weight(self, kind: str, value: float | None) -> float:
        if kind == "rating":
            return 0.0 if value is None else float(self.scale().weight(float(value)))
        return self.weights.get(kind, 0.0)


@dataclass
class Recs:
    items: list[int]
    scores: list[float]
    because: list[dict[str, Any]]  # per item, with explain: cited history items, shared words, sentence
    cold_start: bool


class LiveModel:
    """One loaded model version. Thread-safe: catalog updates and scoring share one lock."""

    def __init__(
        self,
        version: str,
        folder: str | Path,
        weights: EventWeights | None = None,
        ann_min_items: int = 50_000,
        ranker_dir: str = "",
    ) -> None:
        model, ds, _index, meta = load_model(folder)
        # A zero-shot or sequential version saved with FAISS indexes (``anyrec fit --index HNSW32``)
        # retrieves candidates from them on large catalogs and scores those exactly; below the
        # threshold, or when the bound does not hold, every item is scored.
        self.ann = AnnRetrieval.for_model(model, load_indexes(folder), ann_min_items)
        self.version, self.folder, self.meta = version, str(folder), meta
        self.model: Recommender = model
        self.catalog: Catalog = ds.catalog
        self.ids: IdMap = ds.catalog.ids
        self.users: IdMap = ds.users
        self.weights = weights or EventWeights()
        self.available = np.ones(len(self.ids), dtype=bool)
        self.popularity = np.bincount(ds.interactions.item, minlength=len(self.ids)).astype(np.float64)
        self.data_until = float("inf")
        self._lock = threading.RLock()
        self._encoder: TextEncoder | None = None
        self._guard: SentenceGuard | None = None  # built on the first explanation; titles may change with the catalog
        self._catalog_changes = 0
        self._category_names: tuple[int, dict[str, str]] | None = None
        # A ranking stage (``anyrec fit-ranker``): re-scores the top ``depth`` of every history-based list.
        self.ranker: Any = None
        if ranker_dir:
            from anyrec.rank.cross import ClickClassifier

            self.ranker = ClickClassifier.load(ranker_dir, self.catalog).set_evidence(ds)

    # ---- catalog ----------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.ids)

    def reads_history(self) -> bool:
        return type(self.model).score_history is not Recommender.score_history

    def is_text_model(self) -> bool:
        return self.model.reads_text()

    def encoder(self) -> TextEncoder:
        own = self.model.text_encoder()
        if own is not None:
            return own
        if self._encoder is None:  # a model without text: queries still need vectors (the catalog's, by hashing)
            self._encoder = TextEncoder(EncoderConfig(model="hashing"))
        return self._encoder

    def sync(self, store: Store) -> None:
        """Bring the catalog (new, changed, deleted items) and popularity up to the store's state."""
        self.apply_items(list(store.items()))
        counts = store.item_counts()
        pop = np.zeros(self.n_items)
        for raw, n in counts.items():
            i = self.ids.get(raw)
            if i is not None:
                pop[i] = n
        with self._lock:
            self.popularity = pop

    def apply_items(self, items: Sequence[StoredItem]) -> None:
        """Add new items (embedded at once for text models) and apply availability and fields."""
        new = [it for it in items if it.id not in self.ids and not it.deleted]
        with self._lock:
            if items:
                self._guard = None
                self._catalog_changes += 1
            if new:
                self._add(new)
            for it in items:
                i = self.ids.get(it.id)
                if i is None:
                    continue
                self.available[i] = it.available and not it.deleted
                self._set_fields(i, it)

    def _categories(self) -> dict[str, str]:
        """Every category of the catalog, lower case → as written (rebuilt when items change)."""
        if self._category_names is None or self._category_names[0] != self._catalog_changes:
            names: dict[str, str] = {}
            for i in range(self.n_items):
                for c in self.catalog.categories(i):
                    names.setdefault(c.lower(), c)
            self._category_names = (self._catalog_changes, names)
        return self._category_names[1]

    def unknown_categories(self, wanted: Sequence[str]) -> list[str]:
        """The categories of ``wanted`` that no item has (matched without case, as the filter does)."""
        if not wanted:
            return []
        with self._lock:
            known = self._categories()
        return [c for c in wanted if c.lower() not in known]

    def category_names(self, n: int) -> str:
        with self._lock:
            names = sorted(self._categories().values())
        return (
            (", ".join(names[:n]) + (f" … ({len(names)} in all)" if len(names) > n else ""))
            if names
            else "(the catalog has none)"
        )

    def _add(self, new: Sequence[StoredItem]) -> None:
        start = self.n_items
        for it in new:
            self.catalog.add_placeholder(it.id)
        for offset, it in enumerate(new):
            self._set_fields(start + offset, it)
        if self.is_text_model():
            texts = [self.catalog.text(start + k) for k in range(len(new))]
            vectors = self.encoder().encode(texts)
            self.model.add_items(vectors)
            if self.ann is not None:
                self.ann.add(start, vectors)
        self.available = np.r_[self.available, np.ones(len(new), dtype=bool)]
        self.popularity = np.r_[self.popularity, np.zeros(len(new))]
        log.info("catalog: %d new items embedded and indexed (%d in all)", len(new), self.n_items)

    def _set_fields(self, i: int, it: StoredItem) -> None:
        cat = self.catalog
        for name, value in it.fields.items():
            if name not in cat.fields:
                cat.fields[name] = [""] * self.n_items
            cat.fields[name][i] = str(value)
        if it.category is not None:
            if cat.category_field is None:
                cat.category_field = "category"
            cat.fields.setdefault(cat.category_field, [""] * self.n_items)[i] = it.category

    def count_events(self, items: Sequence[str]) -> None:
        with self._lock:
            for raw in items:
                i = self.ids.get(raw)
                if i is not None:
                    self.popularity[i] += 1

    # ---- scoring ----------------------------------------------------------------------
    def parse_history(
        self, rows: Sequence[tuple[str, str, float | None, float]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, set[int]]:
        """Item indices, weights and rating values of the events on known items; items not to show again."""
        items, weights, values, hide = [], [], [], set()
        for raw, kind, value, _time in rows:
            i = self.ids.get(raw)
            if i is None:
                continue  # stored for a later catalog update
            w = self.weights.weight(kind, value)
            if w != 0.0:
                items.append(i)
                weights.append(w)
                values.append(np.nan if value is None else float(value))
            if kind not in self.weights.keep_types:
                hide.add(i)
        return (np.array(items, dtype=np.int64), np.array(weights, dtype=np.float64),
                np.array(values, dtype=np.float64), hide)

    def recommend(self, user: str, rows: Sequence[tuple[str, str, float | None, float]], k: int, *,
                  user_since: float | None = None, categories: Sequence[str] = (), exclude: Sequence[str] = (),
                  explain: bool = False) -> Recs:
        items, weights, values, hide = self.parse_history(rows)
        if self.uses_index() and self.ranker is None and len(items) and not categories:
            with self._lock:
                allowed = self._allowed(hide, exclude)
                found = self.ann.top(items, weights, values, allowed, k)  # type: ignore[union-attr]
            if found is not None:
                top, top_scores = found
                why = self._because(rows, items, weights, values, top) if explain else []
                return Recs(
                    items=[int(i) for i in top], scores=[float(s) for s in top_scores], because=why, cold_start=False
                )
        with self._lock:
            n = self.n_items
            scores = None if not len(items) else self.model.score_history(items, weights, values)
            u = self.users.get(user)
            # A model that cannot read a live history serves its fitted row, but only to a user the
            # store still holds since before that version's data ended (a forgotten user is new).
            if (scores is None and not self.reads_history() and u is not None and u < self.model.n_users_
                    and user_since is not None and user_since <= self.data_until):
                scores = np.asarray(self.model.score(np.array([u]))[0], dtype=np.float64)
            cold = scores is None
            if scores is None:
                scores = np.log1p(self.popularity)  # a new visitor: what is popular now
            scores = _widen(np.asarray(scores, dtype=np.float64), n)
            allowed = self._allowed(hide, exclude)
            if categories:
                in_cat = np.zeros(n, dtype=bool)
                in_cat[self.catalog.items_in_categories(categories)] = True
                allowed &= in_cat
            scores = np.where(allowed, scores, -np.inf)
            if self.ranker is not None and not cold:
                scores = self._rerank(scores, items[weights > 0])
            top = top_k(scores, k)
            why = self._because(rows, items, weights, values, top) if explain and not cold else []
        return Recs(items=[int(i) for i in top], scores=[float(scores[i]) for i in top], because=why, cold_start=cold)

    def _rerank(self, scores: np.ndarray, history: np.ndarray) -> np.ndarray:
        from anyrec.rank.stage import rerank

        stage = self.ranker.report_
        return rerank(
            scores[None, :], [history], self.ranker, int(stage.get("depth", 20)), float(stage.get("blend", 1.0))
        )[0]

    def uses_index(self) -> bool:
        return self.ann is not None and self.ann.applies(self.n_items)

    def _allowed(self, hide: set[int], exclude: Sequence[str]) -> np.ndarray:
        """Items that may be listed: available, not hidden by the user's events, not excluded by the request."""
        allowed = self.available.copy()
        if hide:
            allowed[list(hide)] = False
        for raw in exclude:
            i = self.ids.get(raw)
            if i is not None:
                allowed[i] = False
        return allowed

    def _because(self, rows: Sequence[tuple[str, str, float | None, float]], items: np.ndarray, weights: np.ndarray,
                 values: np.ndarray, targets: np.ndarray) -> list[dict[str, Any]]:
        """Per target, the history items behind that item (see :mod:`anyrec.serve.reasons`)."""
        if self._guard is None:
            self._guard = SentenceGuard(self.catalog)
        latest = latest_events(rows, self.ids, self.weights.weight)
        return card_reasons(
            self.model,
            self.catalog,
            self.ids,
            self._guard,
            items,
            weights,
            values,
            np.asarray(targets),
            latest,
            self.weights.verbs,
        )

    def unit_text(self) -> np.ndarray:
        table = self.model.text_table()
        if table is None:
            raise ConfigError(
                f"this needs a text model (zeroshot or sequential); version {self.version!r} is {self.model.name!r}"
            )
        return table

    def similar(self, item: str, k: int) -> tuple[list[int], list[float]]:
        i = self.ids.index(item, what="item")
        with self._lock:
            own = self.model.item_neighbours(i)
            if own is not None:
                scores = _widen(own, self.n_items)
            else:
                text = self.unit_text()
                scores = (text @ text[i]).astype(np.float64)
            allowed = self.available.copy()
            allowed[i] = False
            top = top_k(np.where(allowed, scores, -np.inf), k)
        return [int(j) for j in top], [float(scores[j]) for j in top]

    def search(self, query: str, k: int, rows: Sequence[tuple[str, str, float | None, float]] | None = None,
               user_weight: float = 0.3) -> tuple[list[int], list[float]]:
        if not query.strip():
            raise ConfigError("the search text is empty")
        qvec = self.model.query_vectors([query], self.encoder().encode([query]))[0]
        with self._lock:
            text = self.unit_text()
            allowed = self.available.copy()
            items, weights, hide = np.zeros(0, dtype=np.int64), np.zeros(0), set[int]()
            if rows:
                items, weights, _values, hide = self.parse_history(rows)
            scores = search_scores(text, qvec, items, weights, user_weight)  # the CLI's rule (anyrec.app.pipeline)
            if hide:
                allowed[list(hide)] = False
            top = top_k(np.where(allowed, scores, -np.inf), k)
        return [int(j) for j in top], [float(scores[j]) for j in top]


def _widen(scores: np.ndarray, n: int) -> np.ndarray:
    """Scores of a model that knows fewer items than the live catalog: new items rank below all known ones."""
    if len(scores) >= n:
        return scores[:n]
    finite = scores[np.isfinite(scores)]
    low = (finite.min() - 1.0) if finite.size else 0.0
    return np.r_[scores, np.full(n - len(scores), low)]
