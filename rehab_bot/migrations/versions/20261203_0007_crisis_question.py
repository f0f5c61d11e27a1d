"""crisis_question: the crisis question asked, so that one left unanswered alerts the clinic

The bot asks "Do you have thoughts of ending your life ...?" when a message holds a word of danger too
common to alert on by itself (crisis.toml's [[concern]]). Yes was a crisis and No went on; a question
nobody answered alerted nobody (docs/SAFETY.md, hazard H12). Each question asked is now a row; one still
unanswered after [staff] crisis_question_minutes raises one alert (rehab_bot.redflag).

Revision ID: 0007_crisis_question
Revises: 0006_shared_clock_zones
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rehab_bot.models

revision: str = "0007_crisis_question"
down_revision: str | None = "0006_shared_clock_zones"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crisis_question",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("said", sa.Text(), nullable=False),
        sa.Column("asked_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("answered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("alerted_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_crisis_question_patient_id"), "crisis_question", ["patient_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_crisis_question_patient_id"), table_name="crisis_question")
    op.drop_table("crisis_question")
