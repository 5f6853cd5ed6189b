"""The service under load, and how fast an event shows in the next list.

Speed: a zero-shot model on synthetic catalogs of 10k and 100k items built from ml-100k's real
texts (each item is a real film's text vector plus a little noise, titled "<film> #n"; synthetic
users with Zipf-skewed histories), served by the real server process (uvicorn, SQLite store) and
driven by a bounded httpx load client on the loopback. Reported beside the in-process
``model.recommend`` time for the same users (the HTTP + store overhead as a ratio), and the
in-process live path (store read + live scoring, no HTTP) that sits between them.

Freshness: on ml-100k with the real MiniLM zero-shot model, for each of N users: list, post a
dislike of the top item, list again (event-to-visible time = from sending the event to receiving
the new list); then a like of an item from far down the list. The disliked item's nearest
neighbours (by text, within the list) should fall and the liked item's should rise, against a
control of random list items.

    python benchmarks/serve.py [--sizes 10000,100000] [--requests 2000] [--repeat 3] [--freshness-users 200]
                               [--server-threads 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from anyrec.app.fitting import fit_for_serving
from anyrec.app.persist import save_model
from anyrec.data import load_dataset
from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.dataset import Dataset
from anyrec.index.vector import make_index
from anyrec.lm.encoder import EncoderConfig, TextEncoder
from anyrec.models.zeroshot import ZeroShot, ZeroShotConfig
from anyrec.serve.live import LiveModel
from anyrec.store import Store

ROOT = Path(__file__).resolve().parents[1]
CACHE = os.environ.get("ANYREC_CACHE") or str(Path.home() / ".cache" / "anyrec" / "embeddings")
console = Console(width=160)


def synthetic(
    base: Dataset, vectors: np.ndarray, n_items: int, n_users: int, per_user: int, seed: int = 0
) -> tuple[Dataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = np.arange(n_items) % base.n_items
    vecs = vectors[src] + 0.15 * rng.standard_normal((n_items, vectors.shape[1])).astype(np.float32) / np.sqrt(
        vectors.shape[1]
    )
    builder = DatasetBuilder(ReadPolicy(), fields=["title", "genres"])
    genres = base.catalog.fields.get("genres") or base.catalog.fields.get("class") or [""] * base.n_items
    for i in range(n_items):
        builder.add_item(
            f"i{i}",
            {"title": f"{base.catalog.title(int(src[i]))} #{i // base.n_items}", "genres": genres[src[i]]},
            path="synthetic",
            line=i + 1,
            field="id",
        )
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    line = 0
    for u in range(n_users):
        for n, i in enumerate(rng.choice(n_items, size=per_user, replace=False, p=pop)):
            line += 1
            builder.add_interaction(f"u{u}", f"i{i}", time=float(n), path="synthetic", line=line)
    return builder.build(f"synthetic-{n_items}", template="{title}. {genres}", category_field="genres"), vecs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model_dir: Path, store_url: str, log: Path, threads: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anyrec",
            "serve",
            "--model",
            str(model_dir),
            "--store",
            store_url,
            "--port",
            str(port),
            "--threads",
            str(threads),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start in 10 minutes")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    base: str, users: list[str], n: int, concurrency: int, k: int = 10, pid: int | None = None
) -> dict[str, float]:
    """``n`` GET /recommendations spread over ``concurrency`` keep-alive connections; client-side latencies.

    The client is the standard library's ``http.client`` (one keep-alive connection per thread):
    it shares the 2 cores with the server, and costs far less CPU per request than httpx.
    """
    host, port = base.rsplit("//", 1)[1].split(":")
    lat: list[float] = []
    failed = [0]
    lock = threading.Lock()

    def worker(w: int) -> None:
        mine: list[float] = []
        bad = 0
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        for j in range(w, n, concurrency):
            t0 = time.perf_counter()
            conn.request("GET", f"/v1/users/{users[j % len(users)]}/recommendations?k={k}")
            r = conn.getresponse()
            body = r.read()
            mine.append(time.perf_counter() - t0)
            bad += r.status != 200 or not body.startswith(b'{"user"')
        conn.close()
        with lock:
            lat.extend(mine)
            failed[0] += bad

    cpu0 = cpu_seconds(pid) if pid else 0.0
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    a = np.array(lat) * 1000
    out = {"requests": n, "concurrency": concurrency, "failed": failed[0], "rps": round(n / wall, 1),
           "p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2)}
    if pid:
        out["server_cpu_ms_per_request"] = round((cpu_seconds(pid) - cpu0) / n * 1000, 3)
    return out


def timed(fn: Any, users: list[Any]) -> dict[str, float]:
    for u in users[:20]:
        fn(u)
    lat = []
    for u in users:
        t0 = time.perf_counter()
        fn(u)
        lat.append(time.perf_counter() - t0)
    a = np.array(lat) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3)}


def speed(n_items: int, base: Dataset, vectors: np.ndarray, requests: int, tmp: Path, threads: int = 1,
          repeat: int = 3, index_spec: str = "") -> dict[str, Any]:
    t0 = time.perf_counter()
    ds, vecs = synthetic(base, vectors, n_items, n_users=2_000, per_user=20)
    model = ZeroShot(
        ZeroShotConfig(encoder={"cache_dir": CACHE}, popularity=0.1, half_life=3.0), item_vectors=vecs
    ).fit(ds)
    index = None
    if index_spec:  # the server retrieves from it (catalogs of 50k items and more), then scores the candidates
        index = make_index(index_spec)
        index.add(range(ds.n_items), model.item_vectors_)
    folder = save_model(model, ds, tmp / f"zs-{n_items}-{index_spec or 'exact'}", index)
    console.print(
        f"[{n_items:,} items] catalog and model built in {time.perf_counter() - t0:.0f} s; starting the server"
    )
    store_url = f"sqlite:///{tmp / f'serve-{n_items}.db'}"
    t0 = time.perf_counter()
    proc, url = start_server(folder, store_url, tmp / f"server-{n_items}.log", threads)
    startup = time.perf_counter() - t0
    users = [f"u{u}" for u in np.random.default_rng(1).integers(0, 2_000, size=requests)]
    runs: dict[int, list[dict[str, float]]] = {1: [], 4: []}
    try:
        for r in range(repeat):
            for conc in (1, 4):
                runs[conc].append(load(url, users, requests, conc, pid=proc.pid))
                console.print(f"[{n_items:,} items] run {r + 1}/{repeat}, {conc} client(s): {runs[conc][-1]}")
        one, four = (sorted(runs[c], key=lambda x: x["rps"])[len(runs[c]) // 2] for c in (1, 4))  # the median run
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    idx = [ds.users.index(u) for u in users[:500]]
    in_proc = timed(lambda u: model.recommend(np.array([u]), 10), idx)  # the fitted history, no store, no HTTP
    store = Store.open(store_url)
    live = LiveModel("bench", folder)
    live.sync(store)
    live_path = timed(lambda u: live.recommend(u, store.history(u), 10, user_since=store.user_since(u)), users[:500])
    store.close()
    agree = ann_agreement(folder, store_url, users[:300]) if index_spec else None
    return {
        "items": n_items,
        "index": index_spec or "none (every item scored)",
        "ann_top10_agreement": agree,
        "server_threads": threads,
        "server_start_s": round(startup, 1),
        "http_1_client": one,
        "http_4_clients": four,
        "runs_rps": {str(c): [x["rps"] for x in runs[c]] for c in runs},
        "in_process_recommend": in_proc,
        "in_process_live": live_path,
        "http_over_recommend_p50": round(one["p50_ms"] / in_proc["p50_ms"], 2),
        "http_over_live_path_p50": round(one["p50_ms"] / live_path["p50_ms"], 2),
    }


def ann_agreement(folder: Path, store_url: str, users: list[str]) -> float:
    """Share of the top-10 that the index path has in common with scoring every item (same users)."""
    store = Store.open(store_url)
    exact, approx = LiveModel("exact", folder, ann_min_items=10**12), LiveModel("ann", folder, ann_min_items=1)
    exact.sync(store)
    approx.sync(store)
    shared = []
    for u in users:
        since, rows = store.user_state(u)
        a = set(exact.recommend(u, rows, 10, user_since=since).items)
        b = set(approx.recommend(u, rows, 10, user_since=since).items)
        shared.append(len(a & b) / max(1, len(a)))
    store.close()
    return round(float(np.mean(shared)), 4)


def freshness(users_n: int, tmp: Path) -> dict[str, Any]:
    ds = load_dataset("ml-100k")
    model, tuned, metrics, index = fit_for_serving("zeroshot", ds, {"encoder.cache_dir": CACHE}, seed=0, tune=True)
    folder = save_model(model, ds, tmp / "ml-zs", index, extra={"tuned": tuned, "metrics": metrics})
    store_url = f"sqlite:///{tmp / 'fresh.db'}"
    store = Store.open(store_url)
    key = store.create_key("bench")
    store.close()
    proc, url = start_server(folder, store_url, tmp / "server-fresh.log")
    rng = np.random.default_rng(0)
    picked = rng.choice(ds.n_users, size=users_n, replace=False)
    out: dict[str, list[float]] = {k: [] for k in ("visible_ms", "post_ms", "gone", "dislike_near", "dislike_ctrl",
                                                   "like_near", "like_ctrl")}
    k = 100

    def ranks(c: httpx.Client, user: str) -> list[str]:
        return [i["id"] for i in c.get(f"/v1/users/{user}/recommendations", params={"k": k}).json()["items"]]

    def moves(before: list[str], after: list[str], items: list[str]) -> float:
        return float(np.mean([(after.index(i) if i in after else k) - before.index(i) for i in items]))

    try:
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as c:
            for u in picked:
                user = ds.users.raw(int(u))
                before = ranks(c, user)
                top = before[0]
                near = [
                    i["id"]
                    for i in c.get(f"/v1/items/{top}/similar", params={"k": 200}).json()["items"]
                    if i["id"] in before[1:]
                ][:10]
                ctrl = [before[j] for j in rng.choice(np.arange(1, k), size=10, replace=False) if before[j] not in near]
                t0 = time.perf_counter()
                c.post("/v1/events", json={"user": user, "item": top, "type": "dislike"})
                t1 = time.perf_counter()
                after = ranks(c, user)
                t2 = time.perf_counter()
                out["post_ms"].append((t1 - t0) * 1000)
                out["visible_ms"].append((t2 - t0) * 1000)
                out["gone"].append(float(top not in after))
                rest = [i for i in before if i != top]
                out["dislike_near"].append(moves(rest, after, near))
                out["dislike_ctrl"].append(moves(rest, after, ctrl))
                liked = after[-20]  # an item from far down the list
                near = [
                    i["id"]
                    for i in c.get(f"/v1/items/{liked}/similar", params={"k": 200}).json()["items"]
                    if i["id"] in after
                ][:10]
                ctrl = [
                    after[j]
                    for j in rng.choice(np.arange(k), size=10, replace=False)
                    if after[j] not in near and after[j] != liked
                ]
                c.post("/v1/events", json={"user": user, "item": liked, "type": "like"})
                again = ranks(c, user)
                rest = [i for i in after if i != liked]
                out["like_near"].append(moves(rest, again, near))
                out["like_ctrl"].append(moves(rest, again, ctrl))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"users": users_n, "list_k": k, "median_event_to_visible_ms": round(float(np.median(out["visible_ms"])), 2),
            "p99_event_to_visible_ms": round(float(np.percentile(out["visible_ms"], 99)), 2),
            "median_post_ms": round(float(np.median(out["post_ms"])), 2),
            "disliked_item_gone": round(float(np.mean(out["gone"])), 4),
            "dislike_neighbours_mean_rank_change": round(float(np.mean(out["dislike_near"])), 2),
            "dislike_control_mean_rank_change": round(float(np.mean(out["dislike_ctrl"])), 2),
            "dislike_neighbours_fell_share": round(float(np.mean(np.array(out["dislike_near"]) > 0)), 4),
            "like_neighbours_mean_rank_change": round(float(np.mean(out["like_near"])), 2),
            "like_control_mean_rank_change": round(float(np.mean(out["like_ctrl"])), 2),
            "like_neighbours_rose_share": round(float(np.mean(np.array(out["like_near"]) < 0)), 4)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--requests", type=int, default=2_000)
    ap.add_argument(
        "--repeat", type=int, default=3, help="load runs per setting; the median run (by requests/s) is reported"
    )
    ap.add_argument("--freshness-users", type=int, default=200)
    ap.add_argument("--server-threads", type=int, default=1, help="anyrec serve --threads (0 = the libraries' default)")
    ap.add_argument(
        "--index", default="", help="save the models with this FAISS index (e.g. HNSW32): the server retrieves from it"
    )
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "out" / "serve.json"))
    args = ap.parse_args()
    if args.server_threads > 0:
        threadpool_limits(args.server_threads)  # the in-process timings run with the server's thread count
    report: dict[str, Any] = {"machine": f"{os.cpu_count()} cores; server and load client share them",
                              "server_threads": args.server_threads}
    with tempfile.TemporaryDirectory(prefix="anyrec-serve-") as tmpdir:
        tmp = Path(tmpdir)
        base = load_dataset("ml-100k")
        vectors = TextEncoder(EncoderConfig(cache_dir=CACHE)).encode(base.catalog.texts())
        report["speed"] = [
            speed(int(n), base, vectors, args.requests, tmp, args.server_threads, args.repeat, args.index)
            for n in args.sizes.split(",")
            if n
        ]
        if args.freshness_users:
            report["freshness"] = freshness(args.freshness_users, tmp)
            console.print(report["freshness"])
    table = Table(
        title="GET /v1/users/{u}/recommendations?k=10 (zero-shot, SQLite store, uvicorn; client on the same 2 cores)"
        + (
            f"; retrieval from {args.index}, top-10 agreement with exact "
            + ", ".join(str(s["ann_top10_agreement"]) for s in report["speed"])
            if args.index
            else ""
        )
    )
    for col in ("items", "1 client p50 / p99 ms", "1 client req/s", "4 clients p50 / p99 ms", "4 clients req/s",
                "model.recommend p50 ms", "live path p50 ms", "HTTP ÷ model.recommend", "HTTP ÷ live path"):
        table.add_column(col, justify="right")
    for s in report["speed"]:
        one, four = s["http_1_client"], s["http_4_clients"]
        table.add_row(
            f"{s['items']:,}",
            f"{one['p50_ms']} / {one['p99_ms']}",
            f"{one['rps']}",
            f"{four['p50_ms']} / {four['p99_ms']}",
            f"{four['rps']}",
            f"{s['in_process_recommend']['p50_ms']}",
            f"{s['in_process_live']['p50_ms']}",
            f"{s['http_over_recommend_p50']}",
            f"{s['http_over_live_path_p50']}",
        )
    console.print(table)
    if "freshness" in report:
        f = report["freshness"]
        t = Table(title=f"Freshness on ml-100k (zero-shot, MiniLM): {f['users']} users, lists of {f['list_k']}")
        t.add_column("measure")
        t.add_column("value", justify="right")
        for key, val in f.items():
            t.add_row(key, str(val))
        console.print(t)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
