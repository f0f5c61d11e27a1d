"""The suite's PostgreSQL databases (tests/conftest.py): a reset database is what a fresh copy is.

Each test takes a database a used one was reset to, or a new copy; these tests check that a reset
leaves nothing of the last test behind (rows, sequences, the installation's namespace), and that a
database the rig cannot be sure of is dropped, not handed to the next test.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from factories import (
    PG_TEST_SCHEMA,
    PG_URL,
    T0,
    make_patient,
    pg_connect,
    pg_database_url,
    raw_pg_url,
    require_postgres,
)

from rehab_bot.clock import FakeClock
from rehab_bot.db import Database


@pytest.fixture
def pg(templates: Any) -> Any:
    require_postgres()
    return templates


async def state(name: str) -> tuple[dict[str, int], str]:
    """Rows per table (every table but alembic_version) and the installation's namespace."""
    conn = await pg_connect(name)
    try:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = $1"
        tables = [r[0] for r in await conn.fetch(query, PG_TEST_SCHEMA)]
        counts = {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables if t != "alembic_version"}
        return counts, await conn.fetchval("SELECT namespace FROM installation WHERE id = 1")
    finally:
        await conn.close()


async def first_patient_id(name: str) -> int:
    db = Database(pg_database_url(name), pg_schema=PG_TEST_SCHEMA)
    try:
        patient, _ = await make_patient(db, FakeClock(T0))
        assert patient.id is not None
        return patient.id
    finally:
        await db.dispose()


async def test_a_reset_database_holds_what_a_fresh_copy_holds(pg: Any) -> None:
    name = await pg.pg_copy()
    fresh_counts, fresh_namespace = await state(name)
    first_id = await first_patient_id(name)
    await first_patient_id(name)
    used, _ = await state(name)
    assert used["patient"] == 2 and used["reminder_rule"] == 2
    copies = pg.pg_copies
    assert copies is not None
    await copies.give_back(name)

    again = await pg.pg_copy()
    assert again == name, "the reset database is taken again, not a new copy"
    counts, namespace = await state(again)
    assert counts == fresh_counts and sum(counts.values()) == 1  # the installation row only
    assert namespace != fresh_namespace, "a new installation, as a fresh copy would be"
    assert await first_patient_id(again) == first_id, "the sequences start where a fresh copy's do"
    await copies.give_back(again)


async def test_a_database_still_connected_to_or_changed_is_dropped_not_reused(pg: Any) -> None:
    name = await pg.pg_copy()
    copies = pg.pg_copies
    assert copies is not None
    open_conn = await pg_connect(name)  # as a process the test started and did not stop
    try:
        await copies.give_back(name)
    finally:
        await open_conn.close()
    changed = await pg.pg_copy()
    assert changed != name
    conn = await pg_connect(changed)
    try:
        await conn.execute("ALTER TABLE patient ADD COLUMN left_behind integer")
    finally:
        await conn.close()
    await copies.give_back(changed)
    other = await pg.pg_copy()
    assert other not in (name, changed)
    await copies.give_back(other)
    for _ in range(300):  # dropped on the rig's own thread
        if not await exists(name) and not await exists(changed):
            break
        await asyncio.sleep(0.1)
    assert not await exists(name) and not await exists(changed)


async def exists(name: str) -> bool:
    conn = await asyncpg.connect(raw_pg_url(PG_URL))
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()
