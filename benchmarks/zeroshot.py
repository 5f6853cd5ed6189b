"""Zero-shot text recommender beside the id baselines, with what each option changes.

For each dataset: leave-one-out with popularity, item-kNN, ALS and zero-shot (options chosen on
the validation split), then zero-shot with each option switched off in turn (text only, no
popularity prior, no recency, no trend), and multi-interest; then the cold-item protocol with
the random (chance) baseline. Prints tables and writes JSON.

    python benchmarks/zeroshot.py [--datasets ml-100k,../shared/data/amazon-scientific] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from anyrec.data import load_dataset
from anyrec.data.split import SplitConfig, make_split
from anyrec.eval.experiment import ExperimentConfig, run_experiment
from anyrec.lm.encoder import EncoderConfig, TextEncoder

ROOT = Path(__file__).resolve().parents[1]
ABLATIONS = {
    "text only": {"popularity": 0.0, "half_life": 0.0, "trend": 0.0, "ratings": False},
    "− popularity prior": {"popularity": 0.0},
    "− short term": {"half_life": 0.0},
    "− ratings": {"ratings": False},
    "− trend": {"trend": 0.0},
    "+ 3 interests": {"interests": 3},
}


def run(
    ds: Any, vectors: Any, protocol: str, models: tuple[str, ...], zs: dict[str, Any] | None = None, tune: bool = True
) -> dict[str, Any]:
    split = make_split(ds, SplitConfig(protocol=protocol))
    cfg = ExperimentConfig(models=models, ks=(10,), split=SplitConfig(protocol=protocol), tune=tune,
                           model_options={"zeroshot": zs or {}})
    return run_experiment(ds, cfg, split=split, item_vectors=vectors)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="ml-100k," + str(ROOT.parent / "shared" / "data" / "amazon-scientific"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "out" / "zeroshot.json"))
    args = ap.parse_args()
    console = Console(width=170)
    cache = os.environ.get("ANYREC_CACHE") or str(Path.home() / ".cache" / "anyrec" / "embeddings")
    encoder = TextEncoder(EncoderConfig(cache_dir=cache))
    report: dict[str, Any] = {}
    for source in [s for s in args.datasets.split(",") if s]:
        if source != "ml-100k" and not Path(source).exists():
            console.print(f"[yellow]{source} missing, skipped[/]")
            continue
        ds = load_dataset(source)
        vectors = encoder.encode(ds.catalog.texts())
        rows: dict[str, dict[str, float]] = {}
        base = run(ds, vectors, "loo", ("popularity", "itemknn", "als", "zeroshot"))
        tuned = {k: v for k, v in base["tuned"]["zeroshot"].items() if not k.startswith("valid_")}
        rows.update({m: base["models"][m] for m in ("popularity", "itemknn", "als")})
        rows[f"zeroshot (tuned: {', '.join(f'{k}={v}' for k, v in tuned.items())})"] = base["models"]["zeroshot"]
        for label, change in ABLATIONS.items():
            res = run(ds, vectors, "loo", ("zeroshot",), {**tuned, **change}, tune=False)
            rows[f"zeroshot {label}"] = res["models"]["zeroshot"]
        cold = run(ds, vectors, "cold-item", ("random", "popularity", "itemknn", "als", "zeroshot"))
        pop = rows["popularity"]["ndcg@10"]
        table = Table(title=f"{ds.name} · leave-one-out · full ranking")
        for col in ("model", "NDCG@10", "Recall@10", "× popularity", "× item-kNN", "× ALS"):
            table.add_column(col, justify="right")
        for name, m in rows.items():
            table.add_row(
                name,
                f"{m['ndcg@10']:.4f}",
                f"{m['recall@10']:.4f}",
                f"{m['ndcg@10'] / pop:.2f}",
                f"{m['ndcg@10'] / rows['itemknn']['ndcg@10']:.2f}",
                f"{m['ndcg@10'] / rows['als']['ndcg@10']:.2f}",
            )
        console.print(table)
        ctable = Table(title=f"{ds.name} · cold-item ({cold['split']['test_items']} held-out items, ranked among them)")
        for col in ("model", "Recall@10", "NDCG@10", "zero-shot Recall@10 ÷ this"):
            ctable.add_column(col, justify="right")
        zr = cold["models"]["zeroshot"]["recall@10"]
        for name, m in cold["models"].items():
            ctable.add_row(
                name,
                f"{m['recall@10']:.4f}",
                f"{m['ndcg@10']:.4f}",
                f"{zr / m['recall@10']:.1f}" if m["recall@10"] else "∞ (0)",
            )
        console.print(ctable)
        report[ds.name] = {"loo": rows, "tuned": tuned, "cold_item": cold["models"], "cold_split": cold["split"]}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
