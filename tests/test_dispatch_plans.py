"""The reminder engine's statements are planned for the tables as they are, not as they were (issue 14).

asyncpg prepares each statement once per connection, and after five runs
PostgreSQL may keep a generic plan, costed on the table at that moment. A
burst starts with no session rows and adds one per reminder, so a plan kept
from its first windows bound each sent message to its session through the
status index (every pending session) instead of the primary key: 4-6 ms a
row at 16,000 pending, and one process sent 210-230 msg/s instead of 600+
(bench/processes.py). The engine's connections plan every statement afresh.
"""

from __future__ import annotations

from datetime import date

import pytest
from factories import T0, make_patient, require_postgres
from sqlalchemy import text

from rehab_bot.clock import FakeClock
from rehab_bot.db import Database

pytestmark = pytest.mark.parametrize("backend", ["postgres"])

BIND = (
    "UPDATE exercise_session SET delivery_id = NULL, message_id = $1 "
    "WHERE id = $2 AND status = $3 AND message_id IS NULL"
)


async def test_the_engine_binds_a_session_by_its_key_after_the_table_grew(db: Database) -> None:
    require_postgres()
    patient, _ = await make_patient(db, FakeClock(T0))
    async with db.dispatch_engine.connect() as conn:
        assert (await conn.exec_driver_sql("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        await conn.exec_driver_sql(f"PREPARE bind_first(bigint, integer, varchar) AS {BIND}")
        for i in range(10):  # more than the five custom plans after which a generic one may stick
            await conn.exec_driver_sql(f"EXECUTE bind_first({i}, {i}, 'pending')")
        await conn.execute(
            text(
                "INSERT INTO exercise_session (patient_id, local_date, slot, phase_id, status, effort, skip_reason,"
                " step, created_at) SELECT :pid, CAST(:first AS date) + g, 'morning', '', 'pending', '', '', '', :at"
                " FROM generate_series(1, 20000) AS g"
            ),
            {"pid": patient.id, "first": date(2020, 1, 1), "at": T0.replace(tzinfo=None)},
        )
        last = (await conn.execute(text("SELECT max(id) FROM exercise_session"))).scalar()
        shown = "\n".join(r[0] for r in await conn.exec_driver_sql(f"EXPLAIN EXECUTE bind_first(7, {last}, 'pending')"))
        await conn.rollback()
    print(shown)
    assert "exercise_session_pkey" in shown, shown


async def test_the_bots_own_connections_keep_the_servers_default(db: Database) -> None:
    """Handlers and web pages run varied statements; only the engine's hot few are planned every time."""
    require_postgres()
    async with db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("SHOW plan_cache_mode")).scalar() == "auto"
