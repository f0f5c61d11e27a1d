"""clinician tools schema changes (owned by the clinician-tools work)

Revision ID: f4c3_clinic
Revises: f4b2_checkins
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "f4c3_clinic"
down_revision: str | None = "f4b2_checkins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Staff conversations (/invite, new session times) survive a restart here.
    op.create_table(
        "staff_draft",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("alias", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("surgery_date", sa.Date(), nullable=True),
        sa.Column("surgery_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("programme_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("staff_id"),
    )


def downgrade() -> None:
    op.drop_table("staff_draft")
