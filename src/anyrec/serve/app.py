"""The HTTP API: ``create_app(settings)``; thin — validate, authorise, call the live model, log.

Run with ``anyrec serve --model DIR`` (uvicorn). OpenAPI at ``/docs``; everything under ``/v1``. The routes live
by resource in :mod:`anyrec.serve.routes`; who may call each is one dependency (:func:`anyrec.serve.deps.needs`).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from anyrec import __version__
from anyrec.errors import AnyrecError, IdempotencyConflict, UnknownIdError
from anyrec.serve.deps import without_shape_tag
from anyrec.serve.edge import Edge, Metrics, error_response
from anyrec.serve.routes import catalog, events, experiments, ops, recommend, versions
from anyrec.serve.routes.ops import STATIC
from anyrec.serve.service import Service
from anyrec.serve.settings import ServeSettings, settings_from_json


def create_app(settings: ServeSettings) -> FastAPI:
    """The service. Models and the store open in the lifespan; tests pass their own settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings)
        app.state.service = service
        app.state.metrics.model.labels(service.live.version, service.live.model.name).set(1)
        yield
        service.close()

    app = FastAPI(
        title="anyrec",
        version=__version__,
        lifespan=lifespan,
        description="Recommend anything that has text: recommendations, search, feedback events, model versions.",
    )
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
        detail = [
            {"loc": without_shape_tag(list(e.get("loc", ()))), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": detail})

    for resource in (recommend, events, catalog, versions, experiments, ops):
        app.include_router(resource.router(settings))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


SETTINGS_ENV = "ANYREC_SERVE_SETTINGS"


def app_from_env() -> FastAPI:
    """The app for server processes started by uvicorn itself (``anyrec serve --workers N``): the
    settings travel as JSON in ``ANYREC_SERVE_SETTINGS``, set by the CLI."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise RuntimeError(f"{SETTINGS_ENV} is not set; start the service with `anyrec serve`")
    return create_app(settings_from_json(text))


__all__ = ["SETTINGS_ENV", "Service", "app_from_env", "create_app"]
