"""A fitted model's folder: config, id maps, catalog, history and fitted state — no pickle.

Folder layout::

    model.json      model name, config, dataset summary, anyrec version
    catalog.json    item ids, text fields, template, title / category fields
    users.json      user ids in index order
    history.npz     the interactions the model was fitted on
    state.npz       the fitted arrays (attributes ending in ``_``)

Everything is JSON or numpy arrays, so a folder is safe to load. The vector indexes that go with a
served version are written beside these files by :mod:`anyrec.app.persist`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from anyrec import __version__
from anyrec.data.dataset import Catalog, Dataset, IdMap, Interactions
from anyrec.errors import ConfigError
from anyrec.models.base import Recommender
from anyrec.models.renamed import upgrade_options

_BASE_ATTRS = {"seen_", "user_ids_", "item_ids_", "n_users_", "n_items_"}

log = logging.getLogger(__name__)


def _state(model: Recommender) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in vars(model).items():
        if (
            not name.endswith("_")
            or name.startswith("_")
            or name in _BASE_ATTRS
            or name.startswith("hist_")
            or name == "seqs_"
        ):
            continue
        if sp.issparse(value):
            csr = sp.csr_matrix(value)
            out[f"{name}@data"], out[f"{name}@indices"], out[f"{name}@indptr"] = csr.data, csr.indices, csr.indptr
            out[f"{name}@shape"] = np.asarray(csr.shape)
        elif isinstance(value, np.ndarray):
            out[name] = value
        elif isinstance(value, (int, float)):
            out[f"{name}@scalar"] = np.asarray(value)
    return out


def _restore(model: Recommender, state: dict[str, np.ndarray]) -> None:
    for key, value in state.items():
        name, _, kind = key.partition("@")
        if kind == "data":
            shape = tuple(state[f"{name}@shape"].tolist())
            setattr(model, name, sp.csr_matrix((value, state[f"{name}@indices"], state[f"{name}@indptr"]), shape=shape))
        elif kind == "scalar":
            setattr(model, name, value.item())
        elif kind == "":
            setattr(model, name, value)


def write_folder(model: Recommender, ds: Dataset, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (fitted on ``ds``) to ``folder``; ``extra`` joins ``model.json``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    cat = ds.catalog
    meta = {
        "model": model.name,
        "config": asdict(model.config),
        "dataset": ds.summary(),
        "anyrec": __version__,
        **(extra or {}),
    }
    (out / "model.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    (out / "catalog.json").write_text(
        json.dumps(
            {
                "ids": cat.ids.raw_ids,
                "fields": cat.fields,
                "template": cat.template,
                "category_field": cat.category_field,
                "category_sep": cat.category_sep,
                "title_field": cat.title_field,
                "image_field": cat.image_field,
            }
        )
    )
    (out / "users.json").write_text(json.dumps(ds.users.raw_ids))
    inter = ds.interactions
    arrays = {"user": inter.user, "item": inter.item, "time": inter.time}
    if inter.rating is not None:
        arrays["rating"] = inter.rating
    if inter.weight is not None:
        arrays["weight"] = inter.weight
    np.savez_compressed(out / "history.npz", **arrays)  # type: ignore[arg-type]
    state = _state(model)
    extra_state = getattr(model, "extra_state", None)
    if extra_state is not None:
        state.update({f"extra@{k}": v for k, v in extra_state().items()})
    np.savez_compressed(out / "state.npz", **state)  # type: ignore[arg-type]
    for i, part in enumerate(model.sub_models()):  # a blend's parts, each a folder of its own
        write_folder(part, ds, out / f"part-{i}")
    return out


def read_meta(folder: str | Path) -> dict[str, Any]:
    """``model.json`` of a saved model; a :class:`ConfigError` when ``folder`` is not one."""
    src = Path(folder)
    if not (src / "model.json").exists():
        raise ConfigError(f"{src}: not a saved anyrec model (no model.json); create one with `anyrec fit --out {src}`")
    meta: dict[str, Any] = json.loads((src / "model.json").read_text())
    return meta


def read_folder(
    folder: str | Path, classes: Mapping[str, type[Recommender]]
) -> tuple[Recommender, Dataset, dict[str, Any]]:
    """``(model, dataset, meta)`` from a folder written by :func:`write_folder`; the model's class is
    looked up by its saved name in ``classes`` (the registry, or the one class a caller accepts)."""
    src = Path(folder)
    meta = read_meta(src)
    from anyrec.models.blend import Blend  # (made of registered models, not one itself)

    cls = classes.get(meta["model"]) or {Blend.name: Blend}.get(meta["model"])
    if cls is None:
        raise ConfigError(f"{src}: model {meta['model']!r} is not known to this anyrec version")
    known = set(getattr(cls.Config, "__dataclass_fields__", {}))
    if known:  # renamed options and the earlier spelling of "sized from the data" (see anyrec.models.renamed)
        meta["config"] = upgrade_options(meta["model"], cls.Config, meta["config"], str(src))
    gone = sorted(set(meta["config"]) - known) if known else []
    if gone:  # a folder written by an older anyrec: options since removed are named and ignored
        log.warning(
            "%s: %s options %s no longer exist in this anyrec version; ignored (defaults used for new ones)",
            src,
            meta["model"],
            ", ".join(gone),
        )
    config = cls.Config(**{k: v for k, v in meta["config"].items() if k not in gone})
    cat_doc = json.loads((src / "catalog.json").read_text())
    catalog = Catalog(
        ids=IdMap(cat_doc["ids"]),
        fields=cat_doc["fields"],
        template=cat_doc["template"],
        category_field=cat_doc["category_field"],
        category_sep=cat_doc["category_sep"],
        title_field=cat_doc["title_field"],
        image_field=cat_doc.get("image_field"),
    )
    users = IdMap(json.loads((src / "users.json").read_text()))
    h = np.load(src / "history.npz")
    inter = Interactions(
        user=h["user"],
        item=h["item"],
        time=h["time"],
        rating=h["rating"] if "rating" in h else None,
        weight=h["weight"] if "weight" in h else None,
    )
    ds = Dataset(name=meta["dataset"]["name"], catalog=catalog, users=users, interactions=inter)
    model = cls(config)
    model.n_users_, model.n_items_ = ds.n_users, ds.n_items
    model.user_ids_, model.item_ids_ = ds.users, ds.catalog.ids
    model.seen_ = inter.matrix(ds.n_users, ds.n_items)
    with np.load(src / "state.npz") as npz:
        state = {k: npz[k] for k in npz.files}
    _restore(model, {k: v for k, v in state.items() if not k.startswith("extra@")})
    load_extra = getattr(model, "load_extra_state", None)
    if load_extra is not None:
        load_extra({k[len("extra@") :]: v for k, v in state.items() if k.startswith("extra@")})
    parts = tuple(read_folder(sub, classes)[0] for sub in sorted(src.glob("part-*")) if (sub / "model.json").exists())
    if parts:
        model.take_sub_models(parts)
    model.set_history(ds)
    return model, ds, meta
