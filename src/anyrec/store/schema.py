"""The store's tables (SQLAlchemy Core). Alembic's migrations create them; this module queries them.

Raw ids only: the store is the edge between the outside world and the models, so items and
users are kept under the ids the application uses. Times are UNIX seconds (float).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

items = Table(
    "items", metadata,
    Column("id", String(255), primary_key=True),
    Column("fields", Text, nullable=False),        # JSON object: field name -> text
    Column("category", String(1024), nullable=True),
    Column("available", Boolean, nullable=False, default=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("updated_at", Float, nullable=False),
)

users = Table(
    "users", metadata,
    Column("id", String(255), primary_key=True),
    Column("since", Float, nullable=False),        # first time the store knew this user
)

events = Table(
    "events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("item_id", String(255), nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("value", Float, nullable=True),
    Column("time", Float, nullable=False),
    Column("recommendation_id", String(64), nullable=True, index=True),
    Column("received_at", Float, nullable=False),
    # A seq is never handed out twice, even after the newest events are deleted (forgetting a user):
    # SQLite reuses the largest rowid without AUTOINCREMENT; PostgreSQL's sequence never goes back.
    sqlite_autoincrement=True,
)

recommendations = Table(
    "recommendations", metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("model_version", String(128), nullable=False),
    Column("variant", String(128), nullable=True),
    Column("items", Text, nullable=False),         # JSON list of raw item ids, in shown order
    Column("created_at", Float, nullable=False),
    Column("experiment", String(128), nullable=True, index=True),
)

experiments = Table(
    "experiments", metadata,
    Column("name", String(128), primary_key=True),
    Column("variants", Text, nullable=False),      # JSON list of {name, model_version, share}
    Column("status", String(16), nullable=False),  # running | ended
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("winner", String(128), nullable=True),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),   # sha256 hex of the key
    Column("created_at", Float, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("role", String(16), nullable=False, default="admin"),  # read | write | admin (see anyrec.store.ROLES)
)

model_versions = Table(
    "model_versions", metadata,
    Column("version", String(128), primary_key=True),
    Column("path", Text, nullable=False),
    Column("model", String(64), nullable=False),
    Column("metrics", Text, nullable=False),       # JSON object: validation metrics
    Column("created_at", Float, nullable=False),
    Column("data_until", Float, nullable=False),   # store time up to which its training data reached
)

idempotency = Table(
    "idempotency", metadata,
    Column("key", String(320), primary_key=True),  # route + ":" + the client's Idempotency-Key
    Column("request_hash", String(64), nullable=False),  # sha256 of the request body as validated
    Column("response", Text, nullable=False),  # JSON: what the first request answered
    Column("created_at", Float, nullable=False, index=True),
)

forgotten = Table(
    "forgotten", metadata,
    Column("user_hash", String(64), primary_key=True),  # sha256 of a forgotten user's id (not the id itself)
    Column("at", Float, nullable=False),
)

settings = Table(
    "settings", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
