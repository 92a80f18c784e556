"""institution live load for where-to-go recommendations (issue 9)

Revision ID: 0010_institution_load
Revises: 0001
Create Date: 2026-11-23 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_institution_load"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "institution_load",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("queue_length", sa.Integer(), nullable=False),
        sa.Column("free_beds", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_institution_load")),
    )


def downgrade() -> None:
    op.drop_table("institution_load")
