"""web_session: server-side record of each signed-in browser, so signing out ends every copy of its cookie

Revision ID: 0002_web_session
Revises: 0001_squashed
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "0002_web_session"
down_revision: str | None = "0001_squashed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_session",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("ended_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(op.f("ix_web_session_expires_at"), "web_session", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_session_expires_at"), table_name="web_session")
    op.drop_table("web_session")
