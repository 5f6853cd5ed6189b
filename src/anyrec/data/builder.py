"""Assemble a :class:`Dataset` row by row, applying an explicit policy to bad input.

Every reader goes through :class:`DatasetBuilder`, so the policies (what happens to a
malformed row, an unknown item, a duplicate item id) and the report are the same for
every format.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from anyrec.data.dataset import Catalog, Dataset, IdMap, Interactions, LoadReport
from anyrec.errors import ConfigError, DuplicateIdError, EmptyFileError, MalformedRowError, UnknownIdError

log = logging.getLogger(__name__)

BadRows = Literal["error", "skip"]
UnknownItems = Literal["error", "skip", "add"]
DuplicateItems = Literal["error", "first", "last"]


@dataclass(frozen=True)
class ReadPolicy:
    """How readers treat bad input. Whatever is skipped or added is counted in the report.

    Attributes:
        bad_rows: ``error`` stops at the first malformed row; ``skip`` counts and skips it.
        unknown_items: an interaction naming an item the catalog lacks: ``error``, ``skip``
            (count and leave out) or ``add`` (add the item with empty text).
        duplicate_items: an item id listed twice in the catalog: ``error``, or keep the
            ``first`` / ``last`` row.
        encoding: text encoding of text files (readers of known formats set their own).
    """

    bad_rows: BadRows = "error"
    unknown_items: UnknownItems = "error"
    duplicate_items: DuplicateItems = "error"
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("bad_rows", ("error", "skip")),
            ("unknown_items", ("error", "skip", "add")),
            ("duplicate_items", ("error", "first", "last")),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")


def parse_time(value: object, *, path: Path | str, line: int, field: str) -> float:
    """Seconds since the epoch from a number or an ISO-8601 / common date string."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and math.isnan(value):
            raise MalformedRowError("timestamp is NaN", path=path, line=line, field=field)
        return float(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).timestamp()
    text = str(value).strip()
    if not text:
        raise MalformedRowError("timestamp is empty", path=path, line=line, field=field)
    try:
        return float(text)
    except ValueError:
        pass
    for fmt in (None, "%m/%d/%Y %I:%M:%S %p", "%d-%b-%Y", "%Y/%m/%d %H:%M:%S"):
        try:
            dt = datetime.fromisoformat(text) if fmt is None else datetime.strptime(text, fmt)
        except ValueError:
            continue
        return dt.replace(tzinfo=dt.tzinfo or UTC).timestamp()
    raise MalformedRowError(
        f"cannot read timestamp {text!r}; expected epoch seconds or an ISO-8601 date", path=path, line=line, field=field
    )


def parse_weight(value: object, *, path: Path | str, line: int, field: str) -> float:
    """A finite count of zero or more (plays, purchases, minutes)."""
    out = parse_rating(value, path=path, line=line, field=field, what="weight")
    if out < 0:
        raise MalformedRowError(
            f"weight {value!r} is negative (a count is 0 or more)", path=path, line=line, field=field
        )
    return out


