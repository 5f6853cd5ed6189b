"""``anyrec explain``: why a user gets an item — the history behind it, shared words, a checked sentence, a heat map."""

from __future__ import annotations

import json

import click
import numpy as np
from rich.table import Table

from anyrec.app import pipeline
from anyrec.cli.common import DataArgs, console, data_options, out
from anyrec.cli.group import cli
from anyrec.cli.use import load_model_or_fit, model_options
from anyrec.errors import ConfigError
from anyrec.explain.plot import plot_attribution


@cli.command()
@data_options(mapping=False)
@model_options
@click.option("--user", required=True, help="Raw user id.")
@click.option(
    "--item", "items", multiple=True, help="Raw item id to explain (repeatable). Default: the user's top --k."
)
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True, help="History items cited per item.")
@click.option(
    "--png", default=None, type=click.Path(dir_okay=False), help="Write the history × items contribution heat map here."
)
def explain(
    data: DataArgs,
    k: int,
    as_json: bool,
    model_dir: str | None,
    encoder: str | None,
    user: str,
    items: tuple[str, ...],
    top: int,
    png: str | None,
) -> None:
    """The history items behind each recommended item (the model's own attribution), the words they
    share, and a sentence that names only those items; --png draws the whole attribution."""
    model, ds, _index = load_model_or_fit(model_dir, data, encoder)
    u = ds.users.index(user, what="user")
    if items:
        chosen = np.array([ds.catalog.ids.index(i, what="item") for i in items], dtype=np.int64)
    else:
        ids, _ = model.recommend(np.array([u]), k)
        chosen = ids[0][ids[0] >= 0]
    if not len(chosen):
        raise ConfigError(f"nothing to explain: user {user!r} has no recommendation")
    att, why = pipeline.explain(model, ds, u, chosen, top, sentences=True)
    rows = [
        {
            "id": ds.catalog.ids.raw(int(i)),
            "title": ds.catalog.title(int(i)),
            "because": why["because"][j],
            "words": why["words"][j],
            "sentence": why["sentence"][j],
        }
        for j, i in enumerate(chosen)
    ]
    path = None
    if png:
        path = plot_attribution(att, ds.catalog, png, f"user {user} — {model.name}")
        if not as_json:
            console.print(f"heat map: {path}")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "user": user,
                    "model": model.name,
                    "method": att.method,
                    "png": str(path) if path else None,
                    "results": rows,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"why user {user} gets these ({model.name}; contribution by {att.method})")
    for col in ("item", "history behind it (contribution)", "shared words", "sentence"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["title"],
            "; ".join(f"{b['title']} ({b['contribution']:+.3f})" for b in r["because"]) or "—",
            ", ".join(r["words"]) or "—",
            r["sentence"],
        )
    out.print(table)
