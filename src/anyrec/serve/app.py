"""The HTTP API: ``create_app(settings)``; thin — validate, authorise, call the live model, log.

Run with ``anyrec serve --model DIR`` (uvicorn). OpenAPI at ``/docs``; everything under ``/v1``.
"""


import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

import anyio
from fastapi import Body, Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from anyrec import __version__
from anyrec.errors import AnyrecError, IdempotencyConflict, UnknownIdError
from anyrec.serve.edge import AUTH_DETAIL, Edge, Metrics, error_response, key_role
from anyrec.serve.experiments import CONVERSIONS, Variant
from anyrec.serve.experiments import report as experiment_report
from anyrec.serve.live import LiveModel
from anyrec.serve.schemas import (
    SHAPE_TAGS,
    Because,
    EventsIn,
    EventsOut,
    ExperimentIn,
    ExperimentOut,
    ExperimentReport,
    HealthOut,
    ItemIn,
    ItemOut,
    ListOut,
    ModelVersionOut,
    RecommendationsOut,
    SearchIn,
    StoredItemOut,
    event_problems,
)
from anyrec.serve.service import Service
from anyrec.serve.settings import ServeSettings, settings_from_json
from anyrec.store import ROLES, Event

log = logging.getLogger(__name__)

PathId = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$")]


CLICKS = ("click", "like", "add_to_cart", "purchase")  # an event of one of these, carrying a list's id, clicks it


