"""invite.withdrawn_at: a staff invitation withdrawn by an admin says so when its link is opened

The admin's staff page lists the open staff invitations with Withdraw. A withdrawn invitation first
expired at once, so its link answered "This invitation has expired"; it now keeps its expiry and
records when it was withdrawn, and the link answers that the clinic withdrew it.

Revision ID: 0008_invite_withdrawn
Revises: 0007_crisis_question
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rehab_bot.models

revision: str = "0008_invite_withdrawn"
down_revision: str | None = "0007_crisis_question"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: a plain ALTER TABLE ... ADD COLUMN, on SQLite too (no copy).
    op.add_column("invite", sa.Column("withdrawn_at", rehab_bot.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # A plain ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), never batch mode (see 0005).
    op.drop_column("invite", "withdrawn_at")
