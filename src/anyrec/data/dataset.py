"""Core data types: id maps, the catalog, the interaction log and the dataset.

Raw ids live only at the edges; inside, users and items are contiguous integer
indices held by one :class:`IdMap` per kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from anyrec.errors import ConfigError, UnknownIdError
from anyrec.text.clean import clean_text
from anyrec.text.template import render_template


class IdMap:
    """A bijection between raw string ids and contiguous indices ``0..n-1``.

    Indices follow first appearance, so they never depend on a later split.
    """

    def __init__(self, raw_ids: Iterable[str] = ()) -> None:
        self._raw: list[str] = []
        self._index: dict[str, int] = {}
        for raw in raw_ids:
            self.add(raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, raw: object) -> bool:
        return raw in self._index

    def add(self, raw: str) -> int:
        """Return the index of ``raw``, adding it when new."""
        idx = self._index.get(raw)
        if idx is None:
            idx = len(self._raw)
            self._index[raw] = idx
            self._raw.append(raw)
        return idx

    def get(self, raw: str) -> int | None:
        """Index of ``raw`` or ``None``."""
        return self._index.get(raw)

    def index(self, raw: str, *, what: str = "id") -> int:
        """Index of ``raw``; raises :class:`UnknownIdError` naming ``what`` when unknown."""
        idx = self._index.get(raw)
        if idx is None:
            raise UnknownIdError(f"unknown {what} {raw!r} ({len(self)} known)", field=what)
        return idx

    def indices(self, raws: Sequence[str], *, what: str = "id") -> np.ndarray:
        """Indices of many raw ids, as an int64 array."""
        return np.array([self.index(r, what=what) for r in raws], dtype=np.int64)

    def raw(self, idx: int) -> str:
        """Raw id of index ``idx``."""
        return self._raw[idx]

    def raws(self, idxs: Iterable[int]) -> list[str]:
        """Raw ids of many indices."""
        return [self._raw[int(i)] for i in idxs]

    @property
    def raw_ids(self) -> list[str]:
        """All raw ids in index order (a copy)."""
        return list(self._raw)


def _shorten(text: str, limit: int = 90) -> str:
    """A display title: the first sentence when the field holds a whole description."""
    if len(text) <= limit:
        return text
    head = text.split(". ", 1)[0]
    return head if len(head) <= limit else text[: limit - 1].rstrip() + "…"



WEIGHTINGS = ("binary", "log", "bm25")
"""How a weight column of counts is read (:meth:`Interactions.confidence`)."""

@dataclass
class Catalog:
    """Items with any number of text fields and categorical metadata.

    Attributes:
        ids: raw item id ↔ index.
        fields: field name → one string per item (``""`` when absent).
        template: how the fields become one item text.
        category_field: the field holding categories (split on ``category_sep``), if any.
        image_field: the field holding each item's picture (an absolute path or a URL; ``""`` when none), if any.
    """

    ids: IdMap
    fields: dict[str, list[str]]
    template: str
    category_field: str | None = None
    category_sep: str = "|"
    title_field: str | None = None
    image_field: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def field_names(self) -> list[str]:
        return list(self.fields)

    def text(self, item: int) -> str:
        """Clean templated text of one item."""
        values = {name: clean_text(vals[item]) for name, vals in self.fields.items()}
        return render_template(self.template, values)

    def texts(self) -> list[str]:
        """Clean templated text of every item, in index order."""
        return [self.text(i) for i in range(len(self))]

    def title(self, item: int) -> str:
        """A short display name: the ``title`` field if there is one, else the raw id."""
        for name in (self.title_field, "title", "movie_title", "name", "headline"):
            if name and name in self.fields and self.fields[name][item]:
                return _shorten(clean_text(self.fields[name][item]))
        return self.ids.raw(item)

    def image(self, item: int) -> str:
        """The item's picture: an absolute path or a URL (``""`` without one)."""
        if (
            self.image_field is None
            or self.image_field not in self.fields
            or item >= len(self.fields[self.image_field])
        ):
            return ""
        return self.fields[self.image_field][item].strip()

    def images(self) -> list[str] | None:
        """Every item's picture in index order, or ``None`` when the catalog has no image column."""
        return None if self.image_field is None else [self.image(i) for i in range(len(self))]

    def categories(self, item: int) -> list[str]:
        """Categories of one item (empty without a category field)."""
        if self.category_field is None:
            return []
        raw = self.fields[self.category_field][item]
        return [c.strip() for c in raw.split(self.category_sep) if c.strip()]

    def items_in_categories(self, wanted: Iterable[str]) -> np.ndarray:
        """Indices of items having at least one of ``wanted`` categories (case-insensitive)."""
        want = {w.lower() for w in wanted}
        return np.array([i for i in range(len(self)) if want & {c.lower() for c in self.categories(i)}], dtype=np.int64)

    def add_placeholder(self, raw: str) -> int:
        """Add an item known only by id (empty text fields); returns its index."""
        idx = self.ids.add(raw)
        for vals in self.fields.values():
            if len(vals) <= idx:
                vals.append("")
        return idx


