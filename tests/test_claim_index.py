"""The claim and every per-window statement read an index, with 100,000 deliveries queued.

Issue 14: with 50,000 queued the claim did a full scan plus an on-disk sort
(24.6 ms a claim). The statements are checked with EXPLAIN on a table holding
100,000 queued rows and 100,000 finished ones, which must stay out of the way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from factories import T0, FakeSender, seed_deliveries
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, DeliveryConfig
from rehab_bot.db import Database
from rehab_bot.models import Delivery, DeliveryStatus
from rehab_bot.reminders import Dispatcher

# A scale test (200,000 rows seeded per test): .ci/run runs it, the fast suite leaves it out.
pytestmark = pytest.mark.slow

QUEUED = 100_000
FINISHED = 100_000
DELIVERIES = Delivery.__table__  # type: ignore[attr-defined]


async def plan(conn: AsyncConnection, db: Database, statement: Any) -> str:
    """The query plan of a SQLAlchemy statement, as text."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors  # applies UTCDateTime's conversion to naive UTC
    sql = ("EXPLAIN " if db.dialect == "postgresql" else "EXPLAIN QUERY PLAN ") + str(compiled)
    values = tuple(processors[k](params[k]) if k in processors else params[k] for k in compiled.positiontup or ())
    result = await conn.exec_driver_sql(sql, values)
    return "\n".join(" ".join(str(c) for c in r) for r in result.all())


@pytest.fixture
async def dispatcher(db: Database) -> Dispatcher:
    await seed_deliveries(db, QUEUED, FINISHED, T0)
    return Dispatcher(db, FakeClock(T0), DeliveryConfig(), ClinicConfig(), FakeSender())


async def test_the_claim_reads_its_partial_index_in_order(db: Database, dispatcher: Dispatcher) -> None:
    async with db.engine.connect() as conn:
        claim = await plan(conn, db, dispatcher.claim_query(T0, 30))
    print(claim)
    assert "ix_delivery_claim" in claim
    if db.dialect == "postgresql":
        assert "Index Scan using ix_delivery_claim" in claim and "Sort" not in claim
        assert "Seq Scan" not in claim
    else:
        assert "TEMP B-TREE" not in claim and "SCAN delivery\n" not in claim + "\n"


async def test_every_per_window_statement_reads_an_index(db: Database, dispatcher: Dispatcher) -> None:
    """The statements of every claim and record; /metrics' backlog count is left out: it reads every queued row."""
    table = DELIVERIES
    grace = T0 - timedelta(minutes=120)
    statements = {
        "grace sweep": update(table)
        .where(
            table.c.status == DeliveryStatus.QUEUED.value, table.c.not_before < grace, table.c.kind.not_in(["alert"])
        )
        .values(status="missed"),
        "recover": update(table)
        .where(table.c.status == DeliveryStatus.SENDING.value, table.c.claimed_at < grace)
        .values(status="unknown"),
        "next wake-up": select(func.min(table.c.not_before)).where(table.c.status == DeliveryStatus.QUEUED.value),
        "record": update(table).where(table.c.id == 5).values(status="sent"),
    }
    async with db.engine.connect() as conn:
        for name, statement in statements.items():
            shown = await plan(conn, db, statement)
            print(name, shown)
            if db.dialect == "postgresql":
                assert "Seq Scan on delivery" not in shown, (name, shown)
            else:
                assert "SCAN delivery" not in shown.replace("SCAN delivery USING", ""), (name, shown)
