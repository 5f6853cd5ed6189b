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


def test_ease_refuses_a_dense_solve_over_its_memory_limit_and_says_how_much():
    with pytest.raises(ConfigError, match=r"needs 0 MB, above 0 MB \(ease.max_memory_mb\).*ease.solver=sparse"):
        build_model("ease", 0, {"max_memory_mb": 1e-9, "solver": "dense"}).fit(TINY)
    with pytest.raises(ConfigError, match="ease.solver is dense, sparse or unset"):
        build_model("ease", 0, {"solver": "cholesky"}).fit(TINY)


def test_a_catalog_past_the_dense_size_takes_the_sparse_path_unless_dense_is_asked(monkeypatch):
    import anyrec.models.neighbourhood as nb

    monkeypatch.setattr(nb, "DENSE_MAX_ITEMS", 3)  # TINY has 4 items
    model = build_model("ease", 0, {"l2": 2.0}).fit(TINY)
    assert model.solver_ == "sparse" and "above 3 items a dense solve takes minutes" in model.report_.sized["solver"]
    assert build_model("ease", 0, {"l2": 2.0, "solver": "dense"}).fit(TINY).solver_ == "dense"


def test_over_the_memory_limit_ease_takes_its_sparse_path_and_says_so():
    said: list[str] = []
    model = build_model("ease", 0, {"max_memory_mb": 1e-9, "l2": 2.0}).fit(
        TINY, progress=lambda d, a, b: said.append(d)
    )
    assert model.solver_ == "sparse" and model.report_.sized["solver"].startswith(
        "sparse (a dense solve over 4 items needs 0 MB"
    )
    assert any("solver=sparse" in s for s in said)
    # every other item co-occurs with each item here (3 of 4 do): the neighbourhood is the catalog, so the dense answer
    dense = build_model("ease", 0, {"l2": 2.0, "solver": "dense"}).fit(TINY)
    assert build_model("ease", 0, {"l2": 2.0}).fit(TINY).solver_ == "dense"  # unset: dense when it fits
    b = model.weights().toarray()
    x = TINY.interactions.matrix(TINY.n_users, TINY.n_items).toarray().astype(float)
    for j in range(4):  # each column is the ridge over the items that co-occur with j (the others' weights are 0)
        hood = [i for i in range(4) if i != j and (x[:, i] * x[:, j]).sum() > 0]
        xo = x[:, hood]
        np.testing.assert_allclose(
            b[hood, j], np.linalg.solve(xo.T @ xo + 2.0 * np.eye(len(hood)), xo.T @ x[:, j]), atol=1e-10
        )
    assert np.allclose(model.score(np.arange(3)), x @ b)
    assert dense.weights().shape == b.shape


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

    model = build_model("hybrid", 0, {"max_memory_mb": 1e-6, "solver": "dense"})
    model.use_item_vectors(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(ConfigError, match="hybrid.max_memory_mb"):
        model.fit(checkerboard(n_users=6, n_items=4, per_user=2))
    assert getattr(model, "_texts", None) is None  # nothing items² was built first


def test_the_sparse_path_is_the_dense_solve_when_the_neighbourhood_is_the_catalog():
    """EASE and the hybrid (every prior scale) on a random 60-item log: with every co-occurring item a neighbour
    (and a log where all pairs co-occur) the sparse path's B equals the dense one; the live path matches score."""
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", str(i)) for u in range(300) for i in rng.choice(60, size=12, replace=False)]
    ds = log(
        rows,
        {str(i): f"item {i} " + " ".join(rng.choice(["red", "blue", "green", "wool", "silk"], 3)) for i in range(60)},
    )
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    x = ds.interactions.matrix(ds.n_users, ds.n_items).toarray()
    assert ((x.T @ x) > 0).all()  # every pair co-occurs: N(j) is every other item
    for name, opts in (("ease", {"l2": 30.0}), ("hybrid", {"l2": 30.0, "prior": 0.3, "text_k": 10})):
        dense = build_model(name, 0, {**opts, "solver": "dense"})
        sparse = build_model(name, 0, {**opts, "solver": "sparse", "neighbours": 100})
        for m in (dense, sparse):
            if name == "hybrid":
                m.use_item_vectors(vectors)
            m.fit(ds)
        np.testing.assert_allclose(sparse.weights().toarray(), dense.weights(), atol=1e-9)
        if name == "hybrid":  # one solve per λ serves every prior scale
            for a in (0.0, 1.0):
                sparse.config = sparse.config.__class__(**{**sparse.config.__dict__, "prior": a})
                dense.config = dense.config.__class__(**{**dense.config.__dict__, "prior": a})
                np.testing.assert_allclose(sparse.weights().toarray(), dense.weights(), atol=1e-9)
        if name == "ease":
            sparse.weights()
            sparse._systems[1].spectral_after = 1  # (by default only a long λ grid turns to eigendecompositions)
        for lam in (5.0, 300.0):  # further λ: one eigendecomposition per batch of systems serves them
            sparse.config = sparse.config.__class__(**{**sparse.config.__dict__, "l2": lam})
            dense.config = dense.config.__class__(**{**dense.config.__dict__, "l2": lam})
            np.testing.assert_allclose(sparse.weights().toarray(), dense.weights(), atol=1e-9)
        assert name == "hybrid" or sparse._systems[1].spectra  # (the eigendecompositions were made and kept)
        hist = np.flatnonzero(x[0])
        np.testing.assert_allclose(
            sparse.score_history(hist, np.ones(len(hist))), sparse.score(np.array([0]))[0], atol=1e-9
        )
        pushed = sparse.score_history(np.r_[hist, 5 if 5 not in hist else 6], np.r_[np.ones(len(hist)), -1.0])
        assert pushed.shape == (60,) and np.isfinite(pushed).all()


def test_the_sparse_path_keeps_most_of_the_dense_accuracy_on_ml100k():
    """ml-100k (1,682 items), λ = 500: each column over its 200 most co-occurring items against the dense solve,
    validation-free (test users, leave-one-out): NDCG@10 within 5 %."""
    from anyrec.data import load_dataset
    from anyrec.data.split import SplitConfig
    from anyrec.eval.experiment import ExperimentConfig, run_experiment

    ds = load_dataset("ml-100k")
    got = {}
    for solver in ("dense", "sparse"):
        result = run_experiment(
            ds,
            ExperimentConfig(
                models=("ease",),
                ks=(10,),
                split=SplitConfig(protocol="loo"),
                tune=False,
                model_options={"ease": {"l2": 500.0, "solver": solver, "neighbours": 200}},
            ),
        )
        got[solver] = result["models"]["ease"]["ndcg@10"]
    print(f"ml-100k EASE NDCG@10: dense {got['dense']:.4f}, sparse (200 neighbours) {got['sparse']:.4f}")
    assert got["sparse"] >= 0.95 * got["dense"]


def test_a_sparse_fit_saved_and_loaded_scores_the_same(tmp_path):
    from anyrec.app.persist import load_model, save_model

    vectors = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.95, 0.05]], dtype=np.float32)
    for name in ("ease", "hybrid"):
        model = build_model(
            name,
            0,
            {"l2": 2.0, "solver": "sparse", "text_k": 2} if name == "hybrid" else {"l2": 2.0, "solver": "sparse"},
        )
        if name == "hybrid":
            model.use_item_vectors(vectors)
        model.fit(TINY)
        back, _, _, _ = load_model(save_model(model, TINY, tmp_path / name))
        np.testing.assert_allclose(back.score(np.arange(3)), model.score(np.arange(3)), atol=1e-12)
        hist = np.array([0, 1])
        np.testing.assert_allclose(
            back.score_history(hist, np.ones(2)), model.score_history(hist, np.ones(2)), atol=1e-12
        )


