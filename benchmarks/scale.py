"""Vector indexes on large catalogs: build time, memory, query latency and recall against exact search.

Catalogs of 100k and 1M items are built from real item-text vectors (ml-100k's films through the
offline MiniLM encoder), each replicated with a little Gaussian noise so nobody waits an hour for
embeddings; queries are user-like profiles (the normalised mean of 5 random catalog vectors). Exact
top-10 by brute force is the ground truth. One query at a time, on the index's own threads.

    python benchmarks/scale.py [--sizes 100000,1000000] [--indexes "HNSW32:64;IVF4096,Flat:32"] [--json OUT]

An index spec is ``FACTORY[:SEARCH]``: SEARCH is efSearch for HNSW, nprobe for IVF.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.data import load_dataset
from anyrec.index.vector import FaissIndex
from anyrec.lm.encoder import EncoderConfig, TextEncoder

ROOT = Path(__file__).resolve().parents[1]
CACHE = os.environ.get("ANYREC_CACHE") or str(Path.home() / ".cache" / "anyrec" / "embeddings")
console = Console(width=160)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def catalog(base: np.ndarray, n: int, seed: int = 0, noise: float = 0.35) -> np.ndarray:
    """``n`` unit vectors: base vectors in turn, each plus noise (relative to a unit vector's spread per axis)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        stop = min(n, start + step)
        v = base[np.arange(start, stop) % len(base)] + noise * rng.standard_normal(
            (stop - start, base.shape[1])
        ).astype(np.float32) / np.sqrt(base.shape[1])
        out[start:stop] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 50):
        s = queries[start:start + 50] @ vectors.T  # (50, n)
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1)
        out[start:start + 50] = np.take_along_axis(part, order, axis=1)
    return out


def run_index(spec: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int) -> dict[str, Any]:
    factory, _, search = spec.partition(":")
    index = FaissIndex(factory, "cosine", nprobe=int(search or 16), ef_search=int(search or 64))
    before = rss_mb()
    t0 = time.perf_counter()
    index.add(np.arange(len(vectors)), vectors)
    build = time.perf_counter() - t0
    grown = rss_mb() - before
    lat = []
    found = np.empty_like(truth)
    for q in range(len(queries)):
        t0 = time.perf_counter()
        ids, _ = index.search(queries[q:q + 1], k)
        lat.append(time.perf_counter() - t0)
        found[q] = ids[0]
    recall = float(np.mean([len(set(found[q]) & set(truth[q])) / k for q in range(len(queries))]))
    a = np.array(lat) * 1000
    del index
    return {
        "index": spec,
        "build_s": round(build, 1),
        "memory_mb": round(grown, 0),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "recall@10": round(recall, 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--indexes", default="HNSW32:64;HNSW32:128;IVF4096,Flat:16;IVF4096,Flat:48")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "out" / "scale.json"))
    args = ap.parse_args()
    base = TextEncoder(EncoderConfig(cache_dir=CACHE)).encode(load_dataset("ml-100k").catalog.texts())
    base = base / np.linalg.norm(base, axis=1, keepdims=True)
    specs = [s.strip() for s in args.indexes.split(";") if s.strip()]  # FAISS factories contain commas
    report: dict[str, Any] = {"cores": os.cpu_count(), "runs": []}
    for n in [int(x) for x in args.sizes.split(",") if x]:
        t0 = time.perf_counter()
        vectors = catalog(base, n)
        rng = np.random.default_rng(1)
        queries = np.stack([vectors[rng.choice(n, 5, replace=False)].mean(0) for _ in range(args.queries)])
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        t1 = time.perf_counter()
        truth = exact_top(vectors, queries, 10)
        exact_ms = (time.perf_counter() - t1) / len(queries) * 1000
        console.print(
            f"[{n:,} items] catalog built in {t1 - t0:.0f} s; exact search {exact_ms:.1f} ms per query (batched by 50)"
        )
        report["runs"].append(
            {
                "items": n,
                "index": "exact (numpy, batched)",
                "build_s": 0.0,
                "memory_mb": round(vectors.nbytes / 2**20),
                "p50_ms": round(exact_ms, 3),
                "p99_ms": None,
                "recall@10": 1.0,
            }
        )
        for spec in specs:
            row = {"items": n, **run_index(spec, vectors, queries, truth, 10)}
            console.print(row)
            report["runs"].append(row)
        del vectors
    table = Table(
        title=f"ANN indexes against exact search ({args.queries} user-like queries, top-10, {os.cpu_count()} cores)"
    )
    for col in ("items", "index", "build s", "memory MB", "p50 ms", "p99 ms", "Recall@10"):
        table.add_column(col, justify="right")
    for r in report["runs"]:
        table.add_row(f"{r['items']:,}", r["index"], f"{r['build_s']}", f"{r['memory_mb']:.0f}", f"{r['p50_ms']}",
                      "–" if r["p99_ms"] is None else f"{r['p99_ms']}", f"{r['recall@10']:.4f}")
    console.print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
