"""exercise session flow: the step a session's live message waits for

Revision ID: f4a2_sessions
Revises: f4a1_journey
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "f4a2_sessions"
down_revision: str | None = "f4a1_journey"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exercise_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""))
        batch_op.create_index("ix_exercise_session_status_date", ["status", "local_date"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("exercise_session", schema=None) as batch_op:
        batch_op.drop_index("ix_exercise_session_status_date")
        batch_op.drop_column("step")
