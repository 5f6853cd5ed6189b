"""Request and response bodies (pydantic): every malformed body gets a 422 naming its field."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from anyrec.serve.live import EVENT_TYPES


def _printable(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Id = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_printable)]
Text = Annotated[str, Field(max_length=20_000), AfterValidator(lambda v: v.replace("\x00", ""))]
EventType = Literal["view", "click", "add_to_cart", "purchase", "rating", "like", "dislike", "skip"]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(Strict):
    user: Id
    item: Id
    type: EventType
    value: float | None = Field(default=None, allow_inf_nan=False, ge=-1e6, le=1e6)
    time: float | None = Field(default=None, allow_inf_nan=False, ge=0, le=1e11, description="UNIX seconds; default: now")
    recommendation_id: Annotated[str, Field(max_length=64), AfterValidator(_printable)] | None = None


class EventsOut(BaseModel):
    stored: int
    seq: list[int]


class Because(BaseModel):
    id: str
    title: str
    contribution: float


class ItemOut(BaseModel):
    id: str
    title: str
    score: float
    category: str | None = None
    snippet: str = ""
    because: list[Because] = []
    words: list[str] = []
    sentence: str | None = None


class RecommendationsOut(BaseModel):
    user: str
    model_version: str
    recommendation_id: str
    experiment: str | None = None
    variant: str | None = None
    cold_start: bool
    items: list[ItemOut]


class SearchIn(Strict):
    query: Annotated[str, Field(min_length=1, max_length=2_000), AfterValidator(_printable)]
    user: Id | None = None
    k: int = Field(default=10, ge=1, le=1_000)


class ListOut(BaseModel):
    model_version: str
    items: list[ItemOut]


class ItemIn(Strict):
    fields: dict[Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)], Text] = Field(
        min_length=1, max_length=50, description="text fields, e.g. title, description")
    category: Annotated[str, Field(max_length=1_000), AfterValidator(_printable)] | None = None
    available: bool = True


class StoredItemOut(BaseModel):
    id: str
    fields: dict[str, str]
    category: str | None
    available: bool
    deleted: bool
    updated_at: float


class ModelVersionOut(BaseModel):
    version: str
    model: str
    path: str
    metrics: dict[str, float | int | str | None]
    created_at: float
    data_until: float
    active: bool


class HealthOut(BaseModel):
    status: str
    model_version: str
    items: int
    users: int
    events: int


Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


class VariantIn(Strict):
    name: Name
    model_version: Name
    share: float = Field(gt=0, le=1, allow_inf_nan=False)


class ExperimentIn(Strict):
    variants: list[VariantIn] = Field(min_length=2, max_length=10)


class ExperimentOut(BaseModel):
    name: str
    variants: list[VariantIn]
    status: str
    created_at: float
    ended_at: float | None
    winner: str | None


class VariantReport(BaseModel):
    name: str
    model_version: str
    share: float
    impressions: int
    clicks: int
    conversions: int
    ctr: float
    ctr_low: float
    ctr_high: float
    conversion_rate: float


class ExperimentReport(BaseModel):
    experiment: str
    status: str
    variants: list[VariantReport]
    leader: str | None
    p_value: float
    significant: bool
    winner: str | None
    alpha: float
    method: str


def finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0
