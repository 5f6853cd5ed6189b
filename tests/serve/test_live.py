"""Live scoring from a history given at request time: the same answers as the fitted model, for every
model that reads a history; a sequential model served end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from anyrec.app.persist import save_model
from anyrec.data.dataset import Dataset
from anyrec.models.registry import build_model
from anyrec.serve import ServeSettings, create_app
from anyrec.serve.live import EventWeights, LiveModel

SEQ = {"encoder": "hashing:128", "hidden": 32, "layers": 1, "heads": 2, "max_len": 8, "dropout": 0.0, "id_dropout": 0.1,
       "batch_size": 64, "lr": 5e-3, "threads": 1, "epochs": 15, "patience": 15}


def user_history(ds: Dataset, u: int) -> tuple[np.ndarray, np.ndarray]:
    inter = ds.interactions
    rows = np.flatnonzero(inter.user == u)
    rows = rows[np.lexsort((rows, inter.time[rows]))]
    return inter.item[rows], np.ones(len(rows))


@pytest.mark.parametrize(
    "name, options",
    [
        ("zeroshot", {"encoder": "hashing:128", "half_life": 2.0, "popularity": 0.1}),
        ("zeroshot", {"encoder": "hashing:128", "half_life": 2.0, "short_term": 0.5, "kernel": 0.1}),
        ("itemknn", {}),
        ("itemknn", {"half_life": 1.0, "short_term": 0.5}),
        ("popularity", {}),
        ("sequential", SEQ),
    ],
)
def test_live_history_scores_equal_the_fitted_scores(topics: Dataset, name: str, options: dict) -> None:
    model = build_model(name, 0, options).fit(topics)
    for u in range(0, topics.n_users, 7):
        items, weights = user_history(topics, u)
        live = model.score_history(items, weights)
        assert live is not None
        np.testing.assert_allclose(
            live, np.asarray(model.score(np.array([u]))[0], dtype=np.float64), rtol=1e-5, atol=1e-5
        )


def test_models_learned_per_user_do_not_read_a_live_history(topics: Dataset) -> None:
    model = build_model("als", 0, {"factors": 4, "iterations": 2}).fit(topics)
    assert model.score_history(np.array([0]), np.array([1.0])) is None


def test_negative_weights_push_neighbours_down(topics: Dataset) -> None:
    for name, options in (("zeroshot", {"encoder": "hashing:128"}), ("itemknn", {}), ("sequential", SEQ)):
        model = build_model(name, 0, options).fit(topics)
        items, weights = user_history(topics, 0)  # a space watcher
        base = model.score_history(items, weights)
        disliked, neighbour = (
            topics.catalog.ids.index("s5"),
            topics.catalog.ids.index("s4"),
        )  # near in text and in co-occurrence
        pushed = model.score_history(np.r_[items, disliked], np.r_[weights, -2.0])
        assert pushed[neighbour] < base[neighbour], name


# Plain codes: with 4 codes over 3 topics of 12 items, balanced codes (at most 9 items a code) must mix topics.
GEN = {
    "encoder": "hashing:128",
    "levels": 2,
    "codebook": 4,
    "balanced_codes": False,
    "hidden": 32,
    "layers": 1,
    "heads": 2,
    "max_items": 4,
    "dropout": 0.0,
    "batch_size": 4,
    "lr": 5e-3,
    "threads": 1,
    "epochs": 150,
    "patience": 150,
}


@pytest.mark.parametrize("name, options", [("sequential", SEQ), ("generative", GEN)])
def test_text_sequence_models_served_end_to_end(topics: Dataset, tmp_path: Path, store_url: str, api_key: str,
                                                name: str, options: dict) -> None:
    model = build_model(name, 0, options).fit(topics)
    folder = save_model(model, topics, tmp_path / name)
    live = LiveModel("x", folder, EventWeights())
    assert live.reads_history() and live.is_text_model()
    with TestClient(create_app(ServeSettings(model_dir=str(folder), store_url=store_url))) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        body = client.get("/v1/users/u1/recommendations", params={"k": 5, "explain": "true"}).json()
        assert [i["id"][0] for i in body["items"]].count("l") >= 4  # u1 watches love stories
        history = {e["item"] for e in client.get("/v1/users/u1/history").json()["events"]}
        assert all(b["id"] in history for i in body["items"] for b in i["because"]) and body["items"][0]["because"]
        assert (
            client.put(
                "/v1/items/l99",
                json={"fields": {"title": "Love story 99", "text": "romance love wedding kiss"}, "category": "love"},
            ).status_code
            == 200
        )
        assert "l99" in [
            i["id"]
            for i in client.post("/v1/search", json={"query": "romance love wedding kiss", "k": 3}).json()["items"]
        ]
        client.post("/v1/events", json=[{"user": "u1", "item": f"g{n}", "type": "like"} for n in range(6)])
        after = client.get("/v1/users/u1/recommendations", params={"k": 5}).json()
        assert sum(i["id"].startswith("g") for i in after["items"]) > sum(
            i["id"].startswith("g") for i in body["items"]
        )


def test_events_for_unknown_items_can_wait_for_the_catalog(zeroshot_dir: Path, store_url: str, api_key: str) -> None:
    settings = ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url, unknown_items="store")
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        assert client.post("/v1/events", json={"user": "fan", "item": "later", "type": "like"}).status_code == 200
        assert client.get("/v1/users/fan/recommendations").json()["cold_start"]  # nothing known yet
        client.put("/v1/items/later", json={"fields": {"title": "Ghost later", "text": "horror ghost haunted scream"}})
        body = client.get("/v1/users/fan/recommendations", params={"k": 5}).json()
        assert not body["cold_start"] and all(i["id"].startswith("g") for i in body["items"])


def test_an_encoder_cache_is_used_from_request_threads(
    topics: Dataset, tmp_path: Path, store_url: str, api_key: str
) -> None:
    """Regression: the embedding cache's SQLite connection was tied to the thread that opened it (a 500 on search)."""
    from anyrec.models.zeroshot import ZeroShot, ZeroShotConfig

    model = ZeroShot(ZeroShotConfig(encoder={"model": "hashing:64", "cache_dir": str(tmp_path / "cache")})).fit(topics)
    folder = save_model(model, topics, tmp_path / "cached")
    with TestClient(
        create_app(ServeSettings(model_dir=str(folder), store_url=store_url)), raise_server_exceptions=False
    ) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        assert client.post("/v1/search", json={"query": "ghost haunted", "k": 3}).status_code == 200
        assert client.put("/v1/items/g50", json={"fields": {"title": "Ghost fifty"}}).status_code == 200


