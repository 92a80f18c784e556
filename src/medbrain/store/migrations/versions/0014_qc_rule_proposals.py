"""QC: candidate rules mined from the QC officer's confirmed manual findings (issue 7)

Revision ID: 0014_qc_rule_proposals
Revises: 0012_qc_notice_verdict
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0014_qc_rule_proposals"
down_revision: str | None = "0012_qc_notice_verdict"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "qc_rule_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pattern_key", sa.String(length=300), nullable=False),
        sa.Column("note_kind", sa.String(length=32), nullable=False),
        sa.Column("section", sa.String(length=64), nullable=False),
        sa.Column("pattern", sa.String(length=24), nullable=False),
        sa.Column("element", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("condition", sa.Text(), nullable=False),
        sa.Column("support", sa.Integer(), nullable=False),
        sa.Column("fires", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("examples", JSON_DOC, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=True),
        sa.Column("rule_version", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("mined_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pattern_key", name="uq_qc_rule_proposal_pattern"),
    )
    op.create_index("ix_qc_rule_proposal_status", "qc_rule_proposal", ["status"])


def downgrade() -> None:
    op.drop_index("ix_qc_rule_proposal_status", table_name="qc_rule_proposal")
    op.drop_table("qc_rule_proposal")
