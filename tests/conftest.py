"""Shared fixtures: real databases (SQLite files, PostgreSQL databases), a fake clock, configs.

Every test's database is a copy of a template migrated once per pytest
process (each pytest-xdist worker is one): a file copy on SQLite, `CREATE
DATABASE … TEMPLATE` on PostgreSQL. A copy takes milliseconds where a full
Alembic upgrade took most of a second. Each copy gets its own installation
namespace, as a fresh upgrade would. `database_factory(kind, template=False)`
runs the real upgrade instead (tests/test_migrations.py does).

On PostgreSQL a copy and a drop cost about 130 ms of the server's time
together, and each drop forces a checkpoint that writes the copy's 7.5 MB
out again. So a used database is reset, not dropped (PgCopies.give_back,
about 10 ms): every table emptied, the template's rows and sequence values
put back, a new installation namespace; the next test sees what a fresh
copy would show. A database still connected to after its test, or whose
schema a test changed, is dropped instead, on a thread of its own. New
copies are made only when no reset database is free, one ahead on another
thread. What is left when a pytest process ends (its reset databases, the
drops still queued) goes to a detached process, so the run does not wait.

PostgreSQL: REHAB_BOT_TEST_PG_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test).
The test databases are made beside that one (it must be allowed to create
databases) and dropped afterwards; their tables live in the schema
PG_TEST_SCHEMA, reached through `Database(url, pg_schema=...)` as a bot
configured with `pg_schema` does. When the server is not reachable the
PostgreSQL cases skip, except under CI=true, where they fail: CI must prove
the PostgreSQL path. Under CI=true every other skip fails too (pytest_runtest_makereport).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from factories import PG_TEST_SCHEMA, PG_URL, T0, pg_connect, pg_database_url, raw_pg_url, require_postgres
from sqlalchemy import text

from rehab_bot.clock import FakeClock
from rehab_bot.db import Database


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true no test skips: a skip there means something CI must prove was not proved (a missing
    package, service or browser), so it fails the run, saying why it would have skipped."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"


# Every database the suite makes starts with this, so stale ones are easy to find:
#   psql -Atc "select datname from pg_database where datname like 'rbtest_%'" test
PG_PREFIX = "rbtest_"


async def _pg_admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(raw_pg_url(PG_URL))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


# Every copy and every reset is a new installation, as a fresh upgrade would make it ($1: a new UUID).
_NEW_NAMESPACE = "UPDATE installation SET namespace = $1 WHERE id = 1"

# A digest of the database's shape: every user table's columns, indexes, constraints and triggers,
# and the migration it is at. A reset database must still match the template's (PgCopies.give_back).
_SHAPE = """
SELECT md5(string_agg(item, ',' ORDER BY item)) FROM (
    SELECT n.nspname || '.' || c.relname || '.' || a.attname || ':'
           || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull AS item
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
       AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT n.nspname || '.' || co.conname || ':' || pg_get_constraintdef(co.oid)
      FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
     WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT 'trigger:' || tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'migration:' || version_num FROM alembic_version
) shape
"""


@dataclass(frozen=True)
class Fresh:
    """What a fresh copy of the template holds: what a reset puts back."""

    shape: str
    tables: list[str]  # every table but alembic_version, in an order DELETE can follow (children first)
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]  # the template's rows, by table: columns, rows
    sequences: list[tuple[str, int, bool]]  # name, last_value, is_called


async def _read_fresh(conn: Any) -> Fresh:
    """The template's shape, rows and sequences (conn: asyncpg, search_path at PG_TEST_SCHEMA)."""
    from sqlmodel import SQLModel

    import rehab_bot.models  # noqa: F401 - the tables' metadata

    here = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", PG_TEST_SCHEMA)}
    here.discard("alembic_version")
    known = [t.name for t in reversed(SQLModel.metadata.sorted_tables) if t.name in here]
    tables = sorted(here - set(known)) + known
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    for table in tables:
        records = await conn.fetch(f'SELECT * FROM "{table}"')
        if records:
            rows[table] = (list(records[0].keys()), [tuple(r.values()) for r in records])
    sequences = []
    for (name,) in await conn.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname = $1", PG_TEST_SCHEMA):
        value, called = await conn.fetchrow(f'SELECT last_value, is_called FROM "{name}"')
        sequences.append((name, value, called))
    return Fresh(await conn.fetchval(_SHAPE), tables, rows, sequences)


