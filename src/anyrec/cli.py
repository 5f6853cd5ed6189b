"""The ``anyrec`` command line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from anyrec.config import FileConfig, load_config, make_policy
from anyrec.data import FORMATS, NAMED, ColumnMapping, load_dataset
from anyrec.data.dataset import Dataset
from anyrec.data.split import PROTOCOLS, SplitConfig
from anyrec.errors import AnyrecError, ConfigError
from anyrec.eval.experiment import ExperimentConfig, run_experiment
from anyrec.models import MODELS

console = Console(stderr=True)
# Wide enough for the result table when piped to a file or a CI log.
out = Console(width=None if sys.stdout.isatty() else 160)


def _parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint="--k") from None
    if not ks or min(ks) < 1:
        raise click.BadParameter("every K must be a positive integer", param_hint="--k")
    return ks


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _parse_options(pairs: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    opts: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        model, dot, field = key.partition(".")
        if not eq or not dot:
            raise click.BadParameter(f"expected MODEL.FIELD=VALUE, got {pair!r}", param_hint="--option")
        opts.setdefault(model, {})[field] = _parse_value(value)
    return opts


def data_options(f: Any) -> Any:
    """The options every command that reads a dataset takes."""
    opts = [
        click.option("--dataset", "dataset", default=None, help="Named dataset (see `anyrec datasets`) or a folder. Default: ml-100k."),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Dataset format; detected when omitted."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="TOML file with [data], [evaluate], [models.*]."),
        click.option("--items", default=None, help="Catalog file (CSV/TSV/JSONL/Parquet) for --format table."),
        click.option("--item-id", default=None, help="Item id column of the catalog file."),
        click.option("--text", default=None, help="Text column(s) of the catalog, comma-separated, in template order."),
        click.option("--category", default=None, help="Categorical column of the catalog."),
        click.option("--interactions", default=None, help="Interaction file for --format table."),
        click.option("--user", "user_col", default=None, help="User id column (default user_id)."),
        click.option("--item", "item_col", default=None, help="Item id column of the interaction file (default item_id)."),
        click.option("--time", "time_col", default=None, help="Timestamp column (epoch seconds or ISO dates)."),
        click.option("--rating", "rating_col", default=None, help="Rating column."),
        click.option("--event", "event_col", default=None, help="Event type column."),
        click.option("--sep", default=None, help="Delimiter for CSV/TSV files."),
        click.option("--template", default=None, help='Item-text template, e.g. "{title}. Genres: {genres}. {description}".'),
        click.option("--encoding", default=None, help="Text encoding of table files (default utf-8)."),
        click.option("--bad-rows", type=click.Choice(["error", "skip"]), default=None, help="Malformed rows: stop, or skip and count."),
        click.option("--unknown-items", type=click.Choice(["error", "skip", "add"]), default=None, help="Interactions naming items not in the catalog."),
        click.option("--duplicate-items", type=click.Choice(["error", "first", "last"]), default=None, help="Item ids listed twice in the catalog."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def read_dataset(kw: dict[str, Any], file_cfg: FileConfig) -> Dataset:
    """Load the dataset described by CLI options over a config file."""
    mapping = file_cfg.mapping
    cli_map = {
        "items": kw.get("items"), "item_id": kw.get("item_id"), "category": kw.get("category"),
        "interactions": kw.get("interactions"), "user": kw.get("user_col"), "item": kw.get("item_col"),
        "time": kw.get("time_col"), "rating": kw.get("rating_col"), "event": kw.get("event_col"),
        "sep": kw.get("sep"), "template": kw.get("template"),
    }
    if kw.get("text"):
        cli_map["text"] = tuple(c.strip() for c in kw["text"].split(",") if c.strip())
    given = {k: v for k, v in cli_map.items() if v}
    if given:
        mapping = replace(mapping or ColumnMapping(), **given)
    policy = make_policy({**file_cfg.policy, **{k: kw.get(k) for k in ("bad_rows", "unknown_items", "duplicate_items", "encoding") if kw.get(k)}})
    fmt = kw.get("fmt") or file_cfg.format
    source = kw.get("dataset") or file_cfg.dataset
    if mapping is not None and not mapping.interactions:
        raise ConfigError("column mapping options need --interactions F")
    ds = load_dataset(source, fmt=fmt, mapping=mapping, policy=policy)
    if kw.get("template") and (mapping is None):
        ds.catalog.template = kw["template"]
    for line in ds.report.lines():
        console.print(f"[yellow]{ds.name}[/]: {line}")
    return ds


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A callback ``(description, done, total)`` drawing rich progress bars (or a no-op)."""
    if not enabled:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def update(desc: str, done: int, total: int) -> None:
            if desc not in tasks:
                tasks[desc] = bar.add_task(desc, total=total)
            bar.update(tasks[desc], completed=done, total=total)

        yield update


