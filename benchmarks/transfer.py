"""Open-domain transfer (issue 26): one recommender pretrained on other catalogs, on a target it never saw.

For one target, every row under one rule (leave-one-out, full ranking, the user's history masked,
history at test = training + validation, held-out items lose ties), at each share of the target's
training users (the low-resource protocol: ``anyrec evaluate --train-share``; the same validation
and test users at every share, every user's whole history read when scoring):

- ``zeroshot``: the pretrained sentence encoder alone (its popularity prior counts the share's rows);
- ``transfer``: the network pretrained on the other catalogs, no training on the target;
- ``transfer-tuned``: the same, fine-tuned on the share (text only, early-stopped on validation);
- ``sequential``: the sequential model trained from scratch on the share (text + ids);
- optionally ``sequential+init``: fine-tuned from the pretrained network with new id embeddings.

Each row of the sequential family is also read with its score-time text terms off (``network alone``:
the same fit, before the validation search adds the text blend, kernel and popularity prior), which
is what pretraining gives the network itself.

The pretrained folder is made first with ``anyrec pretrain-rec`` when it does not exist (``--source``,
repeatable; never the target). Then the cold-item protocol (zeroshot against transfer) unless
``--no-cold``. Prints the tables and writes JSON::

    python benchmarks/transfer.py --target ../shared/data/amazon-scientific --pretrained benchmarks/out/pt-scientific \\
        --source ../shared/data/amazon-beauty/anyrec.toml --source ml-100k ... --json
        benchmarks/out/transfer-scientific.json
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(width=160)
ROWS = ("zeroshot", "transfer", "transfer-tuned", "sequential", "sequential+init")


def pretrain_if_missing(args: argparse.Namespace) -> dict[str, Any]:
    """``pretrained.json`` of ``--pretrained``, pretraining it first with the CLI when it is not there."""
    folder = Path(args.pretrained)
    if not (folder / "pretrained.json").exists():
        if not args.source:
            raise SystemExit(f"{folder} holds no pretrained model and no --source was given to make one")
        cmd = [
            sys.executable,
            "-m",
            "anyrec",
            "pretrain-rec",
            "--out",
            str(folder),
            "--max-minutes",
            str(args.pretrain_minutes),
        ]
        for s in args.source:
            cmd += ["--source", s]
        for o in args.pretrain_option:
            cmd += ["--option", f"pretrain.{o}"]
        console.print("[bold]pretraining:[/] " + " ".join(cmd[1:]))
        subprocess.run(cmd, check=True)
    meta: dict[str, Any] = json.loads((folder / "pretrained.json").read_text(encoding="utf-8"))
    return meta


def options_for(args: argparse.Namespace, row: str) -> tuple[str, dict[str, Any]]:
    """The registry model behind a row and its options (every trained row: the same budget and threads)."""
    from anyrec.cli.common import cache_dir

    every = {"threads": args.threads, "cache_dir": cache_dir(False)}
    trained = {"max_minutes": args.max_minutes, "patience": args.patience, **every}
    if row == "zeroshot":
        return "zeroshot", every
    if row == "transfer":
        return "transfer", {"init": args.pretrained, **every}
    if row == "transfer-tuned":
        return "transfer-tuned", {"init": args.pretrained, **trained}
    if row == "sequential+init":
        return "sequential", {"init": args.pretrained, **trained}
    return "sequential", dict(trained)


PRIORS = {"zeroshot": ("popularity", "trend"), "transfer": ("popularity",)}  # the options that count the share's rows


def share_free_options(full: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For the rows that learn nothing from the share (zeroshot, transfer), the options chosen at 100 % that do
    not count the share's rows (the text terms): the same validation users and items at every share, so
    the same choice; only the priors are searched again at the other shares."""
    out = {}
    for row, priors in PRIORS.items():
        tuned = full.get(row, {}).get("tuned", {})
        out[row] = {k: v for k, v in tuned.items() if k not in priors and not k.startswith("valid_")}
    return out


