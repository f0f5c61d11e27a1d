"""Shared fixtures: real databases (SQLite files, PostgreSQL databases), a fake clock, configs.

Every test's database is a copy of a template migrated once per pytest
process (each pytest-xdist worker is one): a file copy on SQLite, `CREATE
DATABASE … TEMPLATE` on PostgreSQL. A copy takes milliseconds where a full
Alembic upgrade took most of a second. Each copy gets its own installation
namespace, as a fresh upgrade would. `database_factory(kind, template=False)`
runs the real upgrade instead (tests/test_migrations.py does).

On PostgreSQL a copy and a drop each cost a few tenths of a second (a drop
waits for a checkpoint), more on a busy server: PgCopies makes the next
copies on a thread of its own while a test runs, and drops used ones on
another, so a test waits for neither. The drops still queued when a pytest
process ends (40 to 70 per xdist worker in the fast suite, 5 to 8 s of
waiting) go to a detached process of their own, so the run does not wait
for them either.

PostgreSQL: REHAB_BOT_TEST_PG_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test).
The test databases are made beside that one (it must be allowed to create
databases) and dropped afterwards; their tables live in the schema
PG_TEST_SCHEMA, reached through `Database(url, pg_schema=...)` as a bot
configured with `pg_schema` does. When the server is not reachable the
PostgreSQL cases skip, except under CI=true, where they fail: CI must prove
the PostgreSQL path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import PG_URL, T0, require_postgres
from sqlalchemy import text
from sqlalchemy.engine import make_url

from rehab_bot.clock import FakeClock
from rehab_bot.db import Database

PG_TEST_SCHEMA = "rehab_test"
# Every database the suite makes starts with this, so stale ones are easy to find:
#   psql -Atc "select datname from pg_database where datname like 'rbtest_%'" test
PG_PREFIX = "rbtest_"


def _raw(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


def pg_database_url(name: str) -> str:
    """PG_URL with another database name."""
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def _pg_admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_raw(PG_URL))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


class PgCopies:
    """Copies of a PostgreSQL template made ahead of need, and drops behind, each on a thread of its own.

    Every copy is a new installation (its own namespace), as a fresh upgrade
    would make it. Nothing is shared between tests: each takes a copy no test
    has touched, and the drops run only after the test's own teardown.
    """

    AHEAD = 2  # copies kept ready: a short test takes the next one without waiting

    def __init__(self, template: str) -> None:
        self.template = template
        self._make = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pg-copy")
        self._ready: deque[concurrent.futures.Future[str]] = deque()
        # Drops run on a daemon thread: at the end a drop under way is not waited for (under a busy
        # server one waits seconds for its checkpoint); its name goes to the detached dropper too.
        self._to_drop: deque[str] = deque()
        self._dropping: str | None = None
        self._closed = False
        self._failures: list[BaseException] = []
        self._wake = threading.Condition()
        threading.Thread(target=self._drop_loop, name="pg-drop", daemon=True).start()

    def _copy(self) -> str:
        name = f"{PG_PREFIX}{uuid.uuid4().hex[:12]}"

        async def copy() -> None:
            await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            import asyncpg

            conn = await asyncpg.connect(_raw(pg_database_url(name)))
            try:
                await conn.execute(
                    f'UPDATE "{PG_TEST_SCHEMA}".installation SET namespace = $1 WHERE id = 1', str(uuid.uuid4())
                )
            finally:
                await conn.close()

        asyncio.run(copy())
        return name

    async def take(self) -> str:
        """A fresh copy's name: made ahead, or now."""
        while len(self._ready) < self.AHEAD:
            self._ready.append(self._make.submit(self._copy))
        name = await asyncio.wrap_future(self._ready.popleft())
        self._ready.append(self._make.submit(self._copy))
        return name

    def drop(self, name: str) -> None:
        """Drop a database in the background (see _drop_sql)."""
        with self._wake:
            self._to_drop.append(name)
            self._wake.notify()

    def _drop_loop(self) -> None:
        while True:
            with self._wake:
                while not self._to_drop and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                self._dropping = name = self._to_drop.popleft()
            try:
                _drop_now(name)
            except BaseException as failure:  # raised by close(), in the test run
                self._failures.append(failure)
            with self._wake:
                self._dropping = None

    def close(self) -> list[str]:
        """Stop making and dropping; the names still to drop: the copies nobody took, the drops not done.

        The first failure of a drop is raised.
        """
        self._make.shutdown(cancel_futures=True)
        left: list[str] = []
        for made in self._ready:
            if made.cancelled():
                continue
            try:
                left.append(made.result())
            except Exception:  # a copy that failed to be made needs no drop
                pass
        with self._wake:
            self._closed = True
            self._wake.notify()
            left.extend(self._to_drop)
            if self._dropping is not None:
                left.append(self._dropping)  # DROP … IF EXISTS: whichever comes second finds nothing
        if self._failures:
            raise self._failures[0]
        return left


