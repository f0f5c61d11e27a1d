"""Shared fixtures: real databases (SQLite files, PostgreSQL schemas), a fake clock, configs.

PostgreSQL: REHAB_BOT_TEST_PG_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test).
Each test gets its own schema, dropped afterwards. When the server is not
reachable the PostgreSQL cases skip, except under CI=true, where they fail:
CI must prove the PostgreSQL path.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from factories import PG_URL, T0, require_postgres

from rehab_bot.clock import FakeClock
from rehab_bot.db import Database


class PgSchema:
    """A throwaway schema in the test database."""

    def __init__(self) -> None:
        self.name = f"t_{uuid.uuid4().hex[:12]}"
        self.raw_url = PG_URL.replace("postgresql+asyncpg", "postgresql")

    async def create(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.raw_url)
        try:
            await conn.execute(f'CREATE SCHEMA "{self.name}"')
        finally:
            await conn.close()

    async def drop(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.raw_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture
def clock() -> FakeClock:
    """A clock pinned at T0 that moves only when told to."""
    return FakeClock(T0)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test once per database backend."""
    if request.param == "postgres":
        require_postgres()
    return str(request.param)


@pytest.fixture
async def database_factory(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    """Make upgraded Databases for a backend; cleaned up after the test."""
    made: list[tuple[Database, PgSchema | None]] = []

    async def make(kind: str, *, name: str = "bot") -> Database:
        if kind == "sqlite":
            db = Database(f"sqlite+aiosqlite:///{tmp_path / name}.db")
            schema = None
        else:
            schema = PgSchema()
            await schema.create()
            db = Database(PG_URL, pg_schema=schema.name)
        await db.upgrade()
        made.append((db, schema))
        return db

    yield make
    for db, schema in made:
        await db.dispose()
        if schema is not None:
            await schema.drop()


@pytest.fixture
async def db(backend: str, database_factory: Callable[[str], Any]) -> Database:
    """An upgraded database on the parametrised backend."""
    database: Database = await database_factory(backend)
    return database
