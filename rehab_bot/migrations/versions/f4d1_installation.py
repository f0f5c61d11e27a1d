"""the installation's own id namespace for FHIR exports, generated once

Revision ID: f4d1_installation
Revises: f4c4_patient_input
Create Date: 2026-11-30
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "f4d1_installation"
down_revision: str | None = "f4c4_patient_input"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Generated here, at the first upgrade, so the id namespace exists from the first start.
    op.bulk_insert(
        table,
        [{"id": 1, "namespace": str(uuid.uuid4()), "created_at": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.drop_table("installation")
