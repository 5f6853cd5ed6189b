"""``anyrec evaluate`` and ``anyrec datasets``."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import click
from rich.table import Table

from anyrec.cli.common import (
    DataArgs,
    cache_dir,
    console,
    data_options,
    out,
    parse_ks,
    parse_options,
    progress_bar,
    ray_option,
    read_dataset,
    results_table,
    runner_for,
    write_json,
)
from anyrec.cli.group import cli
from anyrec.cli.impressions import impressions_protocol
from anyrec.config import experiment_config
from anyrec.data import FORMATS, NAMED
from anyrec.data.split import PROTOCOLS
from anyrec.errors import AnyrecError, ConfigError
from anyrec.eval.evaluate import MASK_RULES
from anyrec.eval.experiment import run_experiment
from anyrec.eval.flow import embed_on
from anyrec.models import MODELS
from anyrec.models.registry import model_class, option_names
from anyrec.models.renamed import encoder_table, upgrade_options


@cli.command()
def datasets() -> None:
    """List the named datasets and the formats a folder can be read in."""
    table = Table(title="named datasets")
    for col in ("name", "format", "where", "what"):
        table.add_column(col)
    for name, nd in NAMED.items():
        try:
            where = str(nd.resolve())
        except AnyrecError as exc:
            where = f"[red]unavailable[/]: {exc}"
        table.add_row(name, nd.format, where, nd.description)
    out.print(table)
    out.print("Formats for --format: " + ", ".join(FORMATS) + " (a folder's format is detected when omitted).")


def with_text_defaults(name: str, options: dict[str, Any], encoder: str | None, no_cache: bool,
                       init: str | None = None, image_encoder: str | None = None) -> dict[str, Any]:
    """Fill the encoder and cache options of text models (and the picture model, ``--image-encoder``), and ``--init``
    (a pretrained folder) of the models that start from one, from the command line."""
    fields = option_names(name)
    opts = upgrade_options(name, model_class(name).Config, options) if fields else dict(options)
    if "encoder" in fields:  # the options' own settings first, then the command line's
        opts["encoder"] = {"cache_dir": cache_dir(no_cache), **({"model": encoder} if encoder else {})} | encoder_table(
            opts.get("encoder")
        )
    if "init" in fields and init:
        opts.setdefault("init", init)
    if "image_encoder" in fields and image_encoder:
        opts.setdefault("image_encoder", image_encoder)
    return opts


INIT_HELP = ("A pretrained model folder that transfer, transfer-tuned, sequential and sasrec (`anyrec pretrain-rec`; "
             "sequential with new id embeddings) or generative (a saved generative model) start from.")


@cli.command()
@data_options
@click.option(
    "--protocol",
    type=click.Choice([*PROTOCOLS, "impressions"]),
    default=None,
    help="Split protocol (default loo); impressions: rank the shown items of each later impression (MIND folders).",
)
@click.option("--models", default=None, help=f"Comma-separated models from: {', '.join(MODELS)}.")
@click.option("--k", "ks", default=None, help="Comma-separated cut-offs (default 10,20).")
@click.option("--seed", type=int, default=None, help="Seed of the split and the models (default 0).")
@click.option(
    "--cold-rank-among",
    type=click.Choice(["cold", "all"]),
    default=None,
    help="cold-item: rank among cold items only, or the whole catalog.",
)
@click.option(
    "--option", "options", multiple=True, help="Model option MODEL.FIELD=VALUE, e.g. itemknn.k=50 (repeatable)."
)
@click.option(
    "--encoder", default=None, help="Text encoder for text models: name or folder (default all-MiniLM-L6-v2, offline)."
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@click.option("--init", default=None, type=click.Path(file_okay=False, exists=True), help=INIT_HELP)
@click.option(
    "--train-share",
    type=click.FloatRange(0, 1),
    default=None,
    help="Low-resource protocol (default 1): models learn from a seeded share of the training users' rows (0 = none: "
    "only models that need no training run); every user keeps the same validation and test items and "
    "is scored from their whole history.",
)
@click.option(
    "--no-tune", is_flag=True, help="Keep model options as given instead of choosing them on the validation split."
)
@click.option(
    "--stability",
    is_flag=True,
    help="Choose options as `anyrec fit` does for serving: the best validation NDCG among those passing the "
    "stability check (default: accuracy alone, as every peer row is tuned).",
)
@click.option(
    "--test-history",
    type=click.Choice(["train+valid", "train"]),
    default=None,
    help="History a model may use when scoring test users (default train+valid).",
)
@click.option(
    "--mask",
    type=click.Choice(MASK_RULES),
    default=None,
    help="What is removed before ranking (default history): the user's whole history (anyrec), the history minus the "
    "held-out items (RecBole general models) or nothing (RecBole sequential models).",
)
@click.option(
    "--also-mask",
    "also_masks",
    multiple=True,
    type=click.Choice(["history", "history-minus-targets", "none"]),
    help="Also read every model's test lists under this masking rule (same fit, same history; repeatable).",
)
@click.option(
    "--report-untuned",
    is_flag=True,
    help="Also read every tuned model's test lists with the options it was fitted with, before the "
    "validation search (same fit): what the search adds.",
)
@click.option(
    "--tune-training",
    is_flag=True,
    help="Also search training-time options (sequential, sasrec: dropout, lr, hidden) on validation, one fit per "
    "value.",
)
@click.option(
    "--model-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="A saved text model: reuse its item vectors (and its dataset).",
)
@click.option(
    "--ranker",
    type=click.Choice(["classifier"]),
    default=None,
    help="Add a ranking stage: the click classifier re-ranks the top --rank-depth of each --rank-behind model "
    "(trained on the same training rows; options ranker.FIELD=VALUE).",
)
@click.option(
    "--rank-behind",
    default=None,
    help="Models the ranker sits behind, comma-separated (default: the last of --models).",
)
@click.option(
    "--rank-depth", type=click.IntRange(min=2), default=None, help="Retrieved items the ranker re-scores (default 20)."
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write results as JSON here.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), default=None, help="Write a bar chart PNG here.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
@ray_option
def evaluate(
    data: DataArgs,
    protocol: str | None,
    models: str | None,
    ks: str | None,
    seed: int | None,
    cold_rank_among: str | None,
    options: tuple[str, ...],
    encoder: str | None,
    no_cache: bool,
    init: str | None,
    train_share: float | None,
    no_tune: bool,
    stability: bool,
    test_history: str | None,
    mask: str | None,
    also_masks: tuple[str, ...],
    report_untuned: bool,
    tune_training: bool,
    model_dir: str | None,
    ranker: str | None,
    rank_behind: str | None,
    rank_depth: int | None,
    json_out: str | None,
    plot_out: str | None,
    progress: bool,
    ray_address: str | None,
) -> None:
    """Split a dataset, fit each model on the training part, rank the full catalog, report metrics."""
    file_cfg = data.file_config()
    base = experiment_config(file_cfg.evaluate, f"{data.config_path}: [evaluate]")  # the TOML table over the defaults
    names = tuple(m.strip() for m in models.split(",") if m.strip()) if models else base.models
    k_values = parse_ks(ks) if ks else base.ks
    seed = seed if seed is not None else base.seed
    protocol = protocol or file_cfg.evaluate.get("protocol", base.split.protocol)
    split = replace(
        base.split,
        protocol="loo" if protocol == "impressions" else protocol,
        seed=seed,
        cold_rank_among=cold_rank_among or base.split.cold_rank_among,
    )
    model_options = {**file_cfg.model_options}
    for model, opts in parse_options(options).items():
        model_options[model] = {**model_options.get(model, {}), **opts}
    ranker_options = model_options.pop("ranker", {})
    ranker = ranker or base.ranker
    if ranker:  # a misspelt ranker option fails now, not after the retrievers have trained
        from anyrec.rank.cross_config import ranker_config

        if ranker_config({"seed": seed, **ranker_options}).evidence and protocol == "impressions":
            raise ConfigError(
                "ranker.evidence is for the listwise ranker; the impression ranker learns from shown items only"
            )
    # ``auto`` may pick any registered model: each gets the command line's text options.
    model_options = {
        m: with_text_defaults(m, model_options.get(m, {}), encoder, no_cache, init, data.image_encoder)
        for m in (names if "auto" not in names else (*names, *MODELS))
    }
    behind = (
        (
            tuple(m.strip() for m in rank_behind.split(",") if m.strip())
            if rank_behind
            else base.rank_behind or (names[-1],)
        )
        if ranker
        else ()
    )
    unknown = sorted(set(behind) - set(names))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} not among --models", param_hint="--rank-behind")
    if protocol == "impressions":
        impressions_protocol(data, file_cfg, names, model_options, seed, behind, ranker_options, progress, json_out)
        return
    given: dict[str, Any] = {
        k: v
        for k, v in (
            ("test_history", test_history),
            ("mask", mask),
            ("train_share", train_share),
            ("rank_depth", rank_depth),
        )
        if v is not None
    }
    mask_rule = given.get("mask", base.mask)
    cfg = replace(
        base,
        models=names,
        ks=k_values,
        split=split,
        seed=seed,
        model_options=model_options,
        **given,
        tune=base.tune and not no_tune,
        stable=base.stable or stability,
        tune_training=base.tune_training or tune_training,
        report_untuned=base.report_untuned or report_untuned,
        ranker=ranker,
        rank_behind=behind,
        ranker_options=ranker_options,
        also_masks=tuple(r for r in (also_masks or base.also_masks) if r != mask_rule),
    )
    vectors = None
    if model_dir:
        from anyrec.app.persist import load_model

        saved, ds, _index, _meta = load_model(model_dir)
        vectors = saved.encoded_items()
        console.print(
            f"reusing {model_dir}: dataset {ds.name}" + (", item vectors" if vectors is not None else "")
        )
    else:
        ds = read_dataset(data, file_cfg)
    s = ds.summary()
    console.print(
        f"[bold]{s['name']}[/]: {s['users']:,} users, {s['items']:,} items, {s['interactions']:,} interactions"
    )
    with runner_for(ray_address) as runner, progress_bar(progress) as bar:
        if vectors is None and runner.name != "local":
            vectors = embed_on(runner, ds, names, model_options, bar)
        t0 = time.perf_counter()
        result = run_experiment(ds, cfg, progress=bar, item_vectors=vectors, runner=runner)
        result["runner"] = {
            "name": runner.name,
            "address": ray_address or "",
            "seconds": round(time.perf_counter() - t0, 2),
        }
    out.print(results_table(result, k_values))
    console.print("split: " + ", ".join(f"{k}={v}" for k, v in result["split"].items()))
    for name, m in result["models"].items():
        if "generation" in m:
            g = m["generation"]
            console.print(
                f"{name}: {g['lists']:,} generated lists, {g['generated']:,} ids, {g['invalid']} invalid "
                f"(not an item, excluded or filtered out), {g['short_lists']} lists shorter than 10"
            )
    for name, m in result["models"].items():
        if "ranker" in m:
            r = m["ranker"]
            console.print(
                f"{name}: {r['pairs']:,} training pairs, {len(r['epochs'])} epochs in {r['seconds']} s, blend "
                f"{r['blend']} "
                f"(validation NDCG@10: retriever {r['retriever_valid_ndcg@10']:.4f}, with ranker {r['best_valid']:.4f})"
            )
    for name, m in result["models"].items():
        if "before_tuning" in m:
            console.print(
                f"{name}, before the validation search: "
                + ", ".join(f"{k} {v:.4f}" for k, v in m["before_tuning"].items() if isinstance(v, float) and "@" in k)
            )
        for rule, by in m.get("by_mask", {}).items():
            console.print(
                f"{name}, masked {rule}: " + ", ".join(f"{k} {v:.4f}" for k, v in by.items() if isinstance(v, float))
            )
    for name, why in result.get("skipped", {}).items():
        console.print(f"[yellow]{name}: not run[/] ({why})")
    for name, why in result.get("refused", {}).items():
        console.print(f"[red]{name}: refused[/] ({why})")
    for name, params in result.get("tuned", {}).items():
        console.print(f"{name}: options chosen on validation: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    if "auto" in result:
        console.print(auto_table(result["auto"], result["models"]))
    if json_out:
        console.print(f"wrote {write_json(json_out, result)}")
    if plot_out and result["models"]:
        from anyrec.eval.plot import plot_results

        console.print(f"wrote {plot_results(result, plot_out)}")
    if not result["models"] and result.get("refused"):
        raise ConfigError("no model finished: " + "; ".join(f"{n}: {why}" for n, why in result["refused"].items()))


def auto_table(auto: dict[str, Any], rows: dict[str, Any]) -> Table:
    """What ``auto`` chose from: each candidate's reason, validation NDCG@10 and fit seconds."""
    table = Table(
        title=f"auto chose {auto.get('chosen', '(nothing: no validation split)')} on validation NDCG@10 "
        f"(fit and search time of all candidates: {rows.get('auto', {}).get('fit_seconds', 0):.1f} s)"
    )
    for col in ("candidate", "why", "valid NDCG@10", "fit + search s"):
        table.add_column(col, justify="left" if col in ("candidate", "why") else "right")
    for name, why in auto["candidates"].items():
        v = auto.get("validation", {}).get(name)
        mark = " ◀" if name == auto.get("chosen") else ""
        took = rows.get(name, {}).get("fit_seconds", 0) + rows.get(name, {}).get("tune_seconds", 0)
        table.add_row(name + mark, why, "–" if v is None else f"{v:.4f}", f"{took:.2f}")
    for note in auto.get("left out", []):
        table.add_row("(left out)", note, "", "")
    return table

