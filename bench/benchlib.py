"""Shared pieces of the benchmarks: databases, bulk data, configs, the fake server process."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))  # the fake Bot API server lives in tests/rig

from rehab_bot.config import (  # noqa: E402
    ClinicConfig,
    Config,
    DatabaseConfig,
    DeliveryConfig,
    LoggingConfig,
    TelegramConfig,
)
from rehab_bot.db import Database  # noqa: E402
from rehab_bot.models import PRIORITY, Kind, Patient, PatientStatus, ReminderRule  # noqa: E402

TOKEN = "123456789:AAE-bench_SECRET_token_value_0123456"
PG_URL = os.environ.get("REHAB_BOT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
TZ = "Europe/Berlin"
PATIENTS: Any = Patient.__table__  # type: ignore[attr-defined]
RULES: Any = ReminderRule.__table__  # type: ignore[attr-defined]
FIRST_CHAT = 10_000_000
PROGRAMME, PHASE = "lumbar-example", "weeks-1-2"


# --- results -------------------------------------------------------------------


@dataclass
class Figure:
    """One row of RESULTS.md."""

    measure: str
    backend: str
    value: float | None
    unit: str
    target: str = ""
    passed: bool | None = None  # None: informational, no target
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        precision = 3 if abs(self.value) < 10 else 1
        return f"{self.value:.{precision}f} {self.unit}".strip()


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        mark = {True: "PASS", False: "FAIL", None: "info"}[figure.passed]
        target = f" (target {figure.target})" if figure.target else ""
        print(f"  [{mark}] {figure.measure} [{figure.backend}]: {figure.shown()}{target} {figure.note}", flush=True)
        return figure


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    import aiohttp
    import sqlalchemy
    import telegram

    return {
        "cpu": f"{cpu} ({os.cpu_count()} logical cores)",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": f"python-telegram-bot {telegram.__version__}, aiohttp {aiohttp.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}",
    }


def proc_status(pid: int, key: str) -> int | None:
    """A kB figure (VmHWM, VmRSS) of a live process from /proc, in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# --- databases -----------------------------------------------------------------


@dataclass
class BenchDatabase:
    """A fresh database for one measurement: a SQLite file or a PostgreSQL schema."""

    kind: str
    url: str
    pg_schema: str = ""
    db: Database | None = None

    async def open(self) -> Database:
        if self.kind == "postgres":
            await _pg_execute(f'CREATE SCHEMA "{self.pg_schema}"')
        self.db = Database(self.url, pg_schema=self.pg_schema or None)
        await self.db.upgrade()
        return self.db

    async def close(self) -> None:
        if self.db is not None:
            await self.db.dispose()
            self.db = None
        if self.kind == "postgres":
            await _pg_execute(f'DROP SCHEMA IF EXISTS "{self.pg_schema}" CASCADE')

    def config(self) -> DatabaseConfig:
        return DatabaseConfig(url=self.url, pg_schema=self.pg_schema)


def new_database(kind: str, workdir: Path, label: str) -> BenchDatabase:
    if kind == "sqlite":
        path = workdir / f"{label}-{uuid.uuid4().hex[:6]}.db"
        return BenchDatabase("sqlite", f"sqlite+aiosqlite:///{path}")
    return BenchDatabase("postgres", PG_URL, pg_schema=f"bench_{label}_{uuid.uuid4().hex[:8]}")


async def _pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def postgres_available() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg", "postgresql"), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def _our_postgres_client_ports() -> set[int]:
    """Local ports of this process's TCP connections to port 5432."""
    inodes: set[str] = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[9] in inodes and parts[2].endswith(":1538"):  # 0x1538 = 5432
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


async def postgres_backend_cpu(db: Database) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving this process, by pid.

    Asks through the bot's own pool, so it needs no extra connection.
    """
    from sqlalchemy import bindparam, text

    ports = sorted(_our_postgres_client_ports())
    if not ports:
        return {}
    query = text("SELECT pid FROM pg_stat_activity WHERE client_port IN :ports").bindparams(
        bindparam("ports", expanding=True)
    )
    async with db.engine.connect() as conn:
        pids = (await conn.execute(query, {"ports": ports})).scalars().all()
    cpu = {int(pid): process_cpu(int(pid)) for pid in pids}
    return {pid: seconds for pid, seconds in cpu.items() if seconds is not None}


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process so far, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


# --- bulk data -------------------------------------------------------------------


def _complete(table: Any, row: dict[str, Any]) -> dict[str, Any]:
    """Fill the columns a row leaves out with the model's defaults (for COPY)."""
    out: dict[str, Any] = {}
    for column in table.c:
        if column.name in row:
            out[column.name] = row[column.name]
        elif column.primary_key:
            continue
        elif column.default is not None and column.default.is_scalar:
            out[column.name] = column.default.arg
        elif column.default is not None and column.default.is_callable:
            out[column.name] = column.default.arg({})
        else:
            out[column.name] = None
    return out


async def bulk_insert(db: Database, table: Any, rows: Iterable[dict[str, Any]], chunk: int = 20_000) -> None:
    """Insert many rows fast: COPY on PostgreSQL, executemany on SQLite. Not measured."""
    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        if not batch:
            return
        async with db.engine.begin() as conn:
            if db.dialect == "postgresql":
                full = [_complete(table, r) for r in batch]
                columns = list(full[0])
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection
                assert driver is not None
                await driver.copy_records_to_table(
                    table.name,
                    records=[tuple(_pg_value(r[c]) for c in columns) for r in full],
                    columns=columns,
                    schema_name=db.pg_schema,
                )
            else:
                await conn.execute(table.insert(), batch)
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            await flush()
    await flush()
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            from sqlalchemy import text

            await conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT max(id) FROM {table.name}))")
            )
            await conn.execute(text(f"ANALYZE {table.name}"))


