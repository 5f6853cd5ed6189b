"""Embedding speed: anyrec's encoder against calling SentenceTransformer.encode directly.

Same texts, same model (offline all-MiniLM-L6-v2), same batch size and threads, in one run.
Reports anyrec's overhead on a cold cache (target ratio ≤ 1.10) and the cached second run as a
share of the first (target < 5 %). Model loading is excluded from every timing.

    python benchmarks/embed_speed.py [--scientific ../shared/data/amazon-scientific] [--json OUT]
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
from anyrec.lm.encoder import EncoderConfig, TextEncoder, resolve_encoder

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scientific", default=str(ROOT.parent / "shared" / "data" / "amazon-scientific"))
    ap.add_argument("--n-scientific", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "out" / "embed-speed.json"))
    args = ap.parse_args()
    console = Console(width=160)

    corpora = {"ml-100k catalog": load_dataset("ml-100k").catalog.texts()}
    if Path(args.scientific).exists():
        sci = load_dataset(args.scientific).catalog.texts()[: args.n_scientific]
        corpora[f"Amazon Scientific ({len(sci)} texts)"] = sci
    else:
        console.print(f"[yellow]{args.scientific} missing: Scientific corpus skipped[/]")

    from sentence_transformers import SentenceTransformer

    direct = SentenceTransformer(resolve_encoder("default"), device="cpu")
    rows = []
    for name, texts in corpora.items():
        direct.encode(texts[:64], batch_size=args.batch_size)  # warm-up
        d_times, a_times, c_times = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ref = direct.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
            d_times.append(time.perf_counter() - t0)
            with tempfile.TemporaryDirectory() as cache:
                enc = TextEncoder(EncoderConfig(batch_size=args.batch_size, device="cpu", cache_dir=cache))
                enc.use_backend(direct)  # the same loaded model: only anyrec's own work is measured
                t0 = time.perf_counter()
                got = enc.encode(texts)
                a_times.append(time.perf_counter() - t0)
                again = TextEncoder(EncoderConfig(batch_size=args.batch_size, device="cpu", cache_dir=cache))
                again.use_backend(direct)
                t0 = time.perf_counter()
                cached = again.encode(texts)
                c_times.append(time.perf_counter() - t0)
                assert again.last_stats["encoded"] == 0
            assert np.allclose(got, ref, atol=1e-4) and np.array_equal(got, cached)
        d, a, c = statistics.median(d_times), statistics.median(a_times), statistics.median(c_times)
        rows.append({"corpus": name, "texts": len(texts), "direct_s": round(d, 3), "anyrec_cold_s": round(a, 3),
                     "anyrec_cached_s": round(c, 4), "overhead_ratio": round(a / d, 3), "cached_share": round(c / a, 4),
                     "texts_per_s_anyrec": round(len(texts) / a, 1)})

    table = Table(title="embedding speed · all-MiniLM-L6-v2 · CPU · medians of "
                  f"{args.repeats} runs · model load excluded")
    for col in ("corpus", "texts", "SentenceTransformer.encode s", "anyrec (cold cache) s", "ratio (≤ 1.10)",
                "anyrec cached s", "cached / cold (< 5 %)", "texts/s"):
        table.add_column(col, justify="right")
    ok = True
    for r in rows:
        good = r["overhead_ratio"] <= 1.10 and r["cached_share"] < 0.05
        ok &= good
        table.add_row(r["corpus"], str(r["texts"]), f"{r['direct_s']:.2f}", f"{r['anyrec_cold_s']:.2f}",
                      f"{'[green]' if r['overhead_ratio'] <= 1.10 else '[red]'}{r['overhead_ratio']:.3f}[/]",
                      f"{r['anyrec_cached_s']:.3f}",
                      f"{'[green]' if r['cached_share'] < 0.05 else '[red]'}{r['cached_share']:.1%}[/]",
                      f"{r['texts_per_s_anyrec']:.0f}")
    console.print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"rows": rows, "all_within_targets": ok}, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
