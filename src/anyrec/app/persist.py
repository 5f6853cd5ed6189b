"""Saved model versions: the model's folder (:mod:`anyrec.models.folder`) with its vector indexes.

Beside the model's own files a folder holds::

    index/          a vector index over item text vectors (text models only)
    index-model/    sequential: a vector index over the items in the model's scoring space
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from anyrec.data.dataset import Dataset
from anyrec.index.vector import VectorIndex, load_index
from anyrec.models.base import Recommender
from anyrec.models.folder import read_folder, write_folder
from anyrec.models.registry import MODELS


def save_model(model: Recommender, ds: Dataset, folder: str | Path,
               index: VectorIndex | dict[str, VectorIndex] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (fitted on ``ds``) to ``folder``, with its vector indexes: one index (over the
    item text vectors) or several by name (``text`` → ``index/``, any other → ``index-NAME/``)."""
    out = write_folder(model, ds, folder, extra)
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
    model, ds, meta = read_folder(src, MODELS)
    index = load_index(src / "index") if (src / "index" / "index.json").exists() else None
    return model, ds, index, meta
