"""The ONNX encoder path against PyTorch: throughput, agreement of the vectors, zero-shot accuracy.

Same texts, same model (offline all-MiniLM-L6-v2), same threads, in one run: texts per second of
sentence-transformers (PyTorch), ONNX Runtime fp32 and ONNX Runtime int8 (dynamic quantisation,
per-channel weight scales, tanh GELU), model loading and export excluded (each timed run is a
repeat after a warm-up). Every backend is timed at each batch size of ``--batch-sizes`` and is
reported at its fastest one (the same search for each); the cosine of every ONNX vector to its PyTorch vector; then the
zero-shot model's NDCG@10 on ml-100k (leave-one-out, full ranking) with each backend's vectors,
with options tuned on validation per backend and with the options tuned for PyTorch's vectors.
``--accuracy-only`` skips the timing.

    python benchmarks/onnx_encoder.py [--scientific ../shared/data/amazon-scientific] [--threads 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

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
    ap.add_argument("--batch-sizes", default="16,32,64", help="each backend is reported at its fastest of these")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=str(ROOT / "results" / "onnx-encoder.json"))
    ap.add_argument(
        "--accuracy-only", action="store_true", help="no timing: vectors' agreement and zero-shot NDCG only"
    )
    args = ap.parse_args()
    con = Console(width=160)
    ml = load_dataset("ml-100k")
    texts = ml.catalog.texts()
    if Path(args.scientific).exists():
        texts += load_dataset(args.scientific).catalog.texts()
    work = Path(tempfile.mkdtemp(prefix="anyrec-onnx-"))
    rows: dict[str, dict[str, float]] = {}
    vectors: dict[str, np.ndarray] = {}
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    backends = ("torch", "onnx", "onnx-int8")
    configs = [(backend, bs) for backend in backends for bs in sizes]
    # Rounds interleave the backends, as this machine's speed drifts by 10-15 % over minutes and a
    # drift must not fall on one backend's block of runs. One encoder is alive at a time: an idle
    # ONNX Runtime session's spinning threads slowed the next backend's run 2-3x when all were kept.
    times: dict[tuple[str, int], list[float]] = {key: [] for key in configs}
    for r in range(0 if args.accuracy_only else args.repeats):
        for backend, bs in configs:
            enc = TextEncoder(EncoderConfig(backend=backend, threads=args.threads, batch_size=bs, cache_dir=str(work)))
            enc.encode_uncached(texts[:64], None)  # load, export, quantise, warm up: not timed
            t0 = time.perf_counter()
            vectors[backend] = enc.encode_uncached(texts, None)
            times[backend, bs].append(time.perf_counter() - t0)
            del enc
            gc.collect()
            con.print(f"round {r + 1}: {backend} batch {bs}: {times[backend, bs][-1]:.2f} s")
    for backend in backends:
        if args.accuracy_only:
            enc = TextEncoder(EncoderConfig(backend=backend, threads=args.threads, cache_dir=str(work)))
            vectors[backend] = enc.encode_uncached(texts, None)
            times.update({(backend, bs): [float("nan")] for bs in sizes})
        by_size = {bs: statistics.median(times[backend, bs]) for bs in sizes}
        best = min(by_size, key=by_size.__getitem__)
        rows[backend] = {"seconds": by_size[best], "texts_per_second": len(texts) / by_size[best], "batch_size": best,
                         "seconds_by_batch_size": by_size}
        if backend != "torch":
            cos = (vectors[backend] * vectors["torch"]).sum(1)
            rows[backend].update(mean_cosine=float(cos.mean()), min_cosine=float(cos.min()))
        con.print(backend, rows[backend])
    for backend in rows:
        rows[backend]["speed_vs_torch"] = rows[backend]["texts_per_second"] / rows["torch"]["texts_per_second"]
    # Accuracy: options tuned on validation per backend, and torch's chosen options for every backend
    # (the vectors alone differ; a re-tuned grid point can move NDCG more than the vectors do).
    torch_options: dict[str, Any] = {}
    for backend in rows:
        base = {"encoder.backend": backend, "encoder.cache_dir": str(work), "encoder.threads": args.threads}
        cfg = ExperimentConfig(models=("zeroshot",), ks=(10,), model_options={"zeroshot": base})
        result = run_experiment(ml, cfg)
        rows[backend]["zeroshot_ndcg@10"] = result["models"]["zeroshot"]["ndcg@10"]
        rows[backend]["tuned"] = result.get("tuned", {}).get("zeroshot", {})
        torch_options = torch_options or {k: v for k, v in rows[backend]["tuned"].items() if not k.startswith("valid_")}
        fixed = replace(cfg, tune=False, model_options={"zeroshot": {**base, **torch_options}})
        rows[backend]["zeroshot_ndcg@10_fixed"] = run_experiment(ml, fixed)["models"]["zeroshot"]["ndcg@10"]
    for backend in rows:
        rows[backend]["ndcg_vs_torch"] = rows[backend]["zeroshot_ndcg@10"] / rows["torch"]["zeroshot_ndcg@10"]
        rows[backend]["ndcg_fixed_vs_torch"] = (
            rows[backend]["zeroshot_ndcg@10_fixed"] / rows["torch"]["zeroshot_ndcg@10_fixed"]
        )
    table = Table(
        title=f"encoder backends: {len(texts):,} item texts (ml-100k + Scientific), fastest batch of {sizes}, "
        f"{args.threads} threads, median of {args.repeats}"
    )
    for col in ("backend", "batch", "texts/s", "× torch", "mean cos", "min cos", "zero-shot NDCG@10 tuned", "÷ torch",
                "NDCG@10, torch's options", "÷ torch"):
        table.add_column(col, justify="right")
    for backend, r in rows.items():
        table.add_row(
            backend,
            str(r["batch_size"]),
            f"{r['texts_per_second']:.0f}",
            f"{r['speed_vs_torch']:.2f}",
            f"{r.get('mean_cosine', 1.0):.4f}",
            f"{r.get('min_cosine', 1.0):.4f}",
            f"{r['zeroshot_ndcg@10']:.4f}",
            f"{r['ndcg_vs_torch']:.4f}",
            f"{r['zeroshot_ndcg@10_fixed']:.4f}",
            f"{r['ndcg_fixed_vs_torch']:.4f}",
        )
    con.print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"texts": len(texts), "threads": args.threads, "batch_sizes": sizes,
                                           "backends": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
