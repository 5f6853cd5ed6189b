"""``auto``: the candidates that suit a log (with their reasons), chosen on validation, never on test."""

import json

import numpy as np
import pytest

from anyrec.app.fitting import fit_auto
from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.split import SplitConfig
from anyrec.eval.auto import candidates, ordered_share, skipped
from anyrec.eval.experiment import ExperimentConfig, run_experiment

WORDS = ["apple", "river", "stone", "cloud", "flame", "frost", "maple", "ocean", "tiger", "amber"]
TEXT = {"zeroshot": {"encoder": "hashing:64"}, "hybrid": {"encoder": "hashing:64"}}


def planted(ordered: bool = False, titles: bool = True):
    """Pairs (2k, 2k+1) always taken together; texts unrelated to the pairs; one time for all unless ordered."""
    b = DatasetBuilder(ReadPolicy(), fields=["title"])
    for i in range(40):
        b.add_item(
            str(i),
            {"title": f"{WORDS[i % 10]} {WORDS[(i * 3) % 10]} {WORDS[(i * 7) % 10]}" if titles else str(i)},
            path="items",
            line=1,
            field="id",
        )
    rng = np.random.default_rng(0)
    n = 0
    for u in range(120):
        for pair in rng.choice(20, size=4, replace=False):
            for item in (2 * pair, 2 * pair + 1):
                b.add_interaction(f"u{u}", str(item), time=float(n) if ordered else 0.0, path="log", line=n + 2)
                n += 1
    return b.build("planted", template="{title}")


def test_candidates_follow_the_log_and_say_why():
    flat = planted()
    assert ordered_share(flat) == 0.0 and ordered_share(planted(ordered=True)) == 1.0
    names = [c.name for c in candidates(flat, memory_mb=1_000)]
    assert names == ["popularity", "itemknn", "als", "ease", "zeroshot", "hybrid"]  # no order: no sequential
    assert any("no usable order" in note for note in skipped(flat, candidates(flat, memory_mb=1_000)))
    assert "sequential" in [c.name for c in candidates(planted(ordered=True), memory_mb=1_000)]
    bare = candidates(planted(titles=False), memory_mb=1e-6)  # no text, no memory for a dense solve: EASE's sparse path
    assert [c.name for c in bare] == ["popularity", "itemknn", "als", "ease"]
    assert all(c.reason for c in bare) and "sparse path" in bare[-1].reason
    assert "dense solve" in candidates(flat, memory_mb=1_000)[3].reason


def test_auto_picks_the_planted_winner_on_validation_and_reports_its_test_row():
    ds = planted()
    result = run_experiment(
        ds, ExperimentConfig(models=("auto",), ks=(10,), split=SplitConfig(protocol="ratio"), model_options=TEXT)
    )
    auto = result["auto"]
    validation = auto["validation"]
    assert auto["chosen"] == max(validation, key=lambda n: (validation[n], -list(validation).index(n)))
    said = auto["blend"]  # the best two, blended: a row of its own, a candidate only when its gain is sure enough
    assert json.loads(json.dumps(result))["auto"]["blend"] == said  # plain numbers: --json writes them
    blend = f"blend({'+'.join(said['parts'])})"
    assert blend in result["models"] and 0.0 <= result["models"][blend]["weight"] <= 1.0
    assert (blend in validation) == said["kept"] == (said["z"] >= 2.0)
    if not said["kept"]:
        assert any(note.startswith(blend) and "not kept" in note for note in auto["left out"])
    assert (
        sorted(validation[p] for p in said["parts"])
        == sorted(validation[n] for n in validation if not n.startswith("blend("))[-2:]
    )
    assert auto["chosen"] in (
        "ease",
        "hybrid",
        "itemknn",
        "als",
        blend,
    )  # co-occurrence: text alone cannot see the pairs
    assert validation[auto["chosen"]] > validation["zeroshot"] and validation[auto["chosen"]] > validation["popularity"]
    row = result["models"]["auto"]
    assert row["ndcg@10"] == result["models"][auto["chosen"]]["ndcg@10"]
    assert row["fit_seconds"] >= max(result["models"][n]["fit_seconds"] for n in validation)


