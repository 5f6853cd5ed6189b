"""Are the explanations faithful? The deletion check over ≥ 500 recommendations per model.

Each model is fitted on all of a dataset's interactions (an explanation is about the model
people are served). For a seeded sample of users, each of their top-k items (history masked)
is explained by the model's own attribution; the cited history items are then removed and the
model scores again. Reported per model: how often the item's score fell and its rank worsened,
beside a control that removes as many history items drawn at random; and how many shown
sentences name an item that is not in the user's history (the guard keeps that at 0). With
``--generator`` the sentences of the first ``--generated`` recommendations are written by a
causal LM (default the offline SmolLM2-135M) and pass the same guard; rejections are counted.

    python benchmarks/explain.py --dataset ml-100k --models zeroshot,itemknn,sequential --users 120 --k 5
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
from anyrec.cli.evaluate import with_text_defaults
from anyrec.data import load_dataset
from anyrec.models.registry import build_model
from faithfulness import faithfulness  # beside this script

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--models", default="zeroshot,itemknn,sequential")
    ap.add_argument("--option", action="append", default=[], help="MODEL.FIELD=VALUE")
    ap.add_argument("--users", type=int, default=120, help="users sampled (seeded); k recommendations each")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--cite", type=int, default=3, help="history items an explanation cites")
    ap.add_argument("--generator", default=None, help="causal LM writing the sentences (e.g. smollm2)")
    ap.add_argument("--generated", type=int, default=50, help="recommendations whose sentence the generator writes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    ds = load_dataset(args.dataset)
    users = np.sort(
        np.random.default_rng(args.seed).choice(ds.n_users, size=min(args.users, ds.n_users), replace=False)
    )
    options = parse_options(args.option)
    generate = None
    if args.generator:
        from generator import CausalLM, GeneratorConfig  # beside this script

        lm = CausalLM(GeneratorConfig(model=args.generator))
        budget = [args.generated]

        def generate(prompt: str) -> str:
            if budget[0] <= 0:
                return ""
            budget[0] -= 1
            return lm.generate(prompt, max_new_tokens=40)

    rows: dict[str, Any] = {}
    for name in args.models.split(","):
        opts = with_text_defaults(name, dict(options.get(name, {})), None, False)
        t0 = time.perf_counter()
        model = build_model(name, args.seed, opts).fit(ds)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = faithfulness(model, ds, users, k=args.k, cite=args.cite, seed=args.seed, generator=generate)
        rows[name] = {**rep, "fit_seconds": round(fit_s, 1), "check_seconds": round(time.perf_counter() - t0, 1)}
        logging.info("%s: %s", name, rows[name])
    table = Table(
        title=f"explanation faithfulness on {ds.name}: remove the {args.cite} cited history items vs {args.cite} "
        "random ones "
        f"({len(users)} users × top {args.k}, history masked)"
    )
    for col in ("model", "attribution", "recs", "score fell: cited", "random", "rank worse: cited", "random",
                "mean drop: cited", "random", "sentences naming outside history", "generated / rejected"):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        c, rnd = r["cited"], r["random"]
        table.add_row(
            name,
            ",".join(r["method"]),
            str(c["n"]),
            f"{c['score_lowered']:.1%}",
            f"{rnd['score_lowered']:.1%}",
            f"{c['rank_worse']:.1%}",
            f"{rnd['rank_worse']:.1%}",
            f"{c['mean_score_drop']:.4f}",
            f"{rnd['mean_score_drop']:.4f}",
            str(r["named_outside_history"]),
            f"{r['sentences_from_generator']} / {r['generator_rejected']}",
        )
    Console(width=200).print(table)
    out = Path(args.json or ROOT / "results" / f"explain-{ds.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "dataset": ds.name,
                "users": len(users),
                "k": args.k,
                "cite": args.cite,
                "seed": args.seed,
                "generator": args.generator,
                "threads": os.environ.get("OMP_NUM_THREADS"),
                "models": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
