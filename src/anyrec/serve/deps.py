"""What the routes share: the service, the one dependency that decides who may call a route, path ids, and the
shape of a listed item."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool

from anyrec.data.table import is_url
from anyrec.serve.edge import AUTH_DETAIL, key_role
from anyrec.serve.live import LiveModel
from anyrec.serve.schemas import SHAPE_TAGS, Because, ItemOut
from anyrec.serve.service import Service
from anyrec.serve.settings import ServeSettings
from anyrec.store import ROLES

PathId = Annotated[
    str, Path(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$")
]

CLICKS = ("click", "like", "add_to_cart", "purchase")  # an event of one of these, carrying a list's id, clicks it


def snippet(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def unprocessable(loc: list[Any], msg: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": loc, "msg": msg, "type": "value_error"}])


def without_shape_tag(loc: list[Any]) -> list[Any]:
    """``["body", "single", "time"]`` → ``["body", "time"]``: the tag of the body shape that was sent says nothing."""
    return [loc[0], *loc[2:]] if len(loc) >= 2 and loc[0] == "body" and loc[1] in SHAPE_TAGS else loc


def client_picture(where: str, item: str) -> str | None:
    """A picture as a client may fetch it: an http(s) URL as the catalog gives it; a file through
    ``/v1/items/{id}/image`` (the server's paths are no business of a client); ``None`` without one."""
    if not where:
        return None
    return where if is_url(where) else f"/v1/items/{quote(item, safe='')}/image"


def items_out(
    live: LiveModel, ids: list[int], scores: list[float], why: list[dict[str, Any]] | None = None
) -> list[ItemOut]:
    cat = live.catalog
    return [
        ItemOut(
            id=live.ids.raw(i),
            title=cat.title(i),
            score=round(s, 6),
            category=cat.fields[cat.category_field][i] or None if cat.category_field else None,
            snippet=snippet(cat.text(i)),
            image=client_picture(cat.image(i), live.ids.raw(i)),
            **(
                {
                    "because": [Because(**b) for b in why[n]["because"]],
                    "words": why[n]["words"],
                    "sentence": why[n]["sentence"],
                }
                if why
                else {}
            ),
        )
        for n, (i, s) in enumerate(zip(ids, scores))
    ]


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
                raise HTTPException(
                    403,
                    detail=[
                        {
                            "loc": ["header", "authorization"],
                            "type": "forbidden",
                            "msg": f"this key's role is {granted}; this needs a {role} key "
                            f"(anyrec keys create --role {role})",
                        }
                    ],
                )
        svc.refresh()
        return svc

    return allowed


Private = Annotated[Service, Depends(needs("read"))]  # who the users are and what they did, the store's counts
Writer = Annotated[Service, Depends(needs("write"))]  # events
Admin = Annotated[Service, Depends(needs("admin"))]  # the catalog, forgetting users, model versions, experiments
Open = Annotated[Service, Depends(service)]  # health: never behind a key


def reads_need(settings: ServeSettings) -> Any:
    """Lists, search and the catalog: open, or a read key where the service runs with ``--read-key``. A route
    module takes it as ``Reader = Annotated[Service, reads_need(settings)]``."""
    return Depends(needs("read" if settings.read_key else None))
