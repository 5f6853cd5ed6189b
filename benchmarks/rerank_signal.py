"""Is there anything left to learn in the retriever's top list? Validation NDCG@10 of the stage when
classic models' scores (not the click classifier's) re-order the retriever's top ``depth``.

Same split, candidates and blend grid as the click classifier's validation (:class:`StageValidator`):
each other model is fitted on the training rows and its scores of the candidates are blended with the
retriever's (each standardised within the list). A blend above 0 that wins says the list holds signal
the retriever's order misses; which model finds it says what kind of signal it is. Validation only:
the test split is never read.

    python benchmarks/rerank_signal.py --dataset ml-100k --others popularity,itemknn,als --option
    sequential.max_minutes=6
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.cli.common import parse_options, read_source
from anyrec.cli.evaluate import with_text_defaults
from anyrec.data.split import SplitConfig, make_split
from anyrec.eval.flow import fit_one, validator
from anyrec.models.registry import build_model
from anyrec.rank.train import BLENDS, StageValidator

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--config", default=None)
    ap.add_argument("--retriever", default="sequential")
    ap.add_argument("--others", default="popularity,itemknn,als")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--option", action="append", default=[])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    ds = read_source(args.dataset, args.config)
    opts = parse_options(args.option)
    split = make_split(ds, SplitConfig(protocol="loo", seed=args.seed))
    train = split.train_dataset(ds)
    name = args.retriever
    retriever = fit_one(name, args.seed, with_text_defaults(name, dict(opts.get(name, {})), None, False), train,
                         validator(ds, split, 10), None, None)
    val = StageValidator(retriever, ds, split, args.depth)
    safe = np.where(val.cands >= 0, val.cands, 0)
    rows = {}
    for other in [m.strip() for m in args.others.split(",") if m.strip()]:
        model = build_model(other, args.seed, dict(opts.get(other, {}))).fit(train)
        rows[other] = val.by_blend(np.take_along_axis(model.masked_scores(val.users, exclude_seen=True), safe, axis=1))
    table = Table(
        title=f"{ds.name}: validation NDCG@10 of {name}'s top {args.depth} re-ordered by another model's scores "
        "(blend 0 = the retriever alone)"
    )
    table.add_column("re-ordered by")
    for b in BLENDS:
        table.add_column(f"{b:g}", justify="right")
    for other, by in rows.items():
        best = max(by.values())
        table.add_row(other, *(f"[bold]{v:.4f}[/]" if v == best else f"{v:.4f}" for v in by.values()))
    Console(width=200).print(table)
    out = Path(args.json or ROOT / "results" / f"rerank-signal-{ds.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "dataset": ds.name,
                "retriever": name,
                "depth": args.depth,
                "by_blend": {o: {str(b): v for b, v in by.items()} for o, by in rows.items()},
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
