"""Real processes: two dispatchers on one PostgreSQL, and a SIGKILL mid-burst.

The bot runs as `rehab-bot run` in child processes, talking to the fake Bot
API server in this test process over 127.0.0.1, on the real clock; the
free-tier scenarios pace on a scaled clock that the processes and the server
share (REHAB_BOT_TEST_PACE_CLOCK), so Telegram's 30 msg/s hold in a tenth of
the wall time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import TEST_TOKEN, require_postgres
from rig.telegram_server import FakeTelegram
from sqlalchemy import insert, select

from rehab_bot.cli import PACE_CLOCK_ENV
from rehab_bot.clock import ScaledTime
from rehab_bot.db import Database
from rehab_bot.models import PRIORITY, Delivery, DeliveryStatus, Kind, Patient, ReminderRule

# A long scenario: `pytest -m "not slow"` leaves it out; .ci/run runs it.
# Wall-clock bounds and several processes: .ci/run runs these after the parallel pass, one at a time.
pytestmark = [pytest.mark.slow, pytest.mark.timing]

BIN = Path(sys.executable).parent / "rehab-bot"
# The free-tier scenarios' pace: 3,000 reminders at 30 msg/s take 100 s of the
# scaled clock. Each bot process's heartbeat (rehab_bot.send_budget) costs
# real milliseconds, which count this many times over on that clock: it must
# stay well inside JOIN_WAIT there. And a stall of the test process (both fake
# servers live in it) bunches the requests that arrive meanwhile onto one
# instant of that clock: at 10x a 0.1 s stall is a scaled second of requests
# taken at once, and both scenarios once got 10-14 x 429 at the same instant on
# an idle machine. At 2x the same stall is a fifth of that.
FREE_TIER_SCALE = float(os.environ.get("REHAB_BOT_TEST_FREE_TIER_SCALE", "2"))


async def seed_due(db: Database, n: int, first_chat: int = 50_000) -> None:
    """n active patients (UTC) whose one daily slot fell due a minute ago."""
    due = (datetime.now(UTC) - timedelta(minutes=1)).replace(second=0, microsecond=0)
    patients = Patient.__table__  # type: ignore[attr-defined]
    rules = ReminderRule.__table__  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(patients),
            [
                {
                    "id": i + 1,
                    "alias": f"P{i:05d}",
                    "telegram_id": first_chat + i,
                    "language": "en",
                    "timezone": "UTC",
                    "status": "active",
                    "surgery_type": "lumbar",
                    "programme_id": "",
                    "consent_version": "",
                    "unreachable_reason": "",
                    "created_at": now,
                }
                for i in range(n)
            ],
        )
        await conn.execute(
            insert(rules),
            [
                {
                    "patient_id": i + 1, "kind": Kind.SESSION.value, "priority": PRIORITY[Kind.SESSION],
                    "local_time": due.strftime("%H:%M"), "days": "", "start_date": due.date(), "once": False,
                    "payload": "", "active": True, "next_due_at": due, "next_local_date": due.date(),
                    "created_at": now, "updated_at": now,
                }
                for i in range(n)
            ],
        )  # fmt: skip


def bot_env(tg: FakeTelegram, db: Database, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REHAB_BOT_")}
    env.update(
        REHAB_BOT_TELEGRAM_TOKEN=TEST_TOKEN,
        REHAB_BOT_TELEGRAM_BASE_URL=tg.base_url,
        REHAB_BOT_TELEGRAM_BASE_FILE_URL=tg.base_file_url,
        REHAB_BOT_DATABASE_URL=db.url,
        REHAB_BOT_DATABASE_PG_SCHEMA=db.pg_schema or "",
        REHAB_BOT_DELIVERY_QUIET_HOURS_START="",
        REHAB_BOT_DELIVERY_QUIET_HOURS_END="",
        REHAB_BOT_DELIVERY_POLL_INTERVAL="0.2",
        REHAB_BOT_LOGGING_LEVEL="WARNING",
        **extra,
    )
    return env


async def burst(tg: FakeTelegram, db: Database, n: int, *, rate: int, window: int, **extra: str) -> dict[str, str]:
    """n reminders due now, and a bot environment sending them at `rate` msg/s, `window` at a time."""
    await seed_due(db, n)
    tg.enforce_limits(global_per_second=300, per_chat_per_second=1)
    return bot_env(
        tg, db, REHAB_BOT_DELIVERY_PAID_BROADCAST="true", REHAB_BOT_DELIVERY_PAID_BROADCAST_RATE=str(rate),
        REHAB_BOT_DELIVERY_SEND_WINDOW=str(window), **extra,
    )  # fmt: skip


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    # stderr goes to a file: a pipe nobody reads until the end fills up and
    # blocks the child mid-burst.
    log = (cwd / f"bot-{len(list(cwd.glob('bot-*.log')))}.log").open("wb")
    proc = subprocess.Popen([str(BIN), *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log)
    proc.log_path = Path(log.name)  # type: ignore[attr-defined]
    log.close()
    return proc


def log_of(proc: subprocess.Popen[bytes]) -> str:
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


async def wait_for_sends(tg: FakeTelegram, count: int, limit_s: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while len([r for r in tg.calls("sendMessage") if r.ok]) < count:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"bot exited early: {log_of(proc)[-3000:]}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {len(tg.calls('sendMessage'))} of {count} sends after {limit_s}s")
        await asyncio.sleep(0.2)


async def stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.to_thread(proc.wait), 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return log_of(proc)[-3000:]


async def test_two_dispatch_processes_on_postgres_send_10000_exactly_once(
    tg: FakeTelegram, database_factory: Any, tmp_path: Path
) -> None:
    require_postgres()
    db: Database = await database_factory("postgres")
    n = 10_000
    await seed_due(db, n)
    # Paid broadcasts at 450/s, enforced at 450/s by the fake server: together the two stay within it.
    tg.enforce_limits(global_per_second=450, per_chat_per_second=1)
    env = bot_env(
        tg, db, REHAB_BOT_DELIVERY_PAID_BROADCAST="true", REHAB_BOT_DELIVERY_PAID_BROADCAST_RATE="450",
        REHAB_BOT_DELIVERY_SEND_WINDOW="100",
    )  # fmt: skip
    procs = [spawn(["run", "--no-updates"], env, tmp_path) for _ in range(2)]
    try:
        await wait_for_sends(tg, n, 240, procs)
        await asyncio.sleep(1.0)  # anything extra would show up now
    finally:
        logs = [await stop(p) for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    per_chat = Counter(r.chat_id for r in tg.calls("sendMessage") if r.ok)
    assert len(per_chat) == n and set(per_chat.values()) == {1}, "each reminder exactly once"
    async with db.engine.connect() as conn:
        table = Delivery.__table__  # type: ignore[attr-defined]
        rows = (await conn.execute(select(table.c.status, table.c.claimed_by))).all()
    assert Counter(r.status for r in rows) == {DeliveryStatus.SENT.value: n}
    workers = Counter(r.claimed_by for r in rows)
    assert len(workers) == 2 and min(workers.values()) > n // 10, workers
    assert tg.limit_violations == 0


async def test_sigkill_mid_burst_loses_at_most_one_window_and_duplicates_nothing(
    tg: FakeTelegram, database_factory: Any, tmp_path: Path
) -> None:
    db: Database = await database_factory("sqlite")
    n, window = 3_000, 30
    env = await burst(tg, db, n, rate=250, window=window, REHAB_BOT_DELIVERY_SENDING_LEASE_SECONDS="1")
    first = spawn(["run"], env, tmp_path)
    try:
        await wait_for_sends(tg, 1_000, 60, [first])
    finally:
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
    assert first.returncode == -signal.SIGKILL
    delivered_before = len(tg.calls("sendMessage"))
    assert delivered_before < n, "the kill must land mid-burst"
    await asyncio.sleep(1.5)  # past the sending lease
    second = spawn(["run"], env, tmp_path)
    try:
        async with db.engine.connect() as conn:
            table = Delivery.__table__  # type: ignore[attr-defined]
            for _ in range(600):
                pending = (
                    await conn.execute(
                        select(table.c.id).where(
                            table.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value])
                        )
                    )
                ).all()
                count = (await conn.execute(select(table.c.id))).all()
                if not pending and len(count) == n:
                    break
                await asyncio.sleep(0.2)
            rows = (await conn.execute(select(table.c.status, table.c.chat_id))).all()
    finally:
        log = await stop(second)
    assert second.returncode == 0, log
    per_chat = Counter(r.chat_id for r in tg.calls("sendMessage") if r.ok)
    assert max(per_chat.values()) == 1, "no reminder went out twice"
    statuses = Counter(r.status for r in rows)
    unknown = {r.chat_id for r in rows if r.status == DeliveryStatus.UNKNOWN.value}
    assert set(statuses) <= {DeliveryStatus.SENT.value, DeliveryStatus.UNKNOWN.value}, statuses
    assert statuses[DeliveryStatus.SENT.value] + len(unknown) == n
    # In flight at the kill: at most one send window, recorded as unknown, never re-sent.
    print("SIGKILL outcome:", dict(statuses), "delivered before kill:", delivered_before)
    assert len(unknown) <= window, statuses
    lost = unknown - set(per_chat)
    assert len(lost) <= window
    assert len(per_chat) >= n - window


async def test_sigterm_mid_burst_stops_within_seconds_and_leaves_nothing_in_doubt(
    tg: FakeTelegram, database_factory: Any, tmp_path: Path
) -> None:
    """A clean stop (docker stop, systemd) mid-burst: claims stop, in-flight sends are recorded, the rest wait."""
    db: Database = await database_factory("sqlite")
    n, window = 3_000, 30
    env = await burst(tg, db, n, rate=100, window=window)
    first = spawn(["run"], env, tmp_path)
    try:
        await wait_for_sends(tg, 300, 60, [first])
    except BaseException:
        first.kill()
        raise
    started = asyncio.get_running_loop().time()
    log = await stop(first)
    took = asyncio.get_running_loop().time() - started
    assert first.returncode == 0, log
    # Docker waits 10 s before SIGKILL; the burst had about 27 s left to run.
    assert took < 8, f"SIGTERM took {took:.1f} s"
    table = Delivery.__table__  # type: ignore[attr-defined]
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(table.c.status, table.c.chat_id))).all()
    statuses = Counter(r.status for r in rows)
    sent_before = {r.chat_id for r in tg.calls("sendMessage") if r.ok}
    print("SIGTERM after", len(sent_before), "sends, in", f"{took:.2f} s:", dict(statuses))
    assert len(sent_before) < n, "the stop must land mid-burst"
    assert statuses[DeliveryStatus.SENDING.value] == 0 and statuses[DeliveryStatus.UNKNOWN.value] == 0, statuses
    assert {r.chat_id for r in rows if r.status == DeliveryStatus.SENT.value} == sent_before

    # The rest goes out at the rate the fake server allows (300/s), not the first process's 100/s:
    # the restart is what is checked here, not the pace (about 18 s less of waiting).
    second = spawn(["run"], {**env, "REHAB_BOT_DELIVERY_PAID_BROADCAST_RATE": "300"}, tmp_path)
    try:
        await wait_for_sends(tg, n, 120, [second])
    finally:
        log = await stop(second)
    assert second.returncode == 0, log
    per_chat = Counter(r.chat_id for r in tg.calls("sendMessage") if r.ok)
    assert len(per_chat) == n and max(per_chat.values()) == 1, "every reminder exactly once across the restart"


async def share_the_free_tier(tg: FakeTelegram, db: Database, cwd: Path, processes: int, pace: ScaledTime) -> None:
    """Free tier, Telegram's limits enforced (30/s for the bot, 1/s per chat): 3,000 reminders, 0 × 429, once each.

    The processes join one after another while the burst runs, so the shares
    change under load; each paces at 30/n once it has seen the others. Bots
    and server keep the limits on ``pace``, the server's clock, which the
    processes share through REHAB_BOT_TEST_PACE_CLOCK.
    """
    n = 3_000
    await seed_due(db, n)
    tg.enforce_limits(global_per_second=30, per_chat_per_second=1)
    env = bot_env(tg, db, REHAB_BOT_TEST_PACE_CLOCK=pace.shared())
    procs = [spawn(["run", "--no-updates"], env, cwd)]
    try:
        for k in range(1, processes):
            await wait_for_sends(tg, 60 * k, 60, procs)
            procs.append(spawn(["run", "--no-updates"], env, cwd))
        # As generous as in real time: on a busy machine the processes fall behind the scaled clock.
        await wait_for_sends(tg, n, n / 30 + 60, procs)
        await asyncio.sleep(1.0)  # anything extra would show up now
    finally:
        logs = [await stop(p) for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    assert all(f"{PACE_CLOCK_ENV} is set" in log for log in logs), logs
    sends = tg.calls("sendMessage")
    rejected = [r for r in sends if r.response_status == 429]
    assert not rejected and tg.limit_violations == 0, f"{len(rejected)} × 429 with {processes} processes"
    per_chat = Counter(r.chat_id for r in sends if r.ok)
    assert len(per_chat) == n and set(per_chat.values()) == {1}, "each reminder exactly once"
    async with db.engine.connect() as conn:
        table = Delivery.__table__  # type: ignore[attr-defined]
        rows = (await conn.execute(select(table.c.status, table.c.claimed_by))).all()
    assert Counter(r.status for r in rows) == {DeliveryStatus.SENT.value: n}
    assert len(Counter(r.claimed_by for r in rows)) == processes, "every process sent its part"
    # On the scaled clock the budget is used, not undercut: n at 30/s take n / 30 scaled seconds.
    times = sorted(r.time for r in sends if r.ok)
    span = times[-1] - times[0]
    print(f"free tier, {processes} processes at {pace.scale:g}x: {n} sends in {span:.1f} scaled s ({n / span:.1f}/s)")


# .ci/run runs it alone, like every timing test: beside the flood tests (tests/e2e/test_flood.py) the
# start of its 5 bot processes pushed their reply latency past its bound; beside the paid-rate bursts
# above, their load would stall the fake servers' clock.
@pytest.mark.paced
async def test_processes_share_the_free_tier_budget_without_a_429(database_factory: Any, tmp_path: Path) -> None:
    """share_the_free_tier with 2 and with 3 processes, both at once.

    Each scenario has its own fake Bot API server (its own limits and
    counts) and its own database (its own budget rows), so neither sees the
    other; at 30 msg/s each, running them side by side halves the wait
    (each takes at least 100 s of the scaled clock, 50 s at 2x) without
    changing what either asserts.
    """
    require_postgres()
    pace = ScaledTime(FREE_TIER_SCALE)
    tg2 = FakeTelegram(token=TEST_TOKEN, monotonic=pace.monotonic)
    tg3 = FakeTelegram(token=TEST_TOKEN, monotonic=pace.monotonic)
    async with tg2, tg3:
        scenarios = []
        for processes, tg in ((2, tg2), (3, tg3)):
            db: Database = await database_factory("postgres", name=f"share{processes}")
            cwd = tmp_path / f"{processes}-processes"
            cwd.mkdir()
            scenarios.append(share_the_free_tier(tg, db, cwd, processes, pace))
        outcomes = await asyncio.gather(*scenarios, return_exceptions=True)
    failed = [o for o in outcomes if isinstance(o, Exception)]
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise ExceptionGroup("both free-tier scenarios failed", failed)
