"""Counts read as confidence against the same log read as binary (issue 35): ALS, EASE and zero-shot with each
``weighting`` fixed, and with it chosen on validation, under one rule (ratio protocol, full ranking, history masked).

No shared dataset carries real counts; ml-100k's 1-5 stars are read *as counts* here (``--weight rating``: a 5 weighs
log2(6) = 2.6 against a 1's 1), the question being whether how much a user engaged helps beside that they did.

    python benchmarks/counts.py [--dataset ml-100k] [--json benchmarks/out/counts.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from anyrec.cli.common import read_source
from anyrec.data.split import SplitConfig
from anyrec.eval.experiment import ExperimentConfig, run_experiment

MODELS = {"als": ("binary", "log", "bm25"), "ease": ("binary", "log", "bm25"), "zeroshot": ("binary", "log")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--json", default="benchmarks/out/counts.json")
    args = ap.parse_args()
    ds = read_source(args.dataset)
    if ds.interactions.rating is None:
        raise SystemExit(f"{args.dataset}: no rating column to read as counts")
    counted = replace(ds, interactions=replace(ds.interactions, weight=ds.interactions.rating, rating=None))
    rows: dict[str, dict[str, float]] = {}
    table = Table(title=f"{ds.name} · ratio · ratings read as counts · NDCG@10 / Recall@10")
    for col in ("model", "weighting", "NDCG@10", "Recall@10", "chosen on validation"):
        table.add_column(col)
    for name, ways in MODELS.items():
        for way in (*ways, "searched"):
            opts = {} if way == "searched" else {"weighting": way}
            res = run_experiment(
                counted,
                ExperimentConfig(
                    models=(name,), ks=(10,), split=SplitConfig(protocol="ratio"), model_options={name: opts}
                ),
            )
            m = res["models"][name]
            chosen = res.get("tuned", {}).get(name, {}).get("weighting", way)
            rows[f"{name} · {way}"] = {"ndcg@10": m["ndcg@10"], "recall@10": m["recall@10"], "weighting": chosen}
            table.add_row(
                name, way, f"{m['ndcg@10']:.4f}", f"{m['recall@10']:.4f}", chosen if way == "searched" else ""
            )
            Console().print(f"{name} · {way}: NDCG@10 {m['ndcg@10']:.4f} ({chosen})")
    Console(width=120).print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"dataset": ds.name, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
