"""Statements the store builds the same way on every backend: inserts that skip existing keys, bounded chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import insert

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
