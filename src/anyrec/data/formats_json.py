"""Ready loaders for MIND (news) and Amazon Reviews 2023 (JSON lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anyrec.data.builder import DatasetBuilder, ReadPolicy, parse_rating, parse_time
from anyrec.data.dataset import Dataset
from anyrec.data.rows import iter_delimited, iter_jsonl
from anyrec.errors import FormatDetectionError, MalformedRowError

NEWS_FIELDS = ["category", "subcategory", "title", "abstract"]


def load_mind(folder: Path, policy: ReadPolicy, name: str | None = None) -> Dataset:
    """MIND: ``news.tsv`` (no header) and ``behaviors.tsv``.

    Interactions are clicks: each user's click history (from their first impression
    line, ordered, timed just before it) and the clicked news of every impression.
    Shown-but-not-clicked news are counted in the report, not stored as interactions.
    """
    news, behaviors = folder / "news.tsv", folder / "behaviors.tsv"
    builder = DatasetBuilder(policy, fields=NEWS_FIELDS)
    for line, _c, v in iter_delimited(news, sep="\t", encoding=policy.encoding, header=False, quoting=3):
        if len(v) < 5:
            builder.bad_row(
                MalformedRowError(
                    "expected at least 5 tab-separated fields (id, category, subcategory, title, abstract), found "
                    f"{len(v)}",
                    path=news,
                    line=line,
                )
            )
            continue
        builder.add_item(v[0], dict(zip(NEWS_FIELDS, v[1:5])), path=news, line=line, field="news id")
    seen_history: set[str] = set()
    shown_not_clicked = 0
    repeated_history = 0
    for line, _c, v in iter_delimited(behaviors, sep="\t", encoding=policy.encoding, header=False, quoting=3):
        if len(v) != 5:
            builder.bad_row(
                MalformedRowError(
                    f"expected 5 tab-separated fields (impression, user, time, history, impressions), found {len(v)}",
                    path=behaviors,
                    line=line,
                )
            )
            continue
        _imp, user, when, history, impressions = v
        try:
            t = parse_time(when, path=behaviors, line=line, field="time")
        except MalformedRowError as err:
            builder.bad_row(err)
            continue
        hist = history.split()
        if user not in seen_history:
            seen_history.add(user)
            for pos, nid in enumerate(hist):
                # History clicks happened before the impression; keep their order, exact time unknown.
                builder.add_interaction(
                    user,
                    nid,
                    time=t - (len(hist) - pos),
                    event="history",
                    path=behaviors,
                    line=line,
                    item_field="history",
                )
        else:
            repeated_history += len(hist)
        for token in impressions.split():
            nid, _, label = token.rpartition("-")
            if label not in ("0", "1") or not nid:
                builder.bad_row(
                    MalformedRowError(
                        f"impression {token!r} is not 'newsid-0' or 'newsid-1'",
                        path=behaviors,
                        line=line,
                        field="impressions",
                    )
                )
                continue
            if label == "1":
                builder.add_interaction(
                    user, nid, time=t, event="click", path=behaviors, line=line, item_field="impressions"
                )
            else:
                shown_not_clicked += 1
    builder.report.notes.append(f"{shown_not_clicked:,} impressions shown but not clicked (not interactions)")
    builder.report.notes.append(
        f"{repeated_history:,} history entries repeated in later impression lines of the same user (read once)"
    )
    return builder.build(
        name or folder.name,
        template="{title}. {category}, {subcategory}. {abstract}",
        category_field="category",
        title_field="title",
        source=str(behaviors),
    )


# ---------------------------------------------------------------- Amazon Reviews 2023
def _join(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_join(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_join(v)}" for k, v in value.items())
    return str(value)


AMAZON_FIELDS = ["title", "brand", "category", "price", "features", "description"]
AMAZON_TEMPLATE = "{title}. Brand: {brand}. Category: {category}. {features}. {description}"


def _first_record(path: Path) -> dict[str, Any]:
    for _line, obj in iter_jsonl(path):
        return obj
    return {}


def load_amazon2023(folder: Path, policy: ReadPolicy, name: str | None = None) -> Dataset:
    """Amazon Reviews 2023: review files plus ``meta_*.jsonl``, or per-user history JSONL files.

    Per-user files hold ``{"user_id", "history": [{parent_asin, rating, timestamp_ms, product}],
    "heldout": {...}}``; the held-out review is the user's latest and is kept as an interaction.
    """
    metas = sorted(folder.glob("meta_*.jsonl"))
    jsonl = sorted(p for p in folder.glob("*.jsonl") if not p.name.startswith("meta_"))
    if not jsonl:
        raise FormatDetectionError(f"{folder}: no .jsonl review files for the amazon-reviews-2023 format")
    builder = DatasetBuilder(policy, fields=AMAZON_FIELDS, catalog_given=bool(metas))
    if metas:
        for meta in metas:
            for line, rec in iter_jsonl(meta, encoding=policy.encoding, on_bad=builder.bad_row):
                builder.add_item(
                    str(rec.get("parent_asin", "")),
                    {
                        "title": _join(rec.get("title")),
                        "brand": _join(rec.get("store")),
                        "category": " > ".join(rec.get("categories") or []) or _join(rec.get("main_category")),
                        "price": _join(rec.get("price")),
                        "features": _join(rec.get("features")),
                        "description": _join(rec.get("description")),
                    },
                    path=meta,
                    line=line,
                    field="parent_asin",
                )
    for path in jsonl:
        per_user = "history" in _first_record(path)
        for line, rec in iter_jsonl(path, encoding=policy.encoding, on_bad=builder.bad_row):
            reviews = (
                (rec.get("history") or []) + ([rec["heldout"]] if rec.get("heldout") else []) if per_user else [rec]
            )
            for review in reviews:
                _amazon_review(builder, rec.get("user_id", ""), review, path, line, has_meta=bool(metas))
    return builder.build(
        name or folder.name,
        template=AMAZON_TEMPLATE,
        category_field="category",
        category_sep=" > ",
        title_field="title",
        source=str(folder),
    )


def _amazon_review(
    builder: DatasetBuilder, user: str, review: dict[str, Any], path: Path, line: int, *, has_meta: bool
) -> None:
    asin = str(review.get("parent_asin") or review.get("asin") or "")
    stamp = review.get("timestamp_ms", review.get("timestamp"))
    try:
        if stamp is None:
            raise MalformedRowError(
                "review has no timestamp (timestamp_ms / timestamp)", path=path, line=line, field="timestamp"
            )
        t = parse_time(stamp, path=path, line=line, field="timestamp") / 1000.0  # milliseconds in this dataset
        r = (
            parse_rating(review["rating"], path=path, line=line, field="rating")
            if review.get("rating") is not None
            else None
        )
    except MalformedRowError as err:
        builder.bad_row(err)
        return
    product = review.get("product")
    if not has_meta and isinstance(product, dict) and asin and asin not in builder.items:
        builder.add_item(
            asin,
            {
                "title": _join(product.get("title")),
                "brand": _join(product.get("brand")),
                "category": _join(product.get("main_category")),
                "price": _join(product.get("price")),
            },
            path=path,
            line=line,
            field="product",
        )
    builder.add_interaction(
        str(user), asin, time=t, rating=r, path=path, line=line, user_field="user_id", item_field="parent_asin"
    )
