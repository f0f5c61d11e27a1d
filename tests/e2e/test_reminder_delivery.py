"""The reminder engine through the real bot and the fake Bot API, with Telegram's errors."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram, chat_not_found, retry_after, server_error, timeout
from sqlmodel import select

from rehab_bot.models import Alert, Delivery, DeliveryStatus, Patient, PatientStatus

NINE = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)  # 09:00 in Berlin


async def rows(bot: Any) -> list[Delivery]:
    async with bot.db.session() as session:
        return list((await session.exec(select(Delivery).order_by(Delivery.id))).all())  # type: ignore[arg-type]


async def test_due_reminder_reaches_the_patient_once(bot: Any, tg: FakeTelegram) -> None:
    await make_patient(bot.db, bot.clock, times=("09:00",), telegram_id=1001)
    user = tg.user(1001)
    bot.clock.set(NINE + timedelta(seconds=2))
    await bot.tick()
    [message] = await user.wait_for()
    assert "09:00" in message.text
    await bot.tick()
    await user.expect_silence(0.3)
    [row] = await rows(bot)
    assert row.status == DeliveryStatus.SENT and row.message_id == message.message_id


async def test_429_waits_retry_after_for_that_chat_then_delivers(bot: Any, tg: FakeTelegram) -> None:
    await make_patient(bot.db, bot.clock, times=("09:00",), telegram_id=1002)
    await make_patient(bot.db, bot.clock, times=("09:00",), telegram_id=1003)
    tg.inject("sendMessage", chat_id=1002, error=retry_after(2), times=1)
    bot.clock.set(NINE + timedelta(seconds=2))
    await bot.tick()
    assert len(tg.user(1003).messages) == 1, "other chats are not held up"
    first = await rows(bot)
    held = next(r for r in first if r.chat_id == 1002)
    assert held.status == DeliveryStatus.QUEUED and held.attempts == 0
    assert held.not_before == bot.clock.now() + timedelta(seconds=2)
    bot.clock.advance(2)
    # The engine's clock says go, but Telegram's real 2 s have not passed: the
    # pacer still holds the chat, so the retry waits instead of breaching.
    await bot.tick()
    assert len(tg.user(1002).messages) == 1
    assert tg.retry_after_breaches == 0


async def test_blocked_user_is_paused_and_therapist_alerted_once(bot: Any, tg: FakeTelegram) -> None:
    therapist = await make_staff(bot.db, telegram_id=2001)
    patient, _ = await make_patient(
        bot.db, bot.clock, times=("09:00", "12:00"), telegram_id=1004, therapist_id=therapist.id
    )
    tg.blocked_users.add(1004)
    doc = tg.user(2001)
    bot.clock.set(NINE + timedelta(seconds=2))
    await bot.tick()
    [alert] = await doc.wait_for()
    assert patient.alias in alert.text and "blocked" in alert.text.lower()
    for _ in range(3):
        bot.clock.advance(timedelta(hours=4))
        await bot.tick()
    assert len(tg.calls("sendMessage")) == 2, "one try to the patient, one alert: no retries"
    async with bot.db.session() as session:
        p = await session.get(Patient, patient.id)
        alerts = (await session.exec(select(Alert))).all()
    assert p is not None and p.status == PatientStatus.UNREACHABLE and len(alerts) == 1


async def test_chat_not_found_is_unreachable_too(bot: Any, tg: FakeTelegram) -> None:
    await make_patient(bot.db, bot.clock, times=("09:00",), telegram_id=1005)
    tg.inject("sendMessage", chat_id=1005, error=chat_not_found(), times=None)
    bot.clock.set(NINE + timedelta(seconds=2))
    await bot.tick()
    [row] = await rows(bot)
    assert row.status == DeliveryStatus.FAILED and "chat not found" in row.error.lower()
    async with bot.db.session() as session:
        p = (await session.exec(select(Patient))).one()
    assert p.status == PatientStatus.UNREACHABLE


@pytest.mark.slow
async def test_5xx_and_timeouts_retry_with_backoff_and_deliver_once(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(delivery={"backoff_base_seconds": 1.0})
    await make_patient(bot.db, bot.clock, times=("09:00",), telegram_id=1006)
    await make_patient(bot.db, bot.clock, times=("09:00",), telegram_id=1007)
    tg.inject("sendMessage", chat_id=1006, error=server_error(502), times=2)
    tg.inject("sendMessage", chat_id=1007, error=timeout(30), times=1)
    bot.clock.set(NINE + timedelta(seconds=2))
    started = time.monotonic()
    for _ in range(6):
        await bot.tick()
        bot.clock.advance(10)
        await asyncio.sleep(0.5)  # let the real per-chat spacing pass
    assert time.monotonic() - started < 30
    assert len(tg.user(1006).messages) == 1
    assert len(tg.user(1007).messages) == 1
    by_chat = {r.chat_id: r for r in await rows(bot)}
    assert by_chat[1006].status == DeliveryStatus.SENT and by_chat[1006].attempts == 3
    assert by_chat[1007].status == DeliveryStatus.SENT and by_chat[1007].attempts == 2


async def test_other_400_is_recorded_with_reason(bot: Any, tg: FakeTelegram) -> None:
    from rig.telegram_server import bad_request

    await make_patient(bot.db, bot.clock, times=("09:00",), telegram_id=1008)
    tg.inject("sendMessage", chat_id=1008, error=bad_request("Bad Request: can't parse entities"), times=None)
    bot.clock.set(NINE + timedelta(seconds=2))
    await bot.tick()
    [row] = await rows(bot)
    assert row.status == DeliveryStatus.FAILED and "parse entities" in row.error


@pytest.mark.slow
@pytest.mark.realtime  # the reply races a burst in real seconds: its handling time is not scaled
async def test_patient_reply_overtakes_a_reminder_burst(bot_factory: Any, tg: FakeTelegram) -> None:
    # 150 reminders at 30 msg/s take 5 s. A patient's /help sent 1.5 s in must
    # be answered ahead of the rest of the burst, not after it. (The latency
    # figure itself is measured by bench/, not asserted here.)
    bot = await bot_factory(delivery={"global_rate": 30.0})
    tg.enforce_limits(global_per_second=30, per_chat_per_second=1)
    for i in range(150):
        await make_patient(bot.db, bot.clock, times=("09:00",), telegram_id=3000 + i)
    bot.clock.set(NINE + timedelta(seconds=2))
    burst = asyncio.create_task(bot.tick())
    await asyncio.sleep(1.5)
    user = tg.user(999)
    await user.send("/help")
    await user.wait_for(timeout=5)
    report = await burst
    assert report.sent == 150
    calls = tg.calls("sendMessage")
    replied_at = next(r.time for r in calls if r.chat_id == 999)
    after = sum(1 for r in calls if r.chat_id != 999 and r.time > replied_at)
    assert after >= 50, f"the reply waited behind the burst: only {after} reminders went out after it"
    assert tg.limit_violations == 0
