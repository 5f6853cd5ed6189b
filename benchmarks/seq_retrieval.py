"""Sequential serving on large catalogs: lists cut from FAISS indexes against scoring every item.

A sequential model (text + ids, ``text_blend`` 0.5) is trained on ml-100k with the real MiniLM
vectors, then its catalog grows the way a served catalog grows (``add_items``: a new item is
scored from its text): each new item is a real film's text vector plus a little noise (many
near-duplicates, hard for an index). For real users' histories (the last ``--users`` of them), the
top 10 by scoring every item ("exact", :meth:`Sequential.score_history` + the house top-k) and
by :class:`anyrec.serve.retrieval.AnnRetrieval` (the model-space index and the text index give
1,000 candidates each, scored exactly, kept when the threshold bound holds, else every item is
scored): latency p50 / p99 (one request at a time), equal lists, the share of requests that fell
back, and each index's recall@10 against exact search on the same users' queries.

    python benchmarks/seq_retrieval.py [--sizes 100000,1000000] [--index "IVF1024,Flat:48"] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.cli.common import cache_dir
from anyrec.data import load_dataset
from anyrec.index.vector import make_index, recall_against_exact
from anyrec.models.registry import build_model
from anyrec.models.scoring import top_k
from anyrec.models.sequential import Sequential
from anyrec.serve.retrieval import AnnRetrieval

ROOT = Path(__file__).resolve().parents[1]
console = Console(width=160)


def grow(model: Sequential, base: np.ndarray, n_items: int, noise: float, rng: np.random.Generator) -> None:
    """Add items until the catalog has ``n_items``: rows of ``base`` (real text vectors) plus noise, in blocks."""
    while model.n_items_ < n_items:
        n = min(100_000, n_items - model.n_items_)
        src = rng.integers(0, len(base), n)
        vecs = base[src] + noise * rng.standard_normal((n, base.shape[1])).astype(np.float32) / np.sqrt(base.shape[1])
        model.add_items(vecs.astype(np.float32))


def measure(model: Sequential, histories: list[np.ndarray], spec: str, k: int) -> dict[str, Any]:
    n = model.n_items_
    t0 = time.perf_counter()
    indexes = {"model": make_index(spec, "ip"), "text": make_index(spec, "cosine")}
    indexes["model"].add(range(n), model.item_space())
    indexes["text"].add(range(n), model.text_table())
    build_s = time.perf_counter() - t0
    ann = AnnRetrieval.for_model(model, indexes, 1)
    assert ann is not None
    allowed = np.ones(n, dtype=bool)
    exact_ms, ann_ms, equal, fell_back = [], [], 0, 0
    for seq in histories:
        w = np.ones(len(seq))
        t0 = time.perf_counter()
        truth = top_k(model.score_history(seq, w), k)
        exact_ms.append(1000 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        found = ann.top(seq, w, np.full(len(seq), np.nan), allowed, k)
        if found is None:  # what the server does then: score every item
            fell_back += 1
            got = top_k(model.score_history(seq, w), k)
        else:
            got = found[0]
        ann_ms.append(1000 * (time.perf_counter() - t0))
        equal += int(np.array_equal(got, truth))
    queries = [model.retrieval_queries(seq, np.ones(len(seq))) for seq in histories]
    recall = {
        name: recall_against_exact(
            indexes[name], table, np.stack([q[0] if name == "model" else q[1] for q in queries]), k
        )  # type: ignore[index]
        for name, table in (("model", model.item_space()), ("text", model.text_table()))
    }
    return {
        "items": n,
        "index": spec,
        "build_s": round(build_s, 1),
        "users": len(histories),
        "exact_p50_ms": round(float(np.percentile(exact_ms, 50)), 2),
        "exact_p99_ms": round(float(np.percentile(exact_ms, 99)), 2),
        "ann_p50_ms": round(float(np.percentile(ann_ms, 50)), 2),
        "ann_p99_ms": round(float(np.percentile(ann_ms, 99)), 2),
        "equal_lists": equal,
        "fell_back": fell_back,
        "model_index_recall@10": round(recall["model"], 4),
        "text_index_recall@10": round(recall["text"], 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--index", default="IVF1024,Flat:48")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--noise", type=float, default=0.15)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", default=str(ROOT / "results" / "seq-retrieval.json"))
    args = ap.parse_args()
    ds = load_dataset("ml-100k")
    t0 = time.perf_counter()
    model = build_model("sequential", 0, {"cache_dir": cache_dir(False), "epochs": args.epochs, "patience": args.epochs,
                                          "text_blend": 0.5, "threads": 2, "seed": 0}).fit(ds)
    assert isinstance(model, Sequential)
    console.print(f"trained sequential on ml-100k in {time.perf_counter() - t0:.0f} s ({args.epochs} epochs)")
    base = model.text_table().copy()
    seqs = ds.interactions.sequences(ds.n_users)
    histories = [s for s in seqs if len(s)][-args.users :]
    rng = np.random.default_rng(0)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        grow(model, base, size, args.noise, rng)
        rows.append(measure(model, histories, args.index, args.k))
        console.print(rows[-1])
    table = Table(title=f"sequential top-{args.k} from indexes vs every item scored: ml-100k model, catalog grown with "
                        f"noisy copies of real text vectors, {args.users} users, one request at a time")
    for col in (
        "items",
        "index",
        "build s",
        "exact p50 / p99 ms",
        "indexes p50 / p99 ms",
        "speed-up (p50)",
        "equal lists",
        "fell back",
        "recall@10 model / text index",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['items']:,}", r["index"], f"{r['build_s']}", f"{r['exact_p50_ms']} / {r['exact_p99_ms']}",
                      f"{r['ann_p50_ms']} / {r['ann_p99_ms']}", f"{r['exact_p50_ms'] / r['ann_p50_ms']:.1f}×",
                      f"{r['equal_lists']} / {r['users']}", str(r["fell_back"]),
                      f"{r['model_index_recall@10']:.4f} / {r['text_index_recall@10']:.4f}")
    console.print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"epochs": args.epochs, "noise": args.noise, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