class PgCopies:
    """Databases copied from a PostgreSQL template, reset after each test for the next one.

    A test takes a database no other test holds: a reset one if any is free, else a new copy
    (made one ahead, on a thread of its own). Every copy, and every reset, is a new installation
    (its own namespace), as a fresh upgrade would make it. Nothing is shared between tests:
    give_back, after the test's own teardown, puts back exactly what a fresh copy holds, or hands
    the database to the dropping thread when it cannot be sure (see give_back).
    """

    def __init__(self, template: str, fresh: Fresh) -> None:
        self.template = template
        self.fresh = fresh
        self._clean: list[str] = []  # reset, free for the next test
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
            conn = await pg_connect(name)
            try:
                await conn.execute(_NEW_NAMESPACE, str(uuid.uuid4()))
            finally:
                await conn.close()

        asyncio.run(copy())
        return name

    async def take(self) -> str:
        """A database as a fresh copy holds it: a reset one, else a copy made ahead, or now."""
        if self._clean:
            return self._clean.pop()
        if not self._ready:
            self._ready.append(self._make.submit(self._copy))
        name = await asyncio.wrap_future(self._ready.popleft())
        self._ready.append(self._make.submit(self._copy))  # one ahead, for when none is free again
        return name

    async def give_back(self, name: str) -> None:
        """After a test's teardown: reset the database for the next test, or drop it.

        It is dropped (in the background) when a connection to it is still open after a
        second (a process the test started may still write), or when its shape no longer
        matches the template's (a test changed the schema or the migration).
        """
        reset = False
        try:  # a reset that fails (its error shows in the test's teardown) leaves the database to drop
            conn = await pg_connect(name)
            try:
                if await self._others_gone(conn) and await conn.fetchval(_SHAPE) == self.fresh.shape:
                    await self._reset(conn)
                    reset = True
            finally:
                await conn.close()
        finally:
            if reset:
                self._clean.append(name)
            else:
                self.drop(name)

    @staticmethod
    async def _others_gone(conn: Any) -> bool:
        """True once no other client is connected (a closed engine's backends take a moment to exit)."""
        for _ in range(100):
            others = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            if not others:
                return True
            await asyncio.sleep(0.01)
        return False

    async def _reset(self, conn: Any) -> None:
        fresh = self.fresh
        async with conn.transaction():
            await conn.execute("; ".join(f'DELETE FROM "{table}"' for table in fresh.tables))
            for table, (columns, rows) in fresh.rows.items():
                names = ", ".join(f'"{c}"' for c in columns)
                marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
                await conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
            await conn.execute(_NEW_NAMESPACE, str(uuid.uuid4()))
            if fresh.sequences:
                await conn.execute(
                    "SELECT " + ", ".join(f"setval('\"{n}\"', {v}, {str(c).lower()})" for n, v, c in fresh.sequences)
                )

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
        """Stop making and dropping; the names still to drop: the free ones, the copies nobody took, the drops not done.

        The first failure of a drop is raised.
        """
        self._make.shutdown(cancel_futures=True)
        left: list[str] = list(self._clean)
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
            template = await self.pg_template()
            conn = await pg_connect(template)
            try:
                fresh = await _read_fresh(conn)
            finally:
                await conn.close()  # no connection may stay open on a template while it is copied
            self.pg_copies = PgCopies(template, fresh)
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
        [sys.executable, "-c", _DROPPER, raw_pg_url(PG_URL), *map(_drop_sql, names)],
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
    """Make migrated Databases for a backend; after the test, reset for the next one or dropped.

    template=False runs every migration on an empty database instead of copying the template;
    such a database is always dropped.
    """
    made: list[tuple[Database, str | None, bool]] = []  # database, PostgreSQL name, taken from PgCopies

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
        made.append((db, pg_name, template))
        if not template:
            await db.upgrade()
        elif kind == "sqlite":
            await _new_installation(db)
        return db

    yield make
    for db, pg_name, pooled in made:
        await db.dispose()
        if pg_name is None:
            continue
        copies = templates.pg_copies
        if copies is None:
            await _pg_admin(_drop_sql(pg_name))
        elif pooled:
            await copies.give_back(pg_name)  # reset for the next test, or dropped
        else:
            copies.drop(pg_name)  # in the background


@pytest.fixture
async def db(backend: str, database_factory: Callable[..., Any]) -> Database:
    """A migrated database on the parametrised backend."""
    database: Database = await database_factory(backend)
    return database
