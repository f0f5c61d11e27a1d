"""Builders for test data: patients, staff and reminder rules in a real database."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import itertools
import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.engine import make_url

from rehab_bot.clock import FakeClock
from rehab_bot.config import Config, DatabaseConfig, DeliveryConfig, TelegramConfig
from rehab_bot.db import Database
from rehab_bot.models import Kind, Patient, PatientStatus, ReminderRule, Staff
from rehab_bot.reminders import DueMessage, Failed, Outcome, Retry, Sent, Unreachable, add_rule

PG_URL = os.environ.get("REHAB_BOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
# The schema of the test databases' tables (tests/conftest.py), reached as a bot configured with pg_schema does.
PG_TEST_SCHEMA = "rehab_test"


def photo(kind: str = "JPEG", *, gps: bool = False, size: tuple[int, int] = (40, 30)) -> bytes:
    """A real photo file as Pillow writes it; with gps, EXIF naming the camera and where it was taken."""
    image = Image.new("RGB", size, (180, 40, 40))
    exif = Image.Exif()
    if gps:
        exif[0x010F] = "PhoneMaker"
        exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    out = io.BytesIO()
    image.save(out, kind, exif=exif)
    return out.getvalue()


def has_exif(data: bytes) -> bool:
    """True when the image file carries any EXIF."""
    with Image.open(io.BytesIO(data)) as image:
        return len(image.getexif()) > 0


def raw_pg_url(url: str) -> str:
    """A SQLAlchemy asyncpg URL as asyncpg itself takes it."""
    return url.replace("postgresql+asyncpg", "postgresql")


def pg_database_url(name: str) -> str:
    """PG_URL with another database name."""
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def pg_connect(name: str) -> Any:
    """An asyncpg connection to the test database `name`, its tables (PG_TEST_SCHEMA) on the search path."""
    import asyncpg

    return await asyncpg.connect(raw_pg_url(pg_database_url(name)), server_settings={"search_path": PG_TEST_SCHEMA})


TEST_TOKEN = "123456789:AAE-test_SECRET_token_value_0123456"
# A Wednesday, 07:00 in Berlin (05:00 UTC): far from DST changes unless a test
# moves it, and before the usual morning slots.
T0 = datetime(2026, 6, 10, 5, 0, tzinfo=UTC)

_ids = itertools.count(1)

_pg_state: dict[str, Any] = {}


def _pg_available() -> bool:
    if "ok" not in _pg_state:
        import asyncpg

        async def probe() -> bool:
            try:
                conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg", "postgresql"), timeout=3)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                return False
            await conn.close()
            return True

        # A thread of its own: callers may already be inside an event loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            _pg_state["ok"] = pool.submit(asyncio.run, probe()).result()
    return bool(_pg_state["ok"])


def require_postgres() -> None:
    """Skip (or fail under CI=true) when PostgreSQL is not reachable."""
    if _pg_available():
        return
    message = f"PostgreSQL not reachable at {PG_URL}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the PostgreSQL tests must run)")
    pytest.skip(message)


def make_config(db_url: str = "sqlite+aiosqlite:///:memory:", **sections: Any) -> Config:
    """A valid Config for tests; pass e.g. delivery={"grace_period_minutes": 30}."""
    config = Config(
        telegram=TelegramConfig(token=TEST_TOKEN),
        database=DatabaseConfig(url=db_url),
        delivery=DeliveryConfig(quiet_hours_start=None, quiet_hours_end=None),
    )
    for name, values in sections.items():
        config = replace(config, **{name: replace(getattr(config, name), **values)})
    return config


async def make_staff(db: Database, *, role: str = "therapist", telegram_id: int | None = None, **kw: Any) -> Staff:
    staff = Staff(telegram_id=telegram_id or 9_000_000 + next(_ids), name=kw.pop("name", "Dr Test"), role=role, **kw)
    async with db.session() as session:
        session.add(staff)
        await session.commit()
        await session.refresh(staff)
    return staff


async def make_patient(
    db: Database,
    clock: FakeClock,
    *,
    times: tuple[str, ...] = ("09:00",),
    kind: Kind = Kind.SESSION,
    tz: str = "Europe/Berlin",
    status: PatientStatus = PatientStatus.ACTIVE,
    telegram_id: int | None = None,
    **kw: Any,
) -> tuple[Patient, list[ReminderRule]]:
    """An active patient with one daily rule per time, created at the clock's now (as invite.create does)."""
    n = next(_ids)
    kw.setdefault("created_at", clock.now())
    patient = Patient(
        alias=kw.pop("alias", f"P-{n:05d}"),
        telegram_id=telegram_id if telegram_id is not None else 1_000_000 + n,
        timezone=tz,
        status=status.value,
        **kw,
    )
    async with db.session() as session:
        session.add(patient)
        await session.flush()
        rules = [add_rule(session, patient, kind=kind, local_time=t, now=clock.now()) for t in times]
        await session.commit()
    return patient, rules


