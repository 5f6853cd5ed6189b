"""Zero-shot on a fixture whose answers are known: genres are in the text, users stick to one genre."""

import numpy as np
import pytest

from anyrec.app import pipeline
from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.split import cold_item, leave_one_out
from anyrec.errors import ConfigError
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.experiment import ExperimentConfig, run_experiment
from anyrec.models import Recommender, ZeroShot
from anyrec.models.registry import build_model

GENRES = {"space": "space robots rocket galaxy alien", "romance": "love wedding kiss heart paris",
          "horror": "ghost blood haunted scream night"}


def genre_catalog(n_per: int = 12, n_users: int = 30, per_user: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    b = DatasetBuilder(ReadPolicy(), fields=["title", "genres"])
    items = {}
    for g, words in GENRES.items():
        items[g] = []
        for k in range(n_per):
            iid = f"{g}{k}"
            picked = " ".join(rng.choice(words.split(), size=3, replace=False))
            b.add_item(iid, {"title": f"The {picked} story", "genres": g}, path="items", line=1, field="id")
            items[g].append(iid)
    t = 0
    for u in range(n_users):
        g = list(GENRES)[u % 3]
        for iid in rng.choice(items[g][: n_per - 2], size=per_user, replace=False):  # the last 2 of a genre: untouched
            b.add_interaction(f"u{u}", iid, time=float(t), rating=4.0, path="inter", line=t + 2)
            t += 1
    return b.build("genres", template="{title}", category_field="genres", title_field="title")


@pytest.fixture(scope="module")
def ds():
    return genre_catalog()


def zs(**kw):
    return build_model("zeroshot", 0, {"encoder": "hashing:128", **kw})


def test_profile_recommends_the_users_genre_including_untouched_items(ds):
    model = zs().fit(ds)
    ids, _ = model.recommend(np.arange(ds.n_users), k=4)
    genre_of = np.array([ds.catalog.fields["genres"][i] for i in range(ds.n_items)])
    user_genre = np.array([list(GENRES)[u % 3] for u in range(ds.n_users)])
    assert (genre_of[ids] == user_genre[:, None]).mean() > 0.9
    # Items nobody touched (the last two of each genre) are recommended like the others.
    untouched = {f"{g}{k}" for g in GENRES for k in (10, 11)}
    shown = set(ds.catalog.ids.raws(ids.ravel()))
    assert shown & untouched


def test_contributions_decompose_the_text_score(ds):
    model = zs(short_term=0.5, half_life=2.0).fit(ds)
    hist = ds.interactions.history(ds.n_users).of(0)
    items = np.array([0, 5, 20])
    shares, method = model.history_attribution(np.unique(hist), hist, np.ones(len(hist)), items, None)
    text_scores = model.profiles(np.array([0]))[0] @ model.item_vectors_[items].T
    np.testing.assert_allclose(shares.sum(0), text_scores, atol=1e-5)
    live = model.score_history(hist, np.ones(len(hist))) - model.priors()
    np.testing.assert_allclose(live[items], text_scores, atol=1e-5)  # the live profile is the fitted one


def test_long_and_short_term_weights(ds):
    m = zs(half_life=1.0, short_term=1.0).fit(ds)
    w = m.history_weights()[0].toarray().ravel()
    last = ds.interactions.history(ds.n_users).of(0)[-1]
    assert w[last] == pytest.approx(w.max()) and w[w > 0].min() < 0.1 * w.max()
    assert w.sum() == pytest.approx(1.0, abs=1e-5)  # each term sums to 1
    flat = zs(half_life=1.0, short_term=0.0).fit(ds).history_weights()[0].toarray().ravel()
    assert np.ptp(flat[flat > 0]) == pytest.approx(0.0, abs=1e-7)
    mixed = zs(half_life=1.0, short_term=0.5).fit(ds).history_weights()[0].toarray().ravel()
    np.testing.assert_allclose(mixed, 0.5 * w + 0.5 * flat, atol=1e-6)


def _rated(ratings: list[tuple[str, float]]):
    b = DatasetBuilder(ReadPolicy(), fields=["title"])
    for i, txt in enumerate(
        ["space robots", "space rocket", "love story", "love wedding", "love story wedding", "cooking"]
    ):
        b.add_item(str(i), {"title": txt}, path="i", line=1, field="id")
    for t, (item, r) in enumerate(ratings):
        b.add_interaction("u", item, time=float(t), rating=r, path="x", line=t + 1)
    b.add_interaction("v", "5", time=0.0, rating=3.0, path="x", line=99)
    return b.build("s", template="{title}")


def test_low_ratings_push_their_kin_down_and_never_invert_the_profile():
    small = _rated([("0", 5.0), ("2", 1.0)])
    m = zs(kin=2, push=0.5).fit(small)
    assert m.history_weights()[0].toarray().ravel().tolist()[2] == 0.0  # rated 1: not in the profile
    scores = m.score(np.array([0]))[0]
    plain = zs(kin=2, push=0.0).fit(small).score(np.array([0]))[0]
    pushed = np.flatnonzero(plain - scores > 1e-9)
    assert set(pushed.tolist()) <= {3, 4} and len(pushed)  # the low-rated item's nearest kin only
    assert (plain - scores).max() <= 0.5 + 1e-9  # bounded by push
    assert small.catalog.ids.raw(int(m.recommend(np.array([0]), 1)[0][0, 0])) == "1"
    # The same in the service's shape: a live history with the rating mapped to its signed weight.
    w = m.rating_scale().weight(np.array([5.0, 1.0]))
    np.testing.assert_allclose(m.score_history(np.array([0, 2]), w), scores, atol=1e-6)


def test_ratings_outside_a_declared_scale_are_refused_and_undeclared_ones_follow_the_log():
    with pytest.raises(ConfigError, match="declared scale"):
        zs(rating_low=1.0, rating_high=5.0).fit(_rated([("0", 10.0), ("2", 1.0)]))
    zs(ratings=False).fit(_rated([("0", 10.0), ("2", 1.0)]))
    halves = zs().fit(_rated([("0", 5.0), ("2", 0.5)]))  # MovieLens latest: half stars from 0.5
    scale = halves.rating_scale()
    assert (scale.low, scale.high) == (0.5, 5.0) and scale.weight(2.0) < 0 < scale.weight(2.5)
    assert halves.rating_scale().neutral == pytest.approx(0.5 + 0.375 * 4.5)
    one_to_five = zs().fit(_rated([("0", 5.0), ("2", 1.0)])).rating_scale()
    assert (one_to_five.low, one_to_five.high, one_to_five.neutral) == (1.0, 5.0, 2.5)


def test_priors_do_not_bury_new_items(ds):
    m = zs(popularity=1.0).fit(ds)
    counts = np.bincount(ds.interactions.item, minlength=ds.n_items)
    assert m.popularity_prior_[counts == 0].tolist() == [0.0] * int((counts == 0).sum())
    assert m.popularity_prior_[counts > 0].mean() == pytest.approx(0.0, abs=1e-9)


def test_multi_interest_serves_two_tastes():
    b = DatasetBuilder(ReadPolicy(), fields=["title"])
    texts = [
        "space robots galaxy",
        "space rocket alien",
        "space galaxy alien",
        "love wedding kiss",
        "love paris heart",
        "love kiss heart",
        "ghost blood",
    ]
    for i, t in enumerate(texts):
        b.add_item(str(i), {"title": t}, path="i", line=1, field="id")
    for n, i in enumerate(["0", "1", "3", "4", "6"]):
        b.add_interaction("u", i, time=float(n), path="x", line=n)
    small = b.build("s", template="{title}")
    ids, _ = zs(interests=3).fit(small).recommend(np.array([0]), 2)
    assert set(small.catalog.ids.raws(ids[0])) == {"2", "5"}


def test_cold_item_protocol_text_beats_id_models(ds):
    split = cold_item(ds, share=0.2, valid_share=0.1, seed=1)
    res = run_experiment(ds, ExperimentConfig(models=("popularity", "itemknn", "zeroshot"), ks=(5,),
                                              model_options={"zeroshot": {"encoder": "hashing:128"}}), split=split)
    # Id models give every cold item the same score; the tie rule puts held-out items last, so
    # they only score when a user has more held-out items than there are other candidates.
    best_id = max(res["models"]["popularity"]["recall@5"], res["models"]["itemknn"]["recall@5"])
    assert res["models"]["zeroshot"]["recall@5"] > 2 * best_id and res["models"]["zeroshot"]["recall@5"] > 0.5


def test_loo_validation_tuning_is_reported(ds):
    res = run_experiment(
        ds, ExperimentConfig(models=("zeroshot",), ks=(5,), model_options={"zeroshot": {"encoder": "hashing:128"}})
    )
    assert "zeroshot" in res["tuned"] and "valid_ndcg@5" in res["tuned"]["zeroshot"]


def test_search_and_similar_on_known_answers(ds):
    model = zs().fit(ds)
    top = pipeline.search(model, ds, "ghost haunted night", k=3)
    assert all(r["id"].startswith("horror") for r in top)
    sims = pipeline.similar(model, ds, "space0", k=3)
    assert all(r["id"].startswith("space") and r["id"] != "space0" for r in sims)
    blended = pipeline.search(model, ds, "story", k=3, user="u1", user_weight=0.9)
    assert all(r["id"].startswith("romance") for r in blended)
    recs = pipeline.recommend(model, ds, "u0", k=2, categories=["space"])
    assert recs[0]["because"] and all(r["id"].startswith("space") for r in recs)


def test_evaluate_reuses_given_vectors(ds):
    base = zs().fit(ds)
    again = ZeroShot(base.config, item_vectors=base.item_vectors_).fit(ds)
    split = leave_one_out(ds)
    assert evaluate_model(again, ds, split)["ndcg@10"] == pytest.approx(evaluate_model(base, ds, split)["ndcg@10"])


def test_validation_search_reuses_similarities_and_chooses_the_same(ds, monkeypatch):
    from anyrec.eval import search
    from anyrec.models.textvectors import SimilarityCache

    split = leave_one_out(ds)
    products = []
    real = ZeroShot.profiles

    def counted(self, users):
        products.append(len(users))
        return real(self, users)

    monkeypatch.setattr(ZeroShot, "profiles", counted)
    with_cache = zs().fit(split.train_dataset(ds))
    chosen = search.tune_on_validation(with_cache, ds, split, 5)
    reused = len(products)
    products.clear()
    monkeypatch.setattr(ZeroShot, "reuse_similarities", Recommender.reuse_similarities)  # the search without the cache
    without = zs().fit(split.train_dataset(ds))
    assert search.tune_on_validation(without, ds, split, 5) == chosen
    # The grid's popularity and trend points read the cached products; only the half-life and
    # short-term points compute new ones (a short term without recency is the mean: cached too).
    # (Points already scored are not scored again, with or without the cache: 10 against 30 here.)
    assert reused < len(products) / 2
    cache = SimilarityCache(100)
    cache.put("g1", "a", np.zeros(10))  # 80 bytes
    cache.put("g2", "b", np.zeros(5))  # over budget: "a", of another group, goes
    assert cache.get("g1", "a") is None and cache.get("g2", "b") is not None and cache.used == 40
    cache.put("g2", "c", np.zeros(10))  # its own group is never pushed out: not kept
    assert cache.get("g2", "c") is None and cache.get("g2", "b") is not None
    cache.put("g3", "d", np.zeros(20))  # larger than the whole budget: not kept
    assert cache.get("g3", "d") is None and cache.used == 40


def test_memory_mapped_vectors_equal_the_in_memory_ones(ds, tmp_path):
    in_memory = zs().fit(ds)
    mapped = zs(memmap_dir=str(tmp_path)).fit(ds)
    assert isinstance(mapped.item_vectors_, np.memmap) and (tmp_path / "item_vectors.npy").is_file()
    assert np.array_equal(mapped.item_vectors_, in_memory.item_vectors_)
    users = np.arange(ds.n_users)
    assert np.array_equal(mapped.recommend(users, k=5)[0], in_memory.recommend(users, k=5)[0])


def test_memory_mapped_refit_for_serving_keeps_its_vectors(ds, tmp_path):
    """``fit`` tunes on a split, then refits on everything handing the model its own mapped vectors:
    the file they are mapped from must not be rewritten under them (it was, and they became zeros)."""
    from anyrec.app.fitting import fit_for_serving

    mapped, _, metrics, _ = fit_for_serving("zeroshot", ds, {"encoder": "hashing:128", "memmap_dir": str(tmp_path)})
    plain, _, plain_metrics, _ = fit_for_serving("zeroshot", ds, {"encoder": "hashing:128"})
    assert np.array_equal(mapped.item_vectors_, plain.item_vectors_) and np.abs(plain.item_vectors_).sum() > 0
    assert metrics == plain_metrics
    assert [p.name for p in tmp_path.iterdir()] == ["item_vectors.npy"]  # no temporary left behind


def test_encoder_fills_a_given_array_chunk_by_chunk(ds):
    from anyrec.lm.encoder import EncoderConfig, TextEncoder

    texts = ds.catalog.texts()
    enc = TextEncoder(EncoderConfig(model="hashing:32", batch_size=2))  # chunks of 32 texts
    out = np.zeros((len(texts), 32), dtype=np.float32)
    assert enc.encode(texts, out=out) is out
    assert np.array_equal(out, TextEncoder(EncoderConfig(model="hashing:32", batch_size=64)).encode(texts))