def run_share(ds: Any, rows: list[str], share: float, args: argparse.Namespace, progress: Any,
              fixed: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every row at one train share: one experiment per row (``sequential`` and ``sequential+init`` are one
    registry model with two option sets), each on the same seeded split and share; ``fixed``: options given
    to a row instead of searched (:func:`share_free_options`)."""
    from anyrec.eval.experiment import ExperimentConfig, run_experiment

    out: dict[str, Any] = {}
    for row in rows:
        name, opts = options_for(args, row)
        given = (fixed or {}).get(row, {})
        opts = {**opts, **given}
        cfg = ExperimentConfig(models=(name,), ks=(10,), seed=args.seed, model_options={name: opts}, train_share=share,
                               report_untuned=True)
        t0 = time.perf_counter()
        res = run_experiment(ds, cfg, progress=progress)
        if name not in res["models"]:
            out[row] = {"skipped": res.get("skipped", {}).get(name, "not run")}
            continue
        m = res["models"][name]
        before = (
            m.get("before_tuning", {}) if not given else {}
        )  # with text terms given, "before" is not the network alone
        out[row] = {
            "ndcg@10": m["ndcg@10"],
            "recall@10": m["recall@10"],
            "fit_seconds": m["fit_seconds"],
            "network_alone": {k: before[k] for k in ("ndcg@10", "recall@10") if k in before}
            if row != "zeroshot"
            else {},
            "given_from_100%": given,
            "seconds": round(time.perf_counter() - t0, 1),
            "tuned": res.get("tuned", {}).get(name, {}),
            "train_share": res.get("train_share"),
            "sized": res.get("sized for the data", {}).get(name),
        }
        console.print(f"share {share:g} · {row}: NDCG@10 {m['ndcg@10']:.4f}, Recall@10 {m['recall@10']:.4f}, "
                      f"fit {m['fit_seconds']:.0f} s")
    return out


def cold_rows(ds: Any, args: argparse.Namespace, progress: Any) -> dict[str, Any]:
    """The cold-item protocol: zeroshot and transfer (neither trains on the target)."""
    from anyrec.data.split import SplitConfig
    from anyrec.eval.experiment import ExperimentConfig, run_experiment

    opts = {"zeroshot": options_for(args, "zeroshot")[1], "transfer": options_for(args, "transfer")[1]}
    cfg = ExperimentConfig(models=("zeroshot", "transfer"), ks=(10,), seed=args.seed, model_options=opts,
                           split=SplitConfig(protocol="cold-item"))
    res = run_experiment(ds, cfg, progress=progress)
    return {n: {"ndcg@10": m["ndcg@10"], "recall@10": m["recall@10"]} for n, m in res["models"].items()}


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


def print_tables(target: str, shares: list[float], result: dict[str, Any], meta: dict[str, Any]) -> None:
    table = Table(
        title=f"{target} · leave-one-out · full ranking · history masked · NDCG@10 / Recall@10 by train share"
    )
    table.add_column("model")
    for s in shares:
        table.add_column(f"{100 * s:g} %", justify="right")
    by = result["shares"]
    rows = [r for r in ROWS if any(r in by[str(s)] for s in shares)]
    for row in rows:
        cells = []
        for s in shares:
            m = by[str(s)].get(row, {})
            cells.append(f"{m['ndcg@10']:.4f} / {m['recall@10']:.4f}" if "ndcg@10" in m else "–")
        table.add_row(row, *cells)

    def nd(s: float, row: str) -> float | None:
        return by[str(s)].get(row, {}).get("ndcg@10")

    for row in rows:
        if row == "zeroshot":
            continue
        cells = []
        for s in shares:
            m = by[str(s)].get(row, {}).get("network_alone", {})
            cells.append(f"{m['ndcg@10']:.4f} / {m['recall@10']:.4f}" if "ndcg@10" in m else "–")
        table.add_row(f"{row}: network alone", *cells)
    table.add_row("transfer ÷ zeroshot", *[ratio(nd(s, "transfer"), nd(s, "zeroshot")) for s in shares])
    table.add_row("transfer-tuned ÷ sequential", *[ratio(nd(s, "transfer-tuned"), nd(s, "sequential")) for s in shares])

    def net(s: float, row: str) -> float | None:
        return by[str(s)].get(row, {}).get("network_alone", {}).get("ndcg@10")

    table.add_row("network alone: transfer-tuned ÷ sequential",
                  *[ratio(net(s, "transfer-tuned"), net(s, "sequential")) for s in shares])
    if "sequential+init" in rows:
        table.add_row(
            "sequential+init ÷ sequential", *[ratio(nd(s, "sequential+init"), nd(s, "sequential")) for s in shares]
        )
    console.print(table)
    if result.get("cold"):
        c = result["cold"]
        console.print(
            f"cold items: zeroshot Recall@10 {c['zeroshot']['recall@10']:.4f} (NDCG@10 "
            f"{c['zeroshot']['ndcg@10']:.4f}), "
            f"transfer {c['transfer']['recall@10']:.4f} ({c['transfer']['ndcg@10']:.4f}): "
            f"{ratio(c['transfer']['recall@10'], c['zeroshot']['recall@10'])}"
        )
    console.print(
        f"pretrained: {meta['epochs']} epochs, {meta['steps']:,} steps, {meta['seconds']:.0f} s on {meta['device']}; "
        "mix: " + ", ".join(f"{s['name']} {100 * s['share_of_steps']:.1f} %" for s in meta["sources"])
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="the target dataset: name, folder or TOML config")
    ap.add_argument("--pretrained", required=True, help="the pretrained folder (made with --source when missing)")
    ap.add_argument(
        "--source", action="append", default=[], help="a pretraining dataset (repeatable; never the target)"
    )
    ap.add_argument("--pretrain-minutes", type=float, default=30.0)
    ap.add_argument("--pretrain-option", action="append", default=[], help="FIELD=VALUE for pretrain-rec (repeatable)")
    ap.add_argument("--shares", default="0,0.01,0.1,1", help="train shares (100 %% runs first)")
    ap.add_argument("--rows", default="zeroshot,transfer,transfer-tuned,sequential", help=f"of {', '.join(ROWS)}")
    ap.add_argument("--max-minutes", type=float, default=30.0, help="the budget of every trained row's fit")
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--search-every-share",
        action="store_true",
        help="search zeroshot's and transfer's text terms again at every share (by default they are chosen at "
        "100 %% and only their priors are searched at the other shares: the same validation set, the same choice)",
    )
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--json", default="benchmarks/out/transfer.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from anyrec.cli.common import read_source
    from anyrec.cli.progress import progress_callback

    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise SystemExit(f"unknown rows {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    shares = [float(s) for s in args.shares.split(",")]
    meta = pretrain_if_missing(args)
    ds = read_source(args.target)
    if ds.name in {s["name"] for s in meta["sources"]}:
        raise SystemExit(
            f"{args.pretrained} was pretrained on {ds.name}, the target: transfer means a catalog it never saw"
        )
    result: dict[str, Any] = {
        "target": ds.name,
        "data": ds.summary(),
        "pretrained": {k: v for k, v in meta.items() if k != "history"},
        "rows": rows,
        "shares": {},
        "budget_minutes": args.max_minutes,
        "threads": args.threads,
    }
    with progress_callback(console) as progress:
        fixed: dict[str, dict[str, Any]] | None = None
        for share in sorted(shares, reverse=True):  # 100 % first: its text-term choice serves the other shares
            result["shares"][str(share)] = run_share(ds, rows, share, args, progress, fixed)
            if share >= 1 and not args.search_every_share:
                fixed = share_free_options(result["shares"][str(share)])
            if fixed and share < 1 and "ndcg@10" in result["shares"][str(share)].get("transfer", {}):
                # one network, trained on nothing of the target: its reading alone is the 100 % one at every share
                result["shares"][str(share)]["transfer"]["network_alone"] = result["shares"]["1.0"]["transfer"][
                    "network_alone"
                ]
        if not args.no_cold:
            result["cold"] = cold_rows(ds, args, progress)
    print_tables(ds.name, shares, result, meta)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
