"""The generative recommender learns a known next item, is reproducible, generates new items, persists."""

import numpy as np
import pytest
from tests.models.test_sequential import successor_task
from tests.models.test_zeroshot import genre_catalog

from anyrec.app.persist import load_model, save_model
from anyrec.data.split import cold_item, leave_one_out
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.experiment import ExperimentConfig, run_experiment
from anyrec.models.base import Filters
from anyrec.models.generative import describe
from anyrec.models.registry import build_model

TINY = {"encoder": "hashing:32", "levels": 2, "codebook": 4, "hidden": 32, "layers": 1, "heads": 2, "max_items": 6,
        "dropout": 0.0, "batch_size": 32, "lr": 5e-3, "threads": 1}


def fitted_on_successor(epochs: int = 40, seed: int = 0):
    ds = successor_task(length=10)  # longer than the prompt (6 items): every position is trained
    split = leave_one_out(ds)
    model = build_model("generative", seed, {**TINY, "epochs": epochs, "patience": epochs})
    model.fit(split.train_dataset(ds), validate=lambda m: evaluate_model(m, ds, split, "valid", (1,))["ndcg@1"])
    model.set_history(split.history_dataset(ds, "test"))
    return ds, split, model


def test_the_decoder_learns_that_item_i_is_followed_by_i_plus_1():
    ds, split, model = fitted_on_successor()
    res = evaluate_model(model, ds, split, "test", (1,))
    assert res["recall@1"] > 0.9
    assert model.report_.checks["invalid"] == 0 and model.report_.checks["generated"] > 0
    pop = build_model("popularity").fit(split.train_dataset(ds))
    assert evaluate_model(pop, ds, split, "test", (1,))["recall@1"] < 0.2
    info = describe(model)
    assert info["codes"]["unique"] and len(info["codes"]["levels"]) == 2 and info["decoder_parameters"] > 0


def test_same_seed_same_codes_and_same_metrics():
    ds = successor_task(seed=2)
    cfg = ExperimentConfig(models=("generative",), ks=(5,), model_options={"generative": {**TINY, "epochs": 3}})
    a, b = run_experiment(ds, cfg), run_experiment(ds, cfg)
    assert a["models"]["generative"]["ndcg@5"] == b["models"]["generative"]["ndcg@5"]
    gen = a["models"]["generative"]["generation"]  # counted over the test lists only
    assert gen["lists"] == a["models"]["generative"]["users"] == ds.n_users and gen["invalid"] == 0
    m1 = build_model("generative", 0, {**TINY, "epochs": 1}).fit(ds)
    m2 = build_model("generative", 0, {**TINY, "epochs": 1}).fit(ds)
    assert np.array_equal(m1.codes_, m2.codes_)


def test_codes_follow_the_text_not_the_catalog_order():
    """The same catalog read in another order (as if items had appeared in another order in time)
    gives every item the same semantic id."""
    ds = genre_catalog()
    rev = genre_catalog()
    order = np.arange(ds.n_items)[::-1]
    vec = build_model("generative", 0, {**TINY, "epochs": 1}).fit(ds)
    vectors = vec.text_vectors_
    other = build_model("generative", 0, {**TINY, "epochs": 1})
    other._given_vectors = vectors  # same texts, same vectors
    other.fit(rev)
    codes = {ds.catalog.ids.raw(i): tuple(vec.codes_[i]) for i in range(ds.n_items)}
    from anyrec.models.generative.codes import CodesConfig, SemanticIds

    keys = list(ds.catalog.ids.raw_ids)
    shuffled = SemanticIds(CodesConfig(2, 4, 25, 0, balanced=True)).fit(vectors[order], [keys[o] for o in order])
    assert all(tuple(shuffled[r]) == codes[keys[o]] for r, o in enumerate(order))
    assert {ds.catalog.ids.raw(i): tuple(other.codes_[i]) for i in range(rev.n_items)} == codes


def test_new_items_are_generated_from_their_text_and_can_be_switched_off():
    ds = genre_catalog(n_users=60)
    split = cold_item(ds, share=0.2, seed=0)
    train = split.train_dataset(ds)
    model = build_model("generative", 0, {**TINY, "epochs": 5})
    model.fit(train)
    cold = split.test_candidates
    assert cold is not None and not model.item_seen_[cold].any()
    model.set_history(split.history_dataset(ds, "test"))
    users = np.arange(ds.n_users)
    ids, _ = model.recommend(users, k=5, filters=Filters(items=cold))
    assert (ids >= 0).all() and set(ids.ravel().tolist()) <= set(cold.tolist())  # never-seen items generated
    closed = build_model("generative", 0, {**TINY, "epochs": 5, "new_items": False}).fit(train)
    ids, _ = closed.recommend(users, k=5, filters=Filters(items=cold))
    assert (ids == -1).all()  # only items seen in training may be generated, and there are none in the filter


