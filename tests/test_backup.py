"""Backups: SQLite's online backup while the bot writes; wipe; restore; every row is back."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from factories import FakeSender, make_patient, make_staff
from sqlalchemy import func, select, text
from sqlmodel import SQLModel

from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, DeliveryConfig
from rehab_bot.db import Database, backup_sqlite, sqlite_path
from rehab_bot.reminders import Dispatcher


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = (await conn.execute(select(table).order_by(*table.primary_key.columns))).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


async def test_backup_while_writing_then_wipe_and_restore(
    database_factory: Any, clock: FakeClock, tmp_path: Path
) -> None:
    db: Database = await database_factory("sqlite")
    therapist = await make_staff(db)
    for _ in range(40):
        await make_patient(db, clock, times=("09:00", "18:00"), therapist_id=therapist.id)
    dispatcher = Dispatcher(
        db, clock, DeliveryConfig(quiet_hours_start=None, quiet_hours_end=None), ClinicConfig(), FakeSender()
    )
    clock.advance(timedelta(hours=3))
    await dispatcher.tick()

    # Keep writing while the backup runs, as a live bot would.
    stop = asyncio.Event()

    async def writer() -> None:
        while not stop.is_set():
            clock.advance(timedelta(hours=1))
            await dispatcher.tick()
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.05)
    source = sqlite_path(db.url)
    assert source is not None
    backup = tmp_path / "backup.db"
    await asyncio.to_thread(backup_sqlite, source, backup)
    stop.set()
    await task

    # The backup is a consistent database; remember exactly what it holds.
    copy = Database(f"sqlite+aiosqlite:///{backup}")
    expected = await snapshot(copy)
    async with copy.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA integrity_check"))).scalar_one() == "ok"
    await copy.dispose()
    assert sum(len(v) for v in expected.values()) > 100
    assert expected["delivery"], "the backup must contain the engine's rows"

    # Wipe the live database completely, then restore the backup in its place.
    await db.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{source}{suffix}").unlink(missing_ok=True)
    assert not source.exists()
    shutil.copyfile(backup, source)
    restored = Database(db.url)
    await restored.upgrade()  # a restored database starts like any other
    assert await snapshot(restored) == expected
    async with restored.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(SQLModel.metadata.tables["patient"]))).scalar_one()
    assert count == 40
    await restored.dispose()
