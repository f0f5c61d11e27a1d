"""clinician tools schema changes (owned by the clinician-tools work)

Revision ID: f4c3_clinic
Revises: f4b2_checkins
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "f4c3_clinic"
down_revision: str | None = "f4b2_checkins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
