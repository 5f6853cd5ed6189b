import numpy as np
import pytest

from anyrec.errors import ConfigError
from anyrec.index import load_index, make_index


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 16)).astype(np.float32)


@pytest.mark.parametrize("spec", ["exact", "Flat", "HNSW32", "IVF256,Flat"])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_search_agrees_with_brute_force(data, spec, metric):
    index = make_index(spec, metric)
    index.add(np.arange(300) + 1000, data)
    q = data[:5] + 0.01
    ids, scores = index.search(q, 5)
    assert ids[:, 0].tolist() == (np.arange(5) + 1000).tolist()
    assert (np.diff(scores, axis=1) <= 1e-5).all()


def test_filters_and_padding(data):
    index = make_index("exact")
    index.add(np.arange(300), data)
    ids, _ = index.search(data[:2], 3, exclude=[[0], [1]])
    assert ids[0, 0] != 0 and ids[1, 0] != 1
    ids, scores = index.search(data[:1], 5, allow=np.array([7, 8]))
    assert set(ids[0, :2].tolist()) == {7, 8} and (ids[0, 2:] == -1).all() and np.isneginf(scores[0, 2:]).all()


@pytest.mark.parametrize("spec", ["exact", "HNSW32"])
def test_save_load_round_trip(tmp_path, data, spec):
    index = make_index(spec)
    index.add(np.arange(300), data)
    index.save(tmp_path)
    again = load_index(tmp_path)
    a, b = index.search(data[:3], 4), again.search(data[:3], 4)
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])


def test_bad_arguments():
    with pytest.raises(ConfigError):
        make_index("exact", metric="manhattan")
    with pytest.raises(ConfigError):
        make_index("NoSuchIndex").add([0], np.zeros((1, 4), np.float32))
    with pytest.raises(ConfigError):
        make_index("exact").add([0, 1], np.zeros((1, 4), np.float32))


def test_search_effort_in_the_spec_is_kept_and_saved(tmp_path):
    import numpy as np
    import pytest

    from anyrec.errors import ConfigError
    from anyrec.index.vector import load_index, make_index

    vecs = np.random.default_rng(0).standard_normal((400, 16)).astype(np.float32)
    index = make_index("IVF8,Flat:8")
    index.add(range(400), vecs)
    assert index.nprobe == 8  # type: ignore[attr-defined]
    ids, _ = index.search(vecs[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]  # all 8 lists probed: exact
    index.save(tmp_path / "ix")
    assert load_index(tmp_path / "ix").nprobe == 8  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="search effort"):
        make_index("HNSW32:lots")


def test_inner_product_metric_keeps_lengths_and_recall_against_exact() -> None:
    from anyrec.index.vector import recall_against_exact

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 8)).astype(np.float32) * rng.uniform(0.1, 3, size=(300, 1)).astype(np.float32)
    queries = rng.normal(size=(20, 8)).astype(np.float32)
    for spec in ("exact", "Flat"):
        index = make_index(spec, "ip")
        index.add(range(300), vectors)
        ids, scores = index.search(queries, 5)
        truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
        np.testing.assert_array_equal(ids, truth)
        np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, truth, 1), rtol=1e-5)
        assert recall_against_exact(index, vectors, queries) == 1.0
    coarse = make_index("IVF8,Flat:1", "ip")  # one of 8 lists probed: misses some true neighbours
    coarse.add(range(300), vectors)
    assert 0.0 < recall_against_exact(coarse, vectors, queries) < 1.0
