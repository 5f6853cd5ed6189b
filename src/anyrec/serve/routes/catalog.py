"""The catalog: add, replace, withdraw and read items."""

import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from anyrec.data.table import is_url
from anyrec.errors import UnknownIdError
from anyrec.serve.deps import Admin, PathId, client_picture, reads_need
from anyrec.serve.schemas import ItemIn, StoredItemOut
from anyrec.serve.service import Service
from anyrec.serve.settings import ServeSettings


def _no_paths(fields: dict[str, str], image_field: str | None, item: str) -> dict[str, str]:
    """An item's fields as a client sees them: a picture held as a file is named by its route, not the server path."""
    where = fields.get(image_field or "", "")
    return {**fields, image_field or "": client_picture(where, item) or ""} if where else fields


def router(settings: ServeSettings) -> APIRouter:
    api = APIRouter(tags=["catalog"])
    Reader = Annotated[Service, reads_need(settings)]

    @api.put("/v1/items/{item}", response_model=StoredItemOut)
    def put_item(item: PathId, body: ItemIn, svc: Admin) -> StoredItemOut:
        """Add or replace an item: embedded and indexed at once, recommendable by the next request."""
        svc.store.upsert_items([(item, body.fields, body.category, body.available)])
        return StoredItemOut(**vars(svc.item_changed(item)))

    @api.delete("/v1/items/{item}", response_model=StoredItemOut)
    def delete_item(item: PathId, svc: Admin) -> StoredItemOut:
        """Never recommend this item again (its events stay: they are facts)."""
        if not svc.store.delete_item(item) and svc.store.item(item) is None:
            raise UnknownIdError(f"unknown item {item!r}", field="item")
        return StoredItemOut(**vars(svc.item_changed(item)))

    @api.get("/v1/items/{item}", response_model=StoredItemOut)
    def get_item(item: PathId, svc: Reader) -> StoredItemOut:
        stored = svc.store.item(item)
        if stored is None:
            raise UnknownIdError(f"unknown item {item!r}", field="item")
        return StoredItemOut(**{**vars(stored), "fields": _no_paths(stored.fields, svc.live.catalog.image_field, item)})

    @api.get("/v1/items/{item}/image", response_class=FileResponse,
             responses={200: {"content": {"image/*": {}}, "description": "the picture"}, 404: {"description": "none"}})
    def get_item_image(item: PathId, svc: Reader) -> FileResponse:
        """The item's picture, where the catalog holds it as a file (a URL is given to clients as it is)."""
        live = svc.live
        i = live.ids.index(item, what="item")
        where = live.catalog.image(i)
        kind = mimetypes.guess_type(where)[0] or ""
        if not where or is_url(where) or not kind.startswith("image/") \
                or not Path(where).is_file():
            raise HTTPException(404, detail=[{"loc": ["path", "item"], "type": "not_found",
                                              "msg": f"item {item!r} has no picture file here"}])
        return FileResponse(where, media_type=kind, headers={"Cache-Control": "max-age=3600"})

    return api
