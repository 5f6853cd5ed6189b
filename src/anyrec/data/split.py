"""Evaluation splits: leave-one-out by time, global temporal cut, random ratio, cold items.

A split holds row indices into the dataset's interactions, plus, per phase, the items a
model may rank (``None`` means the whole catalog). Nothing here samples negatives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from anyrec.data.dataset import Dataset, Interactions
from anyrec.errors import ConfigError

PROTOCOLS = ("loo", "temporal", "ratio", "cold-item")


@dataclass(frozen=True)
class SplitConfig:
    """How to split.

    Attributes:
        protocol: ``loo`` | ``temporal`` | ``ratio`` | ``cold-item``.
        valid: share for validation (``temporal``, ``ratio``; for ``cold-item`` the share of
            items held out for validation).
        test: share for test (``temporal``, ``ratio``; for ``cold-item`` the share of items).
        cold_rank_among: ``cold`` ranks held-out items among the cold items only (the usual
            new-item setting); ``all`` ranks them among the whole catalog.
        seed: seed of the random steps (``ratio``, ``cold-item``).
    """

    protocol: str = "loo"
    valid: float = 0.1
    test: float = 0.1
    cold_rank_among: str = "cold"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if not (0 <= self.valid < 1 and 0 < self.test < 1 and self.valid + self.test < 1):
            raise ConfigError(f"valid ({self.valid}) and test ({self.test}) shares must lie in [0, 1) and sum below 1")
        if self.cold_rank_among not in ("cold", "all"):
            raise ConfigError(f"cold_rank_among must be 'cold' or 'all', got {self.cold_rank_among!r}")


@dataclass
class Split:
    """Row indices of each phase and the items each phase ranks over."""

    protocol: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    valid_candidates: np.ndarray | None = None
    test_candidates: np.ndarray | None = None
    report: dict[str, int | str] = field(default_factory=dict)

    def train_dataset(self, ds: Dataset) -> Dataset:
        """The dataset restricted to training rows (same catalog and user map)."""
        return with_interactions(ds, ds.interactions.subset(self.train))

    def history_dataset(self, ds: Dataset, phase: str) -> Dataset:
        """What a model may know when scoring ``phase``: train, plus validation rows for test."""
        rows = self.train if phase == "valid" else np.sort(np.concatenate([self.train, self.valid]))
        return with_interactions(ds, ds.interactions.subset(rows))


def without_last(ds: Dataset, n: int, keep: int) -> Dataset:
    """``ds`` without each user's last ``n`` interactions (by time), for users with more than ``n + keep``;
    the other users keep all of theirs."""
    inter = ds.interactions
    order = inter.history(ds.n_users).order
    pos, size = _group_positions(inter.user[order])
    drop = (size > n + keep) & (size - 1 - pos < n)
    return with_interactions(ds, inter.subset(np.sort(order[~drop])))


def with_interactions(ds: Dataset, inter: Interactions) -> Dataset:
    return Dataset(name=ds.name, catalog=ds.catalog, users=ds.users, interactions=inter, report=ds.report,
                   user_features=ds.user_features)


def _group_positions(sorted_users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by user: position inside the user's group and the group's size."""
    n = sorted_users.shape[0]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    sizes = np.diff(np.r_[starts, n])
    size = np.repeat(sizes, sizes)
    pos = np.arange(n) - np.repeat(starts, sizes)
    return pos, size


def leave_one_out(ds: Dataset) -> Split:
    """Last interaction → test, the one before → validation, the rest → train.

    Users with two interactions get no validation item; users with one are train-only.
    """
    inter = ds.interactions
    order = inter.history(ds.n_users).order
    pos, size = _group_positions(inter.user[order])
    from_end = size - 1 - pos
    test = np.sort(order[(from_end == 0) & (size >= 2)])
    valid = np.sort(order[(from_end == 1) & (size >= 3)])
    train = np.sort(order[~(((from_end == 0) & (size >= 2)) | ((from_end == 1) & (size >= 3)))])
    n_users = len(np.unique(inter.user))
    report: dict[str, int | str] = {
        "users": n_users,
        "users_with_test": int(test.shape[0]),
        "users_without_valid (2 interactions)": int(((from_end == 0) & (size == 2)).sum()),
        "users_train_only (1 interaction)": int((size == 1).sum()),
    }
    return Split("loo", train, valid, test, report=report)


def temporal(ds: Dataset, valid: float = 0.1, test: float = 0.1) -> Split:
    """One global time cut: the earliest rows train, then validation, the latest test."""
    inter = ds.interactions
    order = np.lexsort((np.arange(len(inter)), inter.time))
    n = len(inter)
    n_test = max(1, int(round(n * test)))
    n_valid = int(round(n * valid))
    train = np.sort(order[: n - n_test - n_valid])
    val = np.sort(order[n - n_test - n_valid : n - n_test])
    tst = np.sort(order[n - n_test :])
    report = _cold_start_report(inter, train, tst)
    report["cut_time"] = str(float(inter.time[order[n - n_test]]))
    return Split("temporal", train, val, tst, report=report)


