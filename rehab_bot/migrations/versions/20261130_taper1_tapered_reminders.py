"""tapering: patient.tapered_since (reminders at the phase's tapered frequency since then)

Revision ID: taper1
Revises: 0001_squashed
Create Date: 2026-11-30

NULL: full frequency. Set by rehab_bot/tapering.py when a patient has kept up
for [delivery] taper_after_weeks weeks, cleared when a week falls short.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rehab_bot.models

revision: str = "taper1"
down_revision: str | None = "0001_squashed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.add_column(sa.Column("tapered_since", rehab_bot.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.drop_column("tapered_since")