class FakeSender:
    """A Sender that records what it was asked to send and answers from a script."""

    def __init__(self) -> None:
        self.sent: list[DueMessage] = []
        self.calls: list[DueMessage] = []
        self.script: dict[int, list[Outcome]] = {}  # chat_id -> outcomes to return, in order
        self.message_ids = itertools.count(100)

    def fail(self, chat_id: int, *outcomes: Outcome) -> None:
        self.script.setdefault(chat_id, []).extend(outcomes)

    async def send(self, message: DueMessage) -> Outcome:
        self.calls.append(message)
        queue = self.script.get(message.chat_id)
        if queue:
            return queue.pop(0)
        self.sent.append(message)
        return Sent(next(self.message_ids))

    def keys(self) -> list[str]:
        return [m.key for m in self.sent]


def when(clock: FakeClock, at: datetime) -> datetime:
    clock.set(at)
    return at


__all__ = ["Failed", "FakeSender", "Retry", "Sent", "Unreachable", "make_patient", "make_staff", "when"]


async def seed_deliveries(db: Database, queued: int, finished: int, now: datetime) -> None:
    """`queued` session deliveries due over the hour before now and `finished` sent ones, in SQL
    (seconds for 100,000 rows, not minutes): for the claim's EXPLAIN test and bench/claim.py."""
    at = now.replace(tzinfo=None).isoformat(sep=" ")
    if db.dialect == "postgresql":
        series = "generate_series({first}, {last}) AS s(n)"
        due = f"TIMESTAMP '{at}' - (n % 3600) * interval '1 second'"
        when, false = f"TIMESTAMP '{at}'", "false"
    else:
        series = (
            "(WITH RECURSIVE s(n) AS (SELECT {first} UNION ALL SELECT n + 1 FROM s WHERE n < {last}) SELECT n FROM s)"
        )
        due = f"datetime('{at}', '-' || (n % 3600) || ' seconds')"
        when, false = f"'{at}'", "0"
    async with db.engine.begin() as conn:
        for status, first, last in (("queued", 1, queued), ("sent", queued + 1, queued + finished)):
            if last < first:
                continue
            sent_at = "NULL" if status == "queued" else when
            await conn.execute(
                text(
                    "INSERT INTO delivery (key, kind, priority, chat_id, slot, due_at, not_before, status, attempts, "
                    "late, body, payload, error, claimed_by, created_at, sent_at) "
                    f"SELECT 'k' || n, 'session', 10 + (n % 3) * 10, 1000 + n, '', {due}, {due}, '{status}', 0, "
                    f"{false}, '', '', '', '', {when}, {sent_at} FROM {series.format(first=first, last=last)}"
                )
            )
        await conn.execute(text("ANALYZE delivery" if db.dialect == "postgresql" else "ANALYZE"))
