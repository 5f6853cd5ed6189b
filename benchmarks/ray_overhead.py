"""What Ray costs on one machine: the same work locally and on a local Ray cluster, as ratios.

Three jobs, each run locally and then through ``anyrec.cluster``'s Ray runner (a cluster
started here with ``--cpus`` CPUs; the cluster's start-up is reported apart):

1. catalog embedding, no cache: vectors must be bit-identical;
2. evaluation of fitted models (full ranking, test phase): metrics must be identical;
3. training the ``sequential`` model for a fixed number of epochs (no early stopping, so both
   runs do the same work): Ray Train with 2 workers vs one process; validation NDCG@10 is
   reported (not identical: the batches differ).

    python benchmarks/ray_overhead.py --dataset ml-100k --json benchmarks/out/ray-overhead.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.cli.common import read_source
from anyrec.cluster import LOCAL, ray_runner
from anyrec.data.split import leave_one_out
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.flow import validator
from anyrec.lm.encoder import EncoderConfig, TextEncoder
from anyrec.models.registry import build_model


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--config", default=None)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--models", default="itemknn,zeroshot")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ds = read_source(args.dataset, args.config)
    split = leave_one_out(ds)
    train = split.train_dataset(ds)
    texts = ds.catalog.texts()
    rows: list[dict[str, Any]] = []
    enc = TextEncoder(EncoderConfig())  # no cache: both runs encode every text
    local_vecs, t_local = timed(lambda: enc.encode(texts))
    models = {}
    for name in args.models.split(","):
        m = build_model(name, 0, {})
        if name == "zeroshot":
            m.use_item_vectors(local_vecs)
        models[name] = m.fit(train)
        models[name].set_history(split.history_dataset(ds, "test"))
    local_eval = {}
    for name, m in models.items():
        local_eval[name] = timed(lambda m=m: evaluate_model(m, ds, split, "test", (10, 20)))
    seq_opts = {"epochs": args.epochs, "patience": args.epochs}  # threads: all cores here, one per Ray worker
    validate = validator(ds, split, 10)

    def seq_fit(runner: Any) -> Any:
        m = build_model("sequential", 0, seq_opts)
        m.use_item_vectors(local_vecs)
        return runner.fit(m, train, validate)

    local_seq, t_seq_local = timed(lambda: seq_fit(LOCAL))
    t_start = time.perf_counter()
    with ray_runner("local", args.cpus) as runner:
        startup = time.perf_counter() - t_start
        ray_vecs, t_ray = timed(lambda: enc.encode(texts, runner=runner))
        rows.append({"job": f"embed {len(texts):,} texts", "local_s": t_local, "ray_s": t_ray,
                     "same": bool(np.array_equal(local_vecs, ray_vecs))})
        for name, m in models.items():
            res, t = timed(lambda m=m: evaluate_model(m, ds, split, "test", (10, 20), runner=runner))
            rows.append(
                {
                    "job": f"evaluate {name} ({int(res['users']):,} users)",
                    "local_s": local_eval[name][1],
                    "ray_s": t,
                    "same": res == local_eval[name][0],
                }
            )
        ray_seq, t_seq_ray = timed(lambda: seq_fit(runner))
        rows.append(
            {
                "job": f"train sequential, {args.epochs} epochs",
                "local_s": t_seq_local,
                "ray_s": t_seq_ray,
                "same": f"valid NDCG@10 {local_seq.report_.best_valid_ndcg:.4f} local, "
                f"{ray_seq.report_.best_valid_ndcg:.4f} on Ray",
            }
        )
    table = Table(
        title=f"{ds.name}: local vs a local Ray cluster ({args.cpus} CPUs; start-up {startup:.1f} s, not in the rows)"
    )
    for col in ("job", "local s", "ray s", "ray ÷ local", "result"):
        table.add_column(col, justify="left" if col in ("job", "result") else "right")
    for r in rows:
        r["ratio"] = r["ray_s"] / r["local_s"]
        same = r["same"] if isinstance(r["same"], str) else ("identical" if r["same"] else "DIFFERENT")
        table.add_row(r["job"], f"{r['local_s']:.1f}", f"{r['ray_s']:.1f}", f"{r['ratio']:.2f}", same)
    Console().print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {"dataset": ds.name, "cpus": args.cpus, "ray_startup_s": startup, "rows": rows}, indent=1, default=str
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
