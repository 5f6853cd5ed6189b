"""The service's settings: one frozen dataclass, filled by the CLI (the only place that reads argv)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from anyrec.serve.live import EventWeights
from anyrec.store import DEFAULT_URL


@dataclass(frozen=True)
class ServeSettings:
    """Attributes:
        model_dir: a folder written by ``anyrec fit``; registered as a version on first start
            ('' = serve the store's active version).
        store_url: SQLite path or URL, or ``postgresql+psycopg://…``.
        weights: event type weights (see :class:`EventWeights`).
        unknown_items: events naming an item the catalog lacks: ``reject`` (422 naming the field)
            or ``store`` (kept; they count once a catalog update adds the item).
        read_key: require an API key on reads too (writes always need one).
        max_body_bytes, max_events, max_k: bounds on request size, list length and list size.
        log_flush_s: the recommendation log is written in batches this often.
        report_path: an evaluation JSON (``anyrec evaluate --json``) shown in the admin view, with the
            PNG of the same name beside it when there is one ('' = none).
        ann_min_items: a zero-shot or sequential version saved with FAISS indexes (``anyrec fit --index
            HNSW32``) retrieves candidates from them once the catalog has this many items, and scores
            only those (see :mod:`anyrec.serve.retrieval`).
        ranker_dir: a ranker folder (``anyrec fit-ranker``) that re-ranks the top of every version's
            lists ('' = none).
        future_tolerance_s: an event's time may be at most this many seconds after the server's clock
            (later ones get a 422 naming ``time``).
        history_cap: a request scores from the user's most recent this many events (and hides the items among
            them): one user with 80,000 events costs a request what 2,000 do, not 40 times more.
        scoring_threads: recommendation requests are scored in a pool of at most this many threads, off the event
            loop (health checks and other requests are answered meanwhile); more wait for a thread.
        threads: BLAS / torch threads (0 = the libraries' default, all cores). 1 by default: measured on
            2 cores, one thread gives a steady 370–400 requests/s at 10k items with 4 clients, where the
            default's spinning pool swung between 286 and 444; at 100k items more threads shorten each
            product (p50 13 vs 19 ms), so large catalogs on many cores may want ``--threads 0``.
    """

    model_dir: str = ""
    store_url: str = DEFAULT_URL
    weights: EventWeights = field(default_factory=EventWeights)
    unknown_items: str = "reject"
    read_key: bool = False
    max_body_bytes: int = 1_000_000
    max_events: int = 1_000
    max_k: int = 1_000
    log_flush_s: float = 0.2
    threads: int = 1
    report_path: str = ""
    ann_min_items: int = 50_000
    ranker_dir: str = ""
    future_tolerance_s: float = 300.0
    history_cap: int = 2_000
    scoring_threads: int = 4


def settings_to_json(settings: ServeSettings) -> str:
    return json.dumps(asdict(settings))


def settings_from_json(text: str) -> ServeSettings:
    doc = json.loads(text)
    weights = doc.pop("weights")
    weights["keep_types"] = tuple(weights["keep_types"])
    return ServeSettings(**doc, weights=EventWeights(**weights))
