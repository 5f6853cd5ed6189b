"""``anyrec pretrain-rec``: one text-only sequential recommender pretrained across catalogs (see
:mod:`anyrec.models.sequential.pretrain`); ``--init DIR`` on ``fit``, ``evaluate`` and ``retrain`` starts from it."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import click

from anyrec.cli.common import cache_dir, console, out, parse_options, progress_bar, read_source
from anyrec.cli.group import cli
from anyrec.lm.encoder import DEFAULT_ENCODER, EncoderConfig, encode_catalog


@cli.command("pretrain-rec")
@click.option("--source", "sources", multiple=True, required=True,
              help="A dataset to pretrain on: named dataset, folder or TOML config (repeatable; never the target).")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write the pretrained model to."
)
@click.option(
    "--encoder",
    default=DEFAULT_ENCODER,
    show_default=True,
    help="Sentence encoder that turns every item into a vector.",
)
@click.option(
    "--max-minutes", type=float, default=20.0, show_default=True, help="Time budget (0 = none); the best epoch is kept."
)
@click.option("--epochs", type=click.IntRange(min=1), default=200, show_default=True)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Stop after this many epochs without a better validation NDCG@10 (the sources' figures "
    "weighted by their share of the training windows).",
)
@click.option(
    "--valid-users",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Users per source whose last item is held out for validation.",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    help="Network option pretrain.FIELD=VALUE: hidden, layers, heads, max_len, "
    "experts, dropout, lr, temperature, batch_size, sampled_softmax, device (repeatable).",
)
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in --out.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@click.option("--seed", type=int, default=0)
def pretrain_rec(
    sources: tuple[str, ...],
    out_dir: str,
    encoder: str,
    max_minutes: float,
    epochs: int,
    patience: int,
    valid_users: int,
    options: tuple[str, ...],
    resume: bool,
    no_cache: bool,
    seed: int,
) -> None:
    """Pretrain the text path of the sequential model (no item ids) on several catalogs at once."""
    from anyrec.models.sequential.config import SequentialConfig
    from anyrec.models.sequential.pretrain import Source, make_source, pretrain

    given = parse_options(options)
    wrong = sorted(set(given) - {"pretrain"})
    if wrong:
        raise click.BadParameter(
            f"options here are pretrain.FIELD=VALUE, not {', '.join(wrong)}", param_hint="--option"
        )
    opts = given.get("pretrain", {})
    known = {f.name for f in fields(SequentialConfig)} - {
        "use_ids",
        "use_text",
        "log_dir",
        "resume",
        "init",
        "encoder",
    }
    unknown = sorted(set(opts) - known)
    if unknown:
        raise click.BadParameter(
            f"pretrain has no option(s) {', '.join(unknown)}; options: {', '.join(sorted(known))}",
            param_hint="--option",
        )
    cfg = replace(
        SequentialConfig(),
        encoder=EncoderConfig(encoder),
        max_minutes=max_minutes,
        epochs=epochs,
        patience=patience,
        seed=seed,
        resume=resume,
        **opts,
    )
    cache = cache_dir(no_cache)
    loaded: list[Source] = []
    reports: dict[str, dict[str, int]] = {}
    with progress_bar() as bar:
        for source in sources:
            ds = read_source(source)
            s = ds.summary()
            console.print(
                f"[bold]{s['name']}[/]: {s['users']:,} users, {s['items']:,} items, {s['interactions']:,} interactions"
            )
            text = encode_catalog(
                ds.catalog.texts(),
                encoder=cfg.encoder.model,
                cache_dir=cache,
                threads=cfg.threads,
                progress=_relabel(bar, f"embed {s['name']}"),
            )
            made, report = make_source(ds.name, ds.catalog.texts(), text, ds.interactions.sequences(ds.n_users))
            if report["events_on_items_without_text"]:
                console.print(
                    f"[yellow]{s['name']}: {report['events_on_items_without_text']:,} of {report['events']:,} events "
                    f"are on items without text ({report['items_without_text']:,} items): left out[/]"
                )
            loaded.append(made)
            reports[made.name] = report
        names = [s.name for s in loaded]
        if len(set(names)) < len(names):
            raise click.BadParameter(f"a source is given twice: {', '.join(names)}", param_hint="--source")
        meta = pretrain(loaded, cfg, out_dir, valid_users=valid_users, progress=bar, read=reports)
    console.print(
        f"pretrained {meta['epochs']} epochs, {meta['steps']:,} steps in {meta['seconds']:.0f} s on {meta['device']}; "
        f"best validation NDCG@10 (weighted by the sources' windows) {meta['best_valid_ndcg@10']:.4f}"
    )
    for src in meta["sources"]:
        last = meta["history"][-1]["valid_by_source"].get(src["name"], 0.0) if meta["history"] else 0.0
        out.print(
            f"  {src['name']}: {src['items']:,} items, {src['training_windows']:,} windows, {src['steps']:,} steps "
            f"({100 * src['share_of_steps']:.1f} % of all), last validation NDCG@10 {last:.4f}"
        )
    console.print(f"wrote {Path(out_dir)} (use with --init {out_dir})")


def _relabel(bar: Any, desc: str) -> Any:
    """The progress callback reporting under ``desc`` (``None`` without a bar)."""
    if bar is None:
        return None
    return lambda task, done, total: bar(desc, done, total)
