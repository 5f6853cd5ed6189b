"""Several datasets as one: for pretraining a model across catalogs (a generative model's
behaviour pretraining, for one). Items and users keep their raw ids behind the dataset's name,
so nothing of one catalog is mistaken for another's."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from anyrec.data.dataset import Catalog, Dataset, IdMap, Interactions, LoadReport


def merge_datasets(datasets: Sequence[Dataset], name: str | None = None) -> Dataset:
    """One dataset holding every catalog and log of ``datasets``.

    Item ids become ``"<dataset>:<raw id>"`` (users likewise); each item's text is its own
    catalog's rendered text (one field, ``text``), its title its own title. Times stay each
    dataset's own (splits work per user, and no user is in two datasets).
    """
    if not datasets:
        raise ValueError("merge_datasets needs at least one dataset")
    names: list[str] = []
    for ds in datasets:  # two datasets of one name (two folders both called "data") get a number
        base, n = ds.name, 2
        name_i = base
        while name_i in names:
            name_i, n = f"{base}-{n}", n + 1
        names.append(name_i)
    items, users, texts, titles = IdMap(), IdMap(), [], []
    parts = []
    report = LoadReport()
    for ds, prefix in zip(datasets, names):
        item_off, user_off = len(items), len(users)
        for i, raw in enumerate(ds.catalog.ids.raw_ids):
            items.add(f"{prefix}:{raw}")
            texts.append(ds.catalog.text(i))
            titles.append(ds.catalog.title(i))
        for raw in ds.users.raw_ids:
            users.add(f"{prefix}:{raw}")
        inter = ds.interactions
        parts.append((inter.user + user_off, inter.item + item_off, inter.time,
                      inter.rating if inter.rating is not None else np.full(len(inter), np.nan, dtype=np.float32)))
        report.add(f"interactions from {prefix}", len(inter))
        report.add(f"items from {prefix}", ds.n_items)
    rating = np.concatenate([p[3] for p in parts]).astype(np.float32)
    merged = Interactions(user=np.concatenate([p[0] for p in parts]).astype(np.int64),
                          item=np.concatenate([p[1] for p in parts]).astype(np.int64),
                          time=np.concatenate([p[2] for p in parts]).astype(np.float64),
                          rating=None if np.isnan(rating).all() else rating)
    catalog = Catalog(ids=items, fields={"text": texts, "title": titles}, template="{text}", title_field="title")
    return Dataset(name=name or "+".join(names), catalog=catalog, users=users, interactions=merged, report=report)
