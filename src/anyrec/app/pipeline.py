"""Recommend, search and find similar items with raw ids and titles: what the CLI and API show.

Every function takes a fitted model and the dataset it was fitted on and returns plain
dicts (``id``, ``title``, ``score``, ``because``), ready for a table or JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.explain import Attribution, SentenceGuard, attribute, explain_sentence, history_of, shared_words
from anyrec.index.vector import VectorIndex
from anyrec.models.base import Filters, Recommender
from anyrec.models.feedback import kin_push


def _item(ds: Dataset, i: int, score: float) -> dict[str, Any]:
    return {"id": ds.catalog.ids.raw(i), "title": ds.catalog.title(i), "score": round(float(score), 6)}


def category_filter(ds: Dataset, categories: list[str] | None) -> Filters | None:
    if not categories:
        return None
    items = ds.catalog.items_in_categories(categories)
    if items.size == 0:
        known = sorted({c for i in range(ds.n_items) for c in ds.catalog.categories(i)})
        raise ConfigError(f"no item is in categories {categories}; categories: {', '.join(known[:40])}")
    return Filters(items=items)


def because(model: Recommender, ds: Dataset, user: int, items: np.ndarray, top: int = 3) -> list[list[dict[str, Any]]]:
    """The user's history items that contributed most to each recommended item's score, by the
    model's own attribution (:func:`anyrec.explain.attribute`)."""
    return explain(model, ds, user, items, top)[1]["because"]


def explain(model: Recommender, ds: Dataset, user: int, items: np.ndarray, top: int = 3,
            sentences: bool = False) -> tuple[Attribution, dict[str, list[Any]]]:
    """The attribution of ``items`` to ``user``'s history, and per item: ``because`` (the ``top`` cited
    history items with their contribution), and with ``sentences`` also ``words`` (shared with them)
    and ``sentence`` (guarded: it names only the cited items and the item itself)."""
    hist, weights = history_of(ds, user)
    att = attribute(model, hist, weights, np.asarray(items, dtype=np.int64))
    cited = [[h for h, _ in att.top(j, top)] for j in range(len(items))]
    out: dict[str, list[Any]] = {
        "because": [
            [
                {"id": ds.catalog.ids.raw(h), "title": ds.catalog.title(h), "contribution": round(c, 6)}
                for h, c in att.top(j, top)
            ]
            for j in range(len(items))
        ]
    }
    if sentences:
        guard = SentenceGuard(ds.catalog)
        out["words"] = [shared_words(ds.catalog, int(i), c) for i, c in zip(items, cited)]
        out["sentence"] = [explain_sentence(ds.catalog, int(i), c, guard)[0] for i, c in zip(items, cited)]
    return att, out


def recommend(
    model: Recommender, ds: Dataset, user: str, k: int = 10, categories: list[str] | None = None
) -> list[dict[str, Any]]:
    """Top-k for raw user id ``user``, seen items removed, with contributing history items."""
    u = ds.users.index(user, what="user")
    ids, scores = model.recommend(np.array([u]), k, filters=category_filter(ds, categories))
    keep = ids[0] >= 0
    items, vals = ids[0][keep], scores[0][keep]
    why = because(model, ds, u, items)
    rows = [{**_item(ds, i, s), "rank": r + 1, "because": w} for r, (i, s, w) in enumerate(zip(items, vals, why))]
    priors = model.item_priors()
    if priors is not None:
        # The score is text similarity plus the log priors; show both parts.
        prior = priors[items]
        for row, p in zip(rows, prior):
            row["prior"] = round(float(p), 6)
            row["text_score"] = round(row["score"] - float(p), 6)
    return rows


def history(ds: Dataset, user: str, last: int = 10) -> list[dict[str, Any]]:
    """The user's most recent interactions, newest first."""
    u = ds.users.index(user, what="user")
    inter = ds.interactions
    rows = inter.history(ds.n_users).rows(u)[::-1][:last]
    out = []
    for r in rows:
        entry = {
            "id": ds.catalog.ids.raw(inter.item[r]),
            "title": ds.catalog.title(inter.item[r]),
            "time": float(inter.time[r]),
        }
        if inter.rating is not None:
            entry["rating"] = float(inter.rating[r])
        out.append(entry)
    return out


def _text_parts(model: Recommender, what: str) -> np.ndarray:
    table = model.text_table()
    if table is None:
        raise ConfigError(
            f"{what} needs a text model; fit one with `anyrec fit --model zeroshot` (this one is {model.name!r})"
        )
    return table


