"""radiology: detection job queue, CT analyses, study accession and arrival time (issue 5)

Revision ID: 0002_radiology
Revises: 0001
Create Date: 2026-11-23 12:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0002_radiology"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("imaging_study", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accession", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("received_at", sa.DateTime(), nullable=True))

    op.create_table(
        "radiology_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("last_instance_at", sa.DateTime(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("detector_version", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["imaging_study.id"],
            name=op.f("fk_radiology_job_study_id_imaging_study"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_radiology_job")),
    )
    with op.batch_alter_table("radiology_job", schema=None) as batch_op:
        batch_op.create_index("ix_radiology_job_status", ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_radiology_job_study_id"), ["study_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_radiology_job_series_uid"), ["series_uid"], unique=False
        )

    op.create_table(
        "ct_analysis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("detector_version", sa.String(length=64), nullable=False),
        sa.Column("result", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["imaging_study.id"],
            name=op.f("fk_ct_analysis_study_id_imaging_study"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["radiology_job.id"], name=op.f("fk_ct_analysis_job_id_radiology_job")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_analysis")),
    )
    with op.batch_alter_table("ct_analysis", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ct_analysis_study_id"), ["study_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ct_analysis_series_uid"), ["series_uid"], unique=False)
        batch_op.create_index(batch_op.f("ix_ct_analysis_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ct_analysis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ct_analysis_job_id"))
        batch_op.drop_index(batch_op.f("ix_ct_analysis_series_uid"))
        batch_op.drop_index(batch_op.f("ix_ct_analysis_study_id"))
    op.drop_table("ct_analysis")
    with op.batch_alter_table("radiology_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_radiology_job_series_uid"))
        batch_op.drop_index(batch_op.f("ix_radiology_job_study_id"))
        batch_op.drop_index("ix_radiology_job_status")
    op.drop_table("radiology_job")
    with op.batch_alter_table("imaging_study", schema=None) as batch_op:
        batch_op.drop_column("received_at")
        batch_op.drop_column("accession")
