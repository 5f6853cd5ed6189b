"""The generic reader: any CSV / TSV / JSONL / Parquet files plus a column mapping."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from anyrec.data.builder import DatasetBuilder, ReadPolicy, parse_rating, parse_time, parse_weight
from anyrec.data.dataset import Dataset
from anyrec.data.rows import iter_table, lookup
from anyrec.errors import ConfigError, MalformedRowError, MissingColumnError


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds what. Dotted names reach into nested JSON (``product.title``).

    Attributes:
        items: the catalog file (optional: without it items are known by id only).
        item_id: item id column in the catalog file.
        text: text columns of the catalog, in template order.
        category: a categorical column (split on ``category_sep``), if any.
        image: a column holding each item's picture: a path (relative to the catalog file) or an http(s) URL.
        interactions: the interaction file.
        user, item: user and item id columns of the interaction file.
        time, rating, event: optional columns.
        weight: an optional column of counts (plays, purchases, minutes), read as confidence, not as a rating.
        sep: delimiter override for CSV/TSV.
        template: item-text template; empty joins the text columns with ". ".
    """

    interactions: str = ""
    user: str = "user_id"
    item: str = "item_id"
    time: str = ""
    rating: str = ""
    event: str = ""
    weight: str = ""
    items: str = ""
    item_id: str = ""
    text: tuple[str, ...] = ()
    category: str = ""
    category_sep: str = "|"
    image: str = ""
    sep: str = ""
    template: str = ""

    def resolved_template(self) -> str:
        if self.template:
            return self.template
        cols = list(self.text) + ([self.category] if self.category and self.category not in self.text else [])
        return ". ".join("{" + _field_name(c) + "}" for c in cols)


def _field_name(column: str) -> str:
    # Template placeholders must be identifiers; "product.title" becomes "product_title".
    return "".join(ch if ch.isalnum() else "_" for ch in column)


