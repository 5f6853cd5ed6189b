"""Request and response bodies (pydantic): every malformed body gets a 422 naming its field."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)

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


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true / false")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _epoch(value: Any) -> Any:
    """An ISO 8601 time (``2026-12-03T10:00:00Z``, ``2026-12-03 10:00+01:00``; without a zone: UTC) as UNIX
    seconds; numbers (and numeric strings) go on to the number's own checks; ``true`` / ``false`` are no time."""
    if isinstance(value, bool):
        raise ValueError("expected UNIX seconds or an ISO 8601 time, not true / false")
    if not isinstance(value, str):
        return value
    try:
        float(value)
        return value
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("expected UNIX seconds or an ISO 8601 time, e.g. 2026-12-03T10:00:00Z") from None
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


Seconds = Annotated[float, Field(allow_inf_nan=False, ge=0, le=1e11)]
EventTime = Annotated[
    Seconds | None,
    BeforeValidator(_epoch, json_schema_input_type=float | datetime | None),
    Field(
        description="UNIX seconds or an ISO 8601 time (e.g. 2026-12-03T10:00:00Z; without a zone, UTC); "
        "default: now. At most the server's future tolerance (300 s) after its clock."
    ),
]


class EventIn(Strict):
    user: Id
    item: Id
    type: EventType
    value: Annotated[float | None, BeforeValidator(_no_bool)] = Field(
        default=None,
        allow_inf_nan=False,
        ge=-1e6,
        le=1e6,
        validate_default=True,
        description="a rating's value, on the service's rating scale (default 1 to 5); required for ratings",
    )
    time: EventTime = None
    recommendation_id: Annotated[str, Field(max_length=64), AfterValidator(_printable)] | None = None

    @field_validator("value")
    @classmethod
    def _rating_has_a_value(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None and info.data.get("type") == "rating":
            raise ValueError("a rating needs a value on the rating scale")
        return value


def _shape(body: Any) -> str:
    return "batch" if isinstance(body, list) else "single"


EventsIn = Annotated[Annotated[EventIn, Tag("single")] | Annotated[list[EventIn], Tag("batch")], Discriminator(_shape)]
"""One event or a list: validated as the shape that was sent, so a 422 lists that shape's errors only
(the tag is dropped from the error's location: ``["body", "time"]``, ``["body", 3, "time"]``)."""
SHAPE_TAGS = ("single", "batch")


class EventsOut(BaseModel):
    stored: int
    seq: list[int]


class Because(BaseModel):
    """A history item behind this card: its share of the card's score and the user's latest event on it."""

    id: str
    title: str
    contribution: float
    event: str | None = None
    value: float | None = None


class ItemOut(BaseModel):
    id: str
    title: str
    score: float
    category: str | None = None
    snippet: str = ""
    image: str | None = Field(
        default=None,
        description="the item's picture: its URL, or this service's "
        "/v1/items/{id}/image for a picture the catalog holds as a file",
    )
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
        min_length=1,
        max_length=50,
        description="text fields, e.g. title, description; a title, when given, is not blank",
    )
    category: Annotated[str, Field(max_length=1_000), AfterValidator(_printable)] | None = None
    available: bool = True

    @field_validator("fields")
    @classmethod
    def _some_text(cls, fields: dict[str, str]) -> dict[str, str]:
        for name in ("title", "name", "headline"):
            if name in fields and not fields[name].strip():
                raise ValueError(f"the {name!r} field is blank: give the item a {name} or leave the field out")
        if not any(v.strip() for v in fields.values()):
            raise ValueError("every text field is blank: an item needs some text to be recommended by")
        return fields


class StoredItemOut(BaseModel):
    id: str
    fields: dict[str, str]
    category: str | None
    available: bool
    deleted: bool
    updated_at: float


class ModelVersionOut(BaseModel):
    """A registered version (its folder stays on the server: the path is no business of a client)."""

    version: str
    model: str
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
    variants: list[VariantIn] = Field(min_length=2, max_length=10, description="shares add up to 1 (within 0.0001)")

    @field_validator("variants")
    @classmethod
    def _shares_add_up(cls, variants: list[VariantIn]) -> list[VariantIn]:
        total = sum(v.share for v in variants)
        if abs(total - 1.0) > 1e-4:  # shares written to four decimals (1/3 as 0.3333) still pass
            raise ValueError(f"the variants' shares add up to {total:g}; they must add up to 1")
        return variants


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


def event_problems(
    batch: list[EventIn], single: bool, rating_scale: tuple[float, float], now: float, future_tolerance: float
) -> list[dict[str, Any]]:
    """422 details for what the body's shape cannot say: a rating off the service's scale, a time past
    ``now + future_tolerance`` (clocks differ a little; the year 3000 is a bug)."""
    lo, hi = rating_scale
    found = []
    for n, e in enumerate(batch):
        at: list[Any] = ["body"] if single else ["body", n]
        if e.type == "rating" and e.value is not None and not lo <= e.value <= hi:
            found.append(
                {
                    "loc": [*at, "value"],
                    "msg": f"rating {e.value:g} is outside the rating scale {lo:g} to {hi:g}",
                    "type": "value_error",
                }
            )
        if e.time is not None and e.time > now + future_tolerance:
            found.append(
                {
                    "loc": [*at, "time"],
                    "msg": f"time {e.time:.0f} is {e.time - now:,.0f} s after the server's clock "
                    f"(at most {future_tolerance:g} s ahead is accepted)",
                    "type": "value_error",
                }
            )
    return found
