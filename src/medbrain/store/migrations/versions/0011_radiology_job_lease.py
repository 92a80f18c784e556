"""radiology job lease: the worker that holds a running job and until when (issue 5)

Revision ID: 0011_radiology_job_lease
Revises: 0003_radiology_review
Create Date: 2026-11-23 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_radiology_job_lease"
down_revision: str | None = "0003_radiology_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("radiology_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("radiology_job", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("worker_id")
