"""Training the sequential model at scale: full softmax vs sampled softmax, wall time and accuracy.

One dataset (a named one, a folder or a ``--config`` table), leave-one-out, anyrec's evaluator
(full ranking, whole history masked, history at test = training + validation, held-out items lose
ties). Each variant is fitted on the training rows with validation early stopping (NDCG@10 after
every epoch, patience ``sequential.patience``) under the same budget and options, then read on
test. Variants: ``full`` (full softmax) or a number N (sampled softmax, N shared uniform
negatives per batch). Score-time options are not tuned (``text_blend`` stays as given), so the
rows differ only in the loss.

    python benchmarks/train_scale.py --config ../shared/data/amazon-beauty/anyrec.toml \\
        --variants full,1024 --option sequential.threads=2 --option sequential.max_minutes=15

Prints a table, writes JSON (``--json``); the training log of each variant (loss, validation
NDCG@10 and seconds per epoch) is in the JSON too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from anyrec.cli.common import parse_options, read_source
from anyrec.cli.evaluate import with_text_defaults
from anyrec.data.split import SplitConfig, make_split
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.flow import fit_one, validator


def run_variant(variant: str, ds: Any, split: Any, opts: dict[str, Any], seed: int) -> dict[str, Any]:
    options = dict(opts)
    options["sampled_softmax"] = 0 if variant == "full" else int(variant)
    options = with_text_defaults("sequential", options, None, False)
    t0 = time.perf_counter()
    model = fit_one("sequential", seed, options, split.train_dataset(ds), validator(ds, split, 10), None, None)
    fit_s = time.perf_counter() - t0
    model.set_history(split.history_dataset(ds, "test"))
    metrics = evaluate_model(model, ds, split, "test", (10, 20))
    log = model.report_.epochs
    budget = float(options.get("max_minutes", 0.0))
    stopped = "budget" if budget and log and log[-1]["seconds"] / 60 > budget else "early stopping"
    if len(log) >= int(options.get("epochs", 200)):
        stopped = "epoch limit"
    return {"variant": variant, "fit_seconds": round(fit_s, 1), "epochs": len(log), "stopped_by": stopped,
            "best_valid_ndcg@10": model.report_.best_valid_ndcg, "test": metrics, "log": log, "options": options}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--config", default=None, help="TOML config for a table dataset")
    ap.add_argument("--variants", default="full,1024", help="comma-separated: full and/or numbers of sampled negatives")
    ap.add_argument("--option", action="append", default=[], help="sequential.FIELD=VALUE, for every variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    ds = read_source(args.dataset, args.config)
    opts = parse_options(args.option).get("sequential", {})
    split = make_split(ds, SplitConfig(protocol="loo", seed=args.seed))
    rows = []
    for variant in args.variants.split(","):
        logging.info("variant %s", variant)
        rows.append(run_variant(variant.strip(), ds, split, opts, args.seed))
    full = next((r for r in rows if r["variant"] == "full"), None)
    table = Table(title=f"{ds.name}: sequential, {ds.n_users:,} users, {ds.n_items:,} items, "
                        f"{len(split.train):,} training rows · loo, full ranking, history masked")
    for col in ("softmax", "fit s", "epochs", "stopped by", "valid NDCG@10", "NDCG@10", "Recall@10", "÷ full (NDCG)"):
        table.add_column(col, justify="left" if col in ("softmax", "stopped by") else "right")
    for r in rows:
        ratio = r["test"]["ndcg@10"] / full["test"]["ndcg@10"] if full and full["test"]["ndcg@10"] else None
        r["ndcg_ratio_to_full"] = ratio
        table.add_row(
            "full" if r["variant"] == "full" else f"sampled, {r['variant']} negatives",
            f"{r['fit_seconds']:,.0f}",
            str(r["epochs"]),
            r["stopped_by"],
            f"{r['best_valid_ndcg@10']:.4f}",
            f"{r['test']['ndcg@10']:.4f}",
            f"{r['test']['recall@10']:.4f}",
            f"{ratio:.3f}" if ratio is not None else "–",
        )
    Console(width=200).print(table)
    if args.json:
        out = {"dataset": ds.name, "users": ds.n_users, "items": ds.n_items, "train_rows": len(split.train),
               "threads": opts.get("threads"), "cpus": os.cpu_count(), "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
