"""``anyrec fit``, ``recommend``, ``search`` and ``similar``: fit once, then use the saved folder."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from anyrec.app import pipeline
from anyrec.app.fitting import fit_for_serving
from anyrec.app.persist import load_model, save_model
from anyrec.cli.common import (
    DataArgs,
    cache_dir,
    console,
    data_options,
    out,
    parse_options,
    progress_bar,
    ray_option,
    read_dataset,
    runner_for,
)
from anyrec.cli.evaluate import INIT_HELP, with_text_defaults
from anyrec.cli.group import cli
from anyrec.config import FileConfig, load_config
from anyrec.data.dataset import Dataset
from anyrec.data.merge import merge_datasets
from anyrec.index.vector import VectorIndex
from anyrec.models import MODELS, Recommender
from anyrec.models.registry import build_model, option_names


@cli.command()
@data_options
@click.option(
    "--model",
    "model_name",
    type=click.Choice(["auto", *MODELS]),
    default="zeroshot",
    show_default=True,
    help="A model, or auto: the models that suit the log fitted side by side, the best validation NDCG@10 saved.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write the model to.")
@click.option("--encoder", default=None, help="Text encoder: name or folder (default all-MiniLM-L6-v2, offline).")
@click.option(
    "--index",
    "index_spec",
    default="exact",
    show_default=True,
    help="Vector index: exact, or a FAISS factory string (Flat, HNSW32, IVF256,PQ32).",
)
@click.option("--metric", type=click.Choice(["cosine", "l2"]), default="cosine", show_default=True)
@click.option("--option", "options", multiple=True, help="Model option MODEL.FIELD=VALUE (repeatable).")
@click.option("--no-tune", is_flag=True, help="Skip choosing options on a leave-one-out validation split.")
@click.option(
    "--tune-for",
    type=click.Choice(["serving", "accuracy"]),
    default="serving",
    show_default=True,
    help="serving: the best validation NDCG@10 among options that pass the stability check (one like or dislike "
    "keeps most of a list); accuracy: the best NDCG@10 alone.",
)
@click.option("--no-cache", is_flag=True, help="Do not use the embedding cache.")
@click.option("--seed", type=int, default=0)
@click.option("--max-minutes", type=float, default=None, help="Training time budget for trained models (sequential).")
@click.option("--resume", is_flag=True, help="Continue training from the checkpoint in --out (sequential).")
@click.option(
    "--also",
    "also",
    multiple=True,
    help="Another named dataset, folder or TOML config to fit on together with the main "
    "one (repeatable; ids kept apart by dataset name): pretraining across catalogs.",
)
@click.option("--init", default=None, type=click.Path(file_okay=False, exists=True), help=INIT_HELP)
@click.option(
    "--pretrained",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    hidden=True,
    help="The earlier name of --init (generative).",
)
@ray_option
def fit(
    data: DataArgs,
    model_name: str,
    out_dir: str,
    encoder: str | None,
    index_spec: str,
    metric: str,
    options: tuple[str, ...],
    no_tune: bool,
    tune_for: str,
    no_cache: bool,
    seed: int,
    max_minutes: float | None,
    resume: bool,
    also: tuple[str, ...],
    init: str | None,
    pretrained: str | None,
    ray_address: str | None,
) -> None:
    """Fit a model on all interactions and save it (config, id maps, vectors, index)."""
    file_cfg = data.file_config()
    ds = read_dataset(data, file_cfg)
    if also:
        others = [
            read_dataset(DataArgs(), load_config(extra))
            if extra.endswith(".toml")
            else read_dataset(DataArgs(dataset=extra), FileConfig())
            for extra in also
        ]
        ds = merge_datasets([ds, *others])
    name = model_name
    if name == "auto":
        text = (encoder, no_cache, init, data.image_encoder)
        _fit_auto(file_cfg, ds, options, text, ray_address, seed, index_spec, metric, tune_for, max_minutes, out_dir)
        return
    opts = {**file_cfg.model_options.get(name, {}), **parse_options(options).get(name, {})}
    opts = with_text_defaults(name, opts, encoder, no_cache, init, data.image_encoder)
    fields = option_names(name)
    if pretrained:  # the option's earlier name: one name, --init, for every model that starts from a folder
        console.print("[yellow]--pretrained is now --init (the same for every model that starts from a folder)[/]")
        if "init" not in fields:
            raise click.UsageError(f"--init works with sequential, sasrec, transfer and generative, not {name}")
        opts["init"] = pretrained
    if "log_dir" in fields:
        # Trained models write their training log and resumable checkpoint into the model folder.
        opts.setdefault("log_dir", out_dir)
        if resume:
            opts["resume"] = True
        if max_minutes is not None:
            opts["max_minutes"] = max_minutes
    with runner_for(ray_address) as runner, progress_bar() as bar:
        model, tuned, metrics, index = fit_for_serving(
            name,
            ds,
            opts,
            seed,
            not no_tune,
            bar,
            index_spec,
            metric,
            runner,
            stable=tune_for == "serving",
        )
    info = model.describe()
    if info is not None and "codes" in info:
        _print_codes(info)
    if tuned:
        console.print("options chosen on validation: " + ", ".join(f"{k}={v}" for k, v in tuned.items()))
    for key in (k for k in metrics if "index_recall" in k):
        what = "model-space index" if key.startswith("model_") else "text index"
        console.print(
            f"{what} ({index_spec}): recall@10 against exact search {metrics[key]:.4f} "
            "(queries of up to 500 users' histories)"
        )
    folder = save_model(
        model, ds, out_dir, index, extra={"tuned": tuned, "metrics": metrics, "index": index_spec}
    )
    console.print(f"saved {name} for {ds.name} ({ds.n_users:,} users, {ds.n_items:,} items) to {folder}")


def _fit_auto(
    file_cfg: Any,
    ds: Any,
    option_pairs: tuple[str, ...],
    text: tuple[str | None, bool, str | None, str | None],
    ray_address: str | None,
    seed: int,
    index_spec: str,
    metric: str,
    tune_for: str,
    max_minutes: float | None,
    out_dir: str,
) -> None:
    """``fit --model auto``: the candidates fitted for serving, their validation table printed, the winner saved
    (``text``: the encoder, no-cache, init and picture-model options of the command line)."""
    from anyrec.app.fitting import fit_auto
    from anyrec.cli.evaluate import auto_table

    given = parse_options(option_pairs)
    options = {
        m: with_text_defaults(m, {**file_cfg.model_options.get(m, {}), **given.get(m, {})}, *text) for m in MODELS
    }
    with runner_for(ray_address) as runner, progress_bar() as bar:
        model, tuned, metrics, index, report = fit_auto(
            ds, options, seed, bar, index_spec, metric, runner, tune_for == "serving", max_minutes
        )
    rows = {n: {"fit_seconds": s} for n, s in report["seconds"].items()}
    rows["auto"] = {"fit_seconds": sum(report["seconds"].values())}
    console.print(auto_table(report, rows))
    if tuned:
        console.print(f"{model.name}: options chosen on validation: " + ", ".join(f"{k}={v}" for k, v in tuned.items()))
    extra = {"tuned": tuned, "metrics": metrics, "index": index_spec, "auto": report}
    folder = save_model(model, ds, out_dir, index, extra=extra)
    console.print(
        f"saved {model.name} (chosen by auto) for {ds.name} ({ds.n_users:,} users, {ds.n_items:,} items) to {folder}"
    )


def _print_codes(info: dict[str, Any]) -> None:
    """Semantic ids of a generative model: codebook use per level and collisions."""
    codes = info["codes"]
    table = Table(
        title=f"semantic ids: {codes['items']:,} items, vocabulary {info['vocabulary']:,} tokens, "
        f"decoder {info['decoder_parameters']:,} parameters"
    )
    for col in ("level", "codes used", "perplexity"):
        table.add_column(col, justify="right")
    for lv in codes["levels"]:
        table.add_row(str(lv["level"]), f"{lv['used']} / {lv['of']}", f"{lv['perplexity']:.1f}")
    out.print(table)
    console.print(
        f"collisions: {codes['collision_rate']:.2%} of items share their semantic codes with another item "
        f"(largest group {codes['largest_group']}; the extra level tells them apart); ids unique: {codes['unique']}"
    )


def load_model_or_fit(
    model_dir: str | None, data: DataArgs, encoder: str | None
) -> tuple[Recommender, Dataset, VectorIndex | None]:
    """A saved model (--model DIR), or a zero-shot model fitted on the fly from the data options."""
    if model_dir:
        model, ds, index, _meta = load_model(model_dir)
        return model, ds, index
    ds = read_dataset(data, data.file_config())
    settings = {"cache_dir": cache_dir(False), **({"model": encoder} if encoder else {})}
    model = build_model("zeroshot", 0, {"encoder": settings})
    return model.fit(ds), ds, None


def model_options(f: Any) -> Any:
    f = click.option("--encoder", default=None, help="Encoder when no --model is given.")(f)
    f = click.option(
        "--model",
        "model_dir",
        default=None,
        type=click.Path(file_okay=False),
        help="A folder written by `anyrec fit`; without it a zero-shot model is fitted on the data options.",
    )(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)
    f = click.option("--k", type=click.IntRange(min=1), default=10, show_default=True)(f)
    return f


def _print(rows: list[dict[str, Any]], title: str, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        click.echo(json.dumps({**(extra or {}), "results": rows}, indent=2, ensure_ascii=False))
        return
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("id")
    table.add_column("title")
    table.add_column("score", justify="right")
    has_why = any(r.get("because") for r in rows)
    has_prior = any("prior" in r for r in rows)
    if has_prior:
        table.add_column("text", justify="right")
        table.add_column("prior", justify="right")
    if has_why:
        table.add_column("from your history (contribution to text)")
    for r in rows:
        cells = [str(r["rank"]), r["id"], r["title"], f"{r['score']:.3f}"]
        if has_prior:
            cells += [f"{r['text_score']:.3f}", f"{r['prior']:+.3f}"]
        if has_why:
            cells.append("; ".join(f"{b['title']} ({b['contribution']:+.2f})" for b in r.get("because", [])))
        table.add_row(*cells)
    out.print(table)


@cli.command()
@data_options(mapping=False)
@model_options
@click.option("--user", required=True, help="Raw user id.")
@click.option("--category", "categories", multiple=True, help="Only items in this category (repeatable).")
@click.option(
    "--history",
    "show_history",
    type=int,
    default=5,
    show_default=True,
    help="Show this many recent history items (0 hides).",
)
@click.option(
    "--ranker",
    "ranker_dir",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    help="A ranker folder (anyrec fit-ranker): retrieve with --model, re-rank its top with the ranker.",
)
def recommend(
    data: DataArgs,
    k: int,
    as_json: bool,
    model_dir: str | None,
    encoder: str | None,
    user: str,
    categories: tuple[str, ...],
    show_history: int,
    ranker_dir: str | None,
) -> None:
    """Top-k items for a user, with the history items that contributed most to each."""
    model, ds, _index = load_model_or_fit(model_dir, data, encoder)
    if ranker_dir:
        from anyrec.rank.train import load_stage

        model = load_stage(model, ds, ranker_dir)
    hist = pipeline.history(ds, user, show_history) if show_history else []
    rows = pipeline.recommend(model, ds, user, k, list(categories) or None)
    if not as_json and hist:
        table = Table(title=f"user {user}: latest history")
        for col in ("id", "title") + (("rating",) if "rating" in hist[0] else ()):
            table.add_column(col)
        for h in hist:
            table.add_row(h["id"], h["title"], *([f"{h['rating']:g}"] if "rating" in h else []))
        out.print(table)
    _print(
        rows,
        f"{model.name} recommendations for user {user}",
        as_json,
        {"user": user, "model": model.name, "history": hist},
    )


@cli.command()
@data_options(mapping=False)
@model_options
@click.argument("query")
@click.option("--user", default=None, help="Blend in this user's profile (and hide what they have seen).")
@click.option(
    "--user-weight", type=float, default=0.3, show_default=True, help="Weight of the user's profile in the blend."
)
@click.option("--category", "categories", multiple=True, help="Only items in this category (repeatable).")
def search(
    data: DataArgs,
    k: int,
    as_json: bool,
    model_dir: str | None,
    encoder: str | None,
    query: str,
    user: str | None,
    user_weight: float,
    categories: tuple[str, ...],
) -> None:
    """Items for a free-text request, e.g. anyrec search "a light-hearted space adventure"."""
    model, ds, index = load_model_or_fit(model_dir, data, encoder)
    rows = pipeline.search(
        model, ds, query, k, user, user_weight, list(categories) or None, index
    )
    _print(rows, f"search: {query}", as_json, {"query": query, "user": user})


@cli.command()
@data_options(mapping=False)
@model_options
@click.option("--item", required=True, help="Raw item id.")
def similar(data: DataArgs, k: int, as_json: bool, model_dir: str | None, encoder: str | None, item: str) -> None:
    """The nearest items to an item."""
    model, ds, index = load_model_or_fit(model_dir, data, encoder)
    i = ds.catalog.ids.index(item, what="item")
    rows = pipeline.similar(model, ds, item, k, index)
    _print(rows, f"similar to {ds.catalog.title(i)}", as_json, {"item": item, "title": ds.catalog.title(i)})


__all__ = ["fit", "recommend", "search", "similar"]
