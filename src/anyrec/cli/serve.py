"""``anyrec serve``, ``keys create``, ``import`` and ``retrain``: the live side from the command line."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from anyrec.cli.common import (
    DataArgs,
    console,
    data_options,
    parse_options,
    progress_bar,
    read_dataset,
    write_json,
)
from anyrec.cli.evaluate import INIT_HELP, with_text_defaults
from anyrec.cli.group import cli
from anyrec.errors import ConfigError
from anyrec.models import MODELS
from anyrec.store import DEFAULT_URL
from anyrec.store.records import normalise_url

STORE = click.option("--store", "store_url", default=DEFAULT_URL, show_default=True,
                     help="SQLite path or URL, or postgresql+psycopg://user@host/db.")


def _weights(pairs: tuple[str, ...], verb_pairs: tuple[str, ...] = ()) -> Any:
    from anyrec.serve.live import EVENT_TYPES, EventWeights

    base = EventWeights()
    verbs = dict(base.verbs)
    for pair in verb_pairs:
        kind, eq, verb = pair.partition("=")
        if not eq or kind not in EVENT_TYPES or not verb.strip():
            raise ConfigError(
                f"--event-verb {pair!r}: expected TYPE=VERB with TYPE one of {', '.join(EVENT_TYPES)}, e.g. "
                "view=watched"
            )
        verbs[kind] = verb.strip()
    table = dict(base.weights)
    for pair in pairs:
        kind, eq, value = pair.partition("=")
        if not eq or kind not in EVENT_TYPES or kind == "rating":
            raise ConfigError(f"--event-weight {pair!r}: expected TYPE=WEIGHT with TYPE one of "
                              f"{', '.join(t for t in EVENT_TYPES if t != 'rating')}")
        try:
            table[kind] = float(value)
        except ValueError:
            raise ConfigError(f"--event-weight {pair!r}: {value!r} is not a number") from None
    return EventWeights(weights=table, verbs=verbs)


EVENT_WEIGHT = click.option("--event-weight", "event_weights", multiple=True,
                            help="How much an event type pulls (+) or pushes (-) the list, e.g. skip=-1 (repeatable).")
EVENT_VERB = click.option(
    "--event-verb",
    "event_verbs",
    multiple=True,
    help="What a card's reason says the user did for an event type, e.g. view=watched (repeatable).",
)


def shown_store(url: str) -> str:
    """The store as the banner names it: a path as given, a URL with its password replaced by ``***`` (never the
    password on a terminal or in logs)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in url:
        return url
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True).replace("+psycopg", "")
    except ArgumentError:
        raise ConfigError(f"--store: cannot read store URL {url.split('@')[-1]!r}") from None

@cli.command()
@click.option(
    "--model",
    "model_dir",
    default="",
    type=click.Path(file_okay=False),
    help="A folder from `anyrec fit`; registered as a version (and seeds an empty store). Default: the store's "
    "active version.",
)
@STORE
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--unknown-items", type=click.Choice(["reject", "store"]), default="reject", show_default=True,
              help="Events naming items not in the catalog: reject (422) or store for a later catalog update.")
@click.option("--read-key", is_flag=True, help="Require an API key on reads too (writes always need one).")
@click.option(
    "--future-tolerance",
    "future_tolerance_s",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds an event's time may be ahead of the server's clock (later ones get a 422 naming time).",
)
@click.option("--report", "report_path", default="", type=click.Path(dir_okay=False),
              help="An evaluation JSON (anyrec evaluate --json) to show in the admin view, with its PNG beside it.")
@click.option(
    "--ann-min-items",
    type=int,
    default=50_000,
    show_default=True,
    help="Retrieve from the version's FAISS indexes (fit --index HNSW32; zero-shot or sequential) once the catalog "
    "is this large.",
)
@click.option("--ranker", "ranker_dir", default="", type=click.Path(file_okay=False),
              help="A ranker folder (anyrec fit-ranker) that re-ranks the top of every list.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes over the same store (use PostgreSQL); events are seen by all at once, catalog "
                   "and version changes from the next request on.")
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="BLAS / torch threads per process (0 = the libraries' default; helps very large catalogs on many cores).",
)
@click.option("--history-cap", type=click.IntRange(min=1), default=2_000, show_default=True,
              help="A request scores from the user's most recent this many events.")
@click.option("--scoring-threads", type=click.IntRange(min=1), default=4, show_default=True,
              help="Recommendation requests are scored in at most this many threads, off the event loop.")
