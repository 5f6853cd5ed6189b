"""Feedback events, and the users they make: history, the most active, forgetting one."""

import hashlib
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request, Response

from anyrec.serve.deps import Admin, PathId, Private, Writer, unprocessable
from anyrec.serve.schemas import EventsIn, EventsOut, event_problems
from anyrec.serve.settings import ServeSettings
from anyrec.store import Event


def router(settings: ServeSettings) -> APIRouter:
    api = APIRouter(tags=["feedback"])

    @api.post("/v1/events", response_model=EventsOut)
    def events(request: Request, svc: Writer, body: Annotated[EventsIn, Body()], response: Response,
               idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255,
                                                             pattern=r"^[\x21-\x7e]+$")] = None) -> EventsOut:
        """Store one event or a list; answers after they are committed. The next list reflects them.

        With an ``Idempotency-Key`` header (any printable token, e.g. a UUID the client makes per batch), the same
        key sent again within 24 hours — a retry whose answer was lost, even to a crash after the commit — gets the
        first answer (header ``Idempotent-Replayed: true``) and stores nothing new; the same key with another body
        is refused (422, ``loc`` ``["header", "idempotency-key"]``)."""
        batch = body if isinstance(body, list) else [body]
        if not batch or len(batch) > settings.max_events:
            raise unprocessable(["body"], f"send 1 to {settings.max_events:,} events per request")
        w = settings.weights
        problems = event_problems(batch, not isinstance(body, list), (w.rating_low, w.rating_high),
                                  time.time(), settings.future_tolerance_s)
        if problems:
            raise HTTPException(422, detail=problems)
        live = svc.live
        if settings.unknown_items == "reject":
            for n, e in enumerate(batch):
                if e.item not in live.ids:
                    raise unprocessable(["body", n, "item"] if isinstance(body, list) else ["body", "item"],
                                        f"unknown item {e.item!r}: add it with PUT /v1/items/{{item}} first")
        digest = hashlib.sha256(
            json.dumps([e.model_dump(mode="json") for e in batch], sort_keys=True).encode()
        ).hexdigest()
        seqs, replayed = svc.store.add_events_once(
            [
                Event(
                    user=e.user,
                    item=e.item,
                    type=e.type,
                    value=e.value,
                    time=e.time,
                    recommendation_id=e.recommendation_id,
                )
                for e in batch
            ],
            (idempotency_key, digest) if idempotency_key else None,
        )
        metrics = request.app.state.metrics
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
            metrics.replays.inc()
            return EventsOut(stored=len(seqs), seq=seqs)
        for loaded in svc.loaded():
            loaded.count_events([e.item for e in batch])
        for e in batch:
            metrics.events.labels(e.type).inc()
        return EventsOut(stored=len(seqs), seq=seqs)

    @api.get("/v1/users/{user}/history")
    def history(user: PathId, svc: Private, limit: Annotated[int, Query(ge=1, le=1_000)] = 20) -> dict[str, Any]:
        """The user's latest events, newest first."""
        live = svc.live
        rows = svc.store.history(user)[::-1][:limit]
        return {
            "user": user,
            "events": [
                {
                    "item": i,
                    "title": live.catalog.title(live.ids.index(i)) if i in live.ids else i,
                    "type": t,
                    "value": v,
                    "time": tm,
                }
                for i, t, v, tm in rows
            ],
        }

    @api.delete("/v1/users/{user}")
    def forget_user(user: PathId, svc: Admin) -> dict[str, Any]:
        """Forget a user: their events, profile and log are deleted; a later request treats them as new."""
        n = svc.store.forget_user(user)
        return {"user": user, "events_deleted": n}

    @api.get("/v1/users")
    def users(svc: Private, limit: Annotated[int, Query(ge=1, le=1_000)] = 20) -> dict[str, Any]:
        """The most active users (for pickers and spot checks)."""
        return {"users": [{"id": u, "events": n} for u, n in svc.store.active_users(limit)]}

    return api
