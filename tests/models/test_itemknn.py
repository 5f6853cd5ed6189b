import numpy as np
import pytest
from tests.conftest import make_dataset

from anyrec.models import ItemKNN, Popularity


def test_similarity_is_cosine_over_cooccurrence_with_shrink():
    # users: a{1,2}, b{1,2,3}, c{3}
    ds = make_dataset([("a", "i1"), ("a", "i2"), ("b", "i1"), ("b", "i2"), ("b", "i3"), ("c", "i3")])
    m = ItemKNN(k=10, shrink=0.0).fit(ds)
    w = m.similarity_.toarray()
    assert w[0, 1] == pytest.approx(2 / (np.sqrt(2) * np.sqrt(2) + 1e-6))
    assert w[0, 2] == pytest.approx(1 / (np.sqrt(2) * np.sqrt(2) + 1e-6))
    assert np.diag(w).tolist() == [0, 0, 0]
    shrunk = ItemKNN(k=10, shrink=2.0).fit(ds).similarity_.toarray()
    assert shrunk[0, 1] == pytest.approx(2 / (2 + 2 + 1e-6))


def test_k_keeps_the_best_neighbours_per_target_item():
    ds = make_dataset([("a", "i1"), ("a", "i2"), ("b", "i1"), ("b", "i2"), ("b", "i3"), ("c", "i3")])
    w = ItemKNN(k=1).fit(ds).similarity_.toarray()
    assert (w > 0).sum(axis=0).tolist() == [1, 1, 1]
    assert w[1, 0] > 0 and w[0, 1] > 0  # i1 and i2 are each other's best


def test_popularity_counts_every_interaction():
    ds = make_dataset([("a", "i1"), ("b", "i1"), ("a", "i2"), ("a", "i1")])
    assert Popularity().fit(ds).counts_.tolist() == [3, 1]


def test_a_short_term_weighs_recent_items_and_zero_keeps_the_classic_model():
    pairs = [(f"u{u}", f"i{(u * 3 + j) % 12}") for u in range(10) for j in range(u % 4 + 3)]
    ds = make_dataset(pairs)
    classic = ItemKNN().fit(ds)
    np.testing.assert_allclose(
        classic.score(np.arange(ds.n_users)),
        (ds.interactions.matrix(ds.n_users, ds.n_items).astype(float) @ classic.similarity_).toarray(),
    )
    recent = ItemKNN(short_term=1.0, half_life=1.0).fit(ds)
    h = recent.history_matrix()
    u = int(np.argmax(np.bincount(ds.interactions.user)))
    last = ds.interactions.history(ds.n_users).of(u)[-1]
    assert h[u, last] == pytest.approx(h[u].toarray().max())
    assert h[u].sum() == pytest.approx(np.bincount(ds.interactions.user)[u])  # scaled: the long term gives each event 1
