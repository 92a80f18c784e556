"""QC notices: the QC officer's verdict (confirmed / rejected as a false positive) (issue 7)

Revision ID: 0012_qc_notice_verdict
Revises: 0007_qc_workflow
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_qc_notice_verdict"
down_revision: str | None = "0007_qc_workflow"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("qc_notice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verdict", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("verdict_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("verdict_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("verdict_reason", sa.Text(), nullable=True))
        batch_op.create_index("ix_qc_notice_verdict_rule", ["verdict", "rule_id"])


def downgrade() -> None:
    with op.batch_alter_table("qc_notice", schema=None) as batch_op:
        batch_op.drop_index("ix_qc_notice_verdict_rule")
        batch_op.drop_column("verdict_reason")
        batch_op.drop_column("verdict_at")
        batch_op.drop_column("verdict_by")
        batch_op.drop_column("verdict")