@EVENT_WEIGHT
@EVENT_VERB
def serve(
    model_dir: str,
    store_url: str,
    host: str,
    port: int,
    unknown_items: str,
    read_key: bool,
    future_tolerance_s: float,
    report_path: str,
    ann_min_items: int,
    ranker_dir: str,
    workers: int,
    threads: int,
    history_cap: int,
    scoring_threads: int,
    event_weights: tuple[str, ...],
    event_verbs: tuple[str, ...],
) -> None:
    """Serve recommendations over HTTP (OpenAPI at /docs); events change the next list at once."""
    import uvicorn

    from anyrec.serve import ServeSettings, create_app

    settings = ServeSettings(model_dir=model_dir, store_url=store_url, unknown_items=unknown_items,
                             read_key=read_key, weights=_weights(event_weights, event_verbs),
                             threads=threads, report_path=report_path, ann_min_items=ann_min_items,
                             ranker_dir=ranker_dir, future_tolerance_s=future_tolerance_s,
                             history_cap=history_cap, scoring_threads=scoring_threads)
    shown = shown_store(store_url)
    console.print(f"anyrec serving on http://{host}:{port} (API docs at /docs); store {shown}"
                  + (f"; {workers} worker processes" if workers > 1 else ""))
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
        return
    import os

    from anyrec.serve.app import SETTINGS_ENV
    from anyrec.serve.service import prepare_store
    from anyrec.serve.settings import settings_to_json
    from anyrec.store import Store

    store = Store.open(settings.store_url)  # seed and register once, not once per worker
    prepare_store(store, settings.model_dir)
    store.close()
    os.environ[SETTINGS_ENV] = settings_to_json(replace(settings, model_dir=""))
    uvicorn.run("anyrec.serve.app:app_from_env", factory=True, workers=workers, host=host, port=port,
                log_level="warning", access_log=False)


@cli.group()
def keys() -> None:
    """API keys for the service's write endpoints."""


@keys.command("create")
@STORE
@click.option("--name", default="default", show_default=True, help="A label for the key.")
@click.option("--role", type=click.Choice(["read", "write", "admin"]), default="admin", show_default=True,
              help="read: lists, search, users' histories, stats; write: also events; admin: also the catalog, "
                   "forgetting users, model versions, experiments.")
def keys_create(store_url: str, name: str, role: str) -> None:
    """Create an API key; it is printed once (only its hash is stored), as the last word of the last line."""
    from anyrec.store import Store

    store = Store.open(store_url)
    key = store.create_key(name, role)
    store.close()
    click.echo(f"created {role} API key {name!r}; send it as 'Authorization: Bearer <key>'. key: {key}")


@keys.command("list")
@STORE
def keys_list(store_url: str) -> None:
    """Every key's id, name, role, creation time and state (the keys themselves are never stored)."""
    import datetime as dt

    from anyrec.store import Store

    store = Store.open(store_url)
    rows = store.list_keys()
    store.close()
    if not rows:
        click.echo("no API keys; create one with `anyrec keys create --role ROLE`")
    for r in rows:
        when = dt.datetime.fromtimestamp(r["created_at"], dt.UTC).strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"{r['id']:>4}  {r['role']:<5}  {'revoked' if r['revoked'] else 'active':<7}  {when} UTC  {r['name']}"
        )


@keys.command("revoke")
@STORE
@click.argument("key_id", type=int)
def keys_revoke(store_url: str, key_id: int) -> None:
    """Revoke a key by its id (see `anyrec keys list`): refused from the next request on, in every worker."""
    from anyrec.store import Store

    store = Store.open(store_url)
    done = store.revoke_key(key_id)
    store.close()
    if not done:
        raise click.BadParameter(f"no key with id {key_id}; `anyrec keys list` shows them", param_hint="KEY_ID")
    click.echo(f"revoked key {key_id}")


