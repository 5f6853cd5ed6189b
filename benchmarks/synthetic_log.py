"""A large interaction log over a real catalog: real item texts, synthetic users.

The catalog is the union of real datasets' catalogs (their item texts, ids prefixed by source).
Each synthetic user replays the time-ordered history of a real user drawn at random (from any
source), each item kept with probability ``1 - swap`` or else replaced by one of its ``neighbours``
nearest items by text (cosine of the catalog's MiniLM vectors): sequences keep the real logs'
lengths, popularity and order, while the users are new. Written as a table dataset
(``items.csv``, ``interactions.csv``, ``anyrec.toml``) that every anyrec command reads:

    python benchmarks/synthetic_log.py --users 50000 --out benchmarks/out/synthetic-50k \\
        --source ../shared/data/amazon-beauty/anyrec.toml --source ../shared/data/ml-latest-small
    anyrec evaluate --config benchmarks/out/synthetic-50k/anyrec.toml --models popularity,itemknn,als,bpr,zeroshot

Never written into the repository's tracked files: the texts are the shared datasets' (their
terms forbid redistribution); ``benchmarks/out/`` is ignored by git.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

from anyrec.cli.common import cache_dir, read_source
from anyrec.lm.encoder import DEFAULT_ENCODER, encode_catalog

log = logging.getLogger("synthetic_log")


def neighbours(vectors: np.ndarray, k: int, batch: int = 2048) -> np.ndarray:
    """``(items, k)`` nearest other items by cosine."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out = np.zeros((len(unit), k), dtype=np.int64)
    for s in range(0, len(unit), batch):
        sim = unit[s : s + batch] @ unit.T  # (batch, items)
        sim[np.arange(sim.shape[0]), np.arange(s, s + sim.shape[0])] = -np.inf
        top = np.argpartition(-sim, k, axis=1)[:, :k]
        out[s : s + batch] = np.take_along_axis(top, np.argsort(-np.take_along_axis(sim, top, 1), 1), 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--source", action="append", required=True, help="a dataset folder, name or TOML config (repeatable)"
    )
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--swap", type=float, default=0.3, help="share of items replaced by a text neighbour")
    ap.add_argument("--neighbours", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    t0 = time.perf_counter()
    ids: list[str] = []
    texts: list[str] = []
    real: list[np.ndarray] = []
    for j, source in enumerate(args.source):
        ds = read_source(source)
        real += [s + len(ids) for s in ds.interactions.sequences(ds.n_users) if len(s)]
        ids += [f"s{j}:{ds.catalog.ids.raw(i)}" for i in range(ds.n_items)]
        texts += ds.catalog.texts()
        log.info("%s: %d users, %d items", ds.name, ds.n_users, ds.n_items)
    vectors = encode_catalog(texts, encoder=DEFAULT_ENCODER, cache_dir=cache_dir(False))
    near = neighbours(vectors, args.neighbours)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(out / "interactions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "position"])
        for u, template in enumerate(rng.integers(0, len(real), size=args.users)):
            seq = real[template].copy()
            swap = rng.random(len(seq)) < args.swap
            seq[swap] = near[seq[swap], rng.integers(0, args.neighbours, size=int(swap.sum()))]
            seq = seq[np.r_[True, seq[1:] != seq[:-1]]]  # no item twice in a row
            for p, item in enumerate(seq):
                w.writerow([f"u{u}", ids[item], p])
            rows += len(seq)
    with open(out / "items.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "text"])
        w.writerows(zip(ids, texts))
    (out / "anyrec.toml").write_text(
        '[data]\nitems = "items.csv"\nitem_id = "item_id"\ntext = ["text"]\ninteractions = "interactions.csv"\n'
        'user = "user_id"\nitem = "item_id"\ntime = "position"\n', encoding="utf-8")
    info = {
        "users": args.users,
        "items": len(ids),
        "interactions": rows,
        "sources": args.source,
        "swap": args.swap,
        "neighbours": args.neighbours,
        "seed": args.seed,
        "real_users": len(real),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "synthetic.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    log.info("wrote %s: %s", out, info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
