"""Fit time and peak memory of the item-item models (ease, hybrid, rp3beta) against ALS, in one run.

Each model is fitted at its default options (one solve: no validation grid) on the whole log, in a
child process of its own, so its peak resident memory is its own (``ru_maxrss`` of the child) and
the dataset's loading is timed apart from the fit. Ratios are to ALS in the same run.

    python benchmarks/dense_fit.py --config benchmarks/out/synthetic-50k/anyrec.toml \\
        [--models als,ease,hybrid,rp3beta] [--option ease.max_memory_mb=20000] [--json OUT]

A model that refuses the catalog (a dense solve above its ``max_memory_mb``) is a row with its
message, not a failure of the benchmark.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(width=160)


def _fit(source: str, name: str, options: dict[str, Any], queue: Any) -> None:
    from anyrec.cli.common import cache_dir, read_source
    from anyrec.errors import AnyrecError
    from anyrec.models.registry import build_model

    t0 = time.perf_counter()
    ds = read_source(source)
    loaded = time.perf_counter() - t0
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    opts = dict(options)
    if name in ("hybrid", "zeroshot"):
        opts.setdefault("cache_dir", cache_dir(False))
    model = build_model(name, 0, opts)
    t1 = time.perf_counter()
    try:
        model.fit(ds)
        if hasattr(model, "weights"):
            model.weights()  # the solve itself (EASE and the hybrid solve on first use)
        error = ""
    except AnyrecError as exc:
        error = str(exc)
    fit_s = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"model": name, "fit_s": round(fit_s, 2), "peak_mb": round(peak), "after_load_mb": round(base),
               "load_s": round(loaded, 2), "users": ds.n_users, "items": ds.n_items, "events": len(ds.interactions),
               "error": error})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="a dataset name, folder or TOML config")
    ap.add_argument("--models", default="als,ease,hybrid,rp3beta")
    ap.add_argument("--option", action="append", default=[], help="MODEL.KEY=VALUE (repeatable)")
    ap.add_argument("--json", default="benchmarks/out/dense-fit.json")
    args = ap.parse_args()
    from anyrec.cli.common import parse_value

    options: dict[str, dict[str, Any]] = {}
    for item in args.option:
        key, _, value = item.partition("=")
        model, _, opt = key.partition(".")
        options.setdefault(model, {})[opt] = parse_value(value)
    ctx = mp.get_context("spawn")
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        queue = ctx.Queue()
        proc = ctx.Process(target=_fit, args=(args.config, name, options.get(name, {}), queue))
        proc.start()
        row = queue.get()
        proc.join()
        rows.append(row)
        console.print(
            f"{name}: fit {row['fit_s']} s, peak {row['peak_mb']:,} MB{' — ' + row['error'] if row['error'] else ''}"
        )
    als = next((r for r in rows if r["model"] == "als" and not r["error"]), None)
    first = rows[0]
    table = Table(
        title=f"{args.config}: {first['users']:,} users, {first['items']:,} items, {first['events']:,} events · "
        "one fit at default options · ratios to ALS in this run"
    )
    for col in ("model", "fit s", "÷ ALS", "peak MB", "÷ ALS", "above the loaded data MB", "note"):
        table.add_column(col)
    for r in rows:
        fit_ratio = f"{r['fit_s'] / als['fit_s']:.1f}×" if als and als["fit_s"] > 0 and not r["error"] else "–"
        mem_ratio = f"{r['peak_mb'] / als['peak_mb']:.2f}×" if als and not r["error"] else "–"
        r["fit_vs_als"] = round(r["fit_s"] / als["fit_s"], 3) if als and als["fit_s"] > 0 and not r["error"] else None
        r["peak_vs_als"] = round(r["peak_mb"] / als["peak_mb"], 3) if als and not r["error"] else None
        table.add_row(r["model"], f"{r['fit_s']:.2f}", fit_ratio, f"{r['peak_mb']:,}", mem_ratio,
                      f"{r['peak_mb'] - r['after_load_mb']:,}", r["error"][:80])
    console.print(table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"source": args.config, "options": options, "rows": rows}, indent=2))
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
