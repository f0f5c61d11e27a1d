"""send budget: claim indexes over unfinished deliveries only, a shared rate across processes

Revision ID: f6s1
Revises: 0001_initial
Create Date: 2026-11-30

Replaces ix_delivery_queue (status, not_before over every row, sent ones
included) by partial indexes over queued and sending rows, which match the
claim's order and the per-window statements; adds send_share (one row per
sending process, the rate is split among them) and rate_block (a 429's
retry_after, for every process).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "f6s1"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = sa.text("status = 'queued'")
SENDING = sa.text("status = 'sending'")


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_queue")
        batch_op.create_index(
            "ix_delivery_claim",
            ["priority", "due_at", "id"],
            unique=False,
            postgresql_where=QUEUED,
            sqlite_where=QUEUED,
        )
        batch_op.create_index(
            "ix_delivery_queued_not_before",
            ["not_before"],
            unique=False,
            postgresql_where=QUEUED,
            sqlite_where=QUEUED,
        )
        batch_op.create_index(
            "ix_delivery_sending",
            ["chat_id", "claimed_at"],
            unique=False,
            postgresql_where=SENDING,
            sqlite_where=SENDING,
        )
    op.create_table(
        "send_share",
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("holder"),
    )
    op.create_table(
        "rate_block",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("blocked_until", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )


def downgrade() -> None:
    op.drop_table("rate_block")
    op.drop_table("send_share")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_sending")
        batch_op.drop_index("ix_delivery_queued_not_before")
        batch_op.drop_index("ix_delivery_claim")
        batch_op.create_index("ix_delivery_queue", ["status", "not_before"], unique=False)
