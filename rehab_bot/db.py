"""Engines, sessions and migrations for SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite is opened in WAL mode with foreign keys on and a busy timeout, so the
bot's reads never block on the dispatcher's writes and a second process
waits for the write lock instead of failing at once. Migrations are Alembic
scripts shipped inside the package (rehab_bot/migrations) and run on the
bot's own async engine through ``run_sync``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Insert, Table, event, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.files import make_private, private_dir, touch_private

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    """True for sqlite+aiosqlite URLs."""
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for :memory:."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def insert_ignore(dialect: str, table: Table, *, keys: Sequence[str] | None = None) -> Insert:
    """INSERT that skips rows clashing with a unique key (ON CONFLICT DO NOTHING), on PostgreSQL and SQLite.

    keys names the unique columns (the conflict target); None means any
    constraint. dialect is ``Database.dialect`` or ``connection.dialect.name``.
    Add ``.values(...)``, or execute it with a list of rows.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=list(keys) if keys is not None else None)


# The same form posted again within this time (a double click, a reload, a retried request) is a repeat,
# not a second message, exercise or invitation (rehab_bot.message, rehab_bot.library, rehab_bot.invite).
REPEAT_WINDOW = timedelta(minutes=10)


async def lock_row(session: AsyncSession, table: Table, row_id: int) -> None:
    """Take one row's write lock until the transaction ends: a no-op UPDATE of its id.

    PostgreSQL locks the row; SQLite takes its one write lock. Two transactions that each lock the
    row before reading it run one after the other, so the second sees what the first committed (a
    form posted twice, two staff saving at once). ``table``: a model's ``__table__``.
    """
    key = table.c.id
    await session.exec(update(table).where(key == row_id).values(id=key).execution_options(synchronize_session=False))


def upsert(
    dialect: str, table: Table, values: Mapping[str, Any], *, keys: Sequence[str], update: Sequence[str]
) -> Insert:
    """INSERT one row, or UPDATE the columns in update of the row with the same keys (ON CONFLICT DO UPDATE)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .values(**values)
        .on_conflict_do_update(index_elements=list(keys), set_={column: values[column] for column in update})
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # NORMAL is durable in WAL mode across application crashes; only an OS
    # crash or power loss can lose the last transactions.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pg_schema: str | None = None,
    pre_ping: bool = True,
    pool_size: int = 20,
    custom_plans: bool = False,
) -> AsyncEngine:
    """Create the async engine; make the SQLite file's folder if needed.

    pg_schema puts every table of a PostgreSQL database in that schema (via
    search_path), so several bots (or test runs) can share one database.
    pre_ping, pool_size and custom_plans apply to PostgreSQL; custom_plans
    has the server plan each statement for its own values and the tables'
    present size, never from a generic plan cached earlier (see Database).
    """
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            # Health data at rest: the folder 0700 when the bot makes it, the
            # file 0600 (created so, or narrowed if it was wider); SQLite
            # gives the -wal and -shm files the database file's mode.
            private_dir(path.parent)
            touch_private(path)
            for suffix in ("-wal", "-shm"):
                make_private(path.with_name(path.name + suffix))
        # An error's message carries the statement's bound values (a note's
        # text, a Telegram id) unless hidden; tracebacks are logged. [database]
        # echo is the one switch that shows them (it warns at start).
        engine = create_async_engine(url, echo=echo, hide_parameters=not echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    server_settings: dict[str, str] = {}
    if pg_schema is not None:
        server_settings["search_path"] = pg_schema
    if custom_plans:
        server_settings["plan_cache_mode"] = "force_custom_plan"
    connect_args: dict[str, Any] = {"server_settings": server_settings} if server_settings else {}
    # At most 20 connections per process, as before, but all of them kept:
    # with 10 kept and 10 "overflow" ones, a send window (30 concurrent
    # renders) opened and closed a connection for about every other
    # reminder, which cost ~1.3 ms of CPU per reminder here and a backend
    # fork each time on the server (bench/, CPU per delivered reminder).
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=not echo,  # as for SQLite: no bound values in an error's message
        pool_pre_ping=pre_ping,
        pool_size=pool_size,
        max_overflow=0,
        connect_args=connect_args,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (no lazy reloads)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


# asyncpg also takes a password from the URL's query (?password=...).
_SECRET_QUERY_KEYS = ("password", "sslpassword")


def masked_url(url: str) -> str:
    """The database URL to show a person: its password masked, in the user part and in the query."""
    parsed = make_url(url)
    query = {key: "***" if key.lower() in _SECRET_QUERY_KEYS else value for key, value in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


class DatabaseUnreachable(Exception):
    """No connection to the database: no server, a wrong host, name or password, a file SQLite cannot open."""

    def __init__(self, url: str, cause: BaseException) -> None:
        self.where = masked_url(url)
        orig = getattr(cause, "orig", None) or cause
        self.reason = (getattr(orig, "strerror", None) or str(orig) or type(orig).__name__).splitlines()[0]
        super().__init__(f"cannot open the database at {self.where}: {self.reason}")


class DatabaseTooNew(Exception):
    """The database is at a migration this rehab-bot does not have: a newer version upgraded it."""

    def __init__(self, url: str, revision: str) -> None:
        from rehab_bot import __version__

        self.where = masked_url(url)
        self.revision = revision
        super().__init__(
            f"the database at {self.where} is at revision {revision!r}, which this rehab-bot ({__version__}) "
            "does not know: a newer rehab-bot has upgraded it. Run that version again, or restore a backup "
            "made before the upgrade"
        )


class Database:
    """The engine plus its session factory; one per process."""

    def __init__(self, url: str, *, echo: bool = False, pg_schema: str | None = None) -> None:
        self.url = url
        self.pg_schema = pg_schema
        self.engine = create_engine(url, echo=echo, pg_schema=pg_schema)
        self.sessions = session_factory(self.engine)
        # The reminder engine's own connections (rehab_bot.reminders): on PostgreSQL a small pool
        # without pre-ping, whose round trip before every checkout cost about 7% of a reminder's CPU.
        # The engine uses a connection at once and retries a statement once on a connection found
        # dead (after a database restart), which is what pre-ping would have caught. On SQLite
        # (no pre-ping, one writer) it is the same engine.
        #
        # Its statements are planned afresh each time (plan_cache_mode=force_custom_plan). asyncpg
        # prepares each statement once per connection, and after five runs PostgreSQL may keep a
        # generic plan for it, costed on the table as it was then. A burst starts with few session
        # rows and adds one per reminder: a plan fixed in its first windows read the session to bind
        # by its status index (every pending session) instead of its primary key, 4-6 ms per row at
        # 16,000 pending, and one process sent 210 msg/s instead of 500+ (bench/processes.py). A
        # custom plan costs the server a few tenths of a millisecond per statement.
        if is_sqlite(url):
            self.dispatch_engine = self.engine
        else:
            self.dispatch_engine = create_engine(
                url, echo=echo, pg_schema=pg_schema, pre_ping=False, pool_size=4, custom_plans=True
            )
        self.dispatch_sessions = session_factory(self.dispatch_engine)

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; the caller commits."""
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def dispatch_session(self) -> AsyncIterator[AsyncSession]:
        """A session on the reminder engine's connections (no pre-ping); the caller commits."""
        async with self.dispatch_sessions() as session:
            yield session

    async def upgrade(self) -> None:
        """Apply all migrations up to head; DatabaseUnreachable when no connection can be opened,
        DatabaseTooNew when a newer rehab-bot has migrated it further."""
        await self.check_reachable()
        await upgrade(self.engine)

    async def check_reachable(self) -> None:
        """Open a connection and ask a trivial query; DatabaseUnreachable (why, without the password) if not."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, TimeoutError, DBAPIError) as exc:
            raise DatabaseUnreachable(self.url, exc) from exc

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.dispatch_engine is not self.engine:
            await self.dispatch_engine.dispose()


T = TypeVar("T")


class NoDatabase(Exception):
    """A command that only reads was pointed at a SQLite file that does not exist (a mistyped path)."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


