"""The ONNX encoder path against PyTorch: throughput, agreement of the vectors, zero-shot accuracy.

Same texts, same model (offline all-MiniLM-L6-v2), same batch size and threads, in one run: texts
per second of sentence-transformers (PyTorch), ONNX Runtime fp32 and ONNX Runtime int8 (dynamic
quantisation, per-channel weight scales), model loading and export excluded (each timed run is
a repeat after a warm-up); the cosine of every ONNX vector to its PyTorch vector; then the
zero-shot model's NDCG@10 on ml-100k (leave-one-out, full ranking, options tuned on validation)
with each backend's vectors.

    python benchmarks/onnx_encoder.py [--scientific ../shared/data/amazon-scientific] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.data import load_dataset
from anyrec.eval.experiment import ExperimentConfig, run_experiment
from anyrec.lm.encoder import EncoderConfig, TextEncoder

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scientific", default=str(ROOT.parent / "shared" / "data" / "amazon-scientific"))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=str(ROOT / "results" / "onnx-encoder.json"))
    args = ap.parse_args()
    con = Console(width=160)
    ml = load_dataset("ml-100k")
    texts = ml.catalog.texts()
    if Path(args.scientific).exists():
        texts += load_dataset(args.scientific).catalog.texts()
    work = Path(tempfile.mkdtemp(prefix="anyrec-onnx-"))
    rows: dict[str, dict[str, float]] = {}
    vectors: dict[str, np.ndarray] = {}
    for backend in ("torch", "onnx", "onnx-int8"):
        enc = TextEncoder(EncoderConfig(backend=backend, threads=args.threads, batch_size=args.batch_size, cache_dir=str(work)))
        enc._encode_raw(texts[:64], None)  # load, export, quantise, warm up: not timed
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            vectors[backend] = enc._encode_raw(texts, None)
            times.append(time.perf_counter() - t0)
        rows[backend] = {"seconds": statistics.median(times), "texts_per_second": len(texts) / statistics.median(times)}
        if backend != "torch":
            cos = (vectors[backend] * vectors["torch"]).sum(1)
            rows[backend].update(mean_cosine=float(cos.mean()), min_cosine=float(cos.min()))
        con.print(backend, rows[backend])
    for backend in rows:
        rows[backend]["speed_vs_torch"] = rows[backend]["texts_per_second"] / rows["torch"]["texts_per_second"]
    for backend in rows:
        cfg = ExperimentConfig(models=("zeroshot",), ks=(10,), model_options={"zeroshot": {"backend": backend, "cache_dir": str(work),
                                                                                          "threads": args.threads}})
        rows[backend]["zeroshot_ndcg@10"] = run_experiment(ml, cfg)["models"]["zeroshot"]["ndcg@10"]
    for backend in rows:
        rows[backend]["ndcg_vs_torch"] = rows[backend]["zeroshot_ndcg@10"] / rows["torch"]["zeroshot_ndcg@10"]
    table = Table(title=f"encoder backends: {len(texts):,} item texts (ml-100k + Scientific), batch {args.batch_size}, "
                        f"{args.threads} threads, median of {args.repeats}")
    for col in ("backend", "texts/s", "× torch", "mean cos", "min cos", "zero-shot NDCG@10 (ml-100k)", "÷ torch"):
        table.add_column(col, justify="right")
    for backend, r in rows.items():
        table.add_row(backend, f"{r['texts_per_second']:.0f}", f"{r['speed_vs_torch']:.2f}", f"{r.get('mean_cosine', 1.0):.4f}",
                      f"{r.get('min_cosine', 1.0):.4f}", f"{r['zeroshot_ndcg@10']:.4f}", f"{r['ndcg_vs_torch']:.4f}")
    con.print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"texts": len(texts), "threads": args.threads, "batch_size": args.batch_size,
                                           "backends": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
