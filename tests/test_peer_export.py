"""The files the peer benchmark hands to RecBole: the split's rows exactly, and no held-out item as a training input."""

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import load_benchmark, make_dataset

from anyrec.data.split import SplitConfig, make_split

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def peers():
    return load_benchmark("peers")


def shuffled_log(seed=0, n_users=12, per_user=9, n_items=15):
    rng = np.random.default_rng(seed)
    pairs, times = [], []
    for u in range(n_users):
        for t in rng.permutation(per_user):  # file order is not time order
            pairs.append((f"u{u}", f"i{int(rng.integers(n_items))}"))  # repeats happen
            times.append(float(t))
    return make_dataset(pairs, items=[f"i{i}" for i in range(n_items)], times=times)


def read(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0], [line.split("\t") for line in lines[1:] if line]


@pytest.mark.parametrize("protocol", ["loo", "ratio", "temporal"])
def test_exported_rows_are_the_splits_rows(peers, tmp_path, protocol):
    ds = shuffled_log()
    split = make_split(ds, SplitConfig(protocol=protocol, seed=3))
    folder = tmp_path / "toy"
    peers.export_split(ds, split, folder)
    inter = ds.interactions
    for part, rows in (("train", split.train), ("valid", split.valid), ("test", split.test),
                       ("trainvalid", np.concatenate([split.train, split.valid]))):
        header, got = read(folder / f"toy.{part}.inter")
        assert header == "user_id:token\titem_id:token\ttimestamp:float"
        want = sorted(
            zip(ds.users.raws(inter.user[rows]), ds.catalog.ids.raws(inter.item[rows]), inter.time[rows].tolist())
        )
        assert sorted((u, i, float(t)) for u, i, t in got) == want


@pytest.mark.parametrize("protocol", ["loo", "ratio", "temporal"])
def test_sequences_never_feed_a_held_out_item_to_training(peers, tmp_path, protocol):
    ds = shuffled_log(seed=1)
    split = make_split(ds, SplitConfig(protocol=protocol, seed=4))
    folder = tmp_path / "toy"
    peers.export_sequences(ds, split, folder, max_len=50)
    inter = ds.interactions

    def rows_of(rows):
        out = defaultdict(list)
        for r in rows[np.lexsort((rows, inter.time[rows]))]:
            out[ds.users.raw(int(inter.user[r]))].append(ds.catalog.ids.raw(int(inter.item[r])))
        return out

    train, valid, test = rows_of(split.train), rows_of(split.valid), rows_of(split.test)
    known = rows_of(np.concatenate([split.train, split.valid]))  # in time order
    parts = {p: read(folder / f"toy.{p}.inter")[1] for p in ("train", "valid", "test")}
    for user, inputs, target in parts["train"]:
        seq = train[user]
        # every training row is a prefix of the user's training items, followed by the next one
        n = len(inputs.split())
        assert inputs.split() == seq[:n] and target == seq[n]
    assert len(parts["train"]) == sum(max(0, len(s) - 1) for s in train.values())
    for part, held, history in (("valid", valid, lambda u: train[u]), ("test", test, lambda u: known[u])):
        got = defaultdict(list)
        for user, inputs, target in parts[part]:
            assert inputs.split() == history(user)[-50:]  # one input per user: all that is known before the phase
            got[user].append(target)
        assert {u: sorted(t) for u, t in got.items()} == {u: sorted(t) for u, t in held.items() if history(u)}


def test_leave_one_out_sequences_are_plain_prefixes(peers, tmp_path):
    ds = shuffled_log(seed=2)
    split = make_split(ds, SplitConfig(protocol="loo"))
    peers.export_sequences(ds, split, tmp_path / "toy", max_len=3)
    _, test = read(tmp_path / "toy" / "toy.test.inter")
    inter = ds.interactions
    for user, inputs, target in test:
        u = ds.users.index(user)
        rows = np.flatnonzero(inter.user == u)
        rows = rows[np.lexsort((rows, inter.time[rows]))]
        items = ds.catalog.ids.raws(inter.item[rows])
        assert inputs.split() == items[-4:-1] and target == items[-1]  # the last 3 items before the held-out one
