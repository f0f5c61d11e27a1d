"""programme_plan ids only rise on SQLite (AUTOINCREMENT), so a deleted template's id is never reused

SQLite without AUTOINCREMENT gives a new row the highest id + 1: deleting the newest template handed
its id to the next one saved, and a page still showing the deleted template (its Delete button, the
builder's "Template: ..." choice) then acted on the newer template. PostgreSQL's sequences never
give an id twice: nothing to do there.

Revision ID: 0004_plan_ids_rise
Revises: 0003_chat_move
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_plan_ids_rise"
down_revision: str | None = "0003_chat_move"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(autoincrement: bool) -> None:
    # No table refers to programme_plan and it has no triggers, so the copy Alembic's batch mode
    # makes (new table, copy the rows, drop the old one, rename) loses nothing. The rows keep
    # their ids, and SQLite starts the AUTOINCREMENT counter at the highest of them.
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "programme_plan", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
