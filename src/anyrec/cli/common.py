"""Shared pieces of the command line: data options, dataset loading, progress bars, tables."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.cli.progress import LineProgress, progress_callback
from anyrec.config import FileConfig, load_config, make_policy
from anyrec.data import FORMATS, ColumnMapping, load_dataset
from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError

console = Console(stderr=True)
# Wide enough for the result table when piped to a file or a CI log.
out = Console(width=None if sys.stdout.isatty() else 160)


def parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint="--k") from None
    if not ks or min(ks) < 1:
        raise click.BadParameter("every K must be a positive integer", param_hint="--k")
    return ks


def parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_options(pairs: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    opts: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        model, dot, field = key.partition(".")
        if not eq or not dot:
            raise click.BadParameter(f"expected MODEL.FIELD=VALUE, got {pair!r}", param_hint="--option")
        opts.setdefault(model, {})[field] = parse_value(value)
    return opts


@dataclass(frozen=True)
class DataArgs:
    """The data options of a command (:func:`data_options`), typed: where the dataset comes from, its column
    mapping over ``--config``'s ``[data]``, and how bad rows are read (``None``: not given)."""

    dataset: str | None = None
    fmt: str | None = None
    config_path: str | None = None
    items: str | None = None
    item_id: str | None = None
    text: str | None = None
    category: str | None = None
    image_col: str | None = None
    image_encoder: str | None = None
    interactions: str | None = None
    user_col: str | None = None
    item_col: str | None = None
    time_col: str | None = None
    rating_col: str | None = None
    weight_col: str | None = None
    event_col: str | None = None
    sep: str | None = None
    template: str | None = None
    encoding: str | None = None
    bad_rows: str | None = None
    unknown_items: str | None = None
    duplicate_items: str | None = None

    def file_config(self) -> FileConfig:
        """``--config``'s file read (empty without one)."""
        return load_config(self.config_path) if self.config_path else FileConfig()


DATA_FIELDS = frozenset(DataArgs.__dataclass_fields__)
POLICY_FIELDS = ("bad_rows", "unknown_items", "duplicate_items", "encoding")


def data_options(f: Any = None, *, mapping: bool = True) -> Any:
    """The options every command that reads a dataset takes, handed to the command as one typed ``data:
    DataArgs``.

    Commands whose own ``--user`` / ``--item`` name ids (recommend, similar, search) take the
    column mapping from ``--config`` only (``mapping=False``).
    """
    if f is None:
        return lambda g: data_options(g, mapping=mapping)
    command = f
    taken = ("dataset", "fmt", "config_path") if not mapping else tuple(DATA_FIELDS)  # the options added here

    @functools.wraps(command)
    def packed(**kw: Any) -> Any:
        data = DataArgs(**{k: kw.pop(k) for k in taken})
        return command(data=data, **kw)

    f = packed
    opts = [
        click.option(
            "--dataset",
            "dataset",
            default=None,
            help="Named dataset (see `anyrec datasets`) or a folder. Default: ml-100k.",
        ),
        click.option(
            "--format", "fmt", type=click.Choice(FORMATS), default=None, help="Dataset format; detected when omitted."
        ),
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False),
            default=None,
            help="TOML file with [data], [evaluate], [models.*].",
        ),
        click.option("--items", default=None, help="Catalog file (CSV/TSV/JSONL/Parquet) for --format table."),
        click.option("--item-id", default=None, help="Item id column of the catalog file."),
        click.option("--text", default=None, help="Text column(s) of the catalog, comma-separated, in template order."),
        click.option("--category", default=None, help="Categorical column of the catalog."),
        click.option(
            "--image",
            "image_col",
            default=None,
            help="Picture column of the catalog: a path (relative to the catalog file) or an http(s) URL.",
        ),
        click.option(
            "--image-encoder",
            default=None,
            help="A CLIP-style model (name or folder) that embeds the pictures for the text models.",
        ),
        click.option("--interactions", default=None, help="Interaction file for --format table."),
        click.option("--user", "user_col", default=None, help="User id column (default user_id)."),
        click.option(
            "--item", "item_col", default=None, help="Item id column of the interaction file (default item_id)."
        ),
        click.option("--time", "time_col", default=None, help="Timestamp column (epoch seconds or ISO dates)."),
        click.option("--rating", "rating_col", default=None, help="Rating column (a scale: 1-5 stars, thumbs)."),
        click.option(
            "--weight",
            "weight_col",
            default=None,
            help="Column of counts (plays, purchases, minutes): read as confidence, not as a rating.",
        ),
        click.option("--event", "event_col", default=None, help="Event type column."),
        click.option("--sep", default=None, help="Delimiter for CSV/TSV files."),
        click.option(
            "--template", default=None, help='Item-text template, e.g. "{title}. Genres: {genres}. {description}".'
        ),
        click.option("--encoding", default=None, help="Text encoding of table files (default utf-8)."),
        click.option(
            "--bad-rows",
            type=click.Choice(["error", "skip"]),
            default=None,
            help="Malformed rows: stop, or skip and count.",
        ),
        click.option(
            "--unknown-items",
            type=click.Choice(["error", "skip", "add"]),
            default=None,
            help="Interactions naming items not in the catalog.",
        ),
        click.option(
            "--duplicate-items",
            type=click.Choice(["error", "first", "last"]),
            default=None,
            help="Item ids listed twice in the catalog.",
        ),
    ]
    if not mapping:
        opts = opts[:3]
    for opt in reversed(opts):
        f = opt(f)
    return f


