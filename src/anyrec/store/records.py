"""What the store holds and hands out: events, catalog items, and its URL forms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Event:
    """One thing a user did. ``time`` defaults to when the store received it."""

    user: str
    item: str
    type: str
    value: float | None = None
    time: float | None = None
    recommendation_id: str | None = None


@dataclass(frozen=True)
class StoredItem:
    id: str
    fields: dict[str, str]
    category: str | None
    available: bool
    deleted: bool
    updated_at: float


def normalise_url(url: str) -> str:
    """Accept a bare path (``./anyrec.db``) as SQLite and ``postgresql://`` as psycopg 3."""
    if "://" not in url:
        return f"sqlite:///{Path(url)}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url
