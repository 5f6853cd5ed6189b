"""Serving from vector indexes: the sequential model's score splits into index-searchable terms,
and lists cut from the indexes equal the lists from scoring every item (zero-shot and sequential)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.serve.test_live import SEQ, user_history

from anyrec.app.fitting import fit_for_serving
from anyrec.app.persist import load_indexes, save_model
from anyrec.data.dataset import Dataset
from anyrec.models.registry import build_model
from anyrec.serve import ServeSettings, create_app, retrieval
from anyrec.serve.live import LiveModel

BLEND = {**SEQ, "text_blend": 0.5, "epochs": 6, "patience": 6}


@pytest.fixture(scope="module")
def sequential(topics: Dataset):
    return build_model("sequential", 0, BLEND).fit(topics)


def test_sequential_score_is_index_terms_plus_bounded_dislikes(topics: Dataset, sequential) -> None:
    model = sequential
    text = model._unit_text_table()
    cand = np.array([0, 3, 7, 20, 35])
    for u in range(0, topics.n_users, 5):
        items, weights = user_history(topics, u)
        full = model.score_history(items, weights)
        np.testing.assert_allclose(
            model.score_history(items, weights, candidates=cand), full[cand], rtol=1e-5, atol=1e-6
        )
        q, p, slack = model.retrieval_queries(items, weights)
        np.testing.assert_allclose(model.item_space() @ q + 0.5 * text @ p, full, atol=1e-5)
        np.testing.assert_allclose(model.score_candidates((q, p, slack), items, weights, cand), full[cand], atol=1e-5)
        assert slack == 0.0
        disliked = np.r_[items, topics.catalog.ids.index("s5")]
        w = np.r_[weights, -2.0]
        parts = model.retrieval_queries(disliked, w)
        q, p, slack = parts
        assert slack == 0.0  # a dislike only lowers its kin: the index terms still bound every score
        pushed = model.score_history(items, weights) - model.score_history(disliked, w)
        assert 0 < pushed.max() <= model.config.push + 1e-6 and (pushed > 1e-9).sum() <= model.config.kin
        np.testing.assert_allclose(
            model.score_candidates(parts, disliked, w, cand), model.score_history(disliked, w)[cand], atol=1e-5
        )
        assert (model.score_history(disliked, w) <= model.item_space() @ q + 0.5 * text @ p + slack + 1e-5).all()
    assert model.retrieval_queries(np.array([1]), np.array([-1.0])) is None  # nothing positive to search with


def test_fit_for_serving_builds_the_sequential_indexes_and_measures_their_recall(
    topics: Dataset, tmp_path: Path
) -> None:
    model, _, metrics, indexes = fit_for_serving("sequential", topics, BLEND, tune=False, index_spec="HNSW32")
    assert set(indexes) == {"model", "text"} and indexes["model"].metric == "ip"
    assert metrics["model_index_recall@10"] == 1.0 and metrics["index_recall@10"] == 1.0  # 36 items: HNSW is exhaustive
    folder = save_model(model, topics, tmp_path / "seq", indexes)
    assert set(load_indexes(folder)) == {"model", "text"}
    save_model(model, topics, folder)  # re-saved without indexes: none of the old ones is left to be served
    assert load_indexes(folder) == {}
    _, _, metrics, indexes = fit_for_serving("sequential", topics, BLEND, tune=False)  # exact: nothing to build
    assert indexes == {} and not any("index" in k for k in metrics)


@pytest.mark.parametrize(
    "name, options", [("sequential", BLEND), ("zeroshot", {"encoder": "hashing:128", "popularity": 0.1})]
)
def test_lists_cut_from_short_index_lists_equal_the_full_lists(
    topics: Dataset, tmp_path: Path, monkeypatch, name, options
) -> None:
    model, _, _, indexes = fit_for_serving(name, topics, options, tune=False, index_spec="Flat")
    folder = save_model(model, topics, tmp_path / name, indexes)
    exact, ann = LiveModel("v", folder, ann_min_items=10**9), LiveModel("v", folder, ann_min_items=1)
    assert ann.uses_index() and not exact.uses_index()
    monkeypatch.setattr(retrieval, "ANN_CANDIDATES", 6)  # lists of 6 of 36 items: the bound decides, not completeness
    cut = 0
    for u in range(topics.n_users):
        rows = [
            (topics.catalog.ids.raw(int(i)), "click", None, float(t)) for t, i in enumerate(user_history(topics, u)[0])
        ]
        want = exact.recommend(f"u{u}", rows, 3)
        items, weights, values, hide = ann.parse_history(rows)
        found = ann.ann.top(items, weights, values, ann._allowed(hide, ()), 3)
        if found is not None:
            cut += 1
            assert found[0].tolist() == want.items
            np.testing.assert_allclose(found[1], want.scores, atol=1e-5)
        assert ann.recommend(f"u{u}", rows, 3).items == want.items  # whichever way it went
    assert cut >= topics.n_users // 2, cut  # most lists come from the indexes


def test_new_catalog_items_join_the_sequential_indexes(
    topics: Dataset, tmp_path: Path, store_url: str, api_key: str
) -> None:
    model, _, _, indexes = fit_for_serving("sequential", topics, BLEND, tune=False, index_spec="HNSW32")
    folder = save_model(model, topics, tmp_path / "seq", indexes)
    with TestClient(create_app(ServeSettings(model_dir=str(folder), store_url=store_url, ann_min_items=1))) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        live = client.app.state.service.live  # type: ignore[attr-defined]
        assert live.uses_index()
        client.put("/v1/items/s99", json={"fields": {"title": "Space story 99", "text": "space rocket robot galaxy"}})
        assert {len(ix) for ix in live.ann.indexes.values()} == {topics.n_items + 1}
        client.post("/v1/events", json={"user": "fresh", "item": "s1", "type": "like"})
        listed = [i["id"] for i in client.get("/v1/users/fresh/recommendations", params={"k": 36}).json()["items"]]
        assert "s99" in listed
