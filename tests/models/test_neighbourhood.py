"""EASE against its closed form by hand, RP3beta's walk, and the text prior of the hybrid."""

import numpy as np
import pytest
from tests.conftest import checkerboard

from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.errors import ConfigError
from anyrec.models.registry import build_model


def log(rows: list[tuple[str, str]], items: dict[str, str]):
    b = DatasetBuilder(ReadPolicy(), fields=["title"])
    for iid, title in items.items():
        b.add_item(iid, {"title": title}, path="items", line=1, field="id")
    for n, (u, i) in enumerate(rows):
        b.add_interaction(u, i, time=float(n), path="log", line=n + 2)
    return b.build("tiny", template="{title}")


TINY = log([("a", "0"), ("a", "1"), ("b", "1"), ("b", "2"), ("c", "0"), ("c", "2"), ("c", "3")],
           {"0": "space rocket", "1": "space robot", "2": "love story", "3": "love wedding"})


def test_ease_is_its_closed_form():
    model = build_model("ease", 0, {"l2": 2.0}).fit(TINY)
    x = TINY.interactions.matrix(TINY.n_users, TINY.n_items).toarray().astype(float)
    # By hand: minimise |X − XB|² + λ|B|² column by column with B_jj = 0 (least squares without item j).
    b = np.zeros((4, 4))
    for j in range(4):
        others = [i for i in range(4) if i != j]
        xo = x[:, others]
        b[others, j] = np.linalg.solve(xo.T @ xo + 2.0 * np.eye(3), xo.T @ x[:, j])
    np.testing.assert_allclose(model.weights(), b, atol=1e-10)
    np.testing.assert_allclose(model.score(np.arange(3)), x @ b, atol=1e-10)
    hist = np.array([TINY.catalog.ids.index("0"), TINY.catalog.ids.index("1")])
    np.testing.assert_allclose(model.score_history(hist, np.ones(2)), model.score(np.array([0]))[0], atol=1e-10)


def test_ease_refuses_a_catalog_over_its_memory_limit_and_says_how_much():
    with pytest.raises(ConfigError, match=r"needs 0 MB, above ease.max_memory_mb=0"):
        build_model("ease", 0, {"max_memory_mb": 1e-9}).fit(TINY)


def test_the_hybrid_is_ease_at_prior_zero_and_scores_a_cold_item_by_its_text():
    vectors = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.95, 0.05]], dtype=np.float32)
    ease = build_model("ease", 0, {"l2": 2.0}).fit(TINY)
    flat = build_model("hybrid", 0, {"l2": 2.0, "prior": 0.0, "text_k": 2})
    flat.use_item_vectors(vectors)
    flat.fit(TINY)
    np.testing.assert_allclose(flat.weights(), ease.weights(), atol=1e-10)
    # A cold item (nobody touched "4", whose text is the love stories'): EASE cannot score it, the hybrid can.
    cold = log([("a", "0"), ("a", "1"), ("b", "2"), ("b", "3"), ("c", "2")],
               {"0": "space rocket", "1": "space robot", "2": "love story", "3": "love wedding", "4": "love letter"})
    vecs = np.vstack([vectors, [[0, 1, 0.02]]]).astype(np.float32)
    hybrid = build_model("hybrid", 0, {"l2": 2.0, "prior": 0.5, "text_k": 2})
    hybrid.use_item_vectors(vecs)
    hybrid.fit(cold)
    assert build_model("ease", 0, {"l2": 2.0}).fit(cold).score(np.arange(3))[:, 4].tolist() == [0.0, 0.0, 0.0]
    scores = hybrid.score(np.arange(3))
    lovers = [cold.users.index("b"), cold.users.index("c")]
    assert (scores[lovers, 4] > 0).all() and scores[cold.users.index("a"), 4] < scores[lovers, 4].min()


def test_rp3beta_at_beta_zero_is_the_two_step_walk():
    model = build_model("rp3beta", 0, {"alpha": 1.0, "beta": 0.0, "k": 10}).fit(TINY)
    x = TINY.interactions.matrix(TINY.n_users, TINY.n_items).toarray().astype(float)
    walk = (x / x.sum(0)).T @ (x / x.sum(1, keepdims=True))
    np.fill_diagonal(walk, 0.0)
    np.testing.assert_allclose(model.weights().toarray(), walk, atol=1e-12)


def test_the_hybrid_learns_a_planted_co_occurrence_that_text_alone_cannot_see():
    # Pairs (2k, 2k+1) are always taken together, but their texts share nothing; texts group items otherwise.
    words = ["apple", "river", "stone", "cloud", "flame", "frost", "maple", "ocean", "tiger", "amber"]
    items = {str(i): f"{words[i % 10]} {words[(i * 3) % 10]} {i}" for i in range(20)}
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        for pair in rng.choice(10, size=3, replace=False):
            rows += [(f"u{u}", str(2 * pair)), (f"u{u}", str(2 * pair + 1))]
    ds = log(rows, items)
    hybrid = build_model("hybrid", 0, {"encoder": "hashing:64", "l2": 5.0, "prior": 0.1, "text_k": 5}).fit(ds)
    text = build_model("zeroshot", 0, {"encoder": "hashing:64"}).fit(ds)
    hits = {"hybrid": 0, "zeroshot": 0}
    for pair in range(10):
        a, b = ds.catalog.ids.index(str(2 * pair)), ds.catalog.ids.index(str(2 * pair + 1))
        for name, model in (("hybrid", hybrid), ("zeroshot", text)):
            scores = model.score_history(np.array([a]), np.ones(1))
            scores[a] = -np.inf
            hits[name] += int(np.argmax(scores) == b)
    assert hits["hybrid"] == 10 and hits["zeroshot"] <= 3, hits


def test_the_walk_built_in_column_blocks_equals_the_dense_walk():
    import scipy.sparse as sp

    from anyrec.models.neighbourhood import walk_weights

    rng = np.random.default_rng(4)
    x = sp.csr_matrix((rng.random((60, 37)) < 0.2).astype(np.float64))
    pop = np.asarray(x.sum(axis=0)).ravel()
    p_ui = sp.diags(1.0 / np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)) @ x
    p_iu = (sp.diags(1.0 / np.maximum(pop, 1.0)) @ x.T).tocsr()
    dense = np.asarray((p_iu @ p_ui).toarray()) / np.maximum(pop, 1.0)[None, :] ** 0.5
    np.fill_diagonal(dense, 0.0)
    np.put_along_axis(dense, np.argpartition(-dense, 5, axis=0)[5:], 0.0, axis=0)
    for block in (37 * 37, 37 * 4, 37):  # the whole catalog, blocks of 4 columns, one column at a time
        got = walk_weights(p_iu, p_ui.tocsc(), pop, 0.5, 5, block=block).toarray()
        np.testing.assert_array_equal(got, dense)


def test_the_hybrid_refuses_a_catalog_too_large_before_building_anything():
    from anyrec.errors import ConfigError
    from anyrec.models.registry import build_model

    model = build_model("hybrid", 0, {"max_memory_mb": 1e-6})
    model.use_item_vectors(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(ConfigError, match="hybrid.max_memory_mb"):
        model.fit(checkerboard(n_users=6, n_items=4, per_user=2))
    assert not hasattr(model, "text_prior_")  # nothing items² was built first
