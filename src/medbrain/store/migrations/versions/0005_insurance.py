"""insurance review workflow: cases and flags

Revision ID: 0005_insurance
Revises: 0001
Create Date: 2026-11-23 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0005_insurance"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "insurance_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("doctor", sa.String(length=64), nullable=True),
        sa.Column("admit_date", sa.Date(), nullable=True),
        sa.Column("discharge_date", sa.Date(), nullable=True),
        sa.Column("drg", sa.String(length=8), nullable=False),
        sa.Column("drg_name", sa.String(length=128), nullable=False),
        sa.Column("mdc", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("total_cost", sa.Float(), nullable=False),
        sa.Column("rule_risk", sa.Float(), nullable=False),
        sa.Column("anomaly", sa.Float(), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("review_status", sa.String(length=16), nullable=False),
        sa.Column("frontpage", JSON_DOC, nullable=False),
        sa.Column("drg_result", JSON_DOC, nullable=False),
        sa.Column("demo", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_case")),
        sa.UniqueConstraint("case_id", name=op.f("uq_insurance_case_case_id")),
    )
    with op.batch_alter_table("insurance_case", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_insurance_case_department"), ["department"], unique=False
        )
        batch_op.create_index("ix_insurance_case_risk", ["review_status", "risk"], unique=False)
    op.create_table(
        "insurance_flag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("evidence", JSON_DOC, nullable=False),
        sa.Column("amount_yuan", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_role", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["insurance_case.id"],
            name=op.f("fk_insurance_flag_case_pk_insurance_case"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_flag")),
    )
    with op.batch_alter_table("insurance_flag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insurance_flag_case_pk"), ["case_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("insurance_flag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insurance_flag_case_pk"))
    op.drop_table("insurance_flag")
    with op.batch_alter_table("insurance_case", schema=None) as batch_op:
        batch_op.drop_index("ix_insurance_case_risk")
        batch_op.drop_index(batch_op.f("ix_insurance_case_department"))
    op.drop_table("insurance_case")