def test_fit_auto_saves_the_winner_with_its_table():
    ds = planted()
    model, _tuned, metrics, _index, report = fit_auto(ds, TEXT)
    name = model.label
    assert report["chosen"] == name == max(report["validation"], key=report["validation"].get)
    assert metrics["valid_ndcg@10"] == report["validation"][name]
    assert set(report["validation"]) == set(report["candidates"]) and report["left out"]
    # the best two, blended, were a candidate, or are said to be left out with their cross-fitted gain
    assert any(n.startswith("blend(") for n in report["validation"]) or any(
        note.startswith("blend(") and "cross-fitted gain" in note for note in report["left out"]
    )


def test_a_blend_is_kept_only_when_its_gain_holds_on_users_that_did_not_choose_its_weight():
    from anyrec.eval.auto import BLEND_MIN_Z, cross_fitted_gain

    rng = np.random.default_rng(3)
    alone = rng.random(2_000)  # weight 1 (the first part alone) is row 0 here
    better = alone + 0.05 + 0.01 * rng.standard_normal(2_000)  # a weight better for nearly every user
    gain, z = cross_fitted_gain(np.vstack([alone, better]), alone=0)
    assert gain == pytest.approx(0.05, abs=0.002) and z > 50
    noise = np.vstack([alone] + [alone + 0.1 * rng.standard_normal(2_000) for _ in range(10)])  # no weight helps
    assert noise.mean(axis=1).max() > alone.mean()  # the search alone would pick some weight over the part
    gain, z = cross_fitted_gain(noise, alone=0)
    assert z < BLEND_MIN_Z and gain < 0.005  # read on the other half, the pick's luck is gone
    assert cross_fitted_gain(np.vstack([alone, alone]), alone=0) == (0.0, 0.0)  # no gain at all: z 0, not kept


def test_a_validation_search_ends_its_progress_step_even_when_its_last_points_were_scored_before():
    from tests.conftest import checkerboard

    from anyrec.data.split import leave_one_out
    from anyrec.eval.search import tune_on_validation
    from anyrec.models.registry import build_model

    ds = checkerboard()
    split = leave_one_out(ds)
    model = build_model("itemknn", 0, {}).fit(split.train_dataset(ds))
    model.tuning_grid = {"k": [model.config.k]}  # type: ignore[misc]  # one point, the current one: never scored again
    calls: list[tuple[int, int]] = []
    tune_on_validation(model, ds, split, 5, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]  # the step ends, so a log does not show it running on


def test_report_untuned_reads_the_same_fit_with_the_options_it_was_fitted_with():
    from tests.models.test_zeroshot import genre_catalog

    from anyrec.eval.experiment import ExperimentConfig, run_experiment

    ds = genre_catalog(n_users=40)
    opts = {"zeroshot": {"encoder": "hashing:64"}}
    tuned = run_experiment(ds, ExperimentConfig(models=("zeroshot",), ks=(5,), model_options=opts, report_untuned=True))
    plain = run_experiment(ds, ExperimentConfig(models=("zeroshot",), ks=(5,), model_options=opts, tune=False))
    assert tuned["tuned"]["zeroshot"]  # the search moved something, so there is a before to read
    before = tuned["models"]["zeroshot"]["before_tuning"]
    assert (
        before["ndcg@5"] == plain["models"]["zeroshot"]["ndcg@5"]
        and before["recall@5"] == plain["models"]["zeroshot"]["recall@5"]
    )