@dataclass(frozen=True)
class HistoryIndex:
    """Every user's interactions oldest first, equal times in file order: one sort of the log, read by
    every part that needs "a user's history in time order" (models, ranking stages, explanations,
    splits, the service's simulator), so the tie rule is written once.

    ``order[offsets[u] : offsets[u + 1]]`` are user ``u``'s row numbers in the log; ``items`` and
    ``times`` are the log's items and times in that order. The arrays are read-only: a caller that
    wants to change a history copies it.
    """

    order: np.ndarray  # (n,) int64 row numbers, by user, then time, then file position
    offsets: np.ndarray  # (n_users + 1,) int64
    items: np.ndarray  # (n,) int64 item of each row of ``order``
    times: np.ndarray  # (n,) float64 time of each row of ``order``

    @classmethod
    def build(
        cls, user: np.ndarray, item: np.ndarray, time: np.ndarray, n_users: int, order: np.ndarray | None = None
    ) -> HistoryIndex:
        if order is None:
            order = np.lexsort((np.arange(len(user)), time, user)).astype(np.int64)
        offsets = np.searchsorted(user[order], np.arange(n_users + 1), side="left").astype(np.int64)
        arrays = (order, offsets, item[order].astype(np.int64), np.asarray(time, dtype=np.float64)[order])
        for a in arrays:
            a.flags.writeable = False
        return cls(*arrays)

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    def rows(self, u: int) -> np.ndarray:
        """User ``u``'s row numbers in the log, oldest first."""
        return self.order[self.offsets[u] : self.offsets[u + 1]]

    def of(self, u: int) -> np.ndarray:
        """User ``u``'s items, oldest first."""
        return self.items[self.offsets[u] : self.offsets[u + 1]]

    def before(self, u: int, t: float) -> np.ndarray:
        """User ``u``'s items strictly before time ``t``, oldest first."""
        a, b = int(self.offsets[u]), int(self.offsets[u + 1])
        return self.items[a : a + int(np.searchsorted(self.times[a:b], t, side="left"))]

    def sequences(self) -> list[np.ndarray]:
        """Every user's items oldest first (an empty array for a user without rows)."""
        return [self.items[a:b] for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist())]

    def sorted_users(self) -> np.ndarray:
        """The user of each row of ``order`` (non-decreasing)."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.offsets))


@dataclass
class Interactions:
    """The interaction log as parallel arrays (one row per event), in file order.

    ``time`` is always set: files without timestamps get their row order.
    """

    user: np.ndarray  # (n,) int64 user index
    item: np.ndarray  # (n,) int64 item index
    time: np.ndarray  # (n,) float64
    rating: np.ndarray | None = None  # (n,) float32
    event: np.ndarray | None = None  # (n,) object (str)
    weight: np.ndarray | None = None  # (n,) float32: counts (plays, purchases, minutes), read as confidence

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def subset(self, rows: np.ndarray) -> Interactions:
        """The rows at ``rows`` (indices or a boolean mask), order kept."""
        return Interactions(
            user=self.user[rows],
            item=self.item[rows],
            time=self.time[rows],
            rating=None if self.rating is None else self.rating[rows],
            event=None if self.event is None else self.event[rows],
            weight=None if self.weight is None else self.weight[rows],
        )

    def history(self, n_users: int | None = None) -> HistoryIndex:
        """Each user's rows in time order (:class:`HistoryIndex`), for users ``0..n_users-1`` (default: up
        to the largest user index). Built once per log and kept while its arrays are these ones."""
        n = n_users if n_users is not None else (int(self.user.max()) + 1 if len(self) else 0)
        arrays = (self.user, self.item, self.time)
        cached: tuple[tuple[np.ndarray, ...], dict[int, HistoryIndex]] | None = self.__dict__.get("_history")
        if cached is None or any(a is not b for a, b in zip(cached[0], arrays)):
            cached = (arrays, {})
            self.__dict__["_history"] = cached
        by_size = cached[1]
        index = by_size.get(n)
        if index is None:
            other = next(iter(by_size.values()), None)  # the same order, other offsets: no second sort
            index = by_size[n] = HistoryIndex.build(
                self.user, self.item, self.time, n, order=None if other is None else other.order
            )
        return index

    def sequences(self, n_users: int) -> list[np.ndarray]:
        """Each user's item indices oldest first (equal times in file order); empty for a user without rows."""
        return self.history(n_users).sequences()

    def __getstate__(self) -> dict[str, object]:
        """Pickled (shipped to Ray workers, saved) without the history index: it is rebuilt on use."""
        return {k: v for k, v in self.__dict__.items() if k != "_history"}

    def confidence(self, n_users: int, n_items: int, weighting: str = "binary") -> sp.csr_matrix:
        """User × item matrix of how much each interaction counts: ``binary`` (1 per pair, as :meth:`matrix`),
        ``log`` (a pair's summed counts ``c`` as ``log2(1 + c)``: 1 play → 1, 3 → 2, 1,000 → 10) or ``bm25`` (the
        counts BM25-weighted, K1 = 100, B = 0.8, users as documents: implicit's ``bm25_weight``, scaled to a mean of 1
        so that a ridge weight tuned on binary data means the same). A log without
        counts is binary under every weighting."""
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"weighting is one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
        if weighting == "binary" or self.weight is None:
            return self.matrix(n_users, n_items)
        counts = sp.csr_matrix((self.weight.astype(np.float64), (self.user, self.item)), shape=(n_users, n_items))
        counts.sum_duplicates()
        if weighting == "log":
            counts.data = np.log2(1.0 + np.maximum(counts.data, 0.0))
            return counts.astype(np.float32)
        k1, b = 100.0, 0.8
        df = np.bincount(counts.indices, minlength=n_items)
        idf = np.log(max(n_users, 1)) - np.log1p(df)
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        norm = (1.0 - b) + b * lengths / max(float(lengths.mean()), 1e-12)
        rows = np.repeat(np.arange(n_users), np.diff(counts.indptr))
        counts.data = counts.data * (k1 + 1.0) / (k1 * norm[rows] + counts.data) * idf[counts.indices]
        counts.data /= (
            max(float(np.mean(counts.data)), 1e-12) if counts.nnz else 1.0
        )  # mean 1, as binary: λ keeps its scale
        return counts.astype(np.float32)

    def matrix(self, n_users: int, n_items: int, *, binary: bool = True) -> sp.csr_matrix:
        """User × item CSR matrix; repeated pairs are counted once when ``binary``."""
        data = np.ones(len(self), dtype=np.float32)
        mat = sp.csr_matrix((data, (self.user, self.item)), shape=(n_users, n_items), dtype=np.float32)
        mat.sum_duplicates()
        if binary:
            mat.data[:] = 1.0
        return mat


