"""medication administration: when doses were given, for surgical prophylaxis timing (issue 6)

Revision ID: 0015_med_administration
Revises: 0006_rx_review
Create Date: 2026-11-23 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0015_med_administration"
down_revision: str | None = "0006_rx_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "medication_administration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fhir_id", sa.String(length=128), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=True),
        sa.Column("request_fhir_id", sa.String(length=128), nullable=True),
        sa.Column("drug", sa.String(length=256), nullable=False),
        sa.Column("drug_code", sa.String(length=64), nullable=True),
        sa.Column("dose_value", sa.Float(), nullable=True),
        sa.Column("dose_unit", sa.String(length=32), nullable=True),
        sa.Column("route", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("given_at", sa.DateTime(), nullable=True),
        sa.Column("given_end", sa.DateTime(), nullable=True),
        sa.Column("resource", JSON_DOC, nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_medication_administration_patient_id_patient"),
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounter.id"],
            name=op.f("fk_medication_administration_encounter_id_encounter"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medication_administration")),
        sa.UniqueConstraint("fhir_id", name=op.f("uq_medication_administration_fhir_id")),
    )
    with op.batch_alter_table("medication_administration", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_medication_administration_encounter_id"), ["encounter_id"]
        )
        batch_op.create_index(
            "ix_medication_administration_patient_given", ["patient_id", "given_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("medication_administration", schema=None) as batch_op:
        batch_op.drop_index("ix_medication_administration_patient_given")
        batch_op.drop_index(batch_op.f("ix_medication_administration_encounter_id"))
    op.drop_table("medication_administration")
