"""Ready loaders for common public formats: RecBole atomic files, MovieLens, UniSRec.

MIND and Amazon Reviews 2023 live in :mod:`anyrec.data.formats_json`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from anyrec.data.builder import DatasetBuilder, ReadPolicy, parse_rating, parse_time
from anyrec.data.dataset import Dataset
from anyrec.data.rows import check_not_empty, iter_delimited
from anyrec.errors import FormatDetectionError, MalformedRowError, MissingColumnError

ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]
MOVIE_TEMPLATE = "{title}. Genres: {genres}. {description}. Tags: {tags}"


# ---------------------------------------------------------------- RecBole atomic
def _atomic_rows(path: Path, encoding: str, builder: DatasetBuilder):
    """Yield ``(line, {name: value})`` of a RecBole atomic file (``name:type`` headers)."""
    for line, cols, values in iter_delimited(path, sep="\t", encoding=encoding, quoting=3):
        names = [c.split(":", 1)[0] for c in cols]
        if len(values) != len(cols):
            builder.bad_row(
                MalformedRowError(
                    f"expected {len(cols)} tab-separated fields but found {len(values)}", path=path, line=line
                )
            )
            continue
        yield line, dict(zip(names, values)), names


def _pick(names: list[str], choices: tuple[str, ...]) -> str | None:
    return next((c for c in choices if c in names), None)


def load_recbole(folder: Path, policy: ReadPolicy, name: str | None = None) -> Dataset:
    """RecBole atomic files ``<name>.inter`` (+ optional ``<name>.item``)."""
    inters = sorted(p for p in folder.glob("*.inter") if p.name.count(".") == 1)
    if not inters:
        raise FormatDetectionError(f"{folder}: no <name>.inter file for the recbole format")
    inter = next((p for p in inters if p.stem == name), inters[0])
    stem = inter.stem
    item_file = folder / f"{stem}.item"
    fields: list[str] = []
    if item_file.exists():
        with open(item_file, encoding=policy.encoding) as fh:
            fields = [c.split(":", 1)[0].lstrip("\ufeff") for c in fh.readline().rstrip("\n").split("\t")]
        fields = [f for f in fields if f != "item_id"]
    builder = DatasetBuilder(policy, fields=fields, catalog_given=item_file.exists())
    if item_file.exists():
        for line, rec, names in _atomic_rows(item_file, policy.encoding, builder):
            if "item_id" not in rec:
                raise MissingColumnError.build("item_id", names, path=item_file, role="item id")
            builder.add_item(rec["item_id"], rec, path=item_file, line=line, field="item_id")
    for line, rec, names in _atomic_rows(inter, policy.encoding, builder):
        for col in ("user_id", "item_id"):
            if col not in rec:
                raise MissingColumnError.build(col, names, path=inter, role=col.replace("_", " "))
        try:
            t = parse_time(rec["timestamp"], path=inter, line=line, field="timestamp") if "timestamp" in rec else None
            r = parse_rating(rec["rating"], path=inter, line=line, field="rating") if "rating" in rec else None
        except MalformedRowError as err:
            builder.bad_row(err)
            continue
        builder.add_interaction(
            rec["user_id"],
            rec["item_id"],
            time=t,
            rating=r,
            path=inter,
            line=line,
            user_field="user_id",
            item_field="item_id",
        )
    title = _pick(fields, ("movie_title", "title", "name"))
    year = _pick(fields, ("release_year", "year"))
    genres = _pick(fields, ("class", "genres", "genre", "categories", "category"))
    rest = [f for f in fields if f not in (title, year, genres)]
    head = "{" + title + "}" + (" ({" + year + "})" if year else "") if title else ""
    parts = [head] if head else []
    if genres:
        parts.append("Genres: {" + genres + "}")
    parts += ["{" + f + "}" for f in rest]
    return builder.build(
        name or stem,
        template=". ".join(parts),
        category_field=genres,
        category_sep=" ",
        title_field=title,
        source=str(inter),
    )


# ---------------------------------------------------------------- MovieLens
def _ml_item_fields() -> list[str]:
    return ["title", "genres", "description", "tags"]


def _wiki_summaries(folder: Path, policy: ReadPolicy) -> dict[str, str]:
    wiki = folder / "movie_wiki.csv"
    if not wiki.exists():
        return {}
    out: dict[str, str] = {}
    for _line, _cols, values in iter_delimited(wiki, sep=",", encoding="utf-8"):
        if len(values) >= 2:
            out[values[0].strip()] = values[1]
    return out


def load_movielens(folder: Path, policy: ReadPolicy, name: str | None = None) -> Dataset:
    """MovieLens 100K (``u.data``/``u.item``), 1M (``*.dat``) or latest / 25M (``*.csv``)."""
    builder = DatasetBuilder(policy, fields=_ml_item_fields())
    if (folder / "u.data").exists():
        _movielens_100k(folder, builder, policy)
    elif (folder / "ratings.dat").exists():
        _movielens_1m(folder, builder)
    elif (folder / "ratings.csv").exists():
        _movielens_csv(folder, builder, policy)
    else:
        raise FormatDetectionError(f"{folder}: no u.data, ratings.dat or ratings.csv for the movielens format")
    return builder.build(
        name or folder.name,
        template=MOVIE_TEMPLATE,
        category_field="genres",
        category_sep=", ",
        title_field="title",
        source=str(folder),
    )


def _movielens_100k(folder: Path, builder: DatasetBuilder, policy: ReadPolicy) -> None:
    item_path, data_path = folder / "u.item", folder / "u.data"
    genres = list(ML100K_GENRES)
    if (folder / "u.genre").exists():
        names = [
            ln.split("|")[0] for ln in (folder / "u.genre").read_text(encoding="latin-1").splitlines() if "|" in ln
        ]
        genres = names or genres
    wiki = _wiki_summaries(folder, policy)
    # u.item is Latin-1 by definition of the format (see the MovieLens README).
    for line, _cols, v in iter_delimited(item_path, sep="|", encoding="latin-1", header=False, quoting=3):
        if len(v) != 5 + len(genres):
            builder.bad_row(
                MalformedRowError(
                    f"expected {5 + len(genres)} '|'-separated fields, found {len(v)}", path=item_path, line=line
                )
            )
            continue
        flags = v[5:]
        bad = [f for f in flags if f not in ("0", "1")]
        if bad:
            builder.bad_row(
                MalformedRowError(
                    f"genre flags must be 0 or 1, found {bad[0]!r}", path=item_path, line=line, field="genres"
                )
            )
            continue
        g = ", ".join(genres[i] for i, f in enumerate(flags) if f == "1" and genres[i] != "unknown")
        builder.add_item(
            v[0],
            {"title": v[1], "genres": g, "description": wiki.get(v[1].strip(), "")},
            path=item_path,
            line=line,
            field="movie id",
        )
    for line, _cols, v in iter_delimited(data_path, sep="\t", encoding="latin-1", header=False, quoting=3):
        if len(v) != 4:
            builder.bad_row(
                MalformedRowError(
                    f"expected 4 tab-separated fields (user item rating timestamp), found {len(v)}",
                    path=data_path,
                    line=line,
                )
            )
            continue
        try:
            r = parse_rating(v[2], path=data_path, line=line, field="rating")
            t = parse_time(v[3], path=data_path, line=line, field="timestamp")
        except MalformedRowError as err:
            builder.bad_row(err)
            continue
        builder.add_interaction(
            v[0], v[1], time=t, rating=r, path=data_path, line=line, user_field="user id", item_field="item id"
        )


def _split_dat(path: Path, n: int, builder: DatasetBuilder):
    for line, _c, v in iter_delimited(path, sep="\x1f", encoding="latin-1", header=False, quoting=3):
        parts = "\x1f".join(v).split("::")
        if len(parts) != n:
            builder.bad_row(
                MalformedRowError(f"expected {n} '::'-separated fields, found {len(parts)}", path=path, line=line)
            )
            continue
        yield line, parts


def _movielens_1m(folder: Path, builder: DatasetBuilder) -> None:
    movies, ratings = folder / "movies.dat", folder / "ratings.dat"
    for line, (mid, title, genres) in _split_dat(movies, 3, builder):
        builder.add_item(
            mid, {"title": title, "genres": genres.replace("|", ", ")}, path=movies, line=line, field="MovieID"
        )
    for line, (u, i, r, t) in _split_dat(ratings, 4, builder):
        try:
            rr = parse_rating(r, path=ratings, line=line, field="Rating")
            tt = parse_time(t, path=ratings, line=line, field="Timestamp")
        except MalformedRowError as err:
            builder.bad_row(err)
            continue
        builder.add_interaction(
            u, i, time=tt, rating=rr, path=ratings, line=line, user_field="UserID", item_field="MovieID"
        )


def _csv_records(path: Path, required: tuple[str, ...], builder: DatasetBuilder, encoding: str):
    for line, cols, v in iter_delimited(path, sep=",", encoding=encoding):
        missing = [c for c in required if c not in cols]
        if missing:
            raise MissingColumnError.build(missing[0], cols, path=path, role=missing[0])
        if len(v) != len(cols):
            builder.bad_row(MalformedRowError(f"expected {len(cols)} fields, found {len(v)}", path=path, line=line))
            continue
        yield line, dict(zip(cols, v))


def _movielens_csv(folder: Path, builder: DatasetBuilder, policy: ReadPolicy) -> None:
    movies, ratings, tags = folder / "movies.csv", folder / "ratings.csv", folder / "tags.csv"
    tag_counts: dict[str, Counter[str]] = defaultdict(Counter)
    n_tags = 0
    if tags.exists():
        for _line, rec in _csv_records(tags, ("movieId", "tag"), builder, policy.encoding):
            tag_counts[rec["movieId"]][rec["tag"].strip().lower()] += 1
            n_tags += 1
    for line, rec in _csv_records(movies, ("movieId", "title", "genres"), builder, policy.encoding):
        g = "" if rec["genres"] == "(no genres listed)" else rec["genres"].replace("|", ", ")
        top = ", ".join(t for t, _ in tag_counts.get(rec["movieId"], Counter()).most_common(20))
        builder.add_item(
            rec["movieId"], {"title": rec["title"], "genres": g, "tags": top}, path=movies, line=line, field="movieId"
        )
    if n_tags:
        builder.report.notes.append(f"{n_tags:,} user tags folded into item text (top 20 per movie)")
    for line, rec in _csv_records(ratings, ("userId", "movieId", "rating", "timestamp"), builder, policy.encoding):
        try:
            r = parse_rating(rec["rating"], path=ratings, line=line, field="rating")
            t = parse_time(rec["timestamp"], path=ratings, line=line, field="timestamp")
        except MalformedRowError as err:
            builder.bad_row(err)
            continue
        builder.add_interaction(
            rec["userId"],
            rec["movieId"],
            time=t,
            rating=r,
            path=ratings,
            line=line,
            user_field="userId",
            item_field="movieId",
        )


# ---------------------------------------------------------------- UniSRec
def _two_col_map(path: Path, encoding: str) -> dict[str, str]:
    """``index → raw`` from a ``raw<TAB>index`` file."""
    out: dict[str, str] = {}
    for line, _c, v in iter_delimited(path, sep="\t", encoding=encoding, header=False, quoting=3):
        if len(v) != 2:
            raise MalformedRowError(f"expected 'raw_id<TAB>index', found {len(v)} fields", path=path, line=line)
        out[v[1].strip()] = v[0].strip()
    return out


def load_unisrec(folder: Path, policy: ReadPolicy, name: str | None = None) -> Dataset:
    """UniSRec-style sequences: ``<n>.text`` + ``<n>.train/.valid/.test.inter`` (+ ``item2index``)."""
    texts = sorted(folder.glob("*.text"))
    if not texts:
        raise FormatDetectionError(f"{folder}: no <name>.text file for the unisrec format")
    stem = next((t.stem for t in texts if t.stem == name), texts[0].stem)
    text_path = folder / f"{stem}.text"
    items_by_index = (
        _two_col_map(folder / f"{stem}.item2index", policy.encoding) if (folder / f"{stem}.item2index").exists() else {}
    )
    users_by_index = (
        _two_col_map(folder / f"{stem}.user2index", policy.encoding) if (folder / f"{stem}.user2index").exists() else {}
    )
    builder = DatasetBuilder(policy, fields=["text"])
    for line, rec, names in _atomic_rows(text_path, policy.encoding, builder):
        if "item_id" not in rec or "text" not in rec:
            raise MissingColumnError.build(
                "item_id" if "item_id" not in rec else "text", names, path=text_path, role="item text"
            )
        builder.add_item(rec["item_id"], {"text": rec["text"]}, path=text_path, line=line, field="item_id")
    # The longest sequence per user: test rows hold the whole history, valid and train rows prefixes.
    seqs: dict[str, tuple[list[str], Path, int]] = {}
    for part in ("train", "valid", "test"):
        path = folder / f"{stem}.{part}.inter"
        if not path.exists():
            continue
        for line, rec, names in _atomic_rows(path, policy.encoding, builder):
            if not {"user_id", "item_id_list", "item_id"} <= set(rec):
                missing = sorted({"user_id", "item_id_list", "item_id"} - set(rec))[0]
                raise MissingColumnError.build(missing, names, path=path, role="sequence column")
            seq = rec["item_id_list"].split() + [rec["item_id"]]
            if len(seq) > len(seqs.get(rec["user_id"], ([], path, 0))[0]):
                seqs[rec["user_id"]] = (seq, path, line)
    for user, (seq, path, line) in seqs.items():
        raw_user = users_by_index.get(user, user)
        for pos, idx in enumerate(seq):
            raw_item = items_by_index.get(idx, idx) if items_by_index else idx
            builder.add_interaction(
                raw_user, raw_item, time=float(pos), path=path, line=line, item_field="item_id_list"
            )
    builder.report.notes.append("no timestamps in this format: time is the position in each user's sequence")
    return builder.build(name or stem, template="{text}", title_field="text", source=str(text_path))


def exists_all(folder: Path, *names: str) -> bool:
    return all((folder / n).exists() for n in names)


__all__ = ["check_not_empty", "exists_all", "load_movielens", "load_recbole", "load_unisrec"]
