"""The live side's database: catalog, users, events, recommendation log, API keys, model registry."""

from anyrec.store.store import DEFAULT_URL, Event, Store, StoredItem, normalise_url

__all__ = ["DEFAULT_URL", "Event", "Store", "StoredItem", "normalise_url"]
