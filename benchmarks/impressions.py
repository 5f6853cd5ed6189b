"""The MIND impression protocol on the MIND sample in ../shared/data (AUC, MRR, nDCG@5, nDCG@10 per impression).

The last 20 % of impressions by time are the test; models are fitted on the interactions before that
time (click histories and earlier clicks). Caveat, printed with the table: the sample's news.tsv holds
2,000 news; most shown news are not in it and are dropped from their impression (counted), and most
history clicks have no text. The figures exercise the protocol; they are not accuracy claims.

    python benchmarks/impressions.py [--dataset ../shared/data/mind-small-subset] [--models
    random,popularity,itemknn,zeroshot]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from anyrec.data import load_dataset
from anyrec.data.impressions import read_mind_impressions, split_by_time
from anyrec.eval.impressions import evaluate_impressions
from anyrec.models.registry import build_model

ROOT = Path(__file__).resolve().parents[1]
CACHE = os.environ.get("ANYREC_CACHE") or str(Path.home() / ".cache" / "anyrec" / "embeddings")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "data" / "mind-small-subset"))
    ap.add_argument("--models", default="random,popularity,itemknn,zeroshot")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "out" / "impressions.json"))
    args = ap.parse_args()
    console = Console(width=150)
    ds = load_dataset(args.dataset)
    impressions, report = read_mind_impressions(args.dataset, ds)
    train, test, cut = split_by_time(ds, impressions)
    console.print(
        f"{ds.name}: {report}; test impressions {len(test):,} from "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(cut))} UTC on; "
        f"train interactions {len(train.interactions):,}"
    )
    result: dict[str, Any] = {
        "dataset": ds.name,
        "report": report,
        "test_impressions": len(test),
        "cut": cut,
        "models": {},
    }
    for name in [m for m in args.models.split(",") if m]:
        t0 = time.perf_counter()
        model = build_model(name, 0, {"encoder.cache_dir": CACHE} if name == "zeroshot" else {}).fit(train)
        result["models"][name] = {**evaluate_impressions(model, test), "seconds": round(time.perf_counter() - t0, 1)}
        console.print(name, result["models"][name])
    table = Table(
        title=f"MIND impressions ({len(test):,} test impressions; the sample lacks most news texts: not an accuracy "
        "claim)"
    )
    for col in ("model", "AUC", "MRR", "nDCG@5", "nDCG@10", "s"):
        table.add_column(col, justify="right")
    for name, m in result["models"].items():
        table.add_row(name, *(f"{m[k]:.4f}" for k in ("auc", "mrr", "ndcg@5", "ndcg@10")), f"{m['seconds']}")
    console.print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
