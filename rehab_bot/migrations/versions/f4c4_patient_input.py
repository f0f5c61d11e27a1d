"""the typed answer a patient's /settings or /pause question waits for, kept across restarts

Revision ID: f4c4_patient_input
Revises: f4c3_clinic
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "f4c4_patient_input"
down_revision: str | None = "f4c3_clinic"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("awaiting", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("awaiting_since", rehab_bot.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_column("awaiting_since")
        batch_op.drop_column("awaiting")
