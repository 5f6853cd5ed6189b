"""A/B experiments, and which experiment a shown list belonged to.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("variants", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("winner", sa.String(128), nullable=True),
    )
    with op.batch_alter_table("recommendations") as batch:
        batch.add_column(sa.Column("experiment", sa.String(128), nullable=True))
        batch.create_index("ix_recommendations_experiment", ["experiment"])


def downgrade() -> None:
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_index("ix_recommendations_experiment")
        batch.drop_column("experiment")
    op.drop_table("experiments")
