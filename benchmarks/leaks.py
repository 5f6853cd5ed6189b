"""Issue 36's smaller leaks, each as a request and its answer, for a before/after table.

The same requests against whichever anyrec is importable, so a before run serves from another tree:

    python benchmarks/leaks.py --json after.json
    git worktree add /tmp/before 2331830~1      # the commit before issue 36's work
    PYTHONPATH=/tmp/before/src python benchmarks/leaks.py --json before.json

In-process (FastAPI's TestClient) on ml-100k with a hashing-encoder zero-shot model and a fresh SQLite store that
holds ml-100k's 100,000 events; the
start-up banner from a real ``anyrec serve`` process against PostgreSQL (a password in the URL; trust auth ignores it).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

import anyrec
from anyrec.app.persist import save_model
from anyrec.data import load_dataset
from anyrec.models.zeroshot import ZeroShot, ZeroShotConfig
from anyrec.serve import ServeSettings, create_app
from anyrec.store import Store
from anyrec.store.records import Event

PG = "postgresql://postgres:s3cret-pw@127.0.0.1:5432/test"


def short(resp: Any, n: int = 90) -> str:
    body = resp.text.replace("\n", " ")
    return f"{resp.status_code} {body[:n]}{'…' if len(body) > n else ''}"


def banner(model: Path) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyrec", "serve", "--store", PG, "--model", str(model), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if "postgresql" in line:  # the banner may wrap: the store's URL on a line of its own
            break
    proc.terminate()
    proc.wait(timeout=20)
    hit = [ln for ln in lines if "postgresql" in ln]
    return hit[0][:110] if hit else "(no line names the store)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-banner", action="store_true", help="skip the real-process banner check (no PostgreSQL)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="leaks-"))
    ds = load_dataset("ml-100k")
    folder = save_model(ZeroShot(ZeroShotConfig(encoder="hashing:256")).fit(ds), ds, tmp / "zeroshot")
    url = f"sqlite:///{tmp / 'leaks.db'}"
    store = Store.open(url)
    key = store.create_key("leaks")
    # the stats cost is read over a store that holds ml-100k's log: 100,000 events in batches of 5,000
    u, i, t = ds.interactions.user, ds.interactions.item, ds.interactions.time
    for lo in range(0, len(u), 5_000):
        store.add_events([Event(ds.users.raw(int(a)), ds.catalog.ids.raw(int(b)), "view", time=float(c))
                          for a, b, c in zip(u[lo:lo + 5_000], i[lo:lo + 5_000], t[lo:lo + 5_000])])
    store.close()
    rows: list[dict[str, str]] = []

    def row(item: str, request: str, answer: str) -> None:
        rows.append({"item": item, "request": request, "answer": answer})

    settings = ServeSettings(model_dir=str(folder), store_url=url, log_flush_s=0.05)
    with TestClient(create_app(settings)) as c:
        auth = {"Authorization": f"Bearer {key}"}
        r = c.post("/v1/events", headers=auth, json={"user": "b", "item": "1", "type": "view", "time": True})
        stored = c.get("/v1/users/b/history", headers=auth).json().get("events", [])
        row("boolean time", 'POST /v1/events {"time": true}',
            short(r, 60) + (f" · stored at {stored[0].get('time')}" if r.status_code == 200 and stored else ""))
        r = c.post("/v1/events", headers=auth, json={"user": "b", "item": "1", "type": "rating", "value": True})
        row("boolean value", 'POST /v1/events {"type": "rating", "value": true}', short(r, 60))
        r = c.put("/v1/items/%20%20", headers=auth, json={"fields": {"title": "blank"}})
        row("blank item id", "PUT /v1/items/%20%20", short(r, 80))

        def big():
            for _ in range(1_100):
                yield b"x" * 1_000
        r = c.post("/v1/events", headers={**auth, "content-type": "application/json"}, content=big())
        row("chunked body > 1 MB", "POST /v1/events (chunked, 1.1 MB)", short(r, 80))
        r = c.get("/v1/models", headers=auth)
        shown = [v.get("path") for v in r.json()] if r.status_code == 200 else []
        row(
            "model folder path",
            "GET /v1/models",
            f"{r.status_code} path: {shown[0] if shown and shown[0] else 'not shown'}",
        )
        h = c.get("/").headers
        row(
            "anti-framing headers",
            "GET /",
            ", ".join(
                f"{k}: {h.get(k, '—')}"
                for k in ("x-frame-options", "content-security-policy", "x-content-type-options")
            ),
        )
        t0 = time.perf_counter()
        r = c.get("/v1/stats", params={"buckets": 200})
        row(
            "stats without a key",
            "GET /v1/stats?buckets=200 (no key)",
            f"{short(r, 40)} · {1000 * (time.perf_counter() - t0):.0f} ms",
        )
        t0 = time.perf_counter()
        r = c.get("/v1/stats", params={"buckets": 200}, headers=auth)
        row(
            "stats cost",
            "GET /v1/stats?buckets=200 (key)",
            f"{r.status_code} · {1000 * (time.perf_counter() - t0):.0f} ms over {r.json().get('events', 0):,} events",
        )
        # a list shown to nobody's key, k=1000: what the log keeps
        before = Store.open(url)
        with before.engine.connect() as conn:
            n0 = conn.execute(text("select count(*) from recommendations")).scalar()
        r = c.get("/v1/users/1/recommendations", params={"k": 1000})
        time.sleep(0.5)
        with before.engine.connect() as conn:
            n1 = conn.execute(text("select count(*) from recommendations")).scalar()
            size = conn.execute(text("select length(items) from recommendations order by rowid desc limit 1")).scalar()
        row("log row of a k=1000 list", "GET /v1/users/1/recommendations?k=1000 (no key)",
            f"{r.status_code} · {n1 - n0} row(s) written, {size or 0:,} bytes of items")
        before.close()
    # forgotten within milliseconds of a list, the shown lists written a second later (in a batch, as served)
    with TestClient(create_app(ServeSettings(model_dir=str(folder), store_url=url, log_flush_s=1.0))) as c:
        auth = {"Authorization": f"Bearer {key}"}
        c.post("/v1/events", headers=auth, json={"user": "leaver", "item": "1", "type": "like"})
        shown_list = c.get("/v1/users/leaver/recommendations", params={"k": 1000}).json()
        d = c.delete("/v1/users/leaver", headers=auth)
        time.sleep(2.0)
        after = Store.open(url)
        with after.engine.connect() as conn:
            late = conn.execute(text("select count(*) from recommendations where id = :i"),
                                {"i": shown_list.get("recommendation_id", "")}).scalar()
        after.close()
        row("forgotten user's late log row", "GET …/leaver/recommendations, then DELETE /v1/users/leaver",
            f"delete {d.status_code} · {late} row(s) of the earlier list in the log afterwards")
    with TestClient(create_app(ServeSettings(model_dir=str(folder), store_url=url, read_key=True))) as c:
        for path in ("/metrics", "/docs", "/openapi.json"):
            row(f"{path} with --read-key", f"GET {path} (no key)", short(c.get(path), 30))
    if not args.no_banner:
        row("banner", "anyrec serve --store postgresql://postgres:s3cret-pw@…", banner(folder))
    table = Table(title=f"issue 36's smaller leaks · anyrec from {Path(anyrec.__file__).parents[1]}")
    for col in ("item", "request", "answer"):
        table.add_column(col, overflow="fold")
    for r_ in rows:
        table.add_row(r_["item"], r_["request"], r_["answer"])
    Console(width=200).print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"anyrec": str(Path(anyrec.__file__).parents[1]), "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
