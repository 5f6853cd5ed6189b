"""The generative recommender beside the sequential model: accuracy, cost, cold items.

One dataset per run, one split, one rule for every row (anyrec's evaluator: leave-one-out, full
ranking, the whole history masked, history at test time = training + validation, held-out items
lose ties). Both trained models early-stop on the same validation split with the same epoch
limit; neither gets a training grid here (the leaderboards in benchmarks/README.md give the
grid-tuned rows). Then the cost: fit time, and the time to produce one user's list (generation
with beam 20 vs the sequential model's full scoring), as ratios. With ``--cold`` also the
cold-item protocol (chance = the random model, zero-shot, generative).

    python benchmarks/generative.py --dataset ../shared/data/amazon-scientific [--option generative.X=V] [--cold]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.cli.common import parse_options
from anyrec.data import load_dataset
from anyrec.data.split import SplitConfig, make_split, phase_matrices
from anyrec.eval.experiment import ExperimentConfig, run_experiment
from anyrec.eval.flow import fit_one, validator
from anyrec.lm.encoder import EncoderConfig, TextEncoder
from anyrec.models.base import Filters
from anyrec.models.generative.codes import code_report

ROOT = Path(__file__).resolve().parents[1]


def per_user_seconds(model: Any, users: np.ndarray, exclude: Any, batch: int) -> float:
    """Median seconds per user to produce a list, users taken ``batch`` at a time."""
    times = []
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        t0 = time.perf_counter()
        model.masked_scores(chunk, exclude_seen=False, filters=Filters(exclude=exclude))
        times.append((time.perf_counter() - t0) / len(chunk))
    return float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--models", default="sequential,generative")
    ap.add_argument("--option", action="append", default=[], help="MODEL.FIELD=VALUE")
    ap.add_argument("--cold", action="store_true", help="also the cold-item protocol")
    ap.add_argument("--timing-users", type=int, default=300)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    console = Console(width=170)
    cache = os.environ.get("ANYREC_CACHE") or str(Path.home() / ".cache" / "anyrec" / "embeddings")
    ds = load_dataset(args.dataset)
    vectors = TextEncoder(EncoderConfig(cache_dir=cache)).encode(ds.catalog.texts())
    opts = parse_options(tuple(args.option))
    models = tuple(m for m in args.models.split(",") if m)
    split = make_split(ds, SplitConfig(protocol="loo"))
    cfg = ExperimentConfig(models=models, ks=(10, 20), model_options={m: opts.get(m, {}) for m in models})
    result = run_experiment(ds, cfg, split=split, item_vectors=vectors)
    report: dict[str, Any] = {
        "dataset": ds.name,
        "rule": "loo, full ranking, whole history masked, history train+valid",
        "models": result["models"],
        "options": opts,
    }
    table = Table(title=f"{ds.name} · leave-one-out · {report['rule']}")
    for col in ("model", "NDCG@10", "Recall@10", "MRR@10", "NDCG@20", "fit s"):
        table.add_column(col, justify="right")
    for name, m in result["models"].items():
        table.add_row(name, f"{m['ndcg@10']:.4f}", f"{m['recall@10']:.4f}", f"{m['mrr@10']:.4f}", f"{m['ndcg@20']:.4f}",
                      f"{m['fit_seconds']:.0f}")
    console.print(table)
    gen = result["models"].get("generative", {}).get("generation")
    if gen:
        console.print(f"generation: {gen['lists']:,} lists, {gen['generated']:,} ids, {gen['invalid']} invalid, "
                      f"{gen['short_lists']} shorter than 10")

    # Cost: refit nothing; time one user's list on the fitted models (test history).
    train = split.train_dataset(ds)
    _relevant, exclude = phase_matrices(ds, split, "test")
    users = np.flatnonzero(np.diff(exclude.indptr) > 0)[: args.timing_users]
    cost: dict[str, Any] = {}
    fitted = {}
    for name in models:
        model = fit_one(name, 0, {**opts.get(name, {}), "epochs": 1}, train, validator(ds, split, 10), vectors, None)
        model.set_history(split.history_dataset(ds, "test"))
        fitted[name] = model
        cost[name] = {"fit_seconds": result["models"][name]["fit_seconds"],
                      "per_user_ms_batch1": 1000 * per_user_seconds(model, users[:100], exclude, 1),
                      "per_user_ms_batch128": 1000 * per_user_seconds(model, users, exclude, 128)}
    if "generative" in fitted:
        report["codes"] = code_report(fitted["generative"].codes_, fitted["generative"].config.codebook)
    report["cost"] = cost
    if "sequential" in cost and "generative" in cost:
        s, g = cost["sequential"], cost["generative"]
        t = Table(title="cost: generative ÷ sequential (same machine, same run)")
        for col in ("", "sequential", "generative", "ratio"):
            t.add_column(col, justify="right")
        for key, label in (
            ("fit_seconds", "fit s (early stopping)"),
            ("per_user_ms_batch1", "ms per user, one at a time"),
            ("per_user_ms_batch128", "ms per user, 128 at a time"),
        ):
            t.add_row(label, f"{s[key]:.2f}", f"{g[key]:.2f}", f"{g[key] / s[key]:.2f}")
        console.print(t)

    if args.cold:
        cold_models = ("random", "zeroshot", *models)
        ccfg = ExperimentConfig(models=cold_models, ks=(10,), split=SplitConfig(protocol="cold-item"),
                                model_options={m: opts.get(m, {}) for m in cold_models})
        cres = run_experiment(ds, ccfg, item_vectors=vectors)
        report["cold"] = cres["models"]
        ct = Table(title=f"{ds.name} · cold items (held out with all their interactions; ranked among themselves)")
        for col in ("model", "NDCG@10", "Recall@10", "÷ chance (Recall@10)"):
            ct.add_column(col, justify="right")
        chance = cres["models"]["random"]["recall@10"]
        for name, m in cres["models"].items():
            ct.add_row(name, f"{m['ndcg@10']:.4f}", f"{m['recall@10']:.4f}", f"{m['recall@10'] / chance:.2f}")
        console.print(ct)
    out = Path(args.json or ROOT / "benchmarks" / "out" / f"generative-{ds.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