def test_save_load_gives_the_same_lists_and_added_items_are_generatable(tmp_path):
    ds, split, model = fitted_on_successor(epochs=3)
    save_model(model, split.history_dataset(ds, "test"), tmp_path / "m")
    loaded, _ds2, _index, _meta = load_model(tmp_path / "m")
    users = np.arange(10)
    a, b = model.recommend(users, 5), loaded.recommend(users, 5)
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], atol=1e-5)
    n = loaded.n_items_
    loaded.add_items(loaded.text_vectors_[:2] + 0.01)
    assert loaded.n_items_ == n + 2 and len(np.unique(loaded.codes_, axis=0)) == n + 2
    ids, _ = loaded.recommend(users, 5, filters=Filters(items=np.array([n, n + 1])))
    assert set(ids[ids >= 0].tolist()) == {n, n + 1}
    live = loaded.score_history(np.array([0, 1, 2]), np.array([1.0, 1.0, -1.0]))
    assert live.shape == (n + 2,) and np.isfinite(live).all()
    assert set(np.argsort(-live)[:5].tolist()).isdisjoint({0, 1, 2})  # items with an event are not generated


@pytest.mark.parametrize("k", [1, 10, 25])
def test_the_list_is_as_long_as_asked_when_enough_items_are_open(k):
    ds = genre_catalog()  # 36 items, 6 seen per user: 30 open, more than the default beam of 20
    model = build_model("generative", 0, {**TINY, "epochs": 1}).fit(ds)
    ids, scores = model.recommend(np.arange(5), k)
    assert ids.shape == (5, k) and (ids >= 0).all() and np.isfinite(scores).all()
    assert all(len(set(row)) == k for row in ids.tolist())


def test_pretrain_on_two_catalogs_then_fine_tune_on_one(tmp_path):
    """The behaviour pretraining path: fit on a merged dataset, save, start a fit on one catalog from it."""
    from anyrec.data.merge import merge_datasets

    a, b = successor_task(length=10, seed=3), genre_catalog()
    merged = merge_datasets([a, b])
    assert merged.n_items == a.n_items + b.n_items and merged.n_users == a.n_users + b.n_users
    assert (
        merged.catalog.text(a.n_items) == b.catalog.text(0)
        and merged.catalog.ids.raw(0) == f"successor:{a.catalog.ids.raw(0)}"
    )
    pre = build_model("generative", 0, {**TINY, "epochs": 30, "patience": 30}).fit(merged)
    save_model(pre, merged, tmp_path / "pre")
    ds = successor_task(length=10)
    split = leave_one_out(ds)
    tuned = build_model("generative", 0, {**TINY, "hidden": 64, "epochs": 3, "init": str(tmp_path / "pre")})
    tuned.fit(split.train_dataset(ds))
    assert tuned.config.hidden == 32  # the pretrained decoder's shape wins over the option
    # Its codebooks are the pretrained ones: the same texts get the same semantic codes.
    assert np.array_equal(tuned.codes_[:, :-1], pre.quantiser_.encode(tuned.text_vectors_))
    scratch = build_model("generative", 0, {**TINY, "epochs": 3}).fit(split.train_dataset(ds))
    tuned.set_history(split.history_dataset(ds, "test"))
    scratch.set_history(split.history_dataset(ds, "test"))
    r_tuned = evaluate_model(tuned, ds, split, "test", (1,))["recall@1"]
    r_scratch = evaluate_model(scratch, ds, split, "test", (1,))["recall@1"]
    assert r_tuned > r_scratch  # three epochs from the pretrained decoder beat three from scratch


def test_validation_every_n_epochs_and_at_the_end():
    ds = successor_task(length=8)
    model = build_model("generative", 0, {**TINY, "epochs": 4, "valid_every": 3, "patience": 10}).fit(ds)
    validated = [e["epoch"] for e in model.report_.epochs if "valid_ndcg@10" in e]
    assert validated == [2, 3] and len(model.report_.epochs) == 4


def test_options_left_to_the_log_are_sized_from_it_said_aloud_and_given_ones_win():
    """``batch_size`` and ``max_minutes`` left to the data: 64 and no budget on a small log, 256 and 6 minutes
    from 40,000 training windows; a fit says what it chose (progress notice and ``sized_``), a given option is kept."""
    from anyrec.models.generative.config import GenerativeConfig, sized_for

    small, chosen = sized_for(GenerativeConfig(), 3_000)
    assert (small.batch_size, small.max_minutes, small.valid_users) == (64, 0.0, 0)
    assert "3,000 training windows < 40,000" in chosen["batch_size"]
    big, chosen = sized_for(GenerativeConfig(), 53_671)
    assert (big.batch_size, big.max_minutes, big.valid_users) == (256, 6.0, 5_000)
    assert (
        "max_minutes=0 trains to early stopping" in chosen["max_minutes"] and "seeded sample" in chosen["valid_users"]
    )
    given, chosen = sized_for(GenerativeConfig(batch_size=32, max_minutes=0, valid_users=0), 53_671)
    assert (given.batch_size, given.max_minutes, given.valid_users) == (32, 0, 0) and chosen == {}

    ds = successor_task(length=10)
    options = {k: v for k, v in TINY.items() if k != "batch_size"}
    model = build_model("generative", 0, {**options, "epochs": 1})
    notices: list[str] = []
    model.progress = lambda label, done, total: notices.append(label) if (done, total) == (0, 0) else None
    model.fit(ds)
    assert (
        model.config.batch_size == 64
        and model.config.max_minutes == 0.0
        and set(model.report_.sized) == {"batch_size", "max_minutes", "valid_users"}
    )
    assert any(n.startswith("generative settings for this log: batch_size=64") for n in notices), notices
