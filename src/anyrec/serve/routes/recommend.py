"""Recommendations, similar items, free-text search."""

import time
import uuid
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request, Response

from anyrec.serve.deps import PathId, items_out, reads_need, unprocessable
from anyrec.serve.schemas import ListOut, RecommendationsOut, SearchIn
from anyrec.serve.service import Service
from anyrec.serve.settings import ServeSettings


def router(settings: ServeSettings) -> APIRouter:
    api = APIRouter(tags=["recommend"])
    Reader = Annotated[Service, reads_need(settings)]

    @api.get("/v1/users/{user}/recommendations", response_model=RecommendationsOut)
    async def recommendations(request: Request, user: PathId, svc: Reader,
                              k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10,
                              category: Annotated[list[str] | None, Query(max_length=50)] = None,
                              exclude: Annotated[list[str] | None, Query(max_length=1_000)] = None,
                              explain: bool = False) -> Response:
        """Top-k for a user from their live history (the most recent ``history_cap`` events); an unknown user gets
        cold-start recommendations."""
        # Scored in a bounded pool of threads, off the event loop: a user with a long history (80,000 events took
        # 0.35-0.6 s on the loop) no longer holds every other request, health checks included, behind theirs.
        state = request.app.state
        limiter = state.scoring = getattr(state, "scoring", None) or anyio.CapacityLimiter(settings.scoring_threads)
        return await anyio.to_thread.run_sync(lambda: _recommend(request, svc, user, k, category, exclude, explain),
                                              limiter=limiter)

    def _recommend(request: Request, svc: Service, user: str, k: int, category: list[str] | None,
                   exclude: list[str] | None, explain: bool) -> Response:
        # One version for the whole request, even if another is activated meanwhile; in an
        # experiment, the user's variant's version.
        live, experiment, variant = svc.serving(user)
        unknown = live.unknown_categories(category or [])
        if unknown:
            raise unprocessable(["query", "category"], f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                                f"{', '.join(map(repr, unknown))}; known: {live.category_names(12)}")
        since, rows = svc.store.user_state(user, last=settings.history_cap)
        recs = live.recommend(
            user, rows, k, user_since=since, categories=category or [], exclude=exclude or [], explain=explain
        )
        rec_id = uuid.uuid4().hex
        if explain and recs.because:
            request.app.state.metrics.unbuilt.inc(sum(1 for b in recs.because if b.get("sentence") is None))
        svc.log_shown(
            {
                "id": rec_id,
                "user_id": user,
                "model_version": live.version,
                "variant": variant,
                "experiment": experiment,
                "items": [live.ids.raw(i) for i in recs.items],
                "created_at": time.time(),
            }
        )
        body = RecommendationsOut(
            user=user,
            model_version=live.version,
            recommendation_id=rec_id,
            experiment=experiment,
            variant=variant,
            cold_start=recs.cold_start,
            items=items_out(live, recs.items, recs.scores, recs.because),
        )
        return Response(
            body.model_dump_json(), media_type="application/json"
        )  # built and checked once, not re-validated

    @api.get("/v1/items/{item}/similar", response_model=ListOut)
    def similar(item: PathId, svc: Reader, k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10) -> ListOut:
        """Nearest items by text (or co-occurrence for item-kNN)."""
        live = svc.live
        ids, scores = live.similar(item, k)
        return ListOut(model_version=live.version, items=items_out(live, ids, scores))

    @api.post("/v1/search", response_model=ListOut)
    def search(body: SearchIn, svc: Reader) -> ListOut:
        """Items for a free-text request, optionally personalised for a user (their seen items hidden)."""
        live = svc.live
        rows = svc.store.history(body.user) if body.user else None
        ids, scores = live.search(body.query, body.k, rows)
        return ListOut(model_version=live.version, items=items_out(live, ids, scores))

    return api