def _snippet(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _unprocessable(loc: list[Any], msg: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": loc, "msg": msg, "type": "value_error"}])


def _without_shape_tag(loc: list[Any]) -> list[Any]:
    """``["body", "single", "time"]`` → ``["body", "time"]``: the tag of the body shape that was sent says nothing."""
    return [loc[0], *loc[2:]] if len(loc) >= 2 and loc[0] == "body" and loc[1] in SHAPE_TAGS else loc


def create_app(settings: ServeSettings) -> FastAPI:
    """The service. Models and the store open in the lifespan; tests pass their own settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings)
        app.state.service = service
        app.state.metrics.model.labels(service.live.version, service.live.model.name).set(1)
        yield
        service.close()

    app = FastAPI(title="anyrec", version=__version__, lifespan=lifespan,
                  description="Recommend anything that has text: recommendations, search, feedback events, model versions.")
    app.state.metrics = Metrics()

    app.add_middleware(Edge, settings=settings)

    @app.exception_handler(UnknownIdError)
    async def unknown_id(_request: Request, exc: UnknownIdError) -> JSONResponse:
        return error_response(404, ["path", getattr(exc, "field", None) or "id"], str(exc))

    @app.exception_handler(IdempotencyConflict)
    async def idempotency_conflict(_request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return error_response(422, ["header", "idempotency-key"], str(exc))

    @app.exception_handler(AnyrecError)
    async def anyrecerror_response(_request: Request, exc: AnyrecError) -> JSONResponse:
        return error_response(422, ["body", getattr(exc, "field", None) or "request"], str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": _without_shape_tag(list(e.get("loc", ()))), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    async def service(request: Request) -> Service:
        return request.app.state.service

    def needs(role: str | None) -> Any:
        """The one dependency that decides who may call a route: a key of ``role`` or above (``ROLES``: read <
        write < admin), or none (``None``: an open read). No key or a revoked one: 401; a key below the role: 403."""
        async def allowed(request: Request, svc: Annotated[Service, Depends(service)]) -> Service:
            if role is not None:
                granted = await run_in_threadpool(key_role, request.app, request.headers.get("authorization", ""))
                if granted is None:
                    raise HTTPException(401, detail=[AUTH_DETAIL], headers={"WWW-Authenticate": "Bearer"})
                if ROLES.index(granted) < ROLES.index(role):
                    raise HTTPException(403, detail=[{"loc": ["header", "authorization"], "type": "forbidden",
                                                      "msg": f"this key's role is {granted}; this needs a {role} key "
                                                             f"(anyrec keys create --role {role})"}])
            svc.refresh()
            return svc
        return allowed

    Reader = Annotated[Service, Depends(needs("read" if settings.read_key else None))]  # lists, search, the catalog
    Private = Annotated[Service, Depends(needs("read"))]  # who the users are and what they did, the store's counts
    Writer = Annotated[Service, Depends(needs("write"))]  # events
    Admin = Annotated[Service, Depends(needs("admin"))]  # the catalog, forgetting users, model versions, experiments

    def _items(live: LiveModel, ids: list[int], scores: list[float], why: list[dict[str, Any]] | None = None) -> list[ItemOut]:
        cat = live.catalog
        return [ItemOut(id=live.ids.raw(i), title=cat.title(i), score=round(s, 6),
                        category=cat.fields[cat.category_field][i] or None if cat.category_field else None,
                        snippet=_snippet(cat.text(i)),
                        **({"because": [Because(**b) for b in why[n]["because"]], "words": why[n]["words"],
                            "sentence": why[n]["sentence"]} if why else {}))
                for n, (i, s) in enumerate(zip(ids, scores))]

    @app.get("/v1/users/{user}/recommendations", response_model=RecommendationsOut, tags=["recommend"])
    async def recommendations(user: PathId, svc: Reader,
                              k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10,
                              category: Annotated[list[str] | None, Query(max_length=50)] = None,
                              exclude: Annotated[list[str] | None, Query(max_length=1_000)] = None,
                              explain: bool = False) -> Response:
        """Top-k for a user from their live history (the most recent ``history_cap`` events); an unknown user gets
        cold-start recommendations."""
        # Scored in a bounded pool of threads, off the event loop: a user with a long history (80,000 events took
        # 0.35-0.6 s on the loop) no longer holds every other request, health checks included, behind theirs.
        limiter = app.state.scoring = getattr(app.state, "scoring", None) or anyio.CapacityLimiter(settings.scoring_threads)
        return await anyio.to_thread.run_sync(lambda: _recommend(svc, user, k, category, exclude, explain), limiter=limiter)

    def _recommend(svc: Service, user: str, k: int, category: list[str] | None, exclude: list[str] | None,
                   explain: bool) -> Response:
        # One version for the whole request, even if another is activated meanwhile; in an
        # experiment, the user's variant's version.
        live, experiment, variant = svc.serving(user)
        unknown = live.unknown_categories(category or [])
        if unknown:
            raise _unprocessable(["query", "category"], f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                                 f"{', '.join(map(repr, unknown))}; known: {live.category_names(12)}")
        since, rows = svc.store.user_state(user, last=settings.history_cap)
        recs = live.recommend(user, rows, k, user_since=since, categories=category or [], exclude=exclude or [], explain=explain)
        rec_id = uuid.uuid4().hex
        if explain and recs.because:
            app.state.metrics.unbuilt.inc(sum(1 for b in recs.because if b.get("sentence") is None))
        svc.log_shown({"id": rec_id, "user_id": user, "model_version": live.version, "variant": variant, "experiment": experiment,
                       "items": [live.ids.raw(i) for i in recs.items], "created_at": time.time()})
        body = RecommendationsOut(user=user, model_version=live.version, recommendation_id=rec_id, experiment=experiment,
                                  variant=variant, cold_start=recs.cold_start, items=_items(live, recs.items, recs.scores, recs.because))
        return Response(body.model_dump_json(), media_type="application/json")  # built and checked once, not re-validated

    @app.get("/v1/items/{item}/similar", response_model=ListOut, tags=["recommend"])
    def similar(item: PathId, svc: Reader, k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10) -> ListOut:
        """Nearest items by text (or co-occurrence for item-kNN)."""
        live = svc.live
        ids, scores = live.similar(item, k)
        return ListOut(model_version=live.version, items=_items(live, ids, scores))

    @app.post("/v1/search", response_model=ListOut, tags=["recommend"])
    def search(body: SearchIn, svc: Reader) -> ListOut:
        """Items for a free-text request, optionally personalised for a user (their seen items hidden)."""
        live = svc.live
        rows = svc.store.history(body.user) if body.user else None
        ids, scores = live.search(body.query, body.k, rows)
        return ListOut(model_version=live.version, items=_items(live, ids, scores))

    @app.post("/v1/events", response_model=EventsOut, tags=["feedback"])
    def events(svc: Writer, body: Annotated[EventsIn, Body()], response: Response,
               idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255,
                                                             pattern=r"^[\x21-\x7e]+$")] = None) -> EventsOut:
        """Store one event or a list; answers after they are committed. The next list reflects them.

        With an ``Idempotency-Key`` header (any printable token, e.g. a UUID the client makes per batch), the same
        key sent again within 24 hours — a retry whose answer was lost, even to a crash after the commit — gets the
        first answer (header ``Idempotent-Replayed: true``) and stores nothing new; the same key with another body
        is refused (422, ``loc`` ``["header", "idempotency-key"]``)."""
        batch = body if isinstance(body, list) else [body]
        if not batch or len(batch) > settings.max_events:
            raise _unprocessable(["body"], f"send 1 to {settings.max_events:,} events per request")
        w = settings.weights
        problems = event_problems(batch, not isinstance(body, list), (w.rating_low, w.rating_high),
                                  time.time(), settings.future_tolerance_s)
        if problems:
            raise HTTPException(422, detail=problems)
        live = svc.live
        if settings.unknown_items == "reject":
            for n, e in enumerate(batch):
                if e.item not in live.ids:
                    raise _unprocessable(["body", n, "item"] if isinstance(body, list) else ["body", "item"],
                                         f"unknown item {e.item!r}: add it with PUT /v1/items/{{item}} first")
        digest = hashlib.sha256(json.dumps([e.model_dump(mode="json") for e in batch], sort_keys=True).encode()).hexdigest()
        seqs, replayed = svc.store.add_events_once([Event(user=e.user, item=e.item, type=e.type, value=e.value, time=e.time,
                                                          recommendation_id=e.recommendation_id) for e in batch],
                                                   (idempotency_key, digest) if idempotency_key else None)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
            app.state.metrics.replays.inc()
            return EventsOut(stored=len(seqs), seq=seqs)
        for loaded in svc.loaded():
            loaded.count_events([e.item for e in batch])
        for e in batch:
            app.state.metrics.events.labels(e.type).inc()
        return EventsOut(stored=len(seqs), seq=seqs)

    @app.put("/v1/items/{item}", response_model=StoredItemOut, tags=["catalog"])
    def put_item(item: PathId, body: ItemIn, svc: Admin) -> StoredItemOut:
        """Add or replace an item: embedded and indexed at once, recommendable by the next request."""
        svc.store.upsert_items([(item, body.fields, body.category, body.available)])
        return StoredItemOut(**vars(svc.item_changed(item)))

    @app.delete("/v1/items/{item}", response_model=StoredItemOut, tags=["catalog"])
    def delete_item(item: PathId, svc: Admin) -> StoredItemOut:
        """Never recommend this item again (its events stay: they are facts)."""
        if not svc.store.delete_item(item) and svc.store.item(item) is None:
            raise UnknownIdError(f"unknown item {item!r}", field="item")
        return StoredItemOut(**vars(svc.item_changed(item)))

    @app.get("/v1/items/{item}", response_model=StoredItemOut, tags=["catalog"])
    def get_item(item: PathId, svc: Reader) -> StoredItemOut:
        stored = svc.store.item(item)
        if stored is None:
            raise UnknownIdError(f"unknown item {item!r}", field="item")
        return StoredItemOut(**vars(stored))

    @app.get("/v1/users/{user}/history", tags=["feedback"])
    def history(user: PathId, svc: Private, limit: Annotated[int, Query(ge=1, le=1_000)] = 20) -> dict[str, Any]:
        """The user's latest events, newest first."""
        live = svc.live
        rows = svc.store.history(user)[::-1][:limit]
        return {"user": user, "events": [
            {"item": i, "title": live.catalog.title(live.ids.index(i)) if i in live.ids else i, "type": t, "value": v, "time": tm}
            for i, t, v, tm in rows]}

    @app.delete("/v1/users/{user}", tags=["feedback"])
    def forget_user(user: PathId, svc: Admin) -> dict[str, Any]:
        """Forget a user: their events, profile and log are deleted; a later request treats them as new."""
        n = svc.store.forget_user(user)
        return {"user": user, "events_deleted": n}

    @app.get("/v1/models", response_model=list[ModelVersionOut], tags=["models"])
    def models(svc: Reader) -> list[ModelVersionOut]:
        return [ModelVersionOut(**v) for v in svc.store.versions()]

    @app.post("/v1/models/{version}/activate", response_model=ModelVersionOut, tags=["models"])
    def activate(version: PathId, svc: Admin) -> ModelVersionOut:
        """Swap to (or roll back to) a registered version, atomically, while requests are served."""
        if svc.store.version(version) is None:
            raise UnknownIdError(f"unknown model version {version!r}; GET /v1/models lists them", field="version")
        live = svc.activate(version)
        svc.changed()
        gauge = app.state.metrics.model
        gauge.clear()
        gauge.labels(live.version, live.model.name).set(1)
        row = svc.store.version(version)
        return ModelVersionOut(**row)  # type: ignore[arg-type]

    @app.get("/v1/users", tags=["feedback"])
    def users(svc: Private, limit: Annotated[int, Query(ge=1, le=1_000)] = 20) -> dict[str, Any]:
        """The most active users (for pickers and spot checks)."""
        return {"users": [{"id": u, "events": n} for u, n in svc.store.active_users(limit)]}

    @app.get("/v1/stats", tags=["ops"])
    def stats(svc: Private, buckets: Annotated[int, Query(ge=2, le=200)] = 30) -> dict[str, Any]:
        """Counts now, and cumulative events and catalog items over time."""
        return {**svc.store.counts(), "model_version": svc.live.version, "timeline": svc.store.timeline(buckets)}

    @app.get("/v1/report", tags=["ops"])
    def report(svc: Reader) -> dict[str, Any]:
        """The last evaluation (``anyrec serve --report results/demo.json``), or ``{}``."""
        path = FilePath(settings.report_path) if settings.report_path else None
        if path is None or not path.exists():
            return {}
        doc: dict[str, Any] = json.loads(path.read_text())
        doc["plot"] = path.with_suffix(".png").exists()
        return doc

    @app.get("/v1/report/plot", tags=["ops"], response_class=FileResponse)
    def report_plot(svc: Reader) -> FileResponse:
        png = FilePath(settings.report_path).with_suffix(".png") if settings.report_path else None
        if png is None or not png.exists():
            raise UnknownIdError("no evaluation plot: serve with --report FILE.json beside FILE.png", field="report")
        return FileResponse(png, media_type="image/png")

    @app.put("/v1/experiments/{name}", response_model=ExperimentOut, tags=["experiments"])
    def put_experiment(name: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")],
                       body: ExperimentIn, svc: Admin) -> ExperimentOut:
        """Start (or restart) an A/B experiment: users are split by a stable hash over the variants' shares."""
        names = [v.name for v in body.variants]
        if len(set(names)) != len(names):
            raise _unprocessable(["body", "variants"], "variant names must differ")
        for n, v in enumerate(body.variants):
            if svc.store.version(v.model_version) is None:
                raise _unprocessable(["body", "variants", n, "model_version"], f"unknown model version {v.model_version!r}")
        running = [e["name"] for e in svc.store.experiments() if e["status"] == "running" and e["name"] != name]
        if running:
            raise HTTPException(409, detail=[{"loc": ["path", "name"], "type": "conflict",
                                              "msg": f"experiment {running[0]!r} is running; promote or end it first"}])
        svc.store.put_experiment(name, [v.model_dump() for v in body.variants])
        svc.reload_experiment()
        svc.changed()
        return ExperimentOut(**svc.store.experiment(name))  # type: ignore[arg-type]

    @app.get("/v1/experiments", response_model=list[ExperimentOut], tags=["experiments"])
    def list_experiments(svc: Reader) -> list[ExperimentOut]:
        return [ExperimentOut(**e) for e in svc.store.experiments()]

    def _report(svc: Service, name: str) -> dict[str, Any]:
        exp = svc.store.experiment(name)
        if exp is None:
            raise UnknownIdError(f"unknown experiment {name!r}", field="name")
        variants = [Variant(v["name"], v["model_version"], float(v["share"])) for v in exp["variants"]]
        counts = svc.store.experiment_counts(name, CLICKS, CONVERSIONS, exp["created_at"])
        return {**experiment_report(name, variants, counts), "status": exp["status"]}

    @app.get("/v1/experiments/{name}/report", response_model=ExperimentReport, tags=["experiments"])
    def experiment_report_view(name: PathId, svc: Reader) -> dict[str, Any]:
        """Per variant: lists shown, clicked, converted; CTR with a 95 % interval; is the difference significant."""
        return _report(svc, name)

    @app.post("/v1/experiments/{name}/promote", tags=["experiments"])
    def promote(name: PathId, svc: Admin, force: bool = False) -> dict[str, Any]:
        """End the experiment and activate the winner's version (``force`` takes the leader without significance)."""
        rep = _report(svc, name)
        if rep["status"] != "running":
            raise HTTPException(409, detail=[{"loc": ["path", "name"], "type": "conflict", "msg": f"experiment {name!r} has ended"}])
        chosen = rep["winner"] or (rep["leader"] if force else None)
        if chosen is None:
            raise HTTPException(409, detail=[{"loc": ["path", "name"], "type": "conflict",
                                              "msg": f"no significant winner yet (p = {rep['p_value']:.3f}); wait, or force=true"}])
        version = next(v["model_version"] for v in rep["variants"] if v["name"] == chosen)
        svc.activate(version)
        svc.store.end_experiment(name, chosen)
        svc.reload_experiment()
        svc.changed()
        gauge = app.state.metrics.model
        gauge.clear()
        gauge.labels(svc.live.version, svc.live.model.name).set(1)
        return {"experiment": name, "winner": chosen, "model_version": version, "p_value": rep["p_value"]}

    static = FilePath(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(static / "index.html", media_type="text/html")

    @app.get("/v1/health", response_model=HealthOut, tags=["ops"])
    def health(svc: Annotated[Service, Depends(service)]) -> HealthOut:
        c = svc.store.counts()
        return HealthOut(status="ok", model_version=svc.live.version, items=c["items"], users=c["users"], events=c["events"])

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


SETTINGS_ENV = "ANYREC_SERVE_SETTINGS"


def app_from_env() -> FastAPI:
    """The app for server processes started by uvicorn itself (``anyrec serve --workers N``): the
    settings travel as JSON in ``ANYREC_SERVE_SETTINGS``, set by the CLI."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise RuntimeError(f"{SETTINGS_ENV} is not set; start the service with `anyrec serve`")
    return create_app(settings_from_json(text))
