"""chat_move: a group Telegram upgraded to a supergroup and its new id, so the alert chat follows it

Revision ID: 0003_chat_move
Revises: 0002_web_session
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rehab_bot.models

revision: str = "0003_chat_move"
down_revision: str | None = "0002_web_session"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_move",
        sa.Column("old_chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("new_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("moved_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("old_chat_id"),
    )


def downgrade() -> None:
    op.drop_table("chat_move")