@dataclass
class LoadReport:
    """What a reader skipped, added or noticed, counted by reason. Nothing is dropped unreported."""

    skipped: Counter[str] = field(default_factory=Counter)
    added: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, example: str | None = None) -> None:
        self.skipped[reason] += 1
        if example is not None and reason not in self.examples:
            self.examples[reason] = example

    def add(self, reason: str, n: int = 1) -> None:
        self.added[reason] += n

    def lines(self) -> list[str]:
        """Human-readable lines, one per reason."""
        out = []
        for reason, n in sorted(self.skipped.items()):
            ex = self.examples.get(reason)
            out.append(f"skipped {n:,} × {reason}" + (f" (first: {ex})" if ex else ""))
        for reason, n in sorted(self.added.items()):
            out.append(f"added {n:,} × {reason}")
        out.extend(self.notes)
        return out

    def as_dict(self) -> dict[str, object]:
        return {"skipped": dict(self.skipped), "added": dict(self.added), "notes": list(self.notes)}


@dataclass
class Dataset:
    """A catalog, its users and what they did."""

    name: str
    catalog: Catalog
    users: IdMap
    interactions: Interactions
    report: LoadReport = field(default_factory=LoadReport)
    user_features: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.catalog)

    def summary(self) -> dict[str, object]:
        n = len(self.interactions)
        density = n / max(1, self.n_users * self.n_items)
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": n,
            "density": round(density, 6),
            "has_rating": self.interactions.rating is not None,
            "has_weight": self.interactions.weight is not None,
            "text_fields": self.catalog.field_names(),
        }
