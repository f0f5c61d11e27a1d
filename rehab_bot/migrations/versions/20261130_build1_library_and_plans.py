"""exercise library and programme builder: clinic_exercise and programme_plan

Revision ID: build1
Revises: learn1
Create Date: 2026-11-30

clinic_exercise holds the exercises a clinic adds in the web app (texts per
language, dose, an uploaded photo, GIF or video); programme_plan holds a
patient's own plan (unique per patient) or a named clinic template.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "build1"
down_revision: str | None = "learn1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinic_exercise",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("safety_notes", sa.Text(), nullable=False),
        sa.Column("sets", sa.Integer(), nullable=False),
        sa.Column("reps", sa.Integer(), nullable=True),
        sa.Column("hold_seconds", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("media", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("media_kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "programme_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("based_on", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["staff.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id"),
    )


def downgrade() -> None:
    op.drop_table("programme_plan")
    op.drop_table("clinic_exercise")
