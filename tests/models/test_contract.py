"""One contract test over every registered model."""

import numpy as np
import pytest
from tests.conftest import checkerboard

from anyrec.data.split import leave_one_out
from anyrec.errors import ConfigError, UnknownIdError
from anyrec.eval.evaluate import evaluate_model
from anyrec.models import MODELS, Filters, Recommender
from anyrec.models.registry import build_model

# Few factors: the checkerboard has rank 2, and many factors let ALS memorise each user instead.
FAST = {
    "bpr": {"iterations": 200, "factors": 8},
    "als": {"factors": 4},
    "zeroshot": {"encoder": "hashing"},
    # patience = epochs: with the default 5, noisy hold-out figures stopped some seeds before the blocks were learnt
    "sequential": {
        "encoder": "hashing:32",
        "hidden": 16,
        "layers": 1,
        "heads": 1,
        "epochs": 30,
        "patience": 30,
        "max_len": 8,
        "lr": 5e-3,
        "threads": 1,
    },
    "generative": {
        "encoder": "hashing:32",
        "levels": 2,
        "codebook": 4,
        "hidden": 16,
        "layers": 1,
        "heads": 1,
        "epochs": 5,
        "max_items": 6,
        "threads": 1,
    },
    "sasrec": {
        "hidden": 16,
        "layers": 1,
        "heads": 1,
        "epochs": 30,
        "patience": 30,
        "max_len": 8,
        "lr": 5e-3,
        "threads": 1,
    },
}


@pytest.fixture(scope="module")
def board():
    return checkerboard()


@pytest.fixture(scope="module")
def fast(tiny_pretrained):
    """FAST, with the models that start from a pretrained folder pointed at a tiny one."""
    tuned = {"init": str(tiny_pretrained), "threads": 1, "epochs": 5, "lr": 5e-3}
    return {**FAST, "transfer": {"init": str(tiny_pretrained), "threads": 1}, "transfer-tuned": tuned}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_contract(name, board, fast):
    model = build_model(name, seed=0, options=fast.get(name))
    assert model.fit(board) is model
    users = np.arange(board.n_users)
    ids, scores = model.recommend(users, k=5)
    assert ids.shape == scores.shape == (board.n_users, 5)
    # Seen items are never recommended; scores are sorted.
    seen = board.interactions.matrix(board.n_users, board.n_items).toarray() > 0
    assert not seen[np.arange(board.n_users)[:, None], ids].any()
    assert (np.diff(scores, axis=1) <= 1e-9).all()
    # Filters: an allow-list is honoured and rows are padded when it runs out.
    allowed = np.array([0, 1, 2])
    ids, scores = model.recommend(users[:4], k=5, filters=Filters(items=allowed))
    assert set(ids[ids >= 0].tolist()) <= {0, 1, 2} and (ids[:, 3:] == -1).all()
    assert np.isneginf(scores[:, 3:]).all()
    # exclude_seen=False lets seen items back in.
    ids_all, _ = model.recommend(users, k=board.n_items, exclude_seen=False)
    assert (ids_all >= 0).all()
    # Raw ids in, raw ids out.
    raw = model.recommend_raw("u0", k=3)
    assert len(raw) == 3 and all(isinstance(i, str) for i, _ in raw)
    with pytest.raises(UnknownIdError):
        model.recommend_raw("nobody")
    with pytest.raises(UnknownIdError):
        model.recommend(np.array([board.n_users]))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_seed_same_result(name, board, fast):
    a = build_model(name, 0, fast.get(name)).fit(board).recommend(np.arange(6), 5)
    b = build_model(name, 0, fast.get(name)).fit(board).recommend(np.arange(6), 5)
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])


@pytest.mark.parametrize("name", ["itemknn", "als", "bpr", "sequential", "sasrec"])
def test_personalised_models_learn_the_checkerboard(name):
    ds = checkerboard(n_users=60, n_items=20, per_user=7)
    split = leave_one_out(ds)
    model = build_model(name, 0, FAST.get(name)).fit(split.train_dataset(ds))
    ids, _ = model.recommend(np.arange(ds.n_users), k=3)
    same_block = (ids < 10) == (np.arange(ds.n_users)[:, None] % 2 == 0)
    assert same_block.mean() > 0.95
    res = evaluate_model(model, ds, split, "test", (3,))
    pop = build_model("popularity").fit(split.train_dataset(ds))
    assert res["recall@3"] > evaluate_model(pop, ds, split, "test", (3,))["recall@3"]


def test_unfitted_model_and_unknown_options():
    with pytest.raises(ConfigError, match="fit"):
        build_model("popularity").recommend([0])
    with pytest.raises(ConfigError, match="no option"):
        build_model("itemknn", options={"neighbours": 3})
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("sasrec9")


def test_user_without_history_gets_recommendations():
    from tests.conftest import make_dataset

    ds = make_dataset([("a", "i1"), ("a", "i2"), ("b", "i2")], items=["i1", "i2", "i3"])
    for name in ("popularity", "itemknn"):
        m = build_model(name).fit(ds)
        ids, _ = m.recommend(np.array([1]), k=2)
        assert ids[0, 0] >= 0


def _history(ds, u):
    index = ds.interactions.history(ds.n_users)
    return np.asarray(index.of(u), dtype=np.int64), np.ones(len(index.of(u)))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_live_history_scores_as_the_fitted_user(name, board, fast):
    """Every model that reads a history (``score_history`` not ``None``) gives a user's own history the scores the
    fitted model gives that user (the service scores from the event log with it); models whose user state is learned
    per user (ALS, BPR) say so with ``None``."""
    model = build_model(name, seed=0, options=fast.get(name)).fit(board)
    items, weights = _history(board, 0)
    if model.score_history(items, weights) is None:
        assert type(model).score_history is Recommender.score_history or name in ("als", "bpr")
        return
    if name == "generative":  # two beam searches (the live one wider): an item both found has the same log-probability
        live, fitted = model.score_history(items, weights), model.score(np.array([0]))[0]
        both = np.isfinite(fitted) & ~np.isin(np.arange(len(fitted)), items)
        assert both.sum() >= 3
        np.testing.assert_allclose(live[both], fitted[both], rtol=1e-4, atol=1e-4)
        return
    for u in range(0, board.n_users, 7):
        items, weights = _history(board, u)
        np.testing.assert_allclose(
            model.score_history(items, weights),
            np.asarray(model.score(np.array([u]))[0], dtype=np.float64),
            rtol=1e-5,
            atol=1e-5,
        )
