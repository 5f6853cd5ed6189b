"""``anyrec evaluate --protocol impressions``: MIND's shown items ranked per impression, the table and the JSON."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from anyrec.cli.common import DataArgs, console, out, progress_bar, read_dataset, write_json
from anyrec.config import FileConfig


def impressions_protocol(
    data: DataArgs,
    file_cfg: FileConfig,
    models: tuple[str, ...],
    options: dict[str, Any],
    seed: int,
    behind: tuple[str, ...],
    ranker_options: dict[str, Any],
    progress: bool,
    json_out: str | None,
) -> None:
    """``--protocol impressions``: MIND's per-impression AUC / MRR / nDCG of the shown items (and the
    click classifier's rows behind ``behind``, trained with shown-not-clicked items as negatives)."""
    from anyrec.eval.impressions import run_impressions

    folder = Path(data.dataset or "")
    if not (folder / "behaviors.tsv").is_file():
        raise click.BadParameter(
            f"needs a MIND-format folder with behaviors.tsv as --dataset; {str(folder) or '(none)'} has none",
            param_hint="--protocol impressions",
        )
    ds = read_dataset(data, file_cfg)
    with progress_bar(progress) as bar:
        result = run_impressions(
            ds, folder, models, options, seed, progress=bar, rank_behind=behind, ranker_options=ranker_options
        )
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(result["cut"]))
    table = Table(
        title=f"{ds.name} · impressions from {when} UTC on (the last 20 % by time) · {result['test_impressions']:,} "
        "test impressions · the shown items ranked"
    )
    for col in ("model", "AUC", "MRR", "nDCG@5", "nDCG@10"):
        table.add_column(col, justify="right")
    for name, m in result["models"].items():
        table.add_row(name, *(f"{m[k]:.4f}" for k in ("auc", "mrr", "ndcg@5", "ndcg@10")))
    out.print(table)
    console.print("read: " + ", ".join(f"{k} {v:,}" for k, v in result["report"].items()))
    for name, m in result["models"].items():
        if "ranker" in m:
            r = m["ranker"]
            console.print(
                f"{name}: {r['pairs']:,} training pairs (shown-not-clicked as negatives) from "
                f"{r['train_impressions']:,} "
                f"impressions, {len(r['epochs'])} epochs in {r['seconds']} s, blend {r['blend']} (validation AUC on "
                f"{r['valid_impressions']:,} impressions: retriever {r['retriever_valid_auc']:.4f}, with ranker "
                f"{r['best_valid']:.4f})"
            )
    if json_out:
        console.print(f"wrote {write_json(json_out, result)}")
