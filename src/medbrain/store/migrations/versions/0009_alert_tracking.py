"""alert tracking: critical-value delivery, acknowledgement, escalation, handling (issue 10)

Revision ID: 0009_alert_tracking
Revises: 0001
Create Date: 2026-11-23 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0009_alert_tracking"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tracked_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("suggestion", sa.Text(), nullable=False),
        sa.Column("evidence", JSON_DOC, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("observed_at", sa.DateTime(), nullable=True),
        sa.Column("origin", sa.String(length=128), nullable=False),
        sa.Column("recipients", JSON_DOC, nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledge_due_at", sa.DateTime(), nullable=False),
        sa.Column("handle_due_at", sa.DateTime(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("notified", JSON_DOC, nullable=False),
        sa.Column("escalated_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("acknowledged_role", sa.String(length=32), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("handled_by", sa.String(length=64), nullable=True),
        sa.Column("handled_role", sa.String(length=32), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_tracked_alert_patient_id_patient")
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounter.id"], name=op.f("fk_tracked_alert_encounter_id_encounter")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_alert")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_tracked_alert_dedup_key")),
    )
    with op.batch_alter_table("tracked_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracked_alert_patient_id"), ["patient_id"])
        batch_op.create_index(batch_op.f("ix_tracked_alert_department"), ["department"])
        batch_op.create_index("ix_tracked_alert_status_raised", ["status", "raised_at"])

    op.create_table(
        "tracked_alert_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("who", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["tracked_alert.id"],
            name=op.f("fk_tracked_alert_event_alert_id_tracked_alert"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_alert_event")),
    )
    with op.batch_alter_table("tracked_alert_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracked_alert_event_alert_id"), ["alert_id"])


def downgrade() -> None:
    with op.batch_alter_table("tracked_alert_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracked_alert_event_alert_id"))
    op.drop_table("tracked_alert_event")
    with op.batch_alter_table("tracked_alert", schema=None) as batch_op:
        batch_op.drop_index("ix_tracked_alert_status_raised")
        batch_op.drop_index(batch_op.f("ix_tracked_alert_department"))
        batch_op.drop_index(batch_op.f("ix_tracked_alert_patient_id"))
    op.drop_table("tracked_alert")
