"""QC workflow: defect/deadline notices, check runs, hospital-defined rules (issue 7)

Revision ID: 0007_qc_workflow
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0007_qc_workflow"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "qc_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("suggestion", sa.Text(), nullable=False),
        sa.Column("evidence", JSON_DOC, nullable=False),
        sa.Column("document", sa.String(length=32), nullable=True),
        sa.Column("quote", sa.Text(), nullable=True),
        sa.Column("deduction", sa.Float(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("responsible", sa.String(length=128), nullable=True),
        sa.Column("responsible_user", sa.String(length=64), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_status", sa.String(length=16), nullable=True),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("fixed_at", sa.DateTime(), nullable=True),
        sa.Column("justified_at", sa.DateTime(), nullable=True),
        sa.Column("justified_by", sa.String(length=64), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounter.id"], name=op.f("fk_qc_notice_encounter_id_encounter")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_qc_notice_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_notice")),
        sa.UniqueConstraint(
            "encounter_id", "fingerprint", name="uq_qc_notice_encounter_fingerprint"
        ),
    )
    with op.batch_alter_table("qc_notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qc_notice_encounter_id"), ["encounter_id"])
        batch_op.create_index(batch_op.f("ix_qc_notice_patient_id"), ["patient_id"])
        batch_op.create_index(batch_op.f("ix_qc_notice_rule_id"), ["rule_id"])
        batch_op.create_index("ix_qc_notice_status_user", ["status", "responsible_user"])

    op.create_table(
        "qc_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(length=8), nullable=False),
        sa.Column("veto", sa.Boolean(), nullable=False),
        sa.Column("defects", sa.Integer(), nullable=False),
        sa.Column("by_rule", JSON_DOC, nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("doctor", sa.String(length=128), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("rules_version", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounter.id"], name=op.f("fk_qc_run_encounter_id_encounter")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_qc_run_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_run")),
    )
    with op.batch_alter_table("qc_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qc_run_checked_at"), ["checked_at"])
        batch_op.create_index("ix_qc_run_encounter_checked", ["encounter_id", "checked_at"])

    op.create_table(
        "qc_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("row", JSON_DOC, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tested_version", sa.Integer(), nullable=True),
        sa.Column("tested_at", sa.DateTime(), nullable=True),
        sa.Column("test_summary", JSON_DOC, nullable=True),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_rule")),
        sa.UniqueConstraint("rule_id", name=op.f("uq_qc_rule_rule_id")),
    )


def downgrade() -> None:
    op.drop_table("qc_rule")
    with op.batch_alter_table("qc_run", schema=None) as batch_op:
        batch_op.drop_index("ix_qc_run_encounter_checked")
        batch_op.drop_index(batch_op.f("ix_qc_run_checked_at"))
    op.drop_table("qc_run")
    with op.batch_alter_table("qc_notice", schema=None) as batch_op:
        batch_op.drop_index("ix_qc_notice_status_user")
        batch_op.drop_index(batch_op.f("ix_qc_notice_rule_id"))
        batch_op.drop_index(batch_op.f("ix_qc_notice_patient_id"))
        batch_op.drop_index(batch_op.f("ix_qc_notice_encounter_id"))
    op.drop_table("qc_notice")