def mapping_from_toml(path: str | Path, **overrides: Any) -> ColumnMapping:
    """Read a ``[data]`` (or top-level) column mapping from a TOML file; ``overrides`` win."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    table = doc.get("data", doc)
    known = {f.name for f in fields(ColumnMapping)}
    unknown = sorted(
        set(table) - known - {"format", "name", "path", "bad_rows", "unknown_items", "duplicate_items", "encoding"}
    )
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) in [data]: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = {k: v for k, v in table.items() if k in known}
    if isinstance(values.get("text"), str):
        values["text"] = tuple(c.strip() for c in values["text"].split(",") if c.strip())
    elif "text" in values:
        values["text"] = tuple(values["text"])
    for key in ("items", "interactions"):
        val = values.get(key)
        if val and not Path(val).is_absolute():
            values[key] = str(p.parent / val)
    base = ColumnMapping(**values)
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v not in (None, "", ())}
    return replace(base, **given)


def _get(rec: dict[str, Any], col: str) -> Any:
    try:
        return lookup(rec, col)
    except KeyError:
        return None


def _require(columns: list[str], rec: dict[str, Any], wanted: list[tuple[str, str]], path: Path) -> None:
    """Raise :class:`MissingColumnError` for the first mapped column the first record lacks."""
    for role, col in wanted:
        if not col:
            continue
        try:
            lookup(rec, col)
        except KeyError:
            raise MissingColumnError.build(col, columns, path=path, role=role) from None


def read_table_dataset(mapping: ColumnMapping, policy: ReadPolicy = ReadPolicy(), *, name: str = "") -> Dataset:
    """Read a dataset from tables with a column mapping.

    Raises:
        MissingColumnError: a mapped column is not in the file (with a close match, if any).
        MalformedRowError, EncodingError, EmptyFileError, DuplicateIdError, UnknownIdError:
            per the policy; each names the file, line and field.
    """
    if not mapping.interactions:
        raise ConfigError("the column mapping needs an interactions file (--interactions F)")
    if mapping.items and not mapping.item_id:
        raise ConfigError("a catalog file (--items) needs its id column (--item-id COL)")
    text_fields = [_field_name(c) for c in mapping.text]
    if mapping.category and _field_name(mapping.category) not in text_fields:
        text_fields.append(_field_name(mapping.category))
    image_field = _image_field(mapping, text_fields)
    builder = DatasetBuilder(
        policy, fields=text_fields + ([image_field] if image_field else []), catalog_given=bool(mapping.items)
    )
    sep = mapping.sep or None

    if mapping.items:
        path = Path(mapping.items)
        wanted = [
            ("item id", mapping.item_id),
            *[("text column", c) for c in mapping.text],
            ("category column", mapping.category),
            ("image column", mapping.image),
        ]
        checked = False
        for line, rec, cols in iter_table(path, encoding=policy.encoding, sep=sep, on_bad=builder.bad_row):
            if not checked:
                _require(cols, rec, wanted, path)
                checked = True
            values = {}
            for col in list(mapping.text) + ([mapping.category] if mapping.category else []):
                v = _get(rec, col)
                values[_field_name(col)] = (
                    "" if v is None else (" | ".join(map(str, v)) if isinstance(v, list) else str(v))
                )
            if image_field:
                values[image_field] = image_location(_get(rec, mapping.image), path.parent)
            builder.add_item(str(_get(rec, mapping.item_id) or ""), values, path=path, line=line, field=mapping.item_id)

    path = Path(mapping.interactions)
    checked = False
    for line, rec, cols in iter_table(path, encoding=policy.encoding, sep=sep, on_bad=builder.bad_row):
        if not checked:
            _require(
                cols,
                rec,
                [
                    ("user id", mapping.user),
                    ("item id", mapping.item),
                    ("time", mapping.time),
                    ("rating", mapping.rating),
                    ("event type", mapping.event),
                    ("weight", mapping.weight),
                ],
                path,
            )
            checked = True
        try:
            t = parse_time(_get(rec, mapping.time), path=path, line=line, field=mapping.time) if mapping.time else None
            r = (
                parse_rating(_get(rec, mapping.rating), path=path, line=line, field=mapping.rating)
                if mapping.rating
                else None
            )
            w = (
                parse_weight(_get(rec, mapping.weight), path=path, line=line, field=mapping.weight)
                if mapping.weight
                else None
            )
        except MalformedRowError as err:
            builder.bad_row(err)
            continue
        ev = str(_get(rec, mapping.event) or "") if mapping.event else None
        builder.add_interaction(
            str(_get(rec, mapping.user) or ""),
            str(_get(rec, mapping.item) or ""),
            time=t,
            rating=r,
            event=ev,
            weight=w,
            path=path,
            line=line,
            item_field=mapping.item,
            user_field=mapping.user,
        )
    category = _field_name(mapping.category) if mapping.category else None
    title = _field_name(mapping.text[0]) if mapping.text else None
    return builder.build(
        name or path.parent.name or path.stem,
        template=mapping.resolved_template(),
        category_field=category,
        category_sep=mapping.category_sep,
        title_field=title,
        source=str(path),
        image_field=image_field,
    )


def _image_field(mapping: ColumnMapping, text_fields: list[str]) -> str | None:
    """The catalog field the image column is kept in (apart from the text fields: a picture's path is no text)."""
    if not mapping.image:
        return None
    if not mapping.items:
        raise ConfigError("an image column (--image) is read from the catalog file (--items)")
    name = _field_name(mapping.image)
    return name if name not in text_fields else name + "_image"


def is_url(location: str) -> bool:
    """Whether a picture's location is an http(s) URL (else a path on this machine)."""
    return location.lower().startswith(("http://", "https://"))


def image_location(value: Any, folder: Path) -> str:
    """A picture's location as the catalog gives it: an http(s) URL as is, a path made absolute against the catalog
    file's folder; ``""`` when the cell is empty."""
    if value is None:
        return ""
    text = str(value).strip()
    if not text:
        return ""
    if is_url(text):
        return text
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else (folder / p).resolve())
