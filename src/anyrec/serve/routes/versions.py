"""Model versions: list them, activate (or roll back to) one."""

from typing import Annotated

from fastapi import APIRouter, Request

from anyrec.errors import UnknownIdError
from anyrec.serve.deps import Admin, PathId, reads_need
from anyrec.serve.schemas import ModelVersionOut
from anyrec.serve.service import Service
from anyrec.serve.settings import ServeSettings


def show_active(request: Request, svc: Service) -> None:
    """The model gauge of /metrics names the version now served."""
    gauge = request.app.state.metrics.model
    gauge.clear()
    gauge.labels(svc.live.version, svc.live.model.name).set(1)


def router(settings: ServeSettings) -> APIRouter:
    api = APIRouter(tags=["models"])
    Reader = Annotated[Service, reads_need(settings)]

    @api.get("/v1/models", response_model=list[ModelVersionOut])
    def models(svc: Reader) -> list[ModelVersionOut]:
        return [ModelVersionOut(**v) for v in svc.store.versions()]

    @api.post("/v1/models/{version}/activate", response_model=ModelVersionOut)
    def activate(request: Request, version: PathId, svc: Admin) -> ModelVersionOut:
        """Swap to (or roll back to) a registered version, atomically, while requests are served."""
        if svc.store.version(version) is None:
            raise UnknownIdError(f"unknown model version {version!r}; GET /v1/models lists them", field="version")
        svc.activate(version)
        svc.changed()
        show_active(request, svc)
        row = svc.store.version(version)
        return ModelVersionOut(**row)  # type: ignore[arg-type]

    return api
