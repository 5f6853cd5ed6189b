"""Each ingredient of a training recipe, measured on one split: validation and test NDCG@10 per variant.

A variant is a name, a model and its options; every variant is fitted and scored under the same rule
(``anyrec evaluate``'s: the split of ``--protocol``, full ranking, the user's history masked, history at
test = training + validation), with the score-time options chosen on validation as usual. Each variant
writes ``OUT/NAME.json``, so variants can run in several processes (one per core) and be gathered::

    python benchmarks/ablation.py --config ../shared/data/amazon-beauty/anyrec.toml --out
    benchmarks/out/ablation-beauty \\
        --variant "sequential:defaults" --variant "sequential:long=patience=20,max_minutes=60" ...
    python benchmarks/ablation.py --out benchmarks/out/ablation-beauty --table    # the table of every variant written

``--variant MODEL:NAME=OPT=VALUE,OPT=VALUE`` (``MODEL:NAME`` alone: the model's defaults). The test
figure with nothing masked is read from the same lists (``--also-mask none``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(width=180)


def parse_variant(text: str) -> tuple[str, str, dict[str, Any]]:
    """``MODEL:NAME=K=V,K=V`` → (model, name, options)."""
    from anyrec.cli.common import parse_value

    model, _, rest = text.partition(":")
    name, _, opts = rest.partition("=")
    if not model or not name:
        raise SystemExit(f"--variant {text!r}: expected MODEL:NAME or MODEL:NAME=OPT=VALUE,...")
    options: dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--variant {text!r}: {item!r} is not OPT=VALUE")
        options[key.strip()] = parse_value(value.strip())
    return model.strip(), name.strip(), options


def run_variant(
    ds: Any, model: str, name: str, options: dict[str, Any], args: argparse.Namespace, progress: Any
) -> dict[str, Any]:
    from anyrec.cli.common import cache_dir
    from anyrec.data.split import SplitConfig
    from anyrec.eval.experiment import ExperimentConfig, run_experiment

    opts = {"threads": args.threads, "encoder.cache_dir": cache_dir(False), **options}
    if model == "sasrec":
        opts.pop("encoder.cache_dir")
    cfg = ExperimentConfig(models=(model,), ks=(10,), seed=args.seed, model_options={model: opts},
                           split=SplitConfig(protocol=args.protocol), also_masks=("none",), report_untuned=True)
    t0 = time.perf_counter()
    res = run_experiment(ds, cfg, progress=progress)
    m = res["models"][model]
    tuned = res.get("tuned", {}).get(model, {})
    training = m.get("training", {})
    return {
        "variant": name,
        "model": model,
        "options": options,
        "test_ndcg@10": m["ndcg@10"],
        "test_recall@10": m["recall@10"],
        "valid_ndcg@10": tuned.get("valid_ndcg@10", training.get("best_valid_ndcg@10")),
        "training": training,
        "network_alone_test_ndcg@10": m.get("before_tuning", {}).get("ndcg@10"),
        "nothing_masked_ndcg@10": m["by_mask"]["none"]["ndcg@10"],
        "fit_seconds": m["fit_seconds"],
        "seconds": round(time.perf_counter() - t0, 1),
        "tuned": tuned,
        "sized": res.get("sized for the data", {}).get(model),
        "dataset": res["dataset"],
        "protocol": res["protocol"],
    }


def table(out: Path) -> None:
    rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.json"))]
    if not rows:
        raise SystemExit(f"no variant written in {out}")
    rows.sort(key=lambda r: r.get("written", 0))
    t = Table(
        title=f"{rows[0]['dataset']} · {rows[0]['protocol']} · full ranking · history masked (nothing masked: the "
        "same lists)"
    )
    for col in ("variant", "model", "options", "valid NDCG@10", "test NDCG@10", "test Recall@10", "network alone",
                "nothing masked", "epochs / best", "fit s"):
        t.add_column(col, overflow="fold")
    for r in rows:
        opts = ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "defaults"
        net = r.get("network_alone_test_ndcg@10")
        valid = r.get("valid_ndcg@10")
        t.add_row(
            r["variant"],
            r["model"],
            opts,
            f"{valid:.4f}" if valid is not None else "–",
            f"{r['test_ndcg@10']:.4f}",
            f"{r['test_recall@10']:.4f}",
            f"{net:.4f}" if net is not None else "–",
            f"{r['nothing_masked_ndcg@10']:.4f}",
            f"{r['training'].get('epochs', '–')} / {r['training'].get('best_epoch', '–')}"
            if r.get("training")
            else "–",
            f"{r['fit_seconds']:.0f}",
        )
    console.print(t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="the dataset: name, folder or TOML config")
    ap.add_argument("--protocol", default="loo")
    ap.add_argument("--variant", action="append", default=[], help="MODEL:NAME[=OPT=VALUE,...] (repeatable)")
    ap.add_argument("--out", required=True, help="folder of the variants' JSON files")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", action="store_true", help="print the table of every variant in --out and stop")
    args = ap.parse_args()
    out = Path(args.out)
    if args.table:
        table(out)
        return 0
    if not args.config or not args.variant:
        raise SystemExit("--config and at least one --variant are needed (or --table)")
    from anyrec.cli.common import read_source
    from anyrec.cli.progress import progress_callback

    variants = [parse_variant(v) for v in args.variant]
    ds = read_source(args.config)
    out.mkdir(parents=True, exist_ok=True)
    with progress_callback(console) as progress:
        for model, name, options in variants:
            row = run_variant(ds, model, name, options, args, progress)
            row["written"] = time.time()
            (out / f"{name}.json").write_text(json.dumps(row, indent=1), encoding="utf-8")
            console.print(
                f"{name}: valid {row['valid_ndcg@10']}, test NDCG@10 {row['test_ndcg@10']:.4f} "
                f"(network alone {row['network_alone_test_ndcg@10']}, nothing masked "
                f"{row['nothing_masked_ndcg@10']:.4f}), "
                f"fit {row['fit_seconds']:.0f} s"
            )
    table(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
