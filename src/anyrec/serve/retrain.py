"""Between the store and the offline side: import a dataset into a store, build a dataset from
a store's catalog and event log, and retrain a new model version into a registry folder."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anyrec.app.fitting import fit_auto, fit_for_serving
from anyrec.app.persist import save_model
from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.dataset import Dataset
from anyrec.models.registry import MODELS, option_names
from anyrec.serve.live import EVENT_TYPES, EventWeights
from anyrec.store import Event, Store

log = logging.getLogger(__name__)


def import_dataset(store: Store, ds: Dataset) -> dict[str, int]:
    """Load a dataset the readers took (catalog and interactions) into the store.

    Interactions become events of their own type when the data names one of the API's types,
    otherwise ``view``; ratings are kept as the event value. Returns what was written.
    """
    cat = ds.catalog

    def rows() -> Any:
        for i in range(ds.n_items):
            fields = {name: vals[i] for name, vals in cat.fields.items() if vals[i]}
            category = cat.fields[cat.category_field][i] if cat.category_field else ""
            yield cat.ids.raw(i), fields, category or None, True

    n_items = store.upsert_items(rows())
    inter = ds.interactions
    kinds: Counter[str] = Counter()
    batch = []
    for r in range(len(inter)):
        raw_kind = str(inter.event[r]).strip().lower() if inter.event is not None else ""
        kind = raw_kind if raw_kind in EVENT_TYPES else "view"
        kinds[kind] += 1
        batch.append(Event(user=ds.users.raw(int(inter.user[r])), item=cat.ids.raw(int(inter.item[r])), type=kind,
                           value=None if inter.rating is None else float(inter.rating[r]), time=float(inter.time[r])))
    store.add_events(batch)
    return {"items": n_items, "events": len(batch), **{f"events:{k}": n for k, n in kinds.items()}}


def dataset_from_store(store: Store, weights: EventWeights, *, template: str | None = None,
                       category_field: str | None = None, name: str = "store") -> tuple[Dataset, dict[str, int]]:
    """The store's live catalog and its positive events as a dataset (what a retrain learns from).

    Events with a negative or zero weight (dislike, skip, low ratings) and events on deleted or
    unknown items are left out of the interactions and counted in the returned report.
    """
    items = [it for it in store.items() if not it.deleted]
    fields = sorted({f for it in items for f in it.fields})
    cfield = category_field or ("category" if any(it.category for it in items) else None)
    if cfield and cfield not in fields:
        fields.append(cfield)
    builder = DatasetBuilder(ReadPolicy(unknown_items="skip"), fields=fields)
    for n, it in enumerate(items):
        values = dict(it.fields)
        if cfield and it.category is not None:
            values[cfield] = it.category
        builder.add_item(it.id, values, path="store:items", line=n + 1, field="id")
    known = {it.id for it in items}
    left_out: Counter[str] = Counter()
    rows = []
    for user, item, kind, value, t in store.all_events():
        if item not in known:
            left_out["events on deleted or unknown items"] += 1
        elif weights.weight(kind, value) <= 0:
            left_out[f"{kind} events (weight <= 0)"] += 1
        else:
            rows.append((user, item, value, t))
    with_value = all(v is not None for _, _, v, _ in rows)
    for n, (user, item, value, t) in enumerate(rows):
        builder.add_interaction(
            user, item, time=t, rating=value if with_value else None, path="store:events", line=n + 1
        )
    tmpl = template or ". ".join("{" + f + "}" for f in fields)
    ds = builder.build(name, template=tmpl, category_field=cfield, title_field="title" if "title" in fields else None)
    return ds, {"interactions": len(rows), **left_out}


def next_version(store: Store) -> str:
    taken = {v["version"] for v in store.versions()}
    n = len(taken) + 1
    while f"v{n}" in taken:
        n += 1
    return f"v{n}"


def retrain(
    store: Store,
    registry: str | Path,
    *,
    model_name: str | None = None,
    options: dict[str, Any] | None = None,
    weights: EventWeights | None = None,
    seed: int = 0,
    tune: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Fit a new version from the store and register it (not activated). Returns its registry row."""
    active = store.active_version()
    base = store.version(active) if active else None
    template, cfield = None, None
    if base is not None:
        cat = json.loads((Path(base["path"]) / "catalog.json").read_text())
        template, cfield = cat["template"], cat.get("category_field")
    name = model_name or (base["model"] if base else "zeroshot")
    options = dict(options or {})
    if base is not None and base["model"] == name:
        base_cfg = json.loads((Path(base["path"]) / "model.json").read_text()).get("config", {})
        if "encoder" in base_cfg:
            options.setdefault("encoder", base_cfg["encoder"])  # the same text space as the version it replaces
    data_until = time.time()
    ds, report = dataset_from_store(store, weights or EventWeights(), template=template, category_field=cfield)
    log.info("retrain %s on the store: %d items, %s", name, ds.n_items, report)
    extra: dict[str, Any] = {}
    if name == "auto":  # the models that suit the store's log, the best validation NDCG@10 kept
        model, tuned, metrics, index, extra["auto"] = fit_auto(
            ds, {m: dict(options) for m in extra_options(options)}, seed, progress
        )
        name = model.name
    else:
        model, tuned, metrics, index = fit_for_serving(name, ds, options, seed, tune, progress)
    version = next_version(store)
    folder = save_model(
        model,
        ds,
        Path(registry) / version,
        index,
        extra={"tuned": tuned, "metrics": metrics, "data_until": data_until, "store_report": report, **extra},
    )
    store.register_version(
        version, str(folder.resolve()), name, {**metrics, "interactions": report["interactions"]}, data_until
    )
    row = store.version(version)
    assert row is not None
    return row


def extra_options(options: dict[str, Any]) -> list[str]:
    """The models ``auto`` may fit that take every one of ``options`` (an encoder given for the text models)."""
    return [m for m in MODELS if set(options) <= option_names(m)]
