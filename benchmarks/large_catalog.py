"""A catalog of 100,000 items and a log over it, for the fit time and memory of the item-item models' sparse path.

Items belong to ``--clusters`` groups (a word each in their titles, plus words drawn at random); each user draws
``--length`` items, 80 % from one or two groups (a taste), the rest from anywhere, so items co-occur within groups
as in a real shop. Written as a table dataset (``items.csv``, ``interactions.csv``, ``anyrec.toml``) every anyrec
command reads:

    python benchmarks/large_catalog.py --items 100000 --users 20000 --out benchmarks/out/catalog-100k
    python benchmarks/dense_fit.py --config benchmarks/out/catalog-100k/anyrec.toml --models als,ease,hybrid \\
        --option hybrid.encoder=hashing:256 --json benchmarks/out/catalog-100k/fit.json
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

WORDS = ("lamp desk chair shelf mug towel pillow frame candle basket rug mirror clock vase bowl plate tray jar hook "
         "bin crate stool bench cushion blanket curtain planter kettle pan knife spoon fork cup glass bottle").split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--length", type=int, default=20, help="events per user")
    ap.add_argument("--clusters", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    group = rng.integers(0, args.clusters, args.items)
    with open(out / "items.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("item_id", "title"))
        for i in range(args.items):
            words = " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), 3))
            w.writerow((f"i{i}", f"{words} line{group[i]} no. {i}"))
    members = [np.flatnonzero(group == g) for g in range(args.clusters)]
    events = 0
    with open(out / "interactions.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("user_id", "item_id", "timestamp"))
        for u in range(args.users):
            taste = rng.integers(0, args.clusters, int(rng.integers(1, 3)))
            seen: set[int] = set()
            t = 1_600_000_000
            while len(seen) < args.length:
                pool = members[int(rng.choice(taste))]
                item = (
                    int(pool[rng.integers(len(pool))])
                    if rng.random() < 0.8 and len(pool)
                    else int(rng.integers(args.items))
                )
                if item not in seen:
                    seen.add(item)
                    t += int(rng.integers(60, 86_400))
                    w.writerow((f"u{u}", f"i{item}", t))
                    events += 1
    (out / "anyrec.toml").write_text(
        '[data]\nitems = "items.csv"\nitem_id = "item_id"\ntext = ["title"]\n'
        'interactions = "interactions.csv"\nuser = "user_id"\nitem = "item_id"\ntime = "timestamp"\n'
    )
    print(f"wrote {out}: {args.items:,} items, {args.users:,} users, {events:,} events")


if __name__ == "__main__":
    main()
