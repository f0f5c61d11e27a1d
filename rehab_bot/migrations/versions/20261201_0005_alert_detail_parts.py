"""alert.detail_parts: an alert's detail as parts that render in each reader's language

A German-speaking therapist read the English detail (the answers, the rule that matched) inside
alert messages and pages in German. The parts (JSON, rehab_bot.alert_detail) are kept next to the
English detail, which stays for exports and the audit. Alerts raised before have no parts and show
their stored detail.

Revision ID: 0005_alert_detail_parts
Revises: 0004_ids_rise
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_alert_detail_parts"
down_revision: str | None = "0004_ids_rise"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: a plain ALTER TABLE ... ADD COLUMN, on SQLite too (no copy).
    op.add_column("alert", sa.Column("detail_parts", sa.Text(), nullable=True))


def downgrade() -> None:
    # A plain ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), never batch mode: its copy of the table
    # would drop the caseload figures' triggers on alert (cf_alert_*, 0001_squashed), which no trigger
    # or index names this column, so SQLite drops it in place.
    op.drop_column("alert", "detail_parts")
