"""web app: one-time sign-in links (hashed tokens); an answer index for the caseload

Revision ID: web1
Revises: f6s1
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "web1"
down_revision: str | None = "f6s1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_signin",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("web_signin", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_signin_staff_id"), ["staff_id"], unique=False)
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.create_index("ix_answer_patient_item_time", ["patient_id", "item_id", "answered_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.drop_index("ix_answer_patient_item_time")
    with op.batch_alter_table("web_signin", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_signin_staff_id"))
    op.drop_table("web_signin")
