"""The ready loaders on the real datasets in ../shared/data (skipped when absent)."""

import pytest

from anyrec.data import ColumnMapping, load_dataset
from anyrec.eval.experiment import ExperimentConfig, run_experiment

pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize("folder, fmt, users, items, inter", [
    ("ml-100k", "movielens", 943, 1682, 100_000),
    ("ml-latest-small", "movielens", 610, 9742, 100_836),
    ("amazon-scientific", "unisrec", 2928, 1585, 19_712),
    ("mind-small-subset", "mind", 4637, None, None),
    ("amazon2023-sample", "amazon-reviews-2023", 354, None, None),
])
def test_ready_loaders(shared_data, folder, fmt, users, items, inter):
    from anyrec.data import detect_format

    path = shared_data / folder
    assert detect_format(path) == fmt
    ds = load_dataset(str(path))
    assert ds.n_users == users
    if items is not None:
        assert (ds.n_items, len(ds.interactions)) == (items, inter)
    assert ds.catalog.text(0)


def test_ml100k_shared_copy_matches_the_recbole_wheel(shared_data):
    a, b = load_dataset(str(shared_data / "ml-100k")), load_dataset("ml-100k")
    assert sorted(zip(a.users.raws(a.interactions.user), a.catalog.ids.raws(a.interactions.item))) == sorted(
        zip(b.users.raws(b.interactions.user), b.catalog.ids.raws(b.interactions.item)))
    assert "Toy Story is an American" in a.catalog.text(0)  # movie_wiki.csv joined


def test_latest_small_through_the_generic_mapping(shared_data):
    d = shared_data / "ml-latest-small"
    mapping = ColumnMapping(
        items=str(d / "movies.csv"),
        item_id="movieId",
        text=("title", "genres"),
        category="genres",
        interactions=str(d / "ratings.csv"),
        user="userId",
        item="movieId",
        time="timestamp",
        rating="rating",
    )
    ds = load_dataset(mapping=mapping)
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (610, 9742, 100_836)
    assert ds.catalog.categories(0) == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    res = run_experiment(ds, ExperimentConfig(models=("popularity", "itemknn"), ks=(10,)))
    assert res["models"]["itemknn"]["ndcg@10"] > res["models"]["popularity"]["ndcg@10"] > 0


def test_mind_impressions_are_read_and_counted(shared_data):
    from anyrec.data.impressions import read_mind_impressions, split_by_time

    ds = load_dataset(str(shared_data / "mind-small-subset"))
    imps, report = read_mind_impressions(shared_data / "mind-small-subset", ds)
    assert report["impressions"] == 5_000
    assert len(imps) + report["impressions without both a click and a non-click"] == 5_000
    assert all(imp.labels.sum() >= 1 and (imp.labels == 0).sum() >= 1 for imp in imps)
    train, test, cut = split_by_time(ds, imps)
    assert test and all(imp.time >= cut for imp in test) and (train.interactions.time < cut).all()
