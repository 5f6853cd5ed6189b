"""Several server processes over one store: an event posted through one is in the next list of any other;
catalog and version changes reach the others by the next request."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from anyrec.app.persist import save_model
from anyrec.data.dataset import Dataset
from anyrec.models.baselines import Popularity
from anyrec.serve.live import EventWeights
from anyrec.serve.settings import ServeSettings, settings_from_json, settings_to_json
from anyrec.store import Store

Launch = Callable[..., tuple[str, subprocess.Popen, int]]


def fresh(method: str, url: str, **kw: object) -> httpx.Response:
    """A request on a new connection, so the kernel may hand it to any worker."""
    with httpx.Client(timeout=30) as c:
        return c.request(method, url, **kw)  # type: ignore[arg-type]


def test_settings_travel_to_worker_processes_as_json() -> None:
    s = ServeSettings(
        model_dir="m",
        store_url="sqlite:///x.db",
        weights=EventWeights(weights={"like": 5.0}, keep_types=("skip", "view")),
        read_key=True,
        ann_min_items=7,
    )
    assert settings_from_json(settings_to_json(s)) == s


def test_two_workers_over_one_store(zeroshot_dir: Path, store_url: str, api_key: str, launch: Launch, topics: Dataset,
                                    tmp_path: Path) -> None:
    base, _proc, _port = launch(store_url, zeroshot_dir, None, "--workers", "2")
    auth = {"Authorization": f"Bearer {api_key}"}
    workers: set[str] = set()
    for n in range(24):
        item = f"g{n % 12}"
        r = fresh("POST", f"{base}/v1/events", json={"user": f"w{n}", "item": item, "type": "like"}, headers=auth)
        assert r.status_code == 200
        workers.add(r.headers["x-anyrec-worker"])
        rec = fresh("GET", f"{base}/v1/users/w{n}/recommendations", params={"k": 5})
        workers.add(rec.headers["x-anyrec-worker"])
        body = rec.json()
        assert not body["cold_start"] and item not in [i["id"] for i in body["items"]]  # the event is in this list
    assert len(workers) == 2, workers
    assert (
        fresh(
            "PUT",
            f"{base}/v1/items/g500",
            json={"fields": {"title": "Ghost 500", "text": "ghost haunted"}},
            headers=auth,
        ).status_code
        == 200
    )
    answered = {fresh("GET", f"{base}/v1/items/g500/similar").headers["x-anyrec-worker"] for _ in range(16)}
    assert all(fresh("GET", f"{base}/v1/items/g500/similar").status_code == 200 for _ in range(16))
    store = Store.open(store_url)
    folder = save_model(Popularity().fit(topics), topics, tmp_path / "pop")
    store.register_version("v2", str(folder), "popularity", {}, data_until=time.time())
    store.close()
    assert fresh("POST", f"{base}/v1/models/v2/activate", headers=auth).status_code == 200
    versions = {fresh("GET", f"{base}/v1/users/u1/recommendations").json()["model_version"] for _ in range(16)}
    assert versions == {"v2"}
    print(f"workers on {store_url.split(':')[0]}: {sorted(workers)}; similar answered by {len(answered)} workers")
