"""One person flooding the bot never holds up anybody else (issue 11), on SQLite and PostgreSQL.

The scenario of bench/flood.py, scaled down to keep CI short and held to
looser bounds: while a burst of reminders drains at Telegram's 30 msg/s
(the fake server enforcing 30/s overall and 1/s per chat), a stranger sends
300 messages in 10 s, other patients each send /help or press a button, and
one patient answers /pain with 8 (a red flag). Claims:

* the others are answered quickly (p95, max) and the red-flag advice comes
  at once;
* the flooder's first messages are handled, then one "slow down" notice,
  then nothing: the rest are dropped, counted by reason in the metrics;
* the burst still drains at the rate limit, every reminder exactly once;
* nothing accumulates: no chat locks or idle senders left behind.

With the old one-update-at-a-time processor the others waited minutes (each
of the flooder's replies took its chat's one-second turn inside the only
slot), so this test fails on it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest
from rig.telegram_server import FakeTelegram
from sqlalchemy import insert
from sqlalchemy.exc import OperationalError
from telegram import Update
from telegram.ext import TypeHandler
from test_checkins import enrolled, rows

from rehab_bot.models import PRIORITY, Alert, Answer, Kind, Patient, ReminderRule

# A long scenario: `pytest -m "not slow"` leaves it out; .ci/run runs it.
# Wall-clock bounds: .ci/run runs these after the parallel pass, beside only the free-tier budget
# scenario (tests/e2e/test_processes.py), which like them mostly waits on Telegram's pacing. (With a
# 360-reminder burst, 14 s, the drain ratio once reached 1.155 there: a second's delay counts for
# less in a 20-second drain.)
pytestmark = [pytest.mark.slow, pytest.mark.timing, pytest.mark.paced]

NINE = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)  # 09:00 Berlin
REMINDERS = 600  # 20 s at 30 msg/s
OTHERS = 100  # half send /help, half press a button
FLOOD = 300  # messages in FLOOD_SECONDS
FLOOD_SECONDS = 10.0
FLOODER = 66_666
RED_FLAG_PATIENT = 55_555
FIRST_OTHER = 70_000
FIRST_REMINDED = 300_000


async def seed_burst(bot: Any, n: int) -> None:
    """n active patients, each with a check-in due at 09:00 (ids clear of the ORM-made patient)."""
    now = bot.clock.now()
    async with bot.db.engine.begin() as conn:
        await conn.execute(
            insert(Patient.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": 10_000 + i, "alias": f"B{i:05d}", "telegram_id": FIRST_REMINDED + i, "language": "en",
                    "timezone": "Europe/Berlin", "status": "active", "surgery_type": "lumbar", "programme_id": "",
                    "consent_version": "", "unreachable_reason": "", "created_at": now, "enrol_step": "done",
                    "session_times": "09:00", "phase_id": "",
                }
                for i in range(n)
            ],
        )  # fmt: skip
        await conn.execute(
            insert(ReminderRule.__table__),  # type: ignore[attr-defined]
            [
                {
                    "patient_id": 10_000 + i, "kind": Kind.CHECKIN.value, "priority": PRIORITY[Kind.CHECKIN],
                    "local_time": "09:00", "days": "", "start_date": NINE.date(), "once": False, "payload": "",
                    "active": True, "next_due_at": NINE, "next_local_date": NINE.date(),
                    "created_at": now, "updated_at": now,
                }
                for i in range(n)
            ],
        )  # fmt: skip


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def test_a_flood_from_one_person_holds_up_nobody(bot_factory: Any, tg: FakeTelegram, backend: str) -> None:
    bot = await bot_factory(
        backend, delivery={"global_rate": 30.0}, inbound={"user_limit": 20, "user_window_seconds": 10.0}
    )
    # The red-flag patient first: the burst's rows are inserted with explicit ids.
    await enrolled(bot, RED_FLAG_PATIENT, schedule=False)
    # Each presser gets a message with a button first (limits not yet enforced).
    pressers = [tg.user(FIRST_OTHER + i) for i in range(0, OTHERS, 2)]
    for user in pressers:
        await bot.app.bot.send_message(user.user_id, "A message with a button", reply_markup=_ping())
    await seed_burst(bot, REMINDERS)
    tg.enforce_limits(global_per_second=30, per_chat_per_second=1)
    bot.clock.set(NINE + timedelta(seconds=1))

    burst = asyncio.create_task(bot.tick())
    await asyncio.sleep(1.0)  # the burst is under way
    began = time.monotonic()
    flooder = tg.user(FLOODER)

    async def flood() -> None:
        for i in range(FLOOD):
            await flooder.send(f"spam {i}")
            await asyncio.sleep(max(0.0, began + (i + 1) * FLOOD_SECONDS / FLOOD - time.monotonic()))

    latencies: list[float] = []
    unanswered: list[int] = []

    async def other(i: int) -> None:
        await asyncio.sleep(1.0 + i * (FLOOD_SECONDS - 1.0) / OTHERS)  # spread over the flood
        user = tg.user(FIRST_OTHER + i)
        user.mark_seen()
        asked = time.monotonic()
        try:
            if i % 2 == 0:
                await user.press_data("flood:ping")
                await user.wait_for_answer(timeout=8)
            else:
                await user.send("/help")
                await user.wait_for(timeout=8)
        except AssertionError:
            unanswered.append(i)
            return
        latencies.append(time.monotonic() - asked)

    async def red_flag() -> float:
        await asyncio.sleep(3.0)
        user = tg.user(RED_FLAG_PATIENT)
        await user.send("/pain")
        await user.wait_for(timeout=8)
        answered = time.monotonic()
        await user.press("8")
        await user.wait_for(lambda m: "Your pain is high" in (m.text or ""), timeout=8)
        return time.monotonic() - answered

    results = await asyncio.gather(flood(), red_flag(), *(other(i) for i in range(OTHERS)))
    red_flag_delay = results[1]
    report = await burst

    # The others and the red flag were answered at once, the flood notwithstanding.
    assert not unanswered, f"{len(unanswered)} of {OTHERS} patients got no answer within 8 s"
    p95, worst = percentile(latencies, 95), max(latencies)
    print(f"FLOOD [{backend}] others p95 {p95:.3f}s max {worst:.3f}s red flag {red_flag_delay:.3f}s")
    assert p95 <= 2.0 and worst <= 4.0, (p95, worst)
    assert red_flag_delay <= 3.0, red_flag_delay

    # The flooder: the first 20 handled, one notice, then silence.
    await asyncio.sleep(1.5)
    texts = flooder.texts()
    notices = [t for t in texts if "faster than I can answer" in t]
    assert len(notices) == 1 and texts[-1] == notices[0], texts[-3:]
    assert len(texts) == bot.config.inbound.user_limit + 1, len(texts)
    metrics = generate_latest(bot.services.metrics.registry).decode()
    dropped = FLOOD - bot.config.inbound.user_limit
    assert f'rehab_bot_updates_dropped_total{{reason="over_limit"}} {dropped:.1f}' in metrics

    # The burst drained at the limit, each reminder once.
    assert report.sent == REMINDERS
    sends = [r for r in tg.calls("sendMessage") if r.ok]
    reminded = Counter(r.chat_id for r in sends if r.chat_id is not None and r.chat_id >= FIRST_REMINDED)
    assert len(reminded) == REMINDERS and set(reminded.values()) == {1}
    times = sorted(r.time for r in sends if r.chat_id is not None and r.chat_id >= FIRST_REMINDED)
    first, last = times[0], times[-1]
    # Replies share Telegram's 30/s with the burst, so the ideal counts every message in the span.
    paced = [r for r in tg.requests if r.ok and r.chat_id is not None and r.method.startswith(("send", "edit"))]
    in_span = sum(1 for r in paced if first <= r.time <= last)
    ratio = (last - first) / (in_span / 30)
    print(f"FLOOD [{backend}] drain ratio {ratio:.3f} ({in_span} messages in {last - first:.1f}s)")
    assert ratio <= 1.15, ratio
    assert tg.limit_violations == 0

    # Nothing accumulates.
    processor = bot.app.update_processor
    assert processor.chats_tracked() == 0
    assert processor.limit.tracked() <= OTHERS + 3


def _ping() -> Any:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    return InlineKeyboardMarkup([[InlineKeyboardButton("Ping", callback_data="flood:ping")]])


async def test_forty_patients_answering_at_once_are_answered_together_and_lose_nothing(
    bot_factory: Any, tg: FakeTelegram, backend: str
) -> None:
    # Different chats are handled at the same time, on SQLite's single writer
    # too: every answer and alert is stored, and nobody waits for the others'
    # one-message-per-second pacing (one at a time, this took over 40 s).
    bot = await bot_factory(backend)
    tg.enforce_limits(global_per_second=30, per_chat_per_second=1)
    ids = [80_000 + i for i in range(40)]
    for telegram_id in ids:
        await enrolled(bot, telegram_id, schedule=False)
    users = [tg.user(telegram_id) for telegram_id in ids]

    async def answer(user: Any) -> None:
        await user.send("/pain")
        await user.wait_for(timeout=15)
        await user.press("8")
        await user.wait_for(lambda m: "Your pain is high" in (m.text or ""), timeout=15)

    started = time.monotonic()
    await asyncio.gather(*(answer(user) for user in users))
    took = time.monotonic() - started
    print(f"FLOOD [{backend}] 40 red flags at once answered in {took:.2f}s")
    assert took < 10, took
    answers = [a for a in await rows(bot, Answer) if a.value == 8]
    assert len(answers) == 40
    assert len({a.patient_id for a in await rows(bot, Alert)}) == 40
    assert tg.limit_violations == 0


async def test_a_locked_sqlite_database_is_retried_and_the_input_not_lost(bot: Any, tg: FakeTelegram) -> None:
    # SQLite waits 30 s for its write lock; should a handler still fail with
    # "database is locked", the update is handled again in its chat's turn,
    # not answered with "something went wrong".
    failures = {"left": 2}

    async def locked_twice(update: Any, context: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("UPDATE patient", {}, sqlite3.OperationalError("database is locked"))

    bot.app.add_handler(TypeHandler(Update, locked_twice), group=-100)
    user = tg.user(88_001)
    await user.send("/help")
    [reply] = await user.wait_for(timeout=5)
    assert "not for emergencies" in (reply.text or "")
    await user.expect_silence(1.0)
    assert failures["left"] == 0
    assert not any("Something went wrong" in t for t in user.texts())
