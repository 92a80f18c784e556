"""triage pathway: ED board visits, pathway step times, pre-consultations (issue 9)

Revision ID: 0008_triage_pathway
Revises: 0001
Create Date: 2026-11-23 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Timestamps are stored as naive UTC; JSON documents are JSONB on PostgreSQL.
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0008_triage_pathway"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ed_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("door_at", sa.DateTime(), nullable=False),
        sa.Column("complaint", sa.Text(), nullable=False),
        sa.Column("visit", JSON_DOC, nullable=False),
        sa.Column("suggested_level", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=16), nullable=False),
        sa.Column("max_wait_minutes", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=16), nullable=False),
        sa.Column("pathway", sa.String(length=32), nullable=True),
        sa.Column("red_flags", JSON_DOC, nullable=False),
        sa.Column("news2", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("disposition", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_ed_visit_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ed_visit")),
    )
    with op.batch_alter_table("ed_visit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ed_visit_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ed_visit_door_at"), ["door_at"], unique=False)
        batch_op.create_index("ix_ed_visit_status_level", ["status", "level"], unique=False)

    op.create_table(
        "ed_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["ed_visit.id"],
            name=op.f("fk_ed_event_visit_id_ed_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ed_event")),
        sa.UniqueConstraint("visit_id", "step", "seq", name="uq_ed_event_visit_id"),
    )
    with op.batch_alter_table("ed_event", schema=None) as batch_op:
        batch_op.create_index("ix_ed_event_visit_id", ["visit_id"], unique=False)

    op.create_table(
        "pre_consultation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("answers", JSON_DOC, nullable=False),
        sa.Column("result", JSON_DOC, nullable=False),
        sa.Column("care", sa.String(length=16), nullable=False),
        sa.Column("department_code", sa.String(length=16), nullable=False),
        sa.Column("go_to_ed", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_pre_consultation_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pre_consultation")),
    )
    with op.batch_alter_table("pre_consultation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pre_consultation_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pre_consultation_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pre_consultation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pre_consultation_created_at"))
        batch_op.drop_index(batch_op.f("ix_pre_consultation_patient_id"))
    op.drop_table("pre_consultation")
    with op.batch_alter_table("ed_event", schema=None) as batch_op:
        batch_op.drop_index("ix_ed_event_visit_id")
    op.drop_table("ed_event")
    with op.batch_alter_table("ed_visit", schema=None) as batch_op:
        batch_op.drop_index("ix_ed_visit_status_level")
        batch_op.drop_index(batch_op.f("ix_ed_visit_door_at"))
        batch_op.drop_index(batch_op.f("ix_ed_visit_patient_id"))
    op.drop_table("ed_visit")