def test_the_l3ae_prior_is_ease_on_the_text_vectors_by_hand():
    """L3AE's prior: each item's column the ridge regression of its text vector on the other items' (the text
    dimensions as the users), closed form through the d × d inverse; λ_X below zero while VᵀV + λI stays definite."""
    from anyrec.models.itemsolve import l3ae_neighbours

    rng = np.random.default_rng(3)
    v = rng.normal(size=(7, 4))
    low = np.linalg.eigvalsh(v.T @ v)[0]
    for lam in (2.0, 0.3, -0.5 * low):
        b = np.zeros((7, 7))
        for j in range(7):
            others = [i for i in range(7) if i != j]
            xo = v[others].T  # (d, items - 1)
            b[others, j] = np.linalg.solve(xo.T @ xo + lam * np.eye(6), xo.T @ v[j])
        got = l3ae_neighbours(v, lam, k=6).toarray()
        np.testing.assert_allclose(got, np.maximum(b, 0.0), atol=1e-9)
        top2 = l3ae_neighbours(v, lam, k=2).toarray()  # each column's 2 largest, the rest 0
        for j in range(7):
            keep = np.argsort(-np.where(np.arange(7) == j, -np.inf, b[:, j]))[:2]
            np.testing.assert_allclose(top2[keep, j], np.maximum(b[keep, j], 0.0), atol=1e-9)
            assert np.count_nonzero(np.delete(top2[:, j], keep)) == 0
    with pytest.raises(ValueError, match="singular or indefinite"):
        l3ae_neighbours(v, -2 * low, k=2)


def test_the_hybrid_takes_either_prior_and_the_search_sees_both():
    vectors = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.95, 0.05]], dtype=np.float32)
    model = build_model("hybrid", 0, {"l2": 2.0, "prior": 0.5, "text_k": 2, "prior_form": "l3ae", "prior_l2": 0.1})
    model.use_item_vectors(vectors)
    model.fit(TINY)
    l3ae = model.weights().copy()
    model.config = model.config.__class__(**{**model.config.__dict__, "prior_form": "cosine"})
    assert not np.allclose(model.weights(), l3ae)  # the prior follows the option, no refit
    assert {"prior_form", "prior_l2", "whiten"} <= set(model.tuning_grid) and model.space_options == ("whiten",)
    with pytest.raises(ConfigError, match="prior_form is cosine or l3ae"):
        build_model("hybrid", 0, {"prior_form": "pca"}).fit(TINY)


def test_a_lambda_search_reuses_one_eigendecomposition():
    """From the second λ on, (G + λI)⁻¹ comes from one eigendecomposition of G: the same B as a fresh inverse."""
    rng = np.random.default_rng(1)
    ds = log([(f"u{u}", str(i)) for u in range(80) for i in rng.choice(30, size=6, replace=False)],
             {str(i): f"item {i}" for i in range(30)})
    said: list[str] = []
    model = build_model("ease", 0, {"l2": 2.0, "solver": "dense"}).fit(ds, progress=lambda d, a, b: said.append(d))
    model.weights()
    assert model._eigen is None  # one λ: an inverse
    for lam in (5.0, 50.0, 2.0):
        model.config = model.config.__class__(**{**model.config.__dict__, "l2": lam})
        fresh = build_model("ease", 0, {"l2": lam, "solver": "dense"}).fit(ds)
        np.testing.assert_allclose(model.weights(), fresh.weights(), atol=1e-9)
    assert model._eigen is not None and sum("one eigendecomposition" in d for d in said) == 1
