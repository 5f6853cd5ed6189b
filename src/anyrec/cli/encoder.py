"""``anyrec pretrain-encoder``: a sentence encoder with a behaviour head trained across catalogs (see
:mod:`anyrec.lm.behaviour`); ``--encoder DIR`` then uses it in every text model, search and the service."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import click

from anyrec.cli.common import (
    DataArgs,
    cache_dir,
    console,
    data_options,
    out,
    parse_options,
    progress_bar,
    read_dataset,
    read_source,
)
from anyrec.cli.group import cli
from anyrec.lm.encoder import DEFAULT_ENCODER

_FIXED = {"encoder", "max_minutes", "rounds", "seed"}  # options of their own on the command line


@cli.command("pretrain-encoder")
@click.option("--source", "sources", multiple=True, required=True,
              help="A dataset to learn from: named dataset, folder or TOML config (repeatable; never the target).")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write the encoder to."
)
@click.option(
    "--encoder", default=DEFAULT_ENCODER, show_default=True, help="Sentence encoder to start from: name or folder."
)
@click.option(
    "--max-minutes", type=float, default=20.0, show_default=True, help="Time budget (0 = none); the best round is kept."
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="At most this many rounds (a validation each).",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    help="encoder.FIELD=VALUE: batch_size, history, item_pairs, lr, temperature, mix, round_steps, patience, "
    "valid_users, threads, device (repeatable).",
)
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in --out.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@click.option("--seed", type=int, default=0)
def pretrain_encoder(
    sources: tuple[str, ...],
    out_dir: str,
    encoder: str,
    max_minutes: float,
    rounds: int,
    options: tuple[str, ...],
    resume: bool,
    no_cache: bool,
    seed: int,
) -> None:
    """Train a behaviour head on a sentence encoder with several catalogs' logs (next item after a history, items
    taken together), every other item of the catalog a negative; write a sentence-transformers folder."""
    from anyrec.lm.behaviour import BehaviourConfig, BehaviourSource, train_encoder

    given = parse_options(options)
    wrong = sorted(set(given) - {"encoder"})
    if wrong:
        raise click.BadParameter(f"options here are encoder.FIELD=VALUE, not {', '.join(wrong)}", param_hint="--option")
    opts = given.get("encoder", {})
    known = {f.name for f in fields(BehaviourConfig)} - _FIXED
    unknown = sorted(set(opts) - known)
    if unknown:
        raise click.BadParameter(
            f"pretrain-encoder has no option(s) {', '.join(unknown)}; options: {', '.join(sorted(known))}",
            param_hint="--option",
        )
    cfg = replace(
        BehaviourConfig(),
        encoder=encoder,
        max_minutes=max_minutes,
        rounds=rounds,
        seed=seed,
        **opts,
    )
    read: list[BehaviourSource] = []
    for source in sources:
        ds = read_source(source)
        s = ds.summary()
        console.print(
            f"[bold]{s['name']}[/]: {s['users']:,} users, {s['items']:,} items, {s['interactions']:,} interactions"
        )
        read.append(BehaviourSource(ds.name, ds.catalog.texts(), ds.interactions.sequences(ds.n_users)))
    with progress_bar() as bar:
        meta = train_encoder(
            read, cfg, out_dir, cache_dir=cache_dir(no_cache), resume=resume, progress=bar
        )
    first, best = meta["valid_ndcg@10"]["as it came"], meta["valid_ndcg@10"]["best"]
    console.print(
        f"trained {meta['steps']:,} steps in {meta['seconds']['training']:.0f} s on {meta['device']}; kept "
        f"{meta['kept']}; "
        f"held-out NDCG@10 (mean over the sources) {first:.4f} as it came → {best:.4f}"
    )
    by_source = next(e for e in meta["history"] if e["round"] == meta["best_round"])["valid_by_source"]
    for src in meta["sources"]:
        before = meta["history"][0]["valid_by_source"][src["name"]]
        out.print(
            f"  {src['name']}: {src['items']:,} items, {src['pairs']:,} pairs, {src['steps']:,} steps "
            f"({100 * src['share_of_steps']:.1f} %), held-out NDCG@10 {before:.4f} → {by_source[src['name']]:.4f}"
        )
        if src["events_on_items_without_text"]:
            out.print(f"    {src['events_on_items_without_text']:,} events on items without text left out")
    console.print(f"wrote {Path(out_dir)} (use with --encoder {out_dir})")


@cli.command()
@data_options
@click.option("--objective", type=click.Choice(["mlm", "clm"]), default="mlm", show_default=True)
@click.option("--encoder", default="default", show_default=True, help="Model to continue from: name or folder.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the adapted model.")
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--lr", type=float, default=5e-5, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--max-minutes", type=float, default=0.0, help="Time budget (0 = none).")
@click.option("--seed", type=int, default=0)
def pretrain(
    data: DataArgs,
    objective: str,
    encoder: str,
    out_dir: str,
    epochs: int,
    lr: float,
    batch_size: int,
    max_minutes: float,
    seed: int,
) -> None:
    """Continue pretraining the encoder on the catalog's own text; use the result with --encoder OUT."""
    from anyrec.lm.pretrain import PretrainConfig
    from anyrec.lm.pretrain import pretrain as run_pretrain

    file_cfg = data.file_config()
    ds = read_dataset(data, file_cfg)
    cfg = PretrainConfig(
        model=encoder,
        objective=objective,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_minutes=max_minutes,
        seed=seed,
    )
    with progress_bar() as bar:
        report = run_pretrain(ds.catalog.texts(), out_dir, cfg, progress=bar)
    console.print(
        f"pretrained ({objective}) on {report['texts']:,} texts of {ds.name} in {report['seconds']} s; "
        f"epoch losses {report['epoch_losses']}; saved to {out_dir} (use --encoder {out_dir})"
    )