def results_table(result: dict[str, Any], ks: tuple[int, ...]) -> Table:
    table = Table(title=f"{result['dataset']} · {result['protocol']} · full ranking · {result['split']['test']:,} test rows")
    table.add_column("model", style="bold")
    cols = [f"{m}@{k}" for k in ks for m in ("ndcg", "recall", "mrr")]
    cols += [f"{m}@{ks[0]}" for m in ("precision", "map", "coverage")]
    for c in cols:
        table.add_column(c, justify="right")
    has_rating = any("rmse" in m for m in result["models"].values())
    if has_rating:
        table.add_column("MAE", justify="right")
        table.add_column("RMSE", justify="right")
    table.add_column("fit s", justify="right")
    best = {c: max(m.get(c, 0.0) for m in result["models"].values()) for c in cols}
    for name, m in result["models"].items():
        cells = [f"[green]{m[c]:.4f}[/]" if m[c] == best[c] and len(result["models"]) > 1 else f"{m[c]:.4f}" for c in cols]
        if has_rating:
            cells += [f"{m['mae']:.4f}" if "mae" in m else "–", f"{m['rmse']:.4f}" if "rmse" in m else "–"]
        table.add_row(name, *cells, f"{m['fit_seconds']:.2f}")
    return table


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="anyrec")
def cli(verbose: int) -> None:
    """anyrec: recommend anything that has text."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)], force=True)


@cli.command()
def datasets() -> None:
    """List the named datasets and the formats a folder can be read in."""
    table = Table(title="named datasets")
    table.add_column("name", style="bold")
    table.add_column("format")
    table.add_column("where")
    table.add_column("what")
    for name, nd in NAMED.items():
        try:
            where = str(nd.resolve())
        except AnyrecError as exc:
            where = f"[red]unavailable[/]: {exc}"
        table.add_row(name, nd.format, where, nd.description)
    out.print(table)
    out.print("Formats for --format: " + ", ".join(FORMATS) + " (a folder's format is detected when omitted).")


@cli.command()
@data_options
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None, help="Split protocol (default loo).")
@click.option("--models", default=None, help=f"Comma-separated models from: {', '.join(MODELS)}.")
@click.option("--k", "ks", default=None, help="Comma-separated cut-offs (default 10,20).")
@click.option("--seed", type=int, default=None, help="Seed of the split and the models (default 0).")
@click.option("--cold-rank-among", type=click.Choice(["cold", "all"]), default=None, help="cold-item: rank among cold items only, or the whole catalog.")
@click.option("--option", "options", multiple=True, help="Model option MODEL.FIELD=VALUE, e.g. itemknn.k=50 (repeatable).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write results as JSON here.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), default=None, help="Write a bar chart PNG here.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def evaluate(**kw: Any) -> None:
    """Split a dataset, fit each model on the training part, rank the full catalog, report metrics."""
    file_cfg = load_config(kw["config_path"]) if kw.get("config_path") else FileConfig()
    ev = file_cfg.evaluate
    models_text = kw["models"] or ev.get("models") or "popularity,itemknn,als,bpr"
    models = tuple(m.strip() for m in (models_text.split(",") if isinstance(models_text, str) else models_text) if m.strip())
    ks = _parse_ks(kw["ks"] or ",".join(map(str, ev.get("k", [10, 20]))))
    seed = kw["seed"] if kw["seed"] is not None else int(ev.get("seed", 0))
    split = SplitConfig(
        protocol=kw["protocol"] or ev.get("protocol", "loo"),
        cold_rank_among=kw["cold_rank_among"] or ev.get("cold_rank_among", "cold"),
        valid=float(ev.get("valid", 0.1)), test=float(ev.get("test", 0.1)), seed=seed,
    )
    options = {**file_cfg.model_options}
    for model, opts in _parse_options(kw["options"]).items():
        options[model] = {**options.get(model, {}), **opts}
    cfg = ExperimentConfig(models=models, ks=ks, split=split, seed=seed, model_options=options)
    ds = read_dataset(kw, file_cfg)
    s = ds.summary()
    console.print(f"[bold]{s['name']}[/]: {s['users']:,} users, {s['items']:,} items, {s['interactions']:,} interactions")
    with progress_bar(kw["progress"] and sys.stderr.isatty()) as bar:
        result = run_experiment(ds, cfg, progress=bar)
    out.print(results_table(result, ks))
    if result["split"]:
        console.print("split: " + ", ".join(f"{k}={v}" for k, v in result["split"].items()))
    if kw["json_out"]:
        path = Path(kw["json_out"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {path}")
    if kw["plot_out"]:
        from anyrec.eval.plot import plot_results

        console.print(f"wrote {plot_results(result, kw['plot_out'])}")


def main() -> None:
    """Console-script entry point: bad input ends with a one-paragraph message and exit code 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AnyrecError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
