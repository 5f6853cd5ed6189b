"""Impression logs (what a user was shown, each item clicked or not) and the MIND reader.

An impression needs at least one clicked and one not-clicked item (AUC, the protocol's first metric,
is undefined otherwise); the others are skipped and counted, as are shown items the catalog does not
know. The metrics and the protocol are in :mod:`anyrec.eval.impressions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anyrec.data.builder import parse_time
from anyrec.data.dataset import Dataset
from anyrec.data.rows import iter_delimited
from anyrec.errors import MalformedRowError


@dataclass(frozen=True)
class Impression:
    user: int
    items: np.ndarray   # (shown,) item indices
    labels: np.ndarray  # (shown,) 1 = clicked
    time: float


def read_mind_impressions(folder: str | Path, ds: Dataset) -> tuple[list[Impression], dict[str, int]]:
    """The impressions of a MIND ``behaviors.tsv`` as item indices of ``ds`` (read with the MIND loader)."""
    path = Path(folder) / "behaviors.tsv"
    out: list[Impression] = []
    report = {
        "impressions": 0,
        "shown items unknown to the catalog": 0,
        "impressions without both a click and a non-click": 0,
    }
    for line, _c, v in iter_delimited(path, sep="\t", header=False, quoting=3):
        if len(v) != 5:
            raise MalformedRowError(f"expected 5 tab-separated fields, found {len(v)}", path=path, line=line)
        _imp, user, when, _history, shown = v
        report["impressions"] += 1
        items, labels = [], []
        for token in shown.split():
            nid, _, label = token.rpartition("-")
            i = ds.catalog.ids.get(nid)
            if i is None:
                report["shown items unknown to the catalog"] += 1
                continue
            items.append(i)
            labels.append(int(label == "1"))
        lab = np.array(labels, dtype=np.int64)
        if lab.sum() == 0 or lab.sum() == len(lab):
            report["impressions without both a click and a non-click"] += 1
            continue
        out.append(
            Impression(
                ds.users.index(user, what="user"),
                np.array(items, dtype=np.int64),
                lab,
                parse_time(when, path=path, line=line, field="time"),
            )
        )
    return out, report


def split_by_time(
    ds: Dataset, impressions: Sequence[Impression], test_share: float = 0.2
) -> tuple[Dataset, list[Impression], float]:
    """Train on everything before the last ``test_share`` of impression times; test on those impressions."""
    cut = float(np.quantile([imp.time for imp in impressions], 1 - test_share))
    inter = ds.interactions
    train = Dataset(
        name=f"{ds.name}-before", catalog=ds.catalog, users=ds.users, interactions=inter.subset(inter.time < cut)
    )
    return train, [imp for imp in impressions if imp.time >= cut], cut
