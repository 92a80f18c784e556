"""Hospital operations: department-day statistics and consumables (issue 11)

Revision ID: 0004_ops
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_ops"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "outpatient_visits",
    "emergency_visits",
    "admissions",
    "discharges",
    "occupied_beds",
    "discharged_patient_days",
    "surgeries",
    "surgeries_level4",
)
AMOUNTS = ("drg_weight_sum", "total_cost", "drug_cost", "consumable_cost", "antibiotic_ddd")
QUALITY = ("critical_values", "critical_values_on_time", "records_graded", "records_grade_a")


def upgrade() -> None:
    op.create_table(
        "ops_department",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=64), nullable=False),
        sa.Column("beds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_department")),
        sa.UniqueConstraint("code", name=op.f("uq_ops_department_code")),
    )
    op.create_table(
        "ops_department_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dept_code", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("beds", sa.Integer(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS],
        *[sa.Column(name, sa.Float(), nullable=False) for name in AMOUNTS],
        *[sa.Column(name, sa.Integer(), nullable=False) for name in QUALITY],
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_department_day")),
        sa.UniqueConstraint("day", "dept_code", name="uq_ops_department_day_day_dept"),
    )
    with op.batch_alter_table("ops_department_day", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ops_department_day_dept_code"), ["dept_code"], unique=False
        )
    op.create_table(
        "ops_consumable_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=128), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_consumable_item")),
        sa.UniqueConstraint("code", name=op.f("uq_ops_consumable_item_code")),
    )
    op.create_table(
        "ops_consumable_lot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("lot_no", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("expiry_date", sa.Date(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_consumable_lot")),
        sa.UniqueConstraint("item_code", "lot_no", name="uq_ops_consumable_lot_item_lot"),
    )
    with op.batch_alter_table("ops_consumable_lot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ops_consumable_lot_item_code"), ["item_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ops_consumable_lot_expiry_date"), ["expiry_date"], unique=False
        )
    op.create_table(
        "ops_consumable_use",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_consumable_use")),
        sa.UniqueConstraint("item_code", "day", name="uq_ops_consumable_use_item_day"),
    )
    with op.batch_alter_table("ops_consumable_use", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ops_consumable_use_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ops_consumable_use", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ops_consumable_use_day"))
    op.drop_table("ops_consumable_use")
    with op.batch_alter_table("ops_consumable_lot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ops_consumable_lot_expiry_date"))
        batch_op.drop_index(batch_op.f("ix_ops_consumable_lot_item_code"))
    op.drop_table("ops_consumable_lot")
    op.drop_table("ops_consumable_item")
    with op.batch_alter_table("ops_department_day", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ops_department_day_dept_code"))
    op.drop_table("ops_department_day")
    op.drop_table("ops_department")
