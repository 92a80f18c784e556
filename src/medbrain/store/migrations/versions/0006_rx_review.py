"""rx review: pharmacist review loop, finding outcomes, hospital rule configuration (issue 6)

Revision ID: 0006_rx_review
Revises: 0001
Create Date: 2026-11-23 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0006_rx_review"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rx_review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("prescriber", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=True),
        sa.Column("findings", JSON_DOC, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("items_hash", sa.String(length=64), nullable=False),
        sa.Column("knowledge_key", sa.String(length=64), nullable=False),
        sa.Column("return_reason", sa.Text(), nullable=True),
        sa.Column("prescriber_note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounter.id"], name=op.f("fk_rx_review_encounter_id_encounter")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_rx_review_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rx_review")),
        sa.UniqueConstraint("encounter_id", name=op.f("uq_rx_review_encounter_id")),
    )
    with op.batch_alter_table("rx_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rx_review_patient_id"), ["patient_id"])
        batch_op.create_index(batch_op.f("ix_rx_review_status"), ["status"])

    op.create_table(
        "rx_review_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"], ["rx_review.id"], name=op.f("fk_rx_review_event_review_id_rx_review")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rx_review_event")),
    )
    with op.batch_alter_table("rx_review_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rx_review_event_review_id"), ["review_id"])

    op.create_table(
        "rx_finding_outcome",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("finding_key", sa.String(length=192), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_role", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["rx_review.id"],
            name=op.f("fk_rx_finding_outcome_review_id_rx_review"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rx_finding_outcome")),
        sa.UniqueConstraint(
            "review_id", "finding_key", name=op.f("uq_rx_finding_outcome_review_id")
        ),
    )
    with op.batch_alter_table("rx_finding_outcome", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rx_finding_outcome_review_id"), ["review_id"])
        batch_op.create_index(batch_op.f("ix_rx_finding_outcome_rule_id"), ["rule_id"])

    op.create_table(
        "rx_rule_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document", JSON_DOC, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rx_rule_config")),
    )


def downgrade() -> None:
    op.drop_table("rx_rule_config")
    with op.batch_alter_table("rx_finding_outcome", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rx_finding_outcome_rule_id"))
        batch_op.drop_index(batch_op.f("ix_rx_finding_outcome_review_id"))
    op.drop_table("rx_finding_outcome")
    with op.batch_alter_table("rx_review_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rx_review_event_review_id"))
    op.drop_table("rx_review_event")
    with op.batch_alter_table("rx_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rx_review_status"))
        batch_op.drop_index(batch_op.f("ix_rx_review_patient_id"))
    op.drop_table("rx_review")
