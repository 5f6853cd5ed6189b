"""The one per-user history index (``Interactions.history``) against the orders it replaced.

Before it, "a user's interactions in time order, equal times in file order" was written in eight
places; these are those writings, kept here as the reference the index must equal on random logs.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyrec.data.dataset import HistoryIndex, Interactions


def old_sequences(inter: Interactions, n_users: int) -> list[np.ndarray]:
    """data/dataset.py, models/sequential.py and rank/stage.py before the index."""
    order = np.lexsort((np.arange(len(inter)), inter.time, inter.user))
    users, items = inter.user[order], inter.item[order].astype(np.int64)
    seqs: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n_users
    if len(users):
        cuts = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
        for a, b in zip(cuts[:-1], cuts[1:]):
            seqs[int(users[a])] = items[a:b]
    return seqs


def old_rows(inter: Interactions, user: int) -> np.ndarray:
    """explain/attribution.py history_of and pipeline.history: a scan of the whole log per user."""
    rows = np.flatnonzero(inter.user == user)
    return rows[np.lexsort((rows, inter.time[rows]))]


def old_before(inter: Interactions, user: int, t: float) -> np.ndarray:
    """rank/impressions.py Histories.before: the clicks strictly before ``t``."""
    rows = old_rows(inter, user)
    return inter.item[rows[inter.time[rows] < t]]


def old_from_end(inter: Interactions) -> np.ndarray:
    """models/zeroshot.py: each sorted row's distance from its user's last row."""
    order = np.lexsort((np.arange(len(inter)), inter.time, inter.user))
    users = inter.user[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    return np.repeat(starts + sizes, sizes) - 1 - np.arange(len(order))


@st.composite
def logs(draw: st.DrawFn) -> tuple[Interactions, int]:
    n_users = draw(st.integers(1, 8))
    n = draw(st.integers(0, 60))
    user = np.array(draw(st.lists(st.integers(0, n_users - 1), min_size=n, max_size=n)), dtype=np.int64)
    item = np.array(draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)), dtype=np.int64)
    # Few distinct times, so equal times (the tie rule) are common.
    time = np.array(
        draw(st.lists(st.sampled_from([0.0, 1.0, 1.5, 2.0, 7.0]), min_size=n, max_size=n)), dtype=np.float64
    )
    return Interactions(user=user, item=item, time=time), n_users


@settings(max_examples=200, deadline=None)
@given(logs(), st.sampled_from([0.0, 1.0, 1.25, 2.0, 9.0]))
def test_the_index_orders_as_every_old_writing_did(log: tuple[Interactions, int], t: float) -> None:
    inter, n_users = log
    index = inter.history(n_users)
    for a, b in zip(index.sequences(), old_sequences(inter, n_users), strict=True):
        assert a.dtype == np.int64 and np.array_equal(a, b)
    for u in range(n_users):
        assert np.array_equal(index.rows(u), old_rows(inter, u))
        assert np.array_equal(index.of(u), inter.item[old_rows(inter, u)])
        assert np.array_equal(index.before(u, t), old_before(inter, u, t))
    ends = np.repeat(index.offsets[1:], np.diff(index.offsets)) - 1 - np.arange(len(inter))
    assert np.array_equal(ends, old_from_end(inter))
    assert np.array_equal(index.sorted_users(), inter.user[index.order])


def test_the_index_is_built_once_and_rebuilt_when_the_log_changes() -> None:
    inter = Interactions(user=np.array([1, 0, 1]), item=np.array([5, 6, 7]), time=np.array([2.0, 1.0, 1.0]))
    first = inter.history(2)
    assert inter.history(2) is first
    assert (
        np.array_equal(inter.history(3).order, first.order) and len(inter.history(3).offsets) == 4
    )  # another size, same sort
    assert [s.tolist() for s in inter.sequences(2)] == [[6], [7, 5]]
    with pytest.raises(ValueError):
        first.items[0] = 9  # read-only: a caller cannot change every other reader's histories
    inter.time = np.array([0.0, 1.0, 1.0])  # a new array: a new index
    assert inter.history(2) is not first and [s.tolist() for s in inter.sequences(2)] == [[6], [5, 7]]
    again = pickle.loads(pickle.dumps(inter))
    assert "_history" not in again.__dict__ and [s.tolist() for s in again.sequences(2)] == [[6], [5, 7]]


def test_an_empty_log_has_empty_histories() -> None:
    index = HistoryIndex.build(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), 3)
    assert [len(s) for s in index.sequences()] == [0, 0, 0] and len(index.before(2, 5.0)) == 0
