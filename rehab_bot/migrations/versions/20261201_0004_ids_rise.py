"""programme_plan and caregiver ids only rise on SQLite (AUTOINCREMENT): a deleted row's id is never reused

SQLite without AUTOINCREMENT gives a new row the highest id + 1. Deleting the newest template handed
its id to the next one saved, and a page still showing the deleted template (its Delete button, the
builder's "Template: ..." choice) then acted on the newer one. A caregiver who deleted their own link
handed its id to the next caregiver linked, and a Remove button or page still showing the old link
then removed the new caregiver. PostgreSQL's sequences never give an id twice: nothing to do there.

Revision ID: 0004_ids_rise
Revises: 0003_chat_move
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_ids_rise"
down_revision: str | None = "0003_chat_move"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("programme_plan", "caregiver")


def _rebuild(autoincrement: bool) -> None:
    """Alembic's batch mode copies each table (new table, copy the rows, drop the old one, rename).

    The rows keep their ids, and SQLite starts the AUTOINCREMENT counter at the highest of them.
    Neither table has triggers. Only answer refers to either (answer.caregiver_id, ON DELETE SET
    NULL); with foreign keys on (rehab_bot.db), dropping the old caregiver table clears it, so the
    proxy answers' caregivers are put back afterwards.
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    proxies = bind.execute(sa.text("SELECT id, caregiver_id FROM answer WHERE caregiver_id IS NOT NULL")).all()
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    if proxies:
        bind.execute(
            sa.text("UPDATE answer SET caregiver_id = :caregiver WHERE id = :answer"),
            [{"answer": answer, "caregiver": caregiver} for answer, caregiver in proxies],
        )


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