def parse_rating(value: object, *, path: Path | str, line: int, field: str, what: str = "rating") -> float:
    """A finite float rating."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MalformedRowError(f"{what} {value!r} is not a number", path=path, line=line, field=field) from None
    if not math.isfinite(out):
        raise MalformedRowError(f"{what} {value!r} is not finite", path=path, line=line, field=field)
    return out


class DatasetBuilder:
    """Collects items and interactions, then builds a :class:`Dataset`."""

    def __init__(self, policy: ReadPolicy, *, fields: list[str], catalog_given: bool = True) -> None:
        self.policy = policy
        self.report = LoadReport()
        self.items = IdMap()
        self.users = IdMap()
        self.fields: dict[str, list[str]] = {f: [] for f in fields}
        self._item_line: dict[int, str] = {}
        self.catalog_given = catalog_given
        self._user: list[int] = []
        self._item: list[int] = []
        self._time: list[float] = []
        self._rating: list[float] = []
        self._event: list[str] = []
        self._weight: list[float] = []

    # ---- bad rows -------------------------------------------------------------
    def bad_row(self, err: MalformedRowError) -> None:
        """Apply the ``bad_rows`` policy to ``err`` (raise or count)."""
        if self.policy.bad_rows == "error":
            raise err
        self.report.skip(f"malformed rows in {Path(err.path or '?').name}", str(err))

    # ---- items ----------------------------------------------------------------
    def add_item(self, raw_id: str, values: dict[str, str], *, path: Path | str, line: int, field: str) -> None:
        raw_id = str(raw_id).strip()
        if not raw_id:
            self.bad_row(MalformedRowError("item id is empty", path=path, line=line, field=field))
            return
        where = f"{Path(path).name} line {line}"
        idx = self.items.get(raw_id)
        if idx is not None:
            first = self._item_line.get(idx, "?")
            if self.policy.duplicate_items == "error":
                raise DuplicateIdError(
                    f"item id {raw_id!r} is listed twice (first at {first}); "
                    "ids must be unique, or choose duplicate_items = first | last",
                    path=path,
                    line=line,
                    field=field,
                )
            self.report.skip(
                f"duplicate item ids (kept the {self.policy.duplicate_items} row)", f"{raw_id!r} at {where}"
            )
            if self.policy.duplicate_items == "first":
                return
            for name in self.fields:
                self.fields[name][idx] = str(values.get(name, "") or "")
            return
        idx = self.items.add(raw_id)
        self._item_line[idx] = where
        for name in self.fields:
            self.fields[name].append(str(values.get(name, "") or ""))

    # ---- interactions ---------------------------------------------------------
    def add_interaction(
        self,
        user: str,
        item: str,
        *,
        time: float | None,
        rating: float | None = None,
        event: str | None = None,
        weight: float | None = None,
        path: Path | str,
        line: int,
        item_field: str = "item",
        user_field: str = "user",
    ) -> None:
        user = str(user).strip()
        item = str(item).strip()
        if not user:
            self.bad_row(MalformedRowError("user id is empty", path=path, line=line, field=user_field))
            return
        if not item:
            self.bad_row(MalformedRowError("item id is empty", path=path, line=line, field=item_field))
            return
        idx = self.items.get(item)
        if idx is None:
            if not self.catalog_given:
                idx = self._placeholder(item)
            elif self.policy.unknown_items == "error":
                raise UnknownIdError(
                    f"item {item!r} is not in the catalog; fix the id, or choose unknown_items = skip | add",
                    path=path,
                    line=line,
                    field=item_field,
                )
            elif self.policy.unknown_items == "skip":
                self.report.skip(
                    "interactions naming items missing from the catalog", f"{item!r} at {Path(path).name} line {line}"
                )
                return
            else:
                idx = self._placeholder(item)
                self.report.add("items missing from the catalog, added with empty text")
        self._user.append(self.users.add(user))
        self._item.append(idx)
        self._time.append(float(len(self._time)) if time is None else time)
        if rating is not None:
            self._rating.append(rating)
        if event is not None:
            self._event.append(event)
        if weight is not None:
            self._weight.append(weight)

    def _placeholder(self, raw: str) -> int:
        idx = self.items.add(raw)
        self._item_line[idx] = "interactions"
        for vals in self.fields.values():
            vals.append("")
        return idx

    # ---- build ----------------------------------------------------------------
    def build(
        self,
        name: str,
        *,
        template: str,
        category_field: str | None = None,
        category_sep: str = "|",
        title_field: str | None = None,
        source: str = "",
        image_field: str | None = None,
    ) -> Dataset:
        """The dataset; raises :class:`EmptyFileError` when there are no interactions left."""
        n = len(self._user)
        if n == 0:
            raise EmptyFileError(
                "no interactions were read" + (f" ({'; '.join(self.report.lines())})" if self.report.lines() else ""),
                path=source or None,
            )
        if self._rating and len(self._rating) != n:
            raise MalformedRowError(
                f"ratings are given for {len(self._rating)} of {n} interactions; give all or none", path=source or None
            )
        if self._weight and len(self._weight) != n:
            raise MalformedRowError(
                f"weights are given for {len(self._weight)} of {n} interactions; give all or none", path=source or None
            )
        if self._rating and (max(self._rating) > 10 or min(self._rating) < -10):
            self.report.notes.append(
                f"the rating column ranges {min(self._rating):g} to {max(self._rating):g}: no rating scale reads "
                "that; if it holds counts (plays, purchases, minutes), give it as --weight COLUMN ([data] weight) "
                "instead of --rating"
            )
        if self._event and len(self._event) != n:
            raise MalformedRowError(
                f"event types are given for {len(self._event)} of {n} interactions; give all or none",
                path=source or None,
            )
        inter = Interactions(
            user=np.asarray(self._user, dtype=np.int64),
            item=np.asarray(self._item, dtype=np.int64),
            time=np.asarray(self._time, dtype=np.float64),
            rating=np.asarray(self._rating, dtype=np.float32) if self._rating else None,
            event=np.asarray(self._event, dtype=object) if self._event else None,
            weight=np.asarray(self._weight, dtype=np.float32) if self._weight else None,
        )
        catalog = Catalog(
            ids=self.items,
            fields=self.fields,
            template=template,
            category_field=category_field,
            category_sep=category_sep,
            title_field=title_field,
            image_field=image_field,
        )
        touched = np.zeros(len(catalog), dtype=bool)
        touched[inter.item] = True
        if not touched.all():
            self.report.notes.append(f"{int((~touched).sum()):,} catalog items have no interactions (kept; cold items)")
        ds = Dataset(name=name, catalog=catalog, users=self.users, interactions=inter, report=self.report)
        # Callers show the report (the CLI prints it); the log keeps a copy for library users.
        for line in self.report.lines():
            log.info("%s: %s", name, line)
        return ds
