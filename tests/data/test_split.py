import numpy as np
import pytest
from tests.conftest import make_dataset

from anyrec.data.split import SplitConfig, cold_item, leave_one_out, make_split, ratio, temporal
from anyrec.errors import ConfigError


def _items(ds, rows):
    return ds.catalog.ids.raws(ds.interactions.item[rows])


def test_leave_one_out_by_time_with_ties_in_file_order():
    pairs = [("a", "i1"), ("a", "i2"), ("a", "i3"), ("a", "i4"), ("b", "i1"), ("b", "i2"), ("c", "i3")]
    times = [5, 1, 5, 3, 1, 2, 1]  # user a: i2(1) i4(3) i1(5) i3(5) — tie at 5 keeps file order
    ds = make_dataset(pairs, times=times)
    s = leave_one_out(ds)
    assert _items(ds, s.test) == ["i3", "i2"]  # a's last is i3 (later in the file); b's last is i2
    assert _items(ds, s.valid) == ["i1"]  # b has 2 interactions: no validation item
    assert sorted(_items(ds, s.train)) == ["i1", "i2", "i3", "i4"]  # a: i2, i4; b: i1; c: i3 (train only)
    assert s.report["users_without_valid (2 interactions)"] == 1
    assert s.report["users_train_only (1 interaction)"] == 1
    assert len(s.train) + len(s.valid) + len(s.test) == len(ds.interactions)


def test_temporal_cut_is_global_and_reports_cold_users():
    pairs = [(f"u{i % 3}", f"i{i}") for i in range(10)] + [("new", "i0")]
    ds = make_dataset(pairs, times=list(range(11)))
    s = temporal(ds, valid=0.1, test=0.2)
    assert (
        ds.interactions.time[s.train].max() < ds.interactions.time[s.valid].min() <= ds.interactions.time[s.test].min()
    )
    assert s.report["test_users_without_training_history"] == 1


def test_ratio_is_seeded_and_complete():
    pairs = [(f"u{u}", f"i{i}") for u in range(5) for i in range(10)]
    ds = make_dataset(pairs)
    a, b, c = ratio(ds, seed=1), ratio(ds, seed=1), ratio(ds, seed=2)
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.test, c.test)
    assert sorted(np.concatenate([a.train, a.valid, a.test]).tolist()) == list(range(50))
    assert np.bincount(ds.interactions.user[a.test]).tolist() == [1] * 5


def test_cold_item_holds_out_items_entirely():
    pairs = [(f"u{u}", f"i{i}") for u in range(6) for i in range(20) if (u + i) % 2 == 0]
    ds = make_dataset(pairs, items=[f"i{i}" for i in range(20)])
    s = cold_item(ds, share=0.1, valid_share=0.1, seed=3)
    train_items = set(ds.interactions.item[s.train].tolist())
    test_items = set(ds.interactions.item[s.test].tolist())
    assert test_items and not (train_items & test_items)
    assert set(s.test_candidates.tolist()) == test_items or set(s.test_candidates.tolist()) >= test_items
    assert not set(s.valid_candidates.tolist()) & set(s.test_candidates.tolist())
    assert cold_item(ds, rank_among="all").test_candidates is None


def test_split_config_validates():
    with pytest.raises(ConfigError):
        SplitConfig(protocol="kfold")
    with pytest.raises(ConfigError):
        SplitConfig(valid=0.6, test=0.5)
    ds = make_dataset([("a", "i1"), ("a", "i2"), ("a", "i3")])
    assert make_split(ds, SplitConfig(protocol="loo")).protocol == "loo"