def read_dataset(data: DataArgs, file_cfg: FileConfig) -> Dataset:
    """Load the dataset described by CLI options over a config file."""
    mapping = file_cfg.mapping
    cli_map: dict[str, Any] = {
        "items": data.items,
        "item_id": data.item_id,
        "category": data.category,
        "interactions": data.interactions,
        "user": data.user_col,
        "item": data.item_col,
        "time": data.time_col,
        "rating": data.rating_col,
        "event": data.event_col,
        "weight": data.weight_col,
        "image": data.image_col,
        "sep": data.sep,
        "template": data.template,
    }
    if data.text:
        cli_map["text"] = tuple(c.strip() for c in data.text.split(",") if c.strip())
    given = {k: v for k, v in cli_map.items() if v}
    if given:
        mapping = replace(mapping or ColumnMapping(), **given)
    policy = make_policy(
        {
            **file_cfg.policy,
            **{k: v for k, v in asdict(data).items() if k in POLICY_FIELDS and v},
        }
    )
    fmt = data.fmt or file_cfg.format
    source = data.dataset or file_cfg.dataset
    if mapping is not None and not mapping.interactions:
        raise ConfigError("column mapping options need --interactions F")
    ds = load_dataset(source, fmt=fmt, mapping=mapping, policy=policy)
    if data.template and (mapping is None):
        ds.catalog.template = data.template
    for line in ds.report.lines():
        console.print(f"[yellow]{ds.name}[/]: {line}")
    return ds


@contextmanager
def progress_bar(enabled: bool = True, every_s: float | None = None) -> Iterator[Any]:
    """A callback ``(description, done, total)`` (see :mod:`anyrec.cli.progress`): bars on a terminal, lines
    in logs at least every ``every_s`` seconds ($ANYREC_PROGRESS_EVERY, else 10); ``None`` when disabled."""
    with progress_callback(console, enabled, progress_every() if every_s is None else every_s) as update:
        yield update


def progress_every() -> float:
    """Seconds between progress lines in logs: $ANYREC_PROGRESS_EVERY (a positive number), else 10."""
    import os

    text = os.environ.get("ANYREC_PROGRESS_EVERY", "")
    try:
        value = float(text) if text else 10.0
    except ValueError:
        raise ConfigError(f"ANYREC_PROGRESS_EVERY must be a number of seconds, got {text!r}") from None
    if value <= 0:
        raise ConfigError(f"ANYREC_PROGRESS_EVERY must be positive, got {text!r}")
    return value


