"""Event seq numbers are never reused: SQLite's events table is rebuilt with AUTOINCREMENT.

Without it SQLite hands the largest rowid out again once the newest rows are deleted (forgetting a
user), so anything that reads ``seq`` as a cursor could miss events. PostgreSQL's serial sequence
never goes back; nothing changes there. The rebuild copies every row with its seq, and SQLite's
counter starts from the largest one.

Revision ID: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("events", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("events", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
