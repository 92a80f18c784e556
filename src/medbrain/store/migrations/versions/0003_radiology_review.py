"""radiology review: versioned radiologist reports and detector feedback (issue 5)

Revision ID: 0003_radiology_review
Revises: 0002_radiology
Create Date: 2026-11-23 13:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0003_radiology_review"
down_revision: str | None = "0002_radiology"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "radiology_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("analysis_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("nodules", JSON_DOC, nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("impression", sa.Text(), nullable=False),
        sa.Column("lung_rads", JSON_DOC, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("signed_by", sa.String(length=64), nullable=True),
        sa.Column("signed_at", sa.DateTime(), nullable=True),
        sa.Column("outputs", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["imaging_study.id"],
            name=op.f("fk_radiology_report_study_id_imaging_study"),
        ),
        sa.ForeignKeyConstraint(
            ["analysis_id"],
            ["ct_analysis.id"],
            name=op.f("fk_radiology_report_analysis_id_ct_analysis"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_radiology_report")),
        sa.UniqueConstraint("study_id", "version", name=op.f("uq_radiology_report_study_id")),
    )
    with op.batch_alter_table("radiology_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_radiology_report_study_id"), ["study_id"])
        batch_op.create_index(batch_op.f("ix_radiology_report_analysis_id"), ["analysis_id"])

    op.create_table(
        "radiology_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("analysis_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("detector_version", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("nodule_key", sa.String(length=16), nullable=False),
        sa.Column("nodule", JSON_DOC, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["imaging_study.id"],
            name=op.f("fk_radiology_feedback_study_id_imaging_study"),
        ),
        sa.ForeignKeyConstraint(
            ["analysis_id"],
            ["ct_analysis.id"],
            name=op.f("fk_radiology_feedback_analysis_id_ct_analysis"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["radiology_report.id"],
            name=op.f("fk_radiology_feedback_report_id_radiology_report"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_radiology_feedback")),
    )
    with op.batch_alter_table("radiology_feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_radiology_feedback_study_id"), ["study_id"])
        batch_op.create_index("ix_radiology_feedback_detector_kind", ["detector_version", "kind"])


def downgrade() -> None:
    with op.batch_alter_table("radiology_feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_radiology_feedback_detector_kind")
        batch_op.drop_index(batch_op.f("ix_radiology_feedback_study_id"))
    op.drop_table("radiology_feedback")
    with op.batch_alter_table("radiology_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_radiology_report_analysis_id"))
        batch_op.drop_index(batch_op.f("ix_radiology_report_study_id"))
    op.drop_table("radiology_report")
