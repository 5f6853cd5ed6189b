"""Day one on a catalog the encoder never saw: zero-shot with all-MiniLM-L6-v2 beside zero-shot with an encoder
trained on behaviour elsewhere (``anyrec pretrain-encoder``), each with and without whitening, and with an in-domain
behaviour head (``zeroshot.tune_encoder``). One split per protocol, one rule for every row: full ranking, the user's
history masked, history at test = training + validation, held-out items lose ties, every row's score-time options
chosen on validation by the same search (the rows "whiten off" fix ``whiten=0``).

    python benchmarks/encoder.py --target ../shared/data/amazon-scientific \\
        --encoder benchmarks/out/encoders/not-scientific [--tune-minutes 2] [--protocols loo,cold-item] [--json OUT]
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

from anyrec.cli.common import read_source
from anyrec.data.split import SplitConfig, make_split
from anyrec.eval.experiment import ExperimentConfig, run_experiment
from anyrec.lm.encoder import DEFAULT_ENCODER, EncoderConfig, TextEncoder

ROOT = Path(__file__).resolve().parents[1]


def rows(encoder: str, tune_minutes: float) -> dict[str, tuple[str, dict[str, Any]]]:
    """Row label → (encoder, zero-shot options)."""
    out = {"MiniLM, whiten off": (DEFAULT_ENCODER, {"whiten": 0.0}),
           "MiniLM, whitening searched": (DEFAULT_ENCODER, {})}
    if encoder:
        out["behaviour encoder, whiten off"] = (encoder, {"whiten": 0.0})
        out["behaviour encoder, whitening searched"] = (encoder, {})
    if tune_minutes > 0:
        out[f"MiniLM + in-domain head ({tune_minutes:g} min), whitening searched"] = (
            DEFAULT_ENCODER,
            {"tune_encoder": tune_minutes},
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True, help="dataset name, folder or TOML config")
    ap.add_argument(
        "--encoder", default="", help="a folder written by anyrec pretrain-encoder (never trained on the target)"
    )
    ap.add_argument(
        "--tune-minutes", type=float, default=0.0, help="also a row with an in-domain head trained this long"
    )
    ap.add_argument("--protocols", default="loo,cold-item")
    ap.add_argument("--only", default="", help="row labels to run, separated by ; (default: all)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    console = Console(width=180)
    cache = os.environ.get("ANYREC_CACHE") or str(Path.home() / ".cache" / "anyrec" / "embeddings")
    ds = read_source(args.target)
    vectors: dict[str, Any] = {}
    report: dict[str, Any] = {"target": ds.name, "encoder": args.encoder, "rows": {}}
    if args.encoder:
        meta = json.loads((Path(args.encoder) / "behaviour.json").read_text())
        report["encoder_sources"] = [s["name"] for s in meta["sources"]]
        if ds.name in report["encoder_sources"]:
            raise SystemExit(
                f"{args.encoder} was trained on {ds.name}: a day-one figure needs an encoder that never saw it"
            )
    wanted = {r.strip() for r in args.only.split(";") if r.strip()}
    for protocol in [p for p in args.protocols.split(",") if p]:
        split = make_split(ds, SplitConfig(protocol=protocol))
        table = Table(title=f"{ds.name} · {protocol} · zero-shot by encoder (NDCG@10 / Recall@10)")
        for col in ("row", "NDCG@10", "Recall@10", "× MiniLM", "valid NDCG@10", "chosen", "s"):
            table.add_column(col)
        base = None
        for label, (encoder, opts) in rows(args.encoder, args.tune_minutes).items():
            if wanted and label not in wanted:
                continue
            if encoder not in vectors:
                vectors[encoder] = TextEncoder(EncoderConfig(model=encoder, cache_dir=cache)).encode(ds.catalog.texts())
            t0 = time.perf_counter()
            cfg = ExperimentConfig(
                models=("zeroshot",),
                ks=(10,),
                split=SplitConfig(protocol=protocol),
                model_options={"zeroshot": {"encoder": {"model": encoder, "cache_dir": cache}, **opts}},
            )
            res = run_experiment(ds, cfg, split=split, item_vectors=vectors[encoder])
            m = res["models"]["zeroshot"]
            tuned = res.get("tuned", {}).get("zeroshot", {})
            row = {"ndcg@10": m["ndcg@10"], "recall@10": m["recall@10"], "options": opts, "tuned": tuned,
                   "seconds": round(time.perf_counter() - t0, 1)}
            report["rows"].setdefault(protocol, {})[label] = row
            base = base if base is not None else (m["ndcg@10"] if label.startswith("MiniLM, whiten off") else None)
            ratio = f"{m['ndcg@10'] / base:.2f}" if base else "–"
            chosen = ", ".join(f"{k}={v}" for k, v in tuned.items() if not k.startswith("valid_"))
            table.add_row(label, f"{m['ndcg@10']:.4f}", f"{m['recall@10']:.4f}", ratio,
                          f"{tuned.get('valid_ndcg@10', float('nan')):.4f}", chosen, f"{row['seconds']:.0f}")
            console.print(
                f"{protocol} · {label}: NDCG@10 {m['ndcg@10']:.4f}, Recall@10 {m['recall@10']:.4f} ({chosen})"
            )
        console.print(table)
    out = Path(args.json or ROOT / "benchmarks" / "out" / f"encoder-{ds.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
