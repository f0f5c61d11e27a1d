"""patient and staff time zones: the legacy zones of a shared clock become a place's zone

Before 2026-12-02 a patient who answered the time-zone question with "MEZ", "CET", "WEZ" or "OEZ" was
stored with the legacy zone of that clock ("CET", "MET", "WET", "EET"); since then such an answer is
stored as a place's zone (rehab_bot.timezones: the clinic's own zone when it keeps that clock, else the
region's). The rows stored before still showed "CET" where a place belongs. They become the region's
zone that rehab_bot.timezones names for the clock (Europe/Berlin, Europe/Lisbon, Europe/Athens), whose
rules have been the same as the legacy zone's since March 1996 at the latest, so no reminder moves: the
due times stored in UTC stay right. The downgrade leaves them: which rows were legacy is not kept.

Revision ID: 0006_shared_clock_zones
Revises: 0005_alert_detail_parts
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_shared_clock_zones"
down_revision: str | None = "0005_alert_detail_parts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration keeps doing what it did when it was written.
PLACES = {"CET": "Europe/Berlin", "MET": "Europe/Berlin", "WET": "Europe/Lisbon", "EET": "Europe/Athens"}


def upgrade() -> None:
    for name in ("patient", "staff"):
        table = sa.table(name, sa.column("timezone", sa.String))
        for legacy, place in PLACES.items():
            op.execute(table.update().where(table.c.timezone == legacy).values(timezone=place))


def downgrade() -> None:
    pass  # which rows held a legacy zone is not kept; the place's zone keeps the same clock
