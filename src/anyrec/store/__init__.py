"""The live side's database: catalog, users, events, recommendation log, API keys, model registry."""

from anyrec.store.records import Event, StoredItem, normalise_url
from anyrec.store.store import DEFAULT_URL, ROLES, Store

__all__ = ["DEFAULT_URL", "ROLES", "Event", "Store", "StoredItem", "normalise_url"]
