"""The reasons on each card: the history items behind *that* item, named with what the user did.

Each card cites the history items with the largest positive contribution to its own score, by
the model's attribution (:func:`anyrec.explain.attribute`), among the items the user's latest
event on them was positive: a disliked, skipped or low-rated item is never a reason. The
sentence's verb is the event's ("you rated “A” 5", "you bought “B”", "you watched “C”").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anyrec.data.dataset import Catalog, IdMap
from anyrec.explain import SentenceGuard, attribute, explain_sentence, shared_words
from anyrec.models.base import Recommender

DEFAULT_VERBS: dict[str, str] = {
    "view": "viewed",
    "click": "clicked",
    "add_to_cart": "put in your cart",
    "purchase": "bought",
    "like": "liked",
    "rating": "rated",
}


def latest_events(
    rows: Sequence[tuple[str, str, float | None, float]], ids: IdMap, weigh: Any
) -> dict[int, tuple[str, float | None, float]]:
    """Per known item, the user's latest event on it: ``(kind, value, weight)`` (rows oldest first)."""
    out: dict[int, tuple[str, float | None, float]] = {}
    for raw, kind, value, _time in rows:
        i = ids.get(raw)
        if i is not None:
            out[i] = (kind, value, weigh(kind, value))
    return out


def phrase(kind: str, value: float | None, verbs: Mapping[str, str]) -> str:
    """What the user did, as the sentence says it: ``rated {title} 5``, ``bought {title}``."""
    verb = verbs.get(kind, DEFAULT_VERBS.get(kind, "chose"))
    if kind == "rating" and value is not None:
        return f"{verb} {{title}} {float(value):g}"
    return f"{verb} {{title}}"


def card_reasons(
    model: Recommender,
    catalog: Catalog,
    ids: IdMap,
    guard: SentenceGuard,
    items: np.ndarray,
    weights: np.ndarray,
    values: np.ndarray,
    targets: np.ndarray,
    latest: Mapping[int, tuple[str, float | None, float]],
    verbs: Mapping[str, str],
    n: int = 3,
) -> list[dict[str, Any]]:
    """Per target: the cited history items (id, title, contribution, what the user did), the words
    they share with it and a guarded sentence naming only them and the target."""
    att = attribute(model, items, weights, np.asarray(targets, dtype=np.int64), values)
    out = []
    for j, t in enumerate(targets):
        top: list[tuple[int, float]] = []
        for h, c in att.top(j, len(att.history)):
            # Positive latest events only; one item per title (catalogs list some works twice under two ids).
            if latest.get(h, ("", None, 0.0))[2] > 0 and all(catalog.title(h) != catalog.title(k) for k, _ in top):
                top.append((h, c))
            if len(top) == n:
                break
        cited = [h for h, _ in top]
        did = [phrase(latest[h][0], latest[h][1], verbs) for h in cited]
        out.append(
            {
                "because": [
                    {
                        "id": ids.raw(h),
                        "title": catalog.title(h),
                        "contribution": round(c, 6),
                        "event": latest[h][0],
                        **({"value": latest[h][1]} if latest[h][1] is not None else {}),
                    }
                    for h, c in top
                ],
                "words": shared_words(catalog, int(t), cited),
                "sentence": explain_sentence(catalog, int(t), cited, guard, phrases=did)[0],
            }
        )
    return out
