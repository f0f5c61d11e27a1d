"""check-in schema changes (owned by the check-in work)

Revision ID: f4b2_checkins
Revises: f4a2_sessions
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "f4b2_checkins"
down_revision: str | None = "f4a2_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
