"""The catalog: add, replace, withdraw and read items."""

from typing import Annotated

from fastapi import APIRouter

from anyrec.errors import UnknownIdError
from anyrec.serve.deps import Admin, PathId, reads_need
from anyrec.serve.schemas import ItemIn, StoredItemOut
from anyrec.serve.service import Service
from anyrec.serve.settings import ServeSettings


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
        return StoredItemOut(**vars(stored))

    return api
