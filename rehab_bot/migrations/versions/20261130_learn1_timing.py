"""learned reminder times: timing_proposal (asked once per reminder time), timing_window (automatic moves)

Revision ID: learn1
Revises: f6s1
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "learn1"
down_revision: str | None = "f6s1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "timing_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("session_index", sa.Integer(), nullable=False),
        sa.Column("from_time", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("to_time", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("usual_time", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("answered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "session_index", "from_time", name="uq_timing_proposal"),
    )
    with op.batch_alter_table("timing_proposal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_timing_proposal_patient_id"), ["patient_id"], unique=False)
    op.create_table(
        "timing_window",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("start", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("end", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("patient_id"),
    )


def downgrade() -> None:
    op.drop_table("timing_window")
    with op.batch_alter_table("timing_proposal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timing_proposal_patient_id"))
    op.drop_table("timing_proposal")