def test_retrieval_from_the_index_gives_the_exact_lists(
    topics: Dataset, tmp_path: Path, store_url: str, api_key: str
) -> None:
    from anyrec.index.vector import make_index
    from anyrec.models.zeroshot import ZeroShot, ZeroShotConfig

    model = ZeroShot(ZeroShotConfig(encoder="hashing:128", popularity=0.1)).fit(topics)
    index = make_index("HNSW32")  # on 36 items the graph search is exhaustive enough to be exact
    index.add(range(topics.n_items), model.item_vectors_)
    folder = save_model(model, topics, tmp_path / "indexed", index)
    lists = {}
    for ann in (10**9, 1):  # never, always
        with TestClient(
            create_app(ServeSettings(model_dir=str(folder), store_url=store_url, ann_min_items=ann))
        ) as client:
            client.headers["Authorization"] = f"Bearer {api_key}"
            assert client.app.state.service.live.uses_index() == (ann == 1)  # type: ignore[attr-defined]
            lists[ann] = [
                client.get(f"/v1/users/u{u}/recommendations", params={"k": 8, "exclude": ["s9"]}).json()["items"]
                for u in range(12)
            ]
            if ann == 1:
                client.put(
                    "/v1/items/s99", json={"fields": {"title": "Space story 99", "text": "space rocket robot galaxy"}}
                )
                client.post("/v1/events", json={"user": "fresh", "item": "s1", "type": "like"})
                assert "s99" in [
                    i["id"] for i in client.get("/v1/users/fresh/recommendations", params={"k": 12}).json()["items"]
                ]
    for exact, approx in zip(lists[10**9], lists[1]):
        assert [i["id"] for i in approx] == [i["id"] for i in exact]
        assert [i["score"] for i in approx] == pytest.approx([i["score"] for i in exact], abs=1e-5)
