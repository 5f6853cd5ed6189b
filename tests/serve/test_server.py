"""The real server process (uvicorn): kill -9 while events stream in, and a version swap under load."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from anyrec.app.persist import save_model
from anyrec.data.dataset import Dataset
from anyrec.models.baselines import ItemKNN
from anyrec.store import Store
from anyrec.store.schema import events

Launch = Callable[..., tuple[str, subprocess.Popen, int]]  # the `launch` fixture of conftest


@pytest.fixture
def server(zeroshot_dir: Path, store_url: str, launch: Launch) -> tuple[str, subprocess.Popen, int]:
    return launch(store_url, zeroshot_dir)


def test_every_answered_event_survives_kill_9(server: tuple[str, subprocess.Popen, int], store_url: str, api_key: str,
                                               launch: Launch) -> None:
    base, proc, port = server
    answered: list[int] = []
    errors: list[str] = []

    def stream() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=5) as c:
            for n in range(100_000):  # bounded; the kill ends it long before
                body = (
                    {"user": f"k{n % 5}", "item": f"s{n % 12}", "type": "click"}
                    if n % 3
                    else [
                        {"user": f"k{n % 5}", "item": f"l{n % 12}", "type": "view"},
                        {"user": "k9", "item": "g1", "type": "like"},
                    ]
                )
                try:
                    r = c.post("/v1/events", json=body)
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    answered.extend(r.json()["seq"])
                else:
                    errors.append(r.text)

    t = threading.Thread(target=stream)
    t.start()
    deadline = time.monotonic() + 30  # killed once enough events are answered (a loaded machine answers fewer a second)
    while len(answered) <= 60 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    t.join(timeout=20)
    assert not errors and len(answered) > 50, (len(answered), errors[:3])
    launch(store_url, None, port)  # reopens the store's active version
    store = Store.open(store_url)
    with store.engine.connect() as conn:
        stored = set(conn.execute(select(events.c.seq)).scalars())
    store.close()
    lost = [s for s in answered if s not in stored]
    print(f"kill -9 on {store_url.split(':')[0]}: {len(answered)} events answered, {len(lost)} lost")
    assert lost == [], f"{len(lost)} of {len(answered)} answered events lost"
    assert httpx.get(
        f"http://127.0.0.1:{port}/v1/users/k9/history", headers={"Authorization": f"Bearer {api_key}"}
    ).json()["events"]


def test_activating_a_version_under_load_fails_no_request(server: tuple[str, subprocess.Popen, int], store_url: str,
                                                           api_key: str, tmp_path: Path, topics: Dataset) -> None:
    ds = topics
    folder = save_model(ItemKNN().fit(ds), ds, tmp_path / "itemknn")
    store = Store.open(store_url)
    store.register_version("v2", str(folder), "itemknn", {}, data_until=time.time())
    store.close()
    base, _proc, _port = server
    seen: dict[str, int] = {}
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=base, timeout=10) as c:
            for n in range(20_000):  # bounded; stopped after the swaps
                if stop.is_set():
                    return
                r = c.get(f"/v1/users/u{n % 30}/recommendations", params={"k": 5})
                if r.status_code != 200 or len(r.json()["items"]) != 5:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                else:
                    v = r.json()["model_version"]
                    seen[v] = seen.get(v, 0) + 1

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    auth = {"Authorization": f"Bearer {api_key}"}
    for version in ("v2", "v1", "v2"):
        time.sleep(0.5)
        r = httpx.post(f"{base}/v1/models/{version}/activate", headers=auth, timeout=30)
        assert r.status_code == 200 and r.json()["active"], r.text
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    print(f"swap under load on {store_url.split(':')[0]}: {sum(seen.values())} answered {seen}, {len(failures)} failed")
    assert failures == []
    assert seen.get("v1", 0) > 10 and seen.get("v2", 0) > 10, seen
    assert httpx.get(f"{base}/v1/models").json()[1]["active"]  # v2 is active, and stays so after a restart