async def in_session(
    url: str, pg_schema: str | None, work: Callable[[AsyncSession], Awaitable[T]], *, create: bool = False
) -> T:
    """A command's one unit of work: open the database, bring it to head, run ``work`` in a session, commit, close.

    A SQLite file that does not exist is made (and migrated) only for a command that creates (``create``:
    adding staff, an invitation); one that reads raises NoDatabase instead of answering from a new,
    empty database at a mistyped path.
    """
    path = sqlite_path(url) if is_sqlite(url) else None
    if path is not None and not create and not path.exists():
        raise NoDatabase(path)
    db = Database(url, pg_schema=pg_schema or None)
    try:
        await db.upgrade()
        async with db.session() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await db.dispose()


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic config that points at the packaged migrations."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # New revisions are named by date, id and message (see "Adding a migration" in README.md).
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade_sync(connection: Connection, revision: str) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = alembic_config(connection)
    current = _current_sync(connection)
    if current is not None:
        # Alembic would fail with a traceback ("Can't locate revision ..."); say what it means.
        try:
            ScriptDirectory.from_config(config).get_revision(current)
        except CommandError as exc:
            raise DatabaseTooNew(connection.engine.url.render_as_string(), current) from exc
    command.upgrade(config, revision)


# Any constant will do; it names "rehab-bot migrations" among advisory locks.
_MIGRATION_LOCK = 7_324_211


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Run Alembic's upgrade on the given engine.

    Several processes may start at once against one PostgreSQL (a bot plus
    dispatch-only workers); a transaction-scoped advisory lock makes the
    others wait and then find nothing left to do. SQLite's write lock does
    the same there.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await _check_schema(conn)
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade_sync, revision)


async def _check_schema(conn: AsyncConnection) -> None:
    """[database] pg_schema must name a schema that exists: Alembic's first CREATE TABLE would otherwise
    fail with 'no schema has been selected to create in' and a traceback."""
    if (await conn.execute(text("SELECT current_schema()"))).scalar() is not None:
        return
    from rehab_bot.config import ConfigError

    schema = (await conn.execute(text("SHOW search_path"))).scalar()
    raise ConfigError(
        "database.pg_schema",
        f"is {schema}, which does not exist in that database",
        f'create it first (CREATE SCHEMA {schema};) or leave pg_schema "" for the public schema',
    )


def _current_sync(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first upgrade."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current_sync)


def backup_sqlite(source: Path, target: Path, *, progress: Callable[[int, int], None] | None = None) -> None:
    """Copy a live SQLite database with the online backup API (safe while running).

    The copy is health data: it is created 0600 in a folder made 0700.
    progress(pages_done, pages_total) is called as the copy advances.
    """
    private_dir(target.parent)
    touch_private(target)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            if progress is None:
                src.backup(dst)
            else:
                src.backup(dst, pages=256, progress=lambda _status, left, total: progress(total - left, total))
        finally:
            dst.close()
    finally:
        src.close()
