"""``anyrec fit-ranker``: train the click classifier behind a saved retriever, for recommend / serve --ranker."""

from __future__ import annotations

import click

from anyrec.app.persist import load_model
from anyrec.cli.common import console, parse_options, progress_bar
from anyrec.cli.group import cli
from anyrec.data.split import SplitConfig, make_split


@cli.command("fit-ranker")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="The retriever: a folder written by `anyrec fit` (a model that reads a history: zeroshot, sequential, "
    "itemknn …).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the ranker.")
@click.option(
    "--depth", type=click.IntRange(min=2), default=20, show_default=True, help="Retrieved items the ranker re-scores."
)
@click.option(
    "--option",
    "options",
    multiple=True,
    help="Ranker option ranker.FIELD=VALUE (encoder, epochs, lr, batch_size, "
    "negatives, positions, max_minutes, device …).",
)
@click.option("--seed", type=int, default=0)
def fit_ranker(model_dir: str, out_dir: str, depth: int, options: tuple[str, ...], seed: int) -> None:
    """Fine-tune a pretrained encoder as a yes/no click classifier over (recent history, candidate) pairs.

    The leave-one-out split of `evaluate` is used: training pairs come from every user's history
    but the last two items; the second-to-last is the validation target (it picks the epoch and
    the blend with the retriever's score); hard negatives are the retriever's best items the
    user never touched. Use the folder with
    `anyrec recommend --model RETRIEVER --ranker OUT` or `anyrec serve --ranker OUT`.
    """
    from anyrec.rank.cross_config import ranker_config
    from anyrec.rank.train import fit_click_stage

    opts = parse_options(options)
    unknown = sorted(set(opts) - {"ranker"})
    if unknown:
        raise click.BadParameter(
            f"options here are ranker.FIELD=VALUE, not {', '.join(unknown)}", param_hint="--option"
        )
    retriever, ds, _index, _meta = load_model(model_dir)
    split = make_split(ds, SplitConfig(protocol="loo", seed=seed))
    retriever.set_history(split.train_dataset(ds))  # validation targets must not count as seen
    cfg = ranker_config({"seed": seed, **opts.get("ranker", {})})
    with progress_bar() as bar:
        _stage, report = fit_click_stage(
            retriever,
            ds,
            split,
            cfg,
            depth=depth,
            out_dir=out_dir,
            progress=lambda done, total: bar("train ranker", done, total),
        )
    console.print(
        f"ranker: {report['pairs']:,} pairs, {len(report['epochs'])} epochs in {report['seconds']} s; validation "
        f"NDCG@10 retriever {report['retriever_valid_ndcg@10']:.4f} → with ranker {report['best_valid']:.4f} "
        f"(blend {report['blend']}); saved to {out_dir}"
    )
