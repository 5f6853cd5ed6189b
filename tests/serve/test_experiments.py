"""A/B experiments: hand-computed statistics, stable assignment, credited clicks, promotion."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from anyrec.app.persist import save_model
from anyrec.data.dataset import Dataset
from anyrec.models.baselines import Popularity
from anyrec.serve import ServeSettings, create_app
from anyrec.serve.experiments import Variant, assign, report, two_proportion_p, wilson
from anyrec.store import Store


def test_wilson_interval_and_z_test_by_hand() -> None:
    low, high = wilson(10, 100)  # p = .1, z = 1.96: centre .1176, half .0599
    assert low == pytest.approx(0.05523, abs=1e-4) and high == pytest.approx(0.17437, abs=1e-4)
    assert wilson(0, 0) == (0.0, 0.0)
    # 30/100 vs 15/100: pooled .225, se = sqrt(.225 · .775 · .02) = .05906, z = 2.540, p = .0111
    assert two_proportion_p(30, 100, 15, 100) == pytest.approx(0.01109, abs=2e-4)
    assert two_proportion_p(5, 100, 5, 100) == pytest.approx(1.0)
    rep = report("e", [Variant("a", "v1", 0.5), Variant("b", "v2", 0.5)],
                 {"a": {"impressions": 100, "clicks": 30, "conversions": 3}, "b": {"impressions": 100, "clicks": 15}})
    assert rep["significant"] and rep["winner"] == "a" and rep["variants"][1]["ctr"] == 0.15


def test_assignment_is_stable_and_follows_the_shares() -> None:
    variants = [Variant("a", "v1", 0.2), Variant("b", "v2", 0.8)]
    picks = Counter(assign("exp", f"user{n}", variants).name for n in range(5_000))
    assert picks["a"] / 5_000 == pytest.approx(0.2, abs=0.02)
    assert all(assign("exp", f"user{n}", variants) == assign("exp", f"user{n}", variants) for n in range(100))
    other = Counter(assign("other", f"user{n}", variants).name for n in range(200))
    assert other["a"] > 0  # another experiment splits users afresh


@pytest.fixture
def client(zeroshot_dir: Path, store_url: str, api_key: str, topics: Dataset, tmp_path: Path) -> TestClient:
    folder = save_model(Popularity().fit(topics), topics, tmp_path / "pop")
    store = Store.open(store_url)
    store.close()
    with TestClient(create_app(ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url))) as c:
        c.headers["Authorization"] = f"Bearer {api_key}"
        c.app.state.service.store.register_version("pop", str(folder), "popularity", {}, data_until=time.time())  # type: ignore[attr-defined]
        yield c


def test_experiment_credits_clicks_and_promotes_the_winner(client: TestClient) -> None:
    bad = client.put("/v1/experiments/ab", json={"variants": [{"name": "text", "model_version": "v1", "share": 0.5},
                                                               {"name": "pop", "model_version": "nope", "share": 0.5}]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "variants", 1, "model_version"]
    resp = client.put("/v1/experiments/ab", json={"variants": [{"name": "text", "model_version": "v1", "share": 0.5},
                                                               {"name": "pop", "model_version": "pop", "share": 0.5}]})
    assert resp.status_code == 200 and resp.json()["status"] == "running"
    other = client.put(
        "/v1/experiments/other",
        json={
            "variants": [
                {"name": "a", "model_version": "v1", "share": 0.5},
                {"name": "b", "model_version": "pop", "share": 0.5},
            ]
        },
    )
    assert other.status_code == 409
    seen: dict[str, str] = {}
    for n in range(120):
        user = f"u{n % 30}" if n < 30 else f"visitor{n}"
        body = client.get(f"/v1/users/{user}/recommendations", params={"k": 5}).json()
        assert body["experiment"] == "ab" and body["variant"] in ("text", "pop")
        assert seen.setdefault(user, body["variant"]) == body["variant"]  # stable per user
        assert body["model_version"] == ("v1" if body["variant"] == "text" else "pop")
        if body["variant"] == "text":  # only the text variant's lists get clicked
            client.post("/v1/events", json={"user": user, "item": body["items"][0]["id"], "type": "click",
                                            "recommendation_id": body["recommendation_id"]})
    service = client.app.state.service  # type: ignore[attr-defined]
    for _ in range(50):  # the shown lists are logged in batches
        rep = client.get("/v1/experiments/ab/report").json()
        if sum(v["impressions"] for v in rep["variants"]) == 120:
            break
        time.sleep(0.05)
    by = {v["name"]: v for v in rep["variants"]}
    assert by["text"]["impressions"] + by["pop"]["impressions"] == 120
    assert by["text"]["clicks"] == by["text"]["impressions"] and by["pop"]["clicks"] == 0
    assert rep["significant"] and rep["winner"] == "text" and rep["p_value"] < 1e-6
    promoted = client.post("/v1/experiments/ab/promote").json()
    assert promoted["model_version"] == "v1" and service.store.experiment("ab")["status"] == "ended"
    after = client.get("/v1/users/u1/recommendations").json()
    assert after["experiment"] is None and after["model_version"] == "v1"
    assert client.post("/v1/experiments/ab/promote").status_code == 409


def test_page_and_admin_data(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "anyrec" in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200
    users = client.get("/v1/users", params={"limit": 5}).json()["users"]
    assert len(users) == 5 and users[0]["events"] >= users[-1]["events"]
    stats = client.get("/v1/stats", params={"buckets": 5}).json()
    assert stats["events"] == 120 and len(stats["timeline"]) == 5 and stats["timeline"][-1]["events"] == 120
    assert client.get("/v1/report").json() == {}
    assert client.get("/v1/report/plot").status_code == 404
    snippet = client.get("/v1/users/u0/recommendations").json()["items"][0]["snippet"]
    assert snippet.startswith("Space story")
