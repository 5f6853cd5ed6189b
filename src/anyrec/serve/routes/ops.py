"""Operations: health, metrics, the store's counts, the last evaluation, the page."""

import json
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from anyrec.errors import UnknownIdError
from anyrec.serve.deps import Open, Private, reads_need
from anyrec.serve.schemas import HealthOut
from anyrec.serve.service import Service
from anyrec.serve.settings import ServeSettings

STATIC = FilePath(__file__).resolve().parents[1] / "static"


def router(settings: ServeSettings) -> APIRouter:
    api = APIRouter(tags=["ops"])
    Reader = Annotated[Service, reads_need(settings)]

    @api.get("/v1/stats")
    def stats(svc: Private, buckets: Annotated[int, Query(ge=2, le=200)] = 30) -> dict[str, Any]:
        """Counts now, and cumulative events and catalog items over time."""
        return {**svc.store.counts(), "model_version": svc.live.version, "timeline": svc.store.timeline(buckets)}

    @api.get("/v1/report")
    def report(svc: Reader) -> dict[str, Any]:
        """The last evaluation (``anyrec serve --report results/demo.json``), or ``{}``."""
        path = FilePath(settings.report_path) if settings.report_path else None
        if path is None or not path.exists():
            return {}
        doc: dict[str, Any] = json.loads(path.read_text())
        doc["plot"] = path.with_suffix(".png").exists()
        return doc

    @api.get("/v1/report/plot", response_class=FileResponse)
    def report_plot(svc: Reader) -> FileResponse:
        png = FilePath(settings.report_path).with_suffix(".png") if settings.report_path else None
        if png is None or not png.exists():
            raise UnknownIdError("no evaluation plot: serve with --report FILE.json beside FILE.png", field="report")
        return FileResponse(png, media_type="image/png")

    @api.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @api.get("/v1/health", response_model=HealthOut)
    def health(svc: Open) -> HealthOut:
        c = svc.store.counts()
        return HealthOut(
            status="ok", model_version=svc.live.version, items=c["items"], users=c["users"], events=c["events"]
        )

    @api.get("/metrics", response_class=Response)
    def metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return api