class Templates:
    """The migrated templates of this pytest process, made on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sqlite: Path | None = None
        self.pg: str | None = None
        self.pg_copies: PgCopies | None = None

    async def sqlite_template(self) -> Path:
        if self.sqlite is None:
            path = self.directory / "template.db"
            db = Database(f"sqlite+aiosqlite:///{path}")
            await db.upgrade()
            async with db.engine.begin() as conn:
                # Everything into the main file, so a plain copy is the whole database.
                await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            await db.dispose()
            self.sqlite = path
        return self.sqlite

    async def pg_template(self) -> str:
        if self.pg is None:
            name = f"{PG_PREFIX}tpl_{uuid.uuid4().hex[:10]}"
            await _pg_admin(f'CREATE DATABASE "{name}"')
            db = Database(pg_database_url(name), pg_schema=PG_TEST_SCHEMA)
            try:
                async with db.engine.begin() as conn:
                    await conn.execute(text(f'CREATE SCHEMA "{PG_TEST_SCHEMA}"'))
                await db.upgrade()
            finally:
                # No connection may stay open on a template while it is copied.
                await db.dispose()
            self.pg = name
        return self.pg

    async def pg_copy(self) -> str:
        """A new copy of the PostgreSQL template (its own installation namespace): see PgCopies."""
        if self.pg_copies is None:
            self.pg_copies = PgCopies(await self.pg_template())
        return await self.pg_copies.take()

    def drop(self) -> None:
        """Hand every database still to drop, the template last, to a detached process (see _drop_detached)."""
        left = self.pg_copies.close() if self.pg_copies is not None else []
        if self.pg is not None:
            left.append(self.pg)
        if left:
            _drop_detached(left)


def _drop_sql(name: str) -> str:
    """FORCE: a subprocess of the test may still hold a connection; IF EXISTS: a drop may come twice."""
    return f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


def _drop_now(name: str) -> None:
    asyncio.run(_pg_admin(_drop_sql(name)))


_DROPPER = """# rehab-bot test databases: dropper
import asyncio, sys
import asyncpg

async def main(url, statements):
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()

asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


def _drop_detached(names: list[str]) -> None:
    """Drop these databases in a process that outlives this one: the test run does not wait for them.

    Its errors go to stderr, which is the terminal or CI log of the run that started it. `.ci/run`
    waits for these processes (by the first line of their script) before its timing pass.
    """
    subprocess.Popen(
        [sys.executable, "-c", _DROPPER, _raw(PG_URL), *map(_drop_sql, names)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """One set of templates per pytest process (per xdist worker)."""
    made = Templates(tmp_path_factory.mktemp("template"))
    yield made
    made.drop()


@pytest.fixture(autouse=True)
def _cli_operator_reset() -> Iterator[None]:
    """A test that calls cli.main() directly names the OS user in later audit rows; not beyond that test."""
    yield
    from rehab_bot import audit

    audit.set_cli_operator(audit.CLI_ACTOR)


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


async def _new_installation(db: Database) -> None:
    """A copy is another installation: give it its own id namespace, as its first upgrade would."""
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE installation SET namespace = :namespace WHERE id = 1"), {"namespace": str(uuid.uuid4())}
        )


@pytest.fixture
async def database_factory(tmp_path: Path, templates: Templates) -> AsyncIterator[Callable[..., Any]]:
    """Make migrated Databases for a backend; dropped after the test.

    template=False runs every migration on an empty database instead of copying the template.
    """
    made: list[tuple[Database, str | None]] = []

    async def make(kind: str, *, name: str = "bot", template: bool = True) -> Database:
        pg_name: str | None = None
        if kind == "sqlite":
            path = tmp_path / f"{name}.db"
            if template:
                shutil.copyfile(await templates.sqlite_template(), path)
                os.chmod(path, 0o600)
            db = Database(f"sqlite+aiosqlite:///{path}")
        elif template:
            pg_name = await templates.pg_copy()  # a new installation already
            db = Database(pg_database_url(pg_name), pg_schema=PG_TEST_SCHEMA)
        else:
            pg_name = f"{PG_PREFIX}{uuid.uuid4().hex[:12]}"
            await _pg_admin(f'CREATE DATABASE "{pg_name}"')
            db = Database(pg_database_url(pg_name), pg_schema=PG_TEST_SCHEMA)
            async with db.engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA "{PG_TEST_SCHEMA}"'))
        made.append((db, pg_name))
        if not template:
            await db.upgrade()
        elif kind == "sqlite":
            await _new_installation(db)
        return db

    yield make
    for db, pg_name in made:
        await db.dispose()
        if pg_name is not None:
            if templates.pg_copies is not None:
                templates.pg_copies.drop(pg_name)  # in the background
            else:
                await _pg_admin(_drop_sql(pg_name))


@pytest.fixture
async def db(backend: str, database_factory: Callable[..., Any]) -> Database:
    """A migrated database on the parametrised backend."""
    database: Database = await database_factory(backend)
    return database
