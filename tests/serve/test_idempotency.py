"""``Idempotency-Key`` on ``POST /v1/events``: a retry stores nothing new and gets the first answer — after a lost
answer, from concurrent duplicates, and after the server was killed (-9) once the batch was committed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from tests.serve.conftest import Launch

from anyrec.serve import ServeSettings, create_app
from anyrec.store import Store

BATCH = [{"user": "retrier", "item": "s1", "type": "view"}, {"user": "retrier", "item": "s2", "type": "like"}]


def stored(store_url: str, user: str) -> list[tuple[str, str]]:
    store = Store.open(store_url)
    try:
        return sorted((item, kind) for item, kind, _, _ in store.history(user))
    finally:
        store.close()


def test_the_same_key_twice_stores_once_and_answers_the_same(zeroshot_dir: Path, store_url: str, api_key: str) -> None:
    with TestClient(create_app(ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url))) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        first = client.post("/v1/events", json=BATCH, headers={"Idempotency-Key": "batch-0001"})
        again = client.post("/v1/events", json=BATCH, headers={"Idempotency-Key": "batch-0001"})
        assert first.status_code == again.status_code == 200 and first.json() == again.json()
        assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
        other = client.post("/v1/events", json=BATCH[:1], headers={"Idempotency-Key": "batch-0001"})
        assert other.status_code == 422 and other.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
        without = client.post("/v1/events", json=BATCH[:1])  # no key: a second, deliberate copy is stored
        assert without.status_code == 200
        with ThreadPoolExecutor(max_workers=4) as pool:  # duplicates racing each other
            answers = list(
                pool.map(
                    lambda _: client.post("/v1/events", json=BATCH, headers={"Idempotency-Key": "race-7"}), range(8)
                )
            )
        assert {a.status_code for a in answers} == {200} and len({a.text for a in answers}) == 1
        assert "anyrec_idempotent_replays_total 8.0" in client.get("/metrics").text
        bad = client.post("/v1/events", json=BATCH, headers={"Idempotency-Key": "has space"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["header", "Idempotency-Key"]
        spec = client.get("/openapi.json").json()["paths"]["/v1/events"]["post"]
        assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in spec["parameters"])
    assert stored(store_url, "retrier") == [
        ("s1", "view"),
        ("s1", "view"),
        ("s1", "view"),
        ("s2", "like"),
        ("s2", "like"),
    ]


def test_a_retry_after_a_kill_between_commit_and_answer_stores_once(zeroshot_dir: Path, store_url: str, api_key: str,
                                                                    launch: Launch) -> None:
    """The batch commits, the answer never reaches the client (the server is killed -9); the client retries on a
    restarted server with the same key and gets the first answer, nothing stored twice."""
    base, proc, port = launch(store_url, zeroshot_dir)
    headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": "crash-42"}
    first = httpx.post(f"{base}/v1/events", json=BATCH, headers=headers, timeout=30)
    assert first.status_code == 200  # committed: the answer is dropped here, as the kill would have dropped it
    proc.kill()
    proc.wait(timeout=30)
    base, proc, _ = launch(store_url, zeroshot_dir, port)
    retry = httpx.post(f"{base}/v1/events", json=BATCH, headers=headers, timeout=30)
    assert retry.status_code == 200 and retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    assert stored(store_url, "retrier") == [("s1", "view"), ("s2", "like")]
