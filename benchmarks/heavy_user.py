"""One heavy user must not stall the rest (issue 36): light users' latency with and without one user of 80,000 events
requesting lists at the same time, and /v1/health meanwhile.

The real server process (uvicorn, a fresh SQLite store) serves ml-100k's zero-shot model (MiniLM, its served options);
200 ml-100k users are the light users, 4 clients request their lists (k = 10) at once; a fifth client requests the heavy
user's list back to back, and a sixth asks /v1/health every 50 ms. Runs: without the heavy user, with it, and with it
but the history cap out of the way (``--history-cap 1000000``: every event read), to show what the cap does.

    python benchmarks/heavy_user.py [--requests 800] [--heavy-events 80000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.app.fitting import fit_for_serving
from anyrec.app.persist import save_model
from anyrec.data import load_dataset
from anyrec.store import Store
from anyrec.store.records import Event

ROOT = Path(__file__).resolve().parents[1]
SERVED = {"half_life": 10.0, "short_term": 0.75, "kernel": 0.1, "popularity": 0.2}  # what `anyrec fit` chose on ml-100k


def start(model: Path, store_url: str, log: Path, *extra: str, src: str = "") -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}  # another source tree's server (a before run)
    proc = subprocess.Popen([sys.executable, "-m", "anyrec", "serve", "--store", store_url, "--model", str(model),
                             "--port", str(port), *extra], stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


def run(base: str, light: list[str], requests: int, heavy: str | None) -> dict[str, Any]:
    stop = threading.Event()
    health: list[float] = []
    heavy_lat: list[float] = []

    def ask_health() -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            while not stop.is_set():
                t = time.perf_counter()
                c.get("/v1/health").raise_for_status()
                health.append(time.perf_counter() - t)
                time.sleep(0.05)

    def ask_heavy() -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            while not stop.is_set():
                t = time.perf_counter()
                c.get(f"/v1/users/{heavy}/recommendations", params={"k": 10}).raise_for_status()
                heavy_lat.append(time.perf_counter() - t)

    side = [threading.Thread(target=ask_health)] + ([threading.Thread(target=ask_heavy)] if heavy else [])
    for t in side:
        t.start()
    clients = [httpx.Client(base_url=base, timeout=60) for _ in range(4)]

    def one(n: int) -> float:
        t = time.perf_counter()
        clients[n % 4].get(f"/v1/users/{light[n % len(light)]}/recommendations", params={"k": 10}).raise_for_status()
        return time.perf_counter() - t

    time.sleep(0.5)
    with ThreadPoolExecutor(max_workers=4) as pool:
        lat = list(pool.map(one, range(requests)))
    stop.set()
    for t in side:
        t.join()
    for c in clients:
        c.close()
    ms = lambda xs, q: round(1000 * float(np.percentile(xs, q)), 1) if xs else None  # noqa: E731
    return {"light_p50_ms": ms(lat, 50), "light_p99_ms": ms(lat, 99), "health_p50_ms": ms(health, 50),
            "health_p99_ms": ms(health, 99), "heavy_p50_ms": ms(heavy_lat, 50), "heavy_requests": len(heavy_lat)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=800)
    ap.add_argument("--heavy-events", type=int, default=80_000)
    ap.add_argument("--src", default="", help="serve from this source tree's src/ (e.g. a worktree of an older commit)")
    ap.add_argument(
        "--no-cap-run",
        action="store_true",
        help="skip the run without a history cap (an older server has no such option)",
    )
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "out" / "heavy-user.json"))
    args = ap.parse_args()
    console = Console(width=160)
    tmp = Path(tempfile.mkdtemp(prefix="anyrec-heavy-"))
    ds = load_dataset("ml-100k")
    cache = os.environ.get("ANYREC_CACHE") or str(Path.home() / ".cache" / "anyrec" / "embeddings")
    model, _, _, index = fit_for_serving("zeroshot", ds, {"encoder.cache_dir": cache, **SERVED}, tune=False)
    folder = save_model(model, ds, tmp / "zeroshot", index)
    rng = np.random.default_rng(0)
    light = [ds.users.raw(int(u)) for u in rng.choice(ds.n_users, 200, replace=False)]
    report: dict[str, Any] = {
        "requests": args.requests,
        "heavy_events": args.heavy_events,
        "src": args.src or "this checkout",
        "runs": {},
    }
    items = ds.catalog.ids.raw_ids
    runs: list[tuple[str, str | None, tuple[str, ...]]] = [
        ("light users alone", None, ()),
        ("with the heavy user", "heavy", ()),
    ]
    if not args.no_cap_run:
        runs.append(("with the heavy user, no history cap", "heavy", ("--history-cap", "1000000")))
    for label, heavy, extra in runs:
        store_url = f"sqlite:///{tmp / (label.replace(' ', '-').replace(',', '') + '.db')}"
        proc, base = start(folder, store_url, tmp / "server.log", *extra, src=args.src)
        try:
            if heavy:
                store = Store.open(store_url)
                picks = rng.integers(0, len(items), args.heavy_events)
                store.add_events([Event(user=heavy, item=items[int(i)], type="view", time=1e9 + n)
                                  for n, i in enumerate(picks)])
                store.close()
            report["runs"][label] = run(base, light, args.requests, heavy)
            console.print(f"{label}: {report['runs'][label]}")
        finally:
            proc.kill()
            proc.wait()
    alone = report["runs"]["light users alone"]
    table = Table(
        title=f"Light users' latency beside one user of {args.heavy_events:,} events (4 clients, k=10, ml-100k)"
    )
    for col in (
        "run",
        "light p50 ms",
        "light p99 ms",
        "× alone (p50 / p99)",
        "/v1/health p50 / p99 ms",
        "heavy list p50 ms",
    ):
        table.add_column(col)
    for label, r in report["runs"].items():
        ratio = f"{r['light_p50_ms'] / alone['light_p50_ms']:.2f} / {r['light_p99_ms'] / alone['light_p99_ms']:.2f}"
        r["ratio_p50"], r["ratio_p99"] = (round(r["light_p50_ms"] / alone["light_p50_ms"], 2),
                                          round(r["light_p99_ms"] / alone["light_p99_ms"], 2))
        table.add_row(label, str(r["light_p50_ms"]), str(r["light_p99_ms"]), ratio,
                      f"{r['health_p50_ms']} / {r['health_p99_ms']}", str(r["heavy_p50_ms"] or "–"))
    console.print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