def test_a_blend_is_the_weighted_sum_of_its_parts_standardised_per_user():
    from tests.conftest import checkerboard

    from anyrec.models.blend import Blend, BlendConfig, standardised
    from anyrec.models.registry import build_model

    ds = checkerboard()
    a, b = build_model("itemknn", 0, {}).fit(ds), build_model("ease", 0, {"l2": 10.0}).fit(ds)
    blend = Blend(BlendConfig(weight=0.3), parts=(a, b)).fit(ds)
    users = np.arange(4)
    z = lambda s: (s - s.mean(axis=1, keepdims=True)) / s.std(axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(blend.score(users), 0.3 * z(a.score(users)) + 0.7 * z(b.score(users)), atol=1e-9)
    hist, w = np.array([0, 1, 2]), np.ones(3)
    np.testing.assert_allclose(
        blend.score_history(hist, w),
        0.3 * standardised(a.score_history(hist, w)) + 0.7 * standardised(b.score_history(hist, w)),
        atol=1e-9,
    )
    assert blend.label == "blend(itemknn+ease)"
    blend.config = blend.config.__class__(weight=1.0, parts=blend.config.parts)  # all the first part: its order
    assert (
        np.argsort(-blend.score(users), axis=1, kind="stable")[:, :5]
        == np.argsort(-a.score(users), axis=1, kind="stable")[:, :5]
    ).all()


def test_a_saved_blend_serves_like_its_parts(tmp_path):
    from tests.conftest import checkerboard

    from anyrec.app.persist import load_model, save_model
    from anyrec.models.blend import Blend, BlendConfig
    from anyrec.models.registry import build_model

    ds = checkerboard()
    blend = Blend(
        BlendConfig(weight=0.4),
        parts=(build_model("itemknn", 0, {}).fit(ds), build_model("ease", 0, {"l2": 10.0}).fit(ds)),
    ).fit(ds)
    back, _, _, meta = load_model(save_model(blend, ds, tmp_path / "blend"))
    assert meta["model"] == "blend" and back.label == "blend(itemknn+ease)" and back.config.weight == 0.4
    users = np.arange(4)
    np.testing.assert_allclose(back.score(users), blend.score(users), atol=1e-9)
    hist, w = np.array([0, 3]), np.array([1.0, -1.0])
    np.testing.assert_allclose(back.score_history(hist, w), blend.score_history(hist, w), atol=1e-9)


def test_a_blend_folder_is_served_live(tmp_path):
    """The service reads a blend's folder: lists for a fitted user (with their reasons), a dislike read on the next
    request, a new visitor, similar items."""
    from fastapi.testclient import TestClient
    from tests.conftest import checkerboard

    from anyrec.app.persist import save_model
    from anyrec.models.blend import Blend, BlendConfig
    from anyrec.models.registry import build_model
    from anyrec.serve import ServeSettings, create_app
    from anyrec.store import Store

    ds = checkerboard()
    blend = Blend(
        BlendConfig(weight=0.4),
        parts=(build_model("itemknn", 0, {}).fit(ds), build_model("ease", 0, {"l2": 10.0}).fit(ds)),
    ).fit(ds)
    folder = save_model(blend, ds, tmp_path / "blend")
    url = f"sqlite:///{tmp_path / 'blend.db'}"
    store = Store.open(url)
    key = store.create_key("t")
    store.close()
    with TestClient(create_app(ServeSettings(model_dir=str(folder), store_url=url))) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        user = ds.users.raw(0)
        first = c.get(f"/v1/users/{user}/recommendations", params={"k": 5, "explain": "true"}).json()["items"]
        assert len(first) == 5 and all(card["sentence"] for card in first)
        assert c.post("/v1/events", json={"user": user, "item": first[0]["id"], "type": "dislike"}).status_code == 200
        after = [card["id"] for card in c.get(f"/v1/users/{user}/recommendations", params={"k": 5}).json()["items"]]
        assert first[0]["id"] not in after
        assert c.get("/v1/users/newcomer/recommendations", params={"k": 5}).status_code == 200
        assert c.get(f"/v1/items/{first[0]['id']}/similar", params={"k": 3}).status_code == 200


def test_weighing_a_blend_reports_each_batch_of_users_and_leaves_the_chosen_weight():
    from anyrec.data.split import leave_one_out
    from anyrec.eval.auto import weigh_blend
    from anyrec.models.blend import Blend
    from anyrec.models.registry import build_model

    ds = planted()
    split = leave_one_out(ds)
    train = split.train_dataset(ds)
    parts = (build_model("itemknn", 0, {}).fit(train), build_model("popularity", 0, {}).fit(train))
    blend = Blend(parts=parts).fit(train)
    calls: list[tuple[int, int]] = []
    choice = weigh_blend(blend, ds, split, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= len(Blend.tuning_grid["weight"]) and calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)  # one step that only moves forward
    assert blend.config.weight == choice.weight and isinstance(choice.kept, bool)
