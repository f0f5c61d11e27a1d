"""issue 19: experiment_notice (patients told about experiments, and their opt-outs)

Revision ID: xpt1
Revises: wperf1
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "xpt1"
down_revision: str | None = "wperf1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment_notice",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("told_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ref", sa.Integer(), nullable=True),
        sa.Column("opted_out_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("patient_id"),
    )


def downgrade() -> None:
    op.drop_table("experiment_notice")
