"""The edge of the service: bounded bodies, API keys checked before a write's body is read, metrics.

A pure ASGI middleware (no per-request task hand-off) and the Prometheus metrics it records, in a
registry of the app's own.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from anyrec.serve.settings import ServeSettings


class Metrics:
    """Prometheus metrics in a registry of this app's own (no process globals)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "anyrec_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "anyrec_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.events = Counter("anyrec_events_stored_total", "Events durably stored", ["type"], registry=self.registry)
        self.replays = Counter(
            "anyrec_idempotent_replays_total",
            "Writes answered from an Idempotency-Key's first answer",
            registry=self.registry,
        )
        self.unbuilt = Counter(
            "anyrec_explanations_unbuilt_total",
            "Cards served without a sentence (it could not be built within the guard)",
            registry=self.registry,
        )
        self.model = Gauge(
            "anyrec_model_info", "The active model version (value 1)", ["version", "model"], registry=self.registry
        )


def error_response(status: int, loc: list[Any], msg: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]})


AUTH_DETAIL = {
    "loc": ["header", "authorization"],
    "type": "auth",
    "msg": "a valid 'Authorization: Bearer <key>' is required (create one with `anyrec keys create --store URL`)",
}
_READ_POSTS = {"/v1/search"}
# With ``--read-key`` these need a key too (the API's own documentation and the metrics are reads like any other).
_READ_KEY_PATHS = {"/docs", "/redoc", "/openapi.json", "/metrics", "/docs/oauth2-redirect"}
_PID = str(os.getpid()).encode()
# The page keeps a key in localStorage: no other site may frame it (clickjacking), nothing is sniffed or referred.
_SECURE = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def key_role(app: Any, authorization: str) -> str | None:
    """The role of the bearer key in ``authorization`` (``None``: no valid key)."""
    scheme, _, key = authorization.partition(" ")
    service = getattr(app.state, "service", None)
    if scheme.lower() != "bearer" or not key.strip() or service is None:
        return None
    role: str | None = service.key_role(key.strip())
    return role


def has_key(app: Any, authorization: str) -> bool:
    return key_role(app, authorization) is not None


class _TooLarge(Exception):
    pass


async def _read_chunked(receive: Any, limit: int, replay: list[dict[str, Any]]) -> bool:
    """Read a body of unstated length into ``replay`` (one message for the app); ``False`` once it passes ``limit``."""
    parts: list[bytes] = []
    total, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: the app sees the disconnect
            replay.append(message)
            return True
        parts.append(message.get("body", b""))
        total += len(parts[-1])
        if total > limit:
            return False
        more = bool(message.get("more_body", False))
    replay.append({"type": "http.request", "body": b"".join(parts), "more_body": False})
    return True


class Edge:
    """Pure ASGI middleware at the edge: bounds the body, checks the key of writes before the body
    is read, counts and times every request (by route template, so label cardinality stays bounded)."""

    def __init__(self, app: Any, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]
        started = [False]
        limit = self.settings.max_body_bytes

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                started[0] = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-anyrec-worker", _PID),
                    *_SECURE,
                ]  # which process answered
            await send(message)

        received = [0]

        async def bounded_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise _TooLarge()
            return message

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        replay: list[dict[str, Any]] = []  # a chunked body, read by the edge
        size = headers.get("content-length")
        method, path = scope["method"], scope["path"]
        if size is not None and (not size.isdigit() or int(size) > limit):
            await error_response(413, ["header", "content-length"], f"the body may hold at most {limit:,} bytes")(
                scope, receive, send_status
            )
        elif (
            (method in ("POST", "PUT", "DELETE", "PATCH") and path not in _READ_POSTS)
            or (self.settings.read_key and path in _READ_KEY_PATHS)
        ) and not await run_in_threadpool(has_key, scope["app"], headers.get("authorization", "")):
            # Before the body is read or parsed: a write without a valid key is a 401, whatever its body.
            await JSONResponse(
                status_code=401, content={"detail": [AUTH_DETAIL]}, headers={"WWW-Authenticate": "Bearer"}
            )(scope, receive, send_status)
        elif size is None and method in ("POST", "PUT", "PATCH") and not await _read_chunked(receive, limit, replay):
            # A chunked body (no length said) past the limit: a 413 like a declared one (read inside the app, the
            # overflow surfaced as "There was an error parsing the body", a 400).
            await error_response(413, ["body"], f"the body may hold at most {limit:,} bytes")(
                scope, receive, send_status
            )
        else:
            app_receive = bounded_receive
            if size is None and method in ("POST", "PUT", "PATCH"):

                async def replayed() -> Any:
                    return replay.pop() if replay else await receive()

                app_receive = replayed
            try:
                await self.app(scope, app_receive, send_status)
            except _TooLarge:
                if started[0]:
                    raise
                await error_response(413, ["body"], f"the body may hold at most {limit:,} bytes")(
                    scope, receive, send_status
                )
        route = scope.get("route")
        label = getattr(route, "path", "unmatched")
        m: Metrics = scope["app"].state.metrics
        m.requests.labels(method, label, str(status[0])).inc()
        m.latency.labels(label).observe(time.perf_counter() - t0)
