"""issue 19: timing_proposal, timing_window, experiment_decision, alert_review

Revision ID: learn1
Revises: care1
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "learn1"
down_revision: str | None = "care1"
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
    op.create_table(
        "experiment_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.Integer(), nullable=False),
        sa.Column("decided_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("treated", sa.Boolean(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("local_hour", sa.Integer(), nullable=False),
        sa.Column("programme_day", sa.Integer(), nullable=True),
        sa.Column("adherence", sa.Float(), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=True),
        sa.Column("outcome_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("experiment_id", "patient_id", "ref", name="uq_experiment_decision"),
    )
    with op.batch_alter_table("experiment_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiment_decision_experiment_id"), ["experiment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiment_decision_patient_id"), ["patient_id"], unique=False)
    op.create_table(
        "alert_review",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("needed_action", sa.Boolean(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("alert_id"),
    )


def downgrade() -> None:
    op.drop_table("alert_review")
    with op.batch_alter_table("experiment_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_decision_patient_id"))
        batch_op.drop_index(batch_op.f("ix_experiment_decision_experiment_id"))
    op.drop_table("experiment_decision")
    op.drop_table("timing_window")
    with op.batch_alter_table("timing_proposal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timing_proposal_patient_id"))
    op.drop_table("timing_proposal")
