"""Tombstones of forgotten users (a hash of the id and when), kept a day: a list shown just before a user was
forgotten and logged after it is not written back.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forgotten", sa.Column("user_hash", sa.String(64), primary_key=True), sa.Column("at", sa.Float, nullable=False)
    )


def downgrade() -> None:
    op.drop_table("forgotten")
