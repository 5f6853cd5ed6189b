"""A new user's first events may arrive twice at once (two tabs, a retry racing the original): bounded concurrent
load on the API (4 at a time, SQLite and PostgreSQL), pairs of requests racing on each new user → no 5xx, and
every acknowledged event stored exactly once (before: the loser of each race got a 500 and its batch rolled back)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient

from anyrec.serve import ServeSettings, create_app
from anyrec.store import Store


def test_pairs_racing_on_new_users_all_succeed_and_each_event_is_stored_once(zeroshot_dir: Path, store_url: str,
                                                                              api_key: str) -> None:
    with TestClient(create_app(ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url))) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"

        def send(n: int) -> tuple[int, str, str]:
            user, item = f"racer-{n // 2}", f"s{n % 2}"  # requests 2k and 2k + 1 bring user k's first events
            resp = client.post("/v1/events", json=[{"user": user, "item": item, "type": "view"},
                                                   {"user": user, "item": "l1", "type": "click"}])
            return resp.status_code, user, item

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(send, range(200)))
    statuses = [s for s, _, _ in results]
    assert [s for s in statuses if s >= 500] == []
    assert statuses == [200] * 200
    store = Store.open(store_url)
    try:
        for n in range(100):
            history = store.history(f"racer-{n}")
            assert sorted((item, kind) for item, kind, _, _ in history) == [("l1", "click"), ("l1", "click"),
                                                                              ("s0", "view"), ("s1", "view")]
    finally:
        store.close()