def _progress_lines(every_s: float) -> LineProgress:
    return LineProgress(every_s, lambda text: console.print(text, highlight=False, soft_wrap=True))


def results_table(result: dict[str, Any], ks: tuple[int, ...]) -> Table:
    table = Table(
        title=f"{result['dataset']} · {result['protocol']} · full ranking · {result['split']['test']:,} test rows · "
        f"history at test: {result.get('test_history', 'train+valid')} · masked: {result.get('mask', 'history')}"
    )
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
    searched = any(m.get("tune_seconds") for m in result["models"].values())
    if searched:
        table.add_column("search s", justify="right")  # the validation search of score-time options (EASE's solves)
    best = {c: max((m.get(c, 0.0) for m in result["models"].values()), default=0.0) for c in cols}
    for name, m in result["models"].items():
        cells = [
            f"[green]{m[c]:.4f}[/]" if m[c] == best[c] and len(result["models"]) > 1 else f"{m[c]:.4f}" for c in cols
        ]
        if has_rating:
            cells += [f"{m['mae']:.4f}" if "mae" in m else "–", f"{m['rmse']:.4f}" if "rmse" in m else "–"]
        cells.append(f"{m['fit_seconds']:.2f}")
        if searched:
            cells.append(f"{m.get('tune_seconds', 0.0):.2f}")
        table.add_row(name, *cells)
    for name, why in result.get("refused", {}).items():  # a refusal is a row, with its reason, not a lost run
        table.add_row(f"[red]{name}[/]", f"[red]refused: {why}[/]", *([""] * (len(table.columns) - 2)))
    return table


def read_source(source: str | None, config: str | None = None) -> Dataset:
    """A dataset from a name or folder, or from a TOML config's ``[data]`` (``config``, or ``source`` ending
    in ``.toml``): what the benchmarks' ``--dataset`` / ``--config`` options mean."""
    if config or (source or "").endswith(".toml"):
        return read_dataset(DataArgs(), load_config(config or str(source)))
    return read_dataset(DataArgs(dataset=source), FileConfig())


def cache_dir(no_cache: bool) -> str:
    """The embedding cache folder: $ANYREC_CACHE, else ~/.cache/anyrec (the CLI is where the environment is read)."""
    import os

    if no_cache:
        return ""
    return os.environ.get("ANYREC_CACHE") or str(Path.home() / ".cache" / "anyrec" / "embeddings")


def write_json(path: str | Path, result: dict[str, Any]) -> Path:
    """A run's result as JSON at ``path`` (its folder made): numpy numbers and arrays written as plain ones, so a
    figure some step left as ``numpy.float64`` or ``numpy.bool_`` cannot cost the run its file at the end."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.generic | np.ndarray):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON")

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=plain) + "\n", encoding="utf-8")
    return out


def fail(message: str) -> None:
    raise ConfigError(message)


def ray_option(f: Any) -> Any:
    """``--ray [ADDRESS]``: run the command's split work on Ray (``--ray`` alone: a cluster on this machine)."""
    return click.option(
        "--ray",
        "ray_address",
        is_flag=False,
        flag_value="local",
        default=None,
        metavar="[ADDRESS]",
        help="Run on Ray: alone, a local cluster on this machine's CPUs; or a cluster's address "
        "(auto, ray://HEAD:10001). Results equal the local run's.",
    )(f)


@contextmanager
def runner_for(address: str | None) -> Iterator[Any]:
    """The runner of ``--ray``: local without it."""
    from anyrec.cluster import LOCAL, ray_runner

    if address is None:
        yield LOCAL
        return
    with ray_runner(address) as runner:
        console.print(f"ray: {address}, {runner.workers} workers")
        yield runner
