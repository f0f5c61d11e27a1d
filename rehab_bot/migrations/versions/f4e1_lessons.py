"""the recovery course: which lessons a patient got, opened and understood

Revision ID: f4e1_lessons
Revises: f5h1_receiver_lease
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "f4e1_lessons"
down_revision: str | None = "f5h1_receiver_lease"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lesson_progress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("lesson_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("safety", sa.Boolean(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("local_date", sa.Date(), nullable=True),
        sa.Column("delivered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("offered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("opened_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("first_answer", sa.Integer(), nullable=True),
        sa.Column("last_answer", sa.Integer(), nullable=True),
        sa.Column("wrong_answers", sa.Integer(), nullable=False),
        sa.Column("understood", sa.Boolean(), nullable=False),
        sa.Column("answered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "lesson_id", name="uq_lesson_progress"),
    )
    with op.batch_alter_table("lesson_progress", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lesson_progress_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lesson_progress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lesson_progress_patient_id"))
    op.drop_table("lesson_progress")
