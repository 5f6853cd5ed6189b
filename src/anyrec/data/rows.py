"""Row-level reading of CSV / TSV / JSONL / Parquet with line numbers in every error."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from anyrec.errors import EmptyFileError, EncodingError, MalformedRowError

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

TABLE_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def table_kind(path: Path) -> str:
    """The table kind of ``path`` from its suffix (``.gz`` is not supported: decompress first)."""
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise MalformedRowError(
            f"unknown table suffix {path.suffix!r}; expected one of {', '.join(sorted(TABLE_SUFFIXES))}",
            path=path,
        )
    return kind


def decoded_lines(path: Path, encoding: str) -> Iterator[str]:
    """Lines of ``path`` decoded one by one, so a bad byte is reported with its line number."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.end]
                raise EncodingError(
                    f"byte {bad!r} at column {exc.start + 1} is not valid {encoding}; "
                    "pass the file's encoding (for example --encoding latin-1; MovieLens 100K files are Latin-1)",
                    path=path,
                    line=lineno,
                ) from None


def check_not_empty(path: Path) -> None:
    """Raise :class:`EmptyFileError` when ``path`` has no bytes (or is missing)."""
    if not path.exists():
        raise EmptyFileError("file does not exist", path=path)
    if path.stat().st_size == 0:
        raise EmptyFileError("file is empty; expected a header and at least one row", path=path)


def iter_delimited(
    path: Path,
    *,
    sep: str,
    encoding: str = "utf-8",
    header: bool = True,
    names: list[str] | None = None,
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL,
) -> Iterator[tuple[int, list[str], list[str]]]:
    """Yield ``(line, header, values)`` for each data row of a delimited file.

    Rows whose field count differs from the header raise :class:`MalformedRowError`
    (the caller decides whether to skip them). Blank lines are ignored.
    """
    check_not_empty(path)
    raw: list[str] = []  # the lines of the record being read, to check a record that spans lines

    def lines() -> Iterator[str]:
        for line in decoded_lines(path, encoding):
            raw.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=sep, quoting=quoting)
    cols: list[str] | None = names
    end = 0
    if header:
        try:
            first = next(reader)
        except StopIteration:
            raise EmptyFileError("file has no header line", path=path) from None
        first = [c.lstrip("\ufeff").strip() for c in first]
        cols = first if names is None else names
        end = reader.line_num
        raw.clear()
    seen_row = False
    for values in reader:
        start, end = end + 1, reader.line_num
        record, raw[:] = list(raw), []
        if end > start and quoting != csv.QUOTE_NONE:
            _check_quotes_close(record, sep, path, start)
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        seen_row = True
        if cols is None:
            cols = [str(i) for i in range(len(values))]
        yield reader.line_num, cols, values
    if not seen_row:
        raise EmptyFileError("file has a header but no data rows", path=path)


def _check_quotes_close(record: list[str], sep: str, path: Path, start: int) -> None:
    """A record that spans lines is fine when a quoted field holds line breaks, but a quote that is
    never closed swallows the rest of the file into one field: name the line where it opens."""
    try:
        for _ in csv.reader(record, delimiter=sep, strict=True):
            pass
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise MalformedRowError(
                f"a quoted field opens here and is never closed: the rest of the file ({len(record)} lines) would be "
                "read as one field; close the quote or remove it",
                path=path,
                line=start,
            ) from None


OnBad = Callable[[MalformedRowError], None] | None
"""What to do with a malformed row: ``None`` raises it, a callable records it and reading goes on."""


def _bad(err: MalformedRowError, on_bad: OnBad) -> None:
    if on_bad is None:
        raise err
    on_bad(err)


def iter_jsonl(path: Path, *, encoding: str = "utf-8", on_bad: OnBad = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, object)`` for each non-blank line of a JSON-lines file."""
    check_not_empty(path)
    seen = False
    for lineno, line in enumerate(decoded_lines(path, encoding), start=1):
        if not line.strip():
            continue
        seen = True
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            _bad(MalformedRowError(f"not valid JSON ({exc.msg} at column {exc.colno})", path=path, line=lineno), on_bad)
            continue
        if not isinstance(obj, dict):
            _bad(MalformedRowError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=lineno), on_bad)
            continue
        yield lineno, obj
    if not seen:
        raise EmptyFileError("file has no JSON rows", path=path)


def lookup(obj: dict[str, Any], key: str) -> Any:
    """``obj[key]``, following dots into nested objects (``product.title``); ``KeyError`` if absent."""
    if key in obj:
        return obj[key]
    cur: Any = obj
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(key)
        cur = cur[part]
    return cur


def iter_table(
    path: Path, *, encoding: str = "utf-8", sep: str | None = None, on_bad: OnBad = None
) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
    """Yield ``(line_or_row, record, columns)`` for any supported table file.

    For Parquet the number is the 1-based row; for text files it is the line.
    A delimited row with the wrong field count, or a line that is not JSON, goes to
    ``on_bad`` (raised when it is ``None``).
    """
    kind = table_kind(path)
    if kind in ("csv", "tsv"):
        delim = sep or ("\t" if kind == "tsv" else ",")
        for line, cols, values in iter_delimited(path, sep=delim, encoding=encoding):
            if len(values) != len(cols):
                _bad(
                    MalformedRowError(
                        f"expected {len(cols)} fields (as in the header) but found {len(values)}", path=path, line=line
                    ),
                    on_bad,
                )
                continue
            yield line, dict(zip(cols, values)), cols
    elif kind == "jsonl":
        for line, obj in iter_jsonl(path, encoding=encoding, on_bad=on_bad):
            yield line, obj, list(obj)
    else:
        import pyarrow.parquet as pq

        check_not_empty(path)
        table = pq.read_table(path)
        if table.num_rows == 0:
            raise EmptyFileError("parquet file has no rows", path=path)
        cols = table.column_names
        for row, rec in enumerate(table.to_pylist(), start=1):
            yield row, rec, cols