def ratio(ds: Dataset, valid: float = 0.1, test: float = 0.1, seed: int = 0) -> Split:
    """Per user, a seeded random share of interactions → test and → validation.

    Users with fewer than 3 interactions stay in training only (counted in the report).
    """
    inter = ds.interactions
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(inter))
    order = shuffled[np.argsort(inter.user[shuffled], kind="stable")]
    pos, size = _group_positions(inter.user[order])
    n_test = np.maximum(1, np.round(size * test)).astype(np.int64)
    n_valid = np.where(valid > 0, np.maximum(1, np.round(size * valid)), 0).astype(np.int64)
    eligible = size >= 3
    is_test = eligible & (pos < n_test)
    is_valid = eligible & ~is_test & (pos < n_test + n_valid)
    report: dict[str, int | str] = {
        "users_train_only (<3 interactions)": int(len(np.unique(inter.user[order][~eligible])))
    }
    return Split(
        "ratio", np.sort(order[~is_test & ~is_valid]), np.sort(order[is_valid]), np.sort(order[is_test]), report=report
    )


def cold_item(
    ds: Dataset, share: float = 0.1, valid_share: float = 0.1, seed: int = 0, rank_among: str = "cold"
) -> Split:
    """Hold out a seeded share of items and all their interactions.

    Each user's interactions with the test items are that user's test set; a second,
    disjoint share of items plays the same role for validation. With ``rank_among="cold"``
    each phase ranks only its own held-out items.
    """
    inter = ds.interactions
    touched = np.unique(inter.item)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(touched)
    n_test = max(1, math.ceil(share * touched.shape[0]))
    n_valid = math.ceil(valid_share * touched.shape[0])
    test_items = np.sort(perm[:n_test])
    valid_items = np.sort(perm[n_test : n_test + n_valid])
    in_test = np.isin(inter.item, test_items)
    in_valid = np.isin(inter.item, valid_items)
    train = np.flatnonzero(~in_test & ~in_valid)
    tst, val = np.flatnonzero(in_test), np.flatnonzero(in_valid)
    report = _cold_start_report(inter, train, tst)
    report.update({"test_items": int(n_test), "valid_items": int(valid_items.shape[0]), "rank_among": rank_among})
    among = rank_among == "cold"
    return Split(
        "cold-item",
        train,
        val,
        tst,
        valid_candidates=valid_items if among else None,
        test_candidates=test_items if among else None,
        report=report,
    )


def _cold_start_report(inter: Interactions, train: np.ndarray, test: np.ndarray) -> dict[str, int | str]:
    train_users = np.unique(inter.user[train])
    train_items = np.unique(inter.item[train])
    test_users = np.unique(inter.user[test])
    return {
        "test_users": int(test_users.shape[0]),
        "test_users_without_training_history": int((~np.isin(test_users, train_users)).sum()),
        "test_rows_with_items_unseen_in_training": int((~np.isin(inter.item[test], train_items)).sum()),
    }


def make_split(ds: Dataset, config: SplitConfig) -> Split:
    """Split ``ds`` by ``config.protocol``."""
    if config.protocol == "loo":
        return leave_one_out(ds)
    if config.protocol == "temporal":
        return temporal(ds, config.valid, config.test)
    if config.protocol == "ratio":
        return ratio(ds, config.valid, config.test, config.seed)
    return cold_item(ds, config.test, config.valid, config.seed, config.cold_rank_among)


def phase_matrices(ds: Dataset, split: Split, phase: str) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(relevant, exclude)`` user × item matrices for ``phase`` (``valid`` or ``test``)."""
    if phase not in ("valid", "test"):
        raise ValueError(f"phase must be 'valid' or 'test', got {phase!r}")
    inter = ds.interactions
    shape = (ds.n_users, ds.n_items)
    rows = split.valid if phase == "valid" else split.test
    relevant = inter.subset(rows).matrix(*shape)
    exclude = inter.subset(split.train).matrix(*shape)
    if phase == "test":
        exclude = exclude + inter.subset(split.valid).matrix(*shape)
        exclude.data[:] = 1.0
    return relevant.tocsr(), exclude.tocsr()


def share_of_users(train: Dataset, share: float, seed: int) -> tuple[Dataset, dict[str, int | float]]:
    """The low-resource protocol's training data: the rows of a seeded ``share`` of the users who have
    training rows (at least one user for any share above 0; none at 0), the catalog and user map kept.

    Validation and test are untouched: every share is scored on the same users and items, and each
    user's whole history stays readable when scoring (only what the model learns from shrinks)."""
    if not 0 <= share <= 1:
        raise ConfigError(f"train share must lie in [0, 1], got {share}")
    users = np.unique(train.interactions.user)
    n = 0 if share == 0 else max(1, int(round(share * len(users))))
    chosen = np.random.default_rng(seed).choice(users, n, replace=False) if n < len(users) else users
    rows = np.flatnonzero(np.isin(train.interactions.user, chosen))
    report: dict[str, int | float] = {
        "share": share,
        "users": int(n),
        "of_users": int(len(users)),
        "rows": int(len(rows)),
        "of_rows": int(len(train.interactions.user)),
    }
    return with_interactions(train, train.interactions.subset(rows)), report
