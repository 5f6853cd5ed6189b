"""What the HTTP layer calls: the store, the active model version, the recommendation log, keys.

No globals: one :class:`Service` per app, made in the app's lifespan.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from anyrec.errors import ConfigError
from anyrec.serve.experiments import Variant, assign
from anyrec.serve.live import LiveModel
from anyrec.serve.settings import ServeSettings
from anyrec.store import Event, Store, StoredItem

log = logging.getLogger(__name__)


def seed_store(store: Store, folder: str | Path) -> dict[str, int]:
    """Fill an empty store from a model folder: its catalog, and its history as ``rating`` events
    where the log has ratings (the value kept), else ``view`` events; original times kept."""
    src = Path(folder)
    cat = json.loads((src / "catalog.json").read_text())
    fields: dict[str, list[str]] = cat["fields"]
    cfield = cat.get("category_field")
    ids: list[str] = cat["ids"]

    def rows() -> Any:
        for n, raw in enumerate(ids):
            f = {name: vals[n] for name, vals in fields.items() if vals[n]}
            yield raw, f, (fields[cfield][n] or None) if cfield else None, True

    n_items = store.upsert_items(rows())
    users = json.loads((src / "users.json").read_text())
    h = np.load(src / "history.npz")
    rating = h["rating"] if "rating" in h else None
    # A log with ratings is stored as rating events (their values mean what they say: see EventWeights),
    # one without as views.
    batch = [Event(user=users[int(u)], item=ids[int(i)], type="view" if rating is None else "rating",
                   value=None if rating is None else float(rating[r]), time=float(t))
             for r, (u, i, t) in enumerate(zip(h["user"], h["item"], h["time"]))]
    store.add_events(batch)
    return {"items": n_items, "events": len(batch)}


def register_folder(store: Store, folder: str | Path, version: str | None = None) -> str:
    """Register a model folder as a version (once per path); returns its version name."""
    path = str(Path(folder).resolve())
    for v in store.versions():
        if v["path"] == path:
            return str(v["version"])
    meta = json.loads((Path(path) / "model.json").read_text())
    name = version or f"v{len(store.versions()) + 1}"
    metrics = {
        k: v for k, v in (meta.get("tuned") or {}).items() if isinstance(v, (int, float)) and k.startswith("valid")
    }
    metrics.update(meta.get("metrics") or {})
    store.register_version(name, path, meta["model"], metrics, data_until=float(meta.get("data_until", store.now())))
    return name


def prepare_store(store: Store, model_dir: str) -> None:
    """Seed an empty store from ``model_dir`` and register it (active if nothing is). Run once, before
    several server processes start over the same store."""
    if not model_dir:
        return
    if store.is_empty():
        t0 = time.perf_counter()
        counts = seed_store(store, model_dir)
        log.info(
            "empty store seeded from %s: %d items, %d events in %.1f s",
            model_dir,
            counts["items"],
            counts["events"],
            time.perf_counter() - t0,
        )
    version = register_folder(store, model_dir)
    if store.active_version() is None:
        store.set_active(version)


class Service:
    """The live state behind one app."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        if settings.threads > 0:
            threadpool_limits(settings.threads)
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(settings.threads)
        self.store = Store.open(settings.store_url)
        prepare_store(self.store, settings.model_dir)
        active = self.store.active_version()
        if active is None:
            raise ConfigError(
                "the store has no active model version: start with --model DIR (a folder from `anyrec fit`)"
            )
        self._swap_lock = threading.Lock()
        self._loaded: dict[str, LiveModel] = {}
        self.live = self.model(active)
        self.experiment: dict[str, Any] | None = None
        self._variants: list[Variant] = []
        self.reload_experiment()
        self._generation = self.store.generation()
        self._synced_at = time.time()
        self._refresh_lock = threading.Lock()
        self._log_queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_log, name="recommendation-log", daemon=True)
        self._writer.start()

    # ---- versions ---------------------------------------------------------------------
    def _load(self, version: str) -> LiveModel:
        row = self.store.version(version)
        if row is None:
            raise KeyError(version)
        t0 = time.perf_counter()
        live = LiveModel(
            version, row["path"], self.settings.weights, self.settings.ann_min_items, self.settings.ranker_dir
        )
        live.data_until = float(row["data_until"])
        live.sync(self.store)
        if live.is_text_model():
            live.encoder().encode(["warm up"])  # load the encoder now, not on the first search
        log.info("model version %s (%s) loaded in %.1f s", version, row["model"], time.perf_counter() - t0)
        return live

    def model(self, version: str) -> LiveModel:
        """A loaded version (loaded once, kept: experiments serve several side by side)."""
        live = self._loaded.get(version)
        if live is None:
            live = self._load(version)
            with self._swap_lock:
                live = self._loaded.setdefault(version, live)
        return live

    def loaded(self) -> list[LiveModel]:
        return list(self._loaded.values())

    def activate(self, version: str) -> LiveModel:
        """Load ``version`` fully, then swap it in: a request sees the old or the new model, never half of one."""
        live = self.model(version)
        with self._swap_lock:
            self.store.set_active(version)
            self.live = live
        return live

    # ---- several processes over one store --------------------------------------------------------
    def changed(self) -> None:
        """After this process changed the catalog, the active version or an experiment: tell the others."""
        self._generation = self.store.changed()

    def item_changed(self, item: str) -> StoredItem:
        """After a catalog write: apply the stored item to every loaded version, and tell the other processes."""
        stored = self.store.item(item)
        assert stored is not None
        for live in self.loaded():
            live.apply_items([stored])
        self.changed()
        return stored

    def refresh(self) -> None:
        """Catch up with changes other processes made (one small read per request when nothing changed).

        Events need none of this: every request reads the user's history from the store.
        """
        token = self.store.generation()
        if token == self._generation:
            return
        with self._refresh_lock:
            if token == self._generation:
                return
            started = time.time()
            changed = list(self.store.items(updated_since=self._synced_at - 5.0))  # a margin for clock skew
            for live in self.loaded():
                live.apply_items(changed)
            active = self.store.active_version()
            if active is not None and active != self.live.version:
                live = self.model(active)
                with self._swap_lock:
                    self.live = live
            self.reload_experiment()
            self._generation, self._synced_at = token, started
            log.info("caught up with another process: %d items changed, active %s", len(changed), active)

    # ---- experiments ------------------------------------------------------------------------
    def reload_experiment(self) -> None:
        """Serve the running experiment (at most one runs at a time); load its versions first."""
        running = [e for e in self.store.experiments() if e["status"] == "running"]
        exp = running[0] if running else None
        variants = [Variant(v["name"], v["model_version"], float(v["share"])) for v in exp["variants"]] if exp else []
        for v in variants:
            self.model(v.model_version)
        with self._swap_lock:
            self.experiment, self._variants = exp, variants

    def serving(self, user: str) -> tuple[LiveModel, str | None, str | None]:
        """The model that answers ``user`` now: the active version, or their experiment variant's."""
        exp, variants = self.experiment, self._variants
        if exp is None:
            return self.live, None, None
        v = assign(exp["name"], user, variants)
        return self.model(v.model_version), exp["name"], v.name

    # ---- keys ---------------------------------------------------------------------------
    def key_role(self, key: str) -> str | None:
        """The role of a valid key, ``None`` otherwise: read from the store on every request (one indexed read,
        no cache), so a key revoked in any worker or from the command line is refused on the next request in all."""
        return self.store.key_role(key)

    # ---- recommendation log ---------------------------------------------------------------
    def log_shown(self, row: dict[str, Any]) -> None:
        self._log_queue.put(row)

    def _write_log(self) -> None:
        stop = False
        while not stop:
            rows: list[dict[str, Any]] = []
            item = self._log_queue.get()
            if item is None:
                break
            rows.append(item)
            deadline = time.monotonic() + self.settings.log_flush_s
            while len(rows) < 5_000:
                try:
                    nxt = self._log_queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                rows.append(nxt)
            try:
                self.store.log_recommendations(rows)
            except Exception:  # the log must never take the service down; the loss is reported
                log.exception("could not write %d recommendation log rows", len(rows))

    def close(self) -> None:
        self._log_queue.put(None)
        self._writer.join(timeout=10)
        self.store.close()
