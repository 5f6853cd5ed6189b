"""A/B experiments: start one, list them, read a report, promote the winner."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request

from anyrec.errors import UnknownIdError
from anyrec.serve.deps import CLICKS, Admin, PathId, reads_need, unprocessable
from anyrec.serve.experiments import CONVERSIONS, Variant
from anyrec.serve.experiments import report as experiment_report
from anyrec.serve.routes.versions import show_active
from anyrec.serve.schemas import ExperimentIn, ExperimentOut, ExperimentReport
from anyrec.serve.service import Service
from anyrec.serve.settings import ServeSettings


def _report(svc: Service, name: str) -> dict[str, Any]:
    exp = svc.store.experiment(name)
    if exp is None:
        raise UnknownIdError(f"unknown experiment {name!r}", field="name")
    variants = [Variant(v["name"], v["model_version"], float(v["share"])) for v in exp["variants"]]
    counts = svc.store.experiment_counts(name, CLICKS, CONVERSIONS, exp["created_at"])
    return {**experiment_report(name, variants, counts), "status": exp["status"]}


def router(settings: ServeSettings) -> APIRouter:
    api = APIRouter(tags=["experiments"])
    Reader = Annotated[Service, reads_need(settings)]

    @api.put("/v1/experiments/{name}", response_model=ExperimentOut)
    def put_experiment(name: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")],
                       body: ExperimentIn, svc: Admin) -> ExperimentOut:
        """Start (or restart) an A/B experiment: users are split by a stable hash over the variants' shares."""
        names = [v.name for v in body.variants]
        if len(set(names)) != len(names):
            raise unprocessable(["body", "variants"], "variant names must differ")
        for n, v in enumerate(body.variants):
            if svc.store.version(v.model_version) is None:
                raise unprocessable(
                    ["body", "variants", n, "model_version"], f"unknown model version {v.model_version!r}"
                )
        running = [e["name"] for e in svc.store.experiments() if e["status"] == "running" and e["name"] != name]
        if running:
            raise HTTPException(
                409,
                detail=[
                    {
                        "loc": ["path", "name"],
                        "type": "conflict",
                        "msg": f"experiment {running[0]!r} is running; promote or end it first",
                    }
                ],
            )
        svc.store.put_experiment(name, [v.model_dump() for v in body.variants])
        svc.reload_experiment()
        svc.changed()
        return ExperimentOut(**svc.store.experiment(name))  # type: ignore[arg-type]

    @api.get("/v1/experiments", response_model=list[ExperimentOut])
    def list_experiments(svc: Reader) -> list[ExperimentOut]:
        return [ExperimentOut(**e) for e in svc.store.experiments()]

    @api.get("/v1/experiments/{name}/report", response_model=ExperimentReport)
    def experiment_report_view(name: PathId, svc: Reader) -> dict[str, Any]:
        """Per variant: lists shown, clicked, converted; CTR with a 95 % interval; is the difference significant."""
        return _report(svc, name)

    @api.post("/v1/experiments/{name}/promote")
    def promote(request: Request, name: PathId, svc: Admin, force: bool = False) -> dict[str, Any]:
        """End the experiment and activate the winner's version (``force`` takes the leader without significance)."""
        rep = _report(svc, name)
        if rep["status"] != "running":
            raise HTTPException(
                409, detail=[{"loc": ["path", "name"], "type": "conflict", "msg": f"experiment {name!r} has ended"}]
            )
        chosen = rep["winner"] or (rep["leader"] if force else None)
        if chosen is None:
            raise HTTPException(
                409,
                detail=[
                    {
                        "loc": ["path", "name"],
                        "type": "conflict",
                        "msg": f"no significant winner yet (p = {rep['p_value']:.3f}); wait, or force=true",
                    }
                ],
            )
        version = next(v["model_version"] for v in rep["variants"] if v["name"] == chosen)
        svc.activate(version)
        svc.store.end_experiment(name, chosen)
        svc.reload_experiment()
        svc.changed()
        show_active(request, svc)
        return {"experiment": name, "winner": chosen, "model_version": version, "p_value": rep["p_value"]}

    return api