@cli.command("import")
@data_options
@STORE
def import_(data: DataArgs, store_url: str) -> None:
    """Load a dataset (any format the readers take, same bad-input rules) into a store."""
    from anyrec.serve.retrain import import_dataset
    from anyrec.store import Store

    file_cfg = data.file_config()
    ds = read_dataset(data, file_cfg)
    store = Store.open(store_url)
    counts = import_dataset(store, ds)
    store.close()
    console.print(f"imported {ds.name} into {store_url}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


@cli.command()
@STORE
@click.option(
    "--out",
    "registry",
    required=True,
    type=click.Path(file_okay=False),
    help="Registry folder; the version goes to OUT/vN.",
)
@click.option(
    "--model",
    "model_name",
    type=click.Choice(["auto", *MODELS]),
    default=None,
    help="Default: the active version's model; auto: the models that suit the store's log, the best on validation.",
)
@click.option("--option", "options", multiple=True, help="Model option MODEL.FIELD=VALUE (repeatable).")
@click.option("--no-tune", is_flag=True, help="Skip choosing options on a leave-one-out validation split.")
@click.option("--init", default=None, type=click.Path(file_okay=False, exists=True), help=INIT_HELP)
@click.option(
    "--activate",
    is_flag=True,
    help="Make it the active version in the store (a running server: POST /v1/models/V/activate).",
)
@click.option("--seed", type=int, default=0)
@EVENT_WEIGHT
def retrain(
    store_url: str,
    registry: str,
    model_name: str | None,
    options: tuple[str, ...],
    no_tune: bool,
    init: str | None,
    activate: bool,
    seed: int,
    event_weights: tuple[str, ...],
) -> None:
    """Fit a new model version from the store's catalog and event log and register it with its validation metrics."""
    from anyrec.serve.retrain import retrain as run_retrain
    from anyrec.store import Store

    store = Store.open(store_url)
    active = store.active_version()
    name = model_name or (store.version(active)["model"] if active else "zeroshot")  # type: ignore[index]
    opts = with_text_defaults(name, parse_options(options).get(name, {}), None, False, init)
    with progress_bar() as bar:
        row = run_retrain(store, registry, model_name=name, options=opts, weights=_weights(event_weights),
                          seed=seed, tune=not no_tune, progress=bar)
    if activate:
        store.set_active(row["version"])
    store.close()
    metrics = ", ".join(f"{k} {v}" for k, v in row["metrics"].items())
    console.print(f"registered {row['version']} ({row['model']}) at {row['path']}: {metrics}"
                  + ("; active" if activate else f"; activate with POST /v1/models/{row['version']}/activate"))


@cli.command()
@data_options
@STORE
@click.option(
    "--models", default="popularity,sequential", show_default=True, help="Comma-separated models; one variant each."
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the fitted versions."
)
@click.option(
    "--holdout", type=int, default=5, show_default=True, help="Interactions per user held out as the future they click."
)
@click.option("--users", type=int, default=0, help="Simulated users at most (0 = every eligible user).")
@click.option("--rounds", type=int, default=2, show_default=True, help="Requests per user.")
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--check-every", type=click.IntRange(min=1), default=25, show_default=True)
@click.option("--option", "options", multiple=True, help="Model option MODEL.FIELD=VALUE (repeatable).")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Write the result here.")
@click.option("--seed", type=int, default=0)
def simulate(
    data: DataArgs,
    store_url: str,
    models: str,
    out_dir: str,
    holdout: int,
    users: int,
    rounds: int,
    k: int,
    check_every: int,
    options: tuple[str, ...],
    json_path: str | None,
    seed: int,
) -> None:
    """Run an A/B experiment on simulated users who click what they really consumed later (a known right answer)."""

    from rich.table import Table

    from anyrec.serve.simulate import SimulationConfig
    from anyrec.serve.simulate import simulate as run_simulation

    file_cfg = data.file_config()
    ds = read_dataset(data, file_cfg)
    names = tuple(m.strip() for m in models.split(",") if m.strip())
    for name in names:
        if name not in MODELS:
            raise ConfigError(f"--models: unknown model {name!r}; choose from {', '.join(MODELS)}")
    parsed = parse_options(options)
    model_options = {n: with_text_defaults(n, parsed.get(n, {}), None, False) for n in names}
    cfg = SimulationConfig(models=names, holdout=holdout, users=users, rounds=rounds, k=k,
                           check_every=check_every, seed=seed)
    with progress_bar() as bar:
        result = run_simulation(ds, store_url, out_dir, cfg, model_options, progress=bar)
    rep = result["final"]
    table = Table(title=f"experiment on {result['users']:,} simulated {ds.name} users ({rep['method']})")
    for col in ("variant", "impressions", "clicks", "CTR", "95 % interval", "offline hit rate"):
        table.add_column(col, justify="right")
    for v in rep["variants"]:
        table.add_row(v["name"], f"{v['impressions']:,}", f"{v['clicks']:,}", f"{v['ctr']:.4f}",
                      f"[{v['ctr_low']:.4f}, {v['ctr_high']:.4f}]", f"{result['offline_hit_rate'][v['name']]:.4f}")
    console.print(table)
    det = result["detected_at_users"]
    console.print(f"expected winner (offline, same past and future): {result['expected_winner']}; "
                  f"final p = {rep['p_value']:.2e}, winner {rep['winner']}; "
                  + (f"detected at 95 % from {det:,} users on (and at every later check)" if det else "not detected"))
    if json_path:
        write_json(json_path, result)
