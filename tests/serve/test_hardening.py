"""The smaller leaks of issue 36, each as a request and its answer: booleans as times or values, blank path ids,
chunked bodies past the limit, the model folder's path, anti-framing headers, a forgotten user's late log row, the
store password in the start-up banner, and a cheap /v1/stats."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url
from tests.serve.conftest import Launch

from anyrec.serve import ServeSettings, create_app
from anyrec.store import Store
from anyrec.store.schema import recommendations


@pytest.fixture
def client(zeroshot_dir: Path, store_url: str, api_key: str):
    settings = ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url, log_flush_s=0.05)
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {api_key}"
        yield c


def test_booleans_are_no_times_or_values(client: TestClient) -> None:
    r = client.post("/v1/events", json={"user": "b", "item": "s1", "type": "view", "time": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "time"]  # was 200, stored at 1970-01-01
    r = client.post("/v1/events", json={"user": "b", "item": "s1", "type": "rating", "value": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "value"]


def test_a_blank_path_id_is_refused(client: TestClient) -> None:
    r = client.put("/v1/items/%20%20", json={"fields": {"title": "blank"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "item"]  # was 200, an item "  " stored


def test_a_chunked_body_past_the_limit_is_413(client: TestClient) -> None:
    def big():
        for _ in range(1_100):
            yield b"x" * 1_000

    r = client.post("/v1/events", content=big(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body"]  # was 400 "error parsing the body"

    def small():
        yield b'{"user": "chunked", "item": '
        yield b'"s1", "type": "view"}'

    assert client.post("/v1/events", content=small(), headers={"content-type": "application/json"}).status_code == 200


def test_no_folder_path_and_anti_framing_headers(client: TestClient) -> None:
    versions = client.get("/v1/models").json()
    assert versions and all("path" not in v for v in versions)  # was the absolute folder on the server
    h = client.get("/").headers
    assert h["x-frame-options"] == "DENY" and h["content-security-policy"] == "frame-ancestors 'none'"
    assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer"


def test_a_user_forgotten_right_after_a_list_keeps_no_log_row(client: TestClient, store_url: str) -> None:
    assert client.post("/v1/events", json={"user": "leaver", "item": "s1", "type": "like"}).status_code == 200
    shown = client.get("/v1/users/leaver/recommendations", params={"k": 1000}).json()  # queued for the log
    assert client.delete("/v1/users/leaver").status_code == 200  # within milliseconds, before the log is written
    time.sleep(0.5)
    assert (
        client.get("/v1/users/leaver/recommendations", params={"k": 5}).status_code == 200
    )  # comes back: logged again
    time.sleep(0.5)
    store = Store.open(store_url)
    with store.engine.connect() as conn:
        rows = conn.execute(select(recommendations.c.id, recommendations.c["items"])
                            .where(recommendations.c.user_id == "leaver")).all()
    store.close()
    assert [r.id for r in rows if r.id == shown["recommendation_id"]] == []  # was written after the delete
    assert len(rows) == 1 and rows[0].items.count(",") < 100  # the later list is logged, at most 100 items a row


def test_stats_timeline_in_two_queries_with_the_right_counts(client: TestClient) -> None:
    events = client.get("/v1/stats", params={"buckets": 200}).json()
    assert len(events["timeline"]) == 200 and events["timeline"][-1]["events"] == events["events"]
    assert events["timeline"][-1]["items"] == events["items"]
    counts = [b["events"] for b in events["timeline"]]
    assert counts == sorted(counts)  # cumulative


def test_the_banner_hides_the_store_password(
    zeroshot_dir: Path, store_url: str, launch: Launch, tmp_path: Path
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("a password is part of a server URL; this machine's PostgreSQL accepts any (trust)")
    url = make_url(store_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    launch(url, zeroshot_dir)
    logged = (tmp_path / "server.log").read_text()
    assert "anyrec serving on" in logged and "s3cret-pw" not in logged and "***" in logged


def test_a_long_history_is_capped_and_scored_off_the_event_loop(zeroshot_dir: Path, store_url: str, api_key: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A request reads the user's most recent ``history_cap`` events (older ones neither score nor hide), and is
    scored in a worker thread: the event loop stays free for everyone else."""
    import asyncio
    import threading

    from anyrec.serve.live import LiveModel

    threads: list[str] = []
    inner = LiveModel.recommend

    def spy(self, *a, **kw):  # type: ignore[no-untyped-def]
        try:
            asyncio.get_running_loop()
            threads.append("the event loop")
        except RuntimeError:  # no loop runs in this thread: a worker thread
            threads.append(threading.current_thread().name)
        return inner(self, *a, **kw)

    monkeypatch.setattr(LiveModel, "recommend", spy)
    settings = ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url, history_cap=3)
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        old = [{"user": "long", "item": f"g{n}", "type": "view", "time": 1_000 + n} for n in range(6)]
        recent = [{"user": "long", "item": f"s{n}", "type": "view", "time": 2_000 + n} for n in range(3)]
        assert client.post("/v1/events", json=old + recent).status_code == 200
        body = client.get("/v1/users/long/recommendations", params={"k": 36}).json()
    shown = [i["id"] for i in body["items"]]
    assert not {"s0", "s1", "s2"} & set(shown)  # the 3 most recent are hidden ...
    assert {"g0", "g1"} <= set(shown)  # ... the older ones are not read at all
    assert shown[0].startswith("s")  # and the list follows the recent space stories, not the older ghost ones
    assert threads and "the event loop" not in threads


def test_the_banner_names_a_store_given_as_a_path(zeroshot_dir: Path, launch: Launch, tmp_path: Path) -> None:
    """``--store results/demo.db`` (a path, as `make demo` gives it) starts the server (the banner's URL parse took it
    down with a traceback)."""
    path = str(tmp_path / "plain.db")
    launch(path, zeroshot_dir)
    assert f"store {path}" in (tmp_path / "server.log").read_text().replace("\n", "")