def _pg_value(value: Any) -> Any:
    # UTCDateTime stores naive UTC; COPY bypasses the type decorator.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


async def populate(
    db: Database,
    *,
    patients: int,
    slots: Sequence[str] = ("09:00",),
    due_now: int,
    now: datetime,
    first_chat: int = FIRST_CHAT,
    seed: int = 1,
) -> None:
    """Enrolled, active patients with one daily session rule per slot.

    The first slot of the first ``due_now`` patients is due a few seconds
    ago; every other rule is scheduled for its next local slot after now,
    which is what the engine itself would have stored.
    """
    rng = random.Random(seed)
    zone = ZoneInfo(TZ)
    local_now = now.astimezone(zone)
    today = local_now.date()
    await bulk_insert(
        db,
        PATIENTS,
        (
            {
                "id": i + 1,
                "alias": f"B{i + 1:07d}",
                "telegram_id": first_chat + i,
                "language": "en",
                "timezone": TZ,
                "status": PatientStatus.ACTIVE.value,
                "quiet_start": "",
                "quiet_end": "",
                # Enrolled in the shipped example programme, ten days after
                # surgery: the session reminders list that phase's exercises.
                "programme_id": PROGRAMME,
                "surgery_date": today - timedelta(days=10),
                "phase_id": PHASE,
                "session_times": ",".join(slots),
                "enrol_step": "done",
                "consent_at": now,
                "created_at": now,
            }
            for i in range(patients)
        ),
    )

    def rules() -> Iterable[dict[str, Any]]:
        rule_id = 0
        for i in range(patients):
            for index, slot in enumerate(slots):
                rule_id += 1
                if i < due_now and index == 0:
                    due = now - timedelta(seconds=rng.uniform(1, 30))
                    local = due.astimezone(zone)
                    local_time, local_date = local.strftime("%H:%M"), local.date()
                else:
                    local_time = slot
                    hour, minute = map(int, slot.split(":"))
                    when = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
                    if when <= local_now:
                        when += timedelta(days=1)
                    due, local_date = when.astimezone(UTC), when.date()
                yield {
                    "id": rule_id,
                    "patient_id": i + 1,
                    "kind": Kind.SESSION.value,
                    "priority": PRIORITY[Kind.SESSION],
                    "local_time": local_time,
                    "days": "",
                    "start_date": today - timedelta(days=1),
                    "once": False,
                    "payload": json.dumps({"session": index}),
                    "active": True,
                    "next_due_at": due,
                    "next_local_date": local_date,
                    "created_at": now,
                    "updated_at": now,
                }

    await bulk_insert(db, RULES, rules())


# --- configs -----------------------------------------------------------------------


def bot_config(base: str, database: DatabaseConfig, **delivery: Any) -> Config:
    """A valid Config pointing at the fake server at ``base`` (http://host:port)."""
    defaults: dict[str, Any] = {"quiet_hours_start": None, "quiet_hours_end": None}
    return Config(
        clinic=ClinicConfig(name="Bench clinic", timezone=TZ),
        telegram=TelegramConfig(token=TOKEN, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot"),
        database=database,
        delivery=replace(DeliveryConfig(), **{**defaults, **delivery}),
        logging=LoggingConfig(level="WARNING"),
    )


def config_toml(config: Config) -> str:
    """The TOML file `rehab-bot run --config` reads for ``config``."""
    d = config.delivery
    lines = [
        "[clinic]",
        f'name = "{config.clinic.name}"',
        f'timezone = "{config.clinic.timezone}"',
        "[telegram]",
        f'token = "{config.telegram.token}"',
        f'base_url = "{config.telegram.base_url}"',
        f'base_file_url = "{config.telegram.base_file_url}"',
        f'http_client = "{config.telegram.http_client}"',
        "[database]",
        f'url = "{config.database.url}"',
        f'pg_schema = "{config.database.pg_schema}"',
        "[delivery]",
        f"global_rate = {d.global_rate}",
        f"paid_broadcast = {str(d.paid_broadcast).lower()}",
        f"paid_broadcast_rate = {d.paid_broadcast_rate}",
        f"poll_interval = {d.poll_interval}",
        'quiet_hours_start = ""',
        'quiet_hours_end = ""',
        "[logging]",
        f'level = "{config.logging.level}"',
    ]
    return "\n".join(lines) + "\n"


# --- the fake server in its own process -------------------------------------------------


class FakeServerProcess:
    """bench/fake_server.py as a subprocess; one JSON command and answer per line."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.pid = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeServerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BENCH / "fake_server.py"),
            "--token",
            TOKEN,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        hello = await self._read()
        self.port, self.pid = int(hello["port"]), int(hello["pid"])
        return self

    async def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake server process exited")
        result: dict[str, Any] = json.loads(line)
        return result

    async def call(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **kwargs}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.call("quit"), 5)
                await asyncio.wait_for(self.proc.wait(), 5)
            except (TimeoutError, RuntimeError, BrokenPipeError, ConnectionResetError):
                self.proc.kill()
                await self.proc.wait()
        self.proc = None

    async def __aenter__(self) -> FakeServerProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
