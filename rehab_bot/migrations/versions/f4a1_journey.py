"""patient journey schema changes (owned by the patient-journey work)

Revision ID: f4a1_journey
Revises: c6f96acbc563
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "f4a1_journey"
down_revision: str | None = "c6f96acbc563"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
