"""Stored retrospective batch runs (prescription review and record QC) and their items

Revision ID: 0013_batch_runs
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0013_batch_runs"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batch_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("active_kind", sa.String(length=8), nullable=True),
        sa.Column("period_from", sa.Date(), nullable=True),
        sa.Column("period_to", sa.Date(), nullable=True),
        sa.Column("params", JSON_DOC, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("summary", JSON_DOC, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_run")),
        sa.UniqueConstraint("active_kind", name=op.f("uq_batch_run_active_kind")),
    )
    with op.batch_alter_table("batch_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batch_run_kind"), ["kind"])

    op.create_table(
        "batch_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=256), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("doctor", sa.String(length=128), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("grade", sa.String(length=8), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("categories", JSON_DOC, nullable=False),
        sa.Column("rules", JSON_DOC, nullable=False),
        sa.Column("findings", JSON_DOC, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["batch_run.id"],
            name=op.f("fk_batch_item_run_id_batch_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_item")),
        sa.UniqueConstraint("run_id", "seq", name="uq_batch_item_run_seq"),
    )
    with op.batch_alter_table("batch_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batch_item_run_id"), ["run_id"])
        batch_op.create_index(batch_op.f("ix_batch_item_encounter_id"), ["encounter_id"])


def downgrade() -> None:
    with op.batch_alter_table("batch_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_item_encounter_id"))
        batch_op.drop_index(batch_op.f("ix_batch_item_run_id"))
    op.drop_table("batch_item")
    with op.batch_alter_table("batch_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_run_kind"))
    op.drop_table("batch_run")