# A search with a user: a negative event's nearest items are pushed down by at most this much (zero-shot's default
# push, in cosine units) among its ``SEARCH_KIN`` nearest: the feedback rule, never a subtraction from the profile.
SEARCH_PUSH, SEARCH_KIN = 0.05, 10


def search_scores(
    table: np.ndarray,
    query: np.ndarray,
    items: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    user_weight: float = 0.3,
) -> np.ndarray:
    """Every item's search score ``(n_items,)``, the one rule of the CLI and the service: the cosine with the unit
    ``query`` (in ``table``'s space), blended with weight ``user_weight`` with the cosine to the profile of the user's
    *positive* events (their weights); a negative event (dislike, skip, low rating) never enters the profile, it
    pushes its nearest items down by at most :data:`SEARCH_PUSH` (:func:`~anyrec.models.feedback.kin_push`)."""
    scores = np.asarray(table @ np.asarray(query, dtype=np.float32), dtype=np.float64)
    if items is None or weights is None or not len(items):
        return scores
    items, weights = np.asarray(items, dtype=np.int64), np.asarray(weights, dtype=np.float64)
    pos, neg = weights > 0, weights < 0
    if pos.any():
        prof = weights[pos] @ table[items[pos]]
        prof = prof / max(float(np.linalg.norm(prof)), 1e-12)
        scores = (1 - user_weight) * scores + user_weight * np.asarray(
            table @ prof.astype(np.float32), dtype=np.float64
        )
    if neg.any():
        scores = scores - SEARCH_PUSH * kin_push(table, items[neg], weights[neg], SEARCH_KIN, history=items)
    return scores


def search(
    model: Recommender,
    ds: Dataset,
    query: str,
    k: int = 10,
    user: str | None = None,
    user_weight: float = 0.3,
    categories: list[str] | None = None,
    index: VectorIndex | None = None,
) -> list[dict[str, Any]]:
    """Items for a free-text request, optionally blended with a user's profile (seen items removed then)."""
    table = _text_parts(model, "search")
    encoder = model.text_encoder()
    if encoder is None:
        raise ConfigError(
            f"search needs a text model that keeps its encoder; fit one with `anyrec fit --model zeroshot` "
            f"(this one is {model.name!r})"
        )
    if not query.strip():
        raise ConfigError("the search text is empty")
    qvec = model.query_vectors([query], encoder.encode([query]))  # (1, dim) in the table's space
    filters = category_filter(ds, categories)
    if user is None and index is not None:
        ids, scores = index.search(qvec, k, allow=filters.items if filters else None)
        return [{**_item(ds, i, s), "rank": r + 1} for r, (i, s) in enumerate(zip(ids[0], scores[0])) if i >= 0]
    if user is not None:
        u = ds.users.index(user, what="user")
        items, weights = history_of(ds, u)  # the user's events as the service holds them (ratings signed)
        scores = search_scores(table, qvec[0], items, weights, user_weight)
        scores[model.seen_[u].indices] = -np.inf
    else:
        scores = search_scores(table, qvec[0])
    if filters is not None and filters.items is not None:
        mask = np.ones(ds.n_items, dtype=bool)
        mask[filters.items] = False
        scores[mask] = -np.inf
    order = np.argsort(-scores, kind="stable")[:k]
    return [{**_item(ds, i, scores[i]), "rank": r + 1} for r, i in enumerate(order) if np.isfinite(scores[i])]


def similar(
    model: Recommender, ds: Dataset, item: str, k: int = 10, index: VectorIndex | None = None
) -> list[dict[str, Any]]:
    """Nearest items to raw item id ``item`` by text (or by co-occurrence for item-kNN)."""
    i = ds.catalog.ids.index(item, what="item")
    col = model.item_neighbours(i)
    if col is not None:
        col[i] = -np.inf
        order = np.argsort(-col, kind="stable")[:k]
        return [{**_item(ds, j, col[j]), "rank": r + 1} for r, j in enumerate(order) if col[j] > 0]
    table = _text_parts(model, "similar")
    vec = table[i : i + 1]
    if index is not None:
        ids, scores = index.search(vec, k, exclude=[[i]])
        return [{**_item(ds, j, s), "rank": r + 1} for r, (j, s) in enumerate(zip(ids[0], scores[0])) if j >= 0]
    scores = (table @ vec[0]).astype(np.float64)
    scores[i] = -np.inf
    order = np.argsort(-scores, kind="stable")[:k]
    return [{**_item(ds, j, scores[j]), "rank": r + 1} for r, j in enumerate(order)]
