"""Statements the store builds the same way on every backend: inserts that skip existing keys, bounded chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from sqlalchemy import Integer, cast, func, insert, select

CHUNK = 5_000  # rows per statement (SQLite's limit on bound parameters is reached otherwise)


def chunks(rows: Iterable[Any]) -> Iterator[list[Any]]:
    """``rows`` in lists of at most :data:`CHUNK`."""
    buf: list[Any] = []
    for r in rows:
        buf.append(r)
        if len(buf) >= CHUNK:
            yield buf
            buf = []
    if buf:
        yield buf


def bucket_counts(conn: Any, column: Any, lo: float, width: float, buckets: int, *where: Any) -> np.ndarray:
    """How many rows fall in each of ``buckets`` time buckets of ``width`` from ``lo`` (a row at time ``t`` in the
    first bucket whose upper edge is ``≥ t``), by one grouped query on either backend."""
    index = func.ceil((column - lo) / width) if conn.dialect.name != "sqlite" else \
        cast((column - lo) / width + 0.999999999, Integer)  # SQLite: CAST truncates, and ceil() may be missing
    out = np.zeros(buckets, dtype=np.int64)
    for b, n in conn.execute(select(index, func.count()).where(*where).group_by(index)):
        out[min(max(int(b or 0) - 1, 0), buckets - 1)] += int(n)
    return out


def insert_or_ignore(conn: Any, table: Any) -> Any:
    """An insert that skips rows whose key is already there, atomically, on the connection's backend."""
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    return insert(table).prefix_with("IGNORE")  # MySQL / MariaDB


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Set on every SQLite connection the store opens."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")   # readers never block the writer
    cur.execute("PRAGMA synchronous=FULL")   # a commit is on disk before the request is answered
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
