"""Saving a fitted model with everything needed to serve it: config, id maps, catalog, history, state.

Folder layout::

    model.json      model name, config, dataset summary, anyrec version
    catalog.json    item ids, text fields, template, title / category fields
    users.json      user ids in index order
    history.npz     the interactions the model was fitted on
    state.npz       the fitted arrays (attributes ending in ``_``)
    index/          a vector index over item text vectors (text models only)
    index-model/    sequential: a vector index over the items in the model's scoring space

No pickle: everything is JSON or numpy arrays, so a folder is safe to load.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from anyrec import __version__
from anyrec.data.dataset import Catalog, Dataset, IdMap, Interactions
from anyrec.errors import ConfigError
from anyrec.index.vector import VectorIndex, load_index
from anyrec.models import MODELS, Recommender

_BASE_ATTRS = {"seen_", "user_ids_", "item_ids_", "n_users_", "n_items_"}


def _state(model: Recommender) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in vars(model).items():
        if not name.endswith("_") or name.startswith("_") or name in _BASE_ATTRS or name.startswith("hist_") or name == "seqs_":
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


def save_model(model: Recommender, ds: Dataset, folder: str | Path,
               index: VectorIndex | dict[str, VectorIndex] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (fitted on ``ds``) to ``folder``, with its vector indexes: one index (over the
    item text vectors) or several by name (``text`` → ``index/``, any other → ``index-NAME/``)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    cat = ds.catalog
    meta = {"model": model.name, "config": asdict(model.config), "dataset": ds.summary(), "anyrec": __version__, **(extra or {})}
    (out / "model.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    (out / "catalog.json").write_text(json.dumps({
        "ids": cat.ids.raw_ids, "fields": cat.fields, "template": cat.template, "category_field": cat.category_field,
        "category_sep": cat.category_sep, "title_field": cat.title_field,
    }))
    (out / "users.json").write_text(json.dumps(ds.users.raw_ids))
    inter = ds.interactions
    arrays = {"user": inter.user, "item": inter.item, "time": inter.time}
    if inter.rating is not None:
        arrays["rating"] = inter.rating
    np.savez_compressed(out / "history.npz", **arrays)  # type: ignore[arg-type]
    state = _state(model)
    extra_state = getattr(model, "extra_state", None)
    if extra_state is not None:
        state.update({f"extra@{k}": v for k, v in extra_state().items()})
    np.savez_compressed(out / "state.npz", **state)  # type: ignore[arg-type]
    indexes = index if isinstance(index, dict) else ({} if index is None else {"text": index})
    for old in [*out.glob("index-*"), out / "index"]:
        if old.is_dir() and old.name not in {_index_folder(n) for n in indexes}:
            shutil.rmtree(old)  # a re-save into the folder must not leave an earlier version's index behind
    for name, ix in indexes.items():
        ix.save(out / _index_folder(name))
    return out


def _index_folder(name: str) -> str:
    return "index" if name == "text" else f"index-{name}"


def load_indexes(folder: str | Path) -> dict[str, VectorIndex]:
    """Every vector index saved with the model in ``folder``, by name (``text``, ``model``)."""
    src = Path(folder)
    found = {}
    for sub in [src / "index", *sorted(src.glob("index-*"))]:
        if (sub / "index.json").exists():
            found["text" if sub.name == "index" else sub.name[len("index-"):]] = load_index(sub)
    return found


def load_model(folder: str | Path) -> tuple[Recommender, Dataset, VectorIndex | None, dict[str, Any]]:
    """``(model, dataset, index or None, meta)`` from a folder written by :func:`save_model`."""
    src = Path(folder)
    if not (src / "model.json").exists():
        raise ConfigError(f"{src}: not a saved anyrec model (no model.json); create one with `anyrec fit --out {src}`")
    meta = json.loads((src / "model.json").read_text())
    if meta["model"] not in MODELS:
        raise ConfigError(f"{src}: model {meta['model']!r} is not known to this anyrec version")
    cls = MODELS[meta["model"]]
    config = cls.Config(**meta["config"])
    cat_doc = json.loads((src / "catalog.json").read_text())
    catalog = Catalog(ids=IdMap(cat_doc["ids"]), fields=cat_doc["fields"], template=cat_doc["template"],
                      category_field=cat_doc["category_field"], category_sep=cat_doc["category_sep"],
                      title_field=cat_doc["title_field"])
    users = IdMap(json.loads((src / "users.json").read_text()))
    h = np.load(src / "history.npz")
    inter = Interactions(user=h["user"], item=h["item"], time=h["time"], rating=h["rating"] if "rating" in h else None)
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
        load_extra({k[len("extra@"):]: v for k, v in state.items() if k.startswith("extra@")})
    model.set_history(ds)
    index = load_index(src / "index") if (src / "index" / "index.json").exists() else None
    return model, ds, index, meta
