"""Processes that send for one bot share its rate and its 429s through PostgreSQL (rehab_bot.send_budget)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from factories import T0, FakeSender, require_postgres
from sqlalchemy import insert

from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, DeliveryConfig
from rehab_bot.db import Database
from rehab_bot.models import Delivery
from rehab_bot.ratelimit import Pacer
from rehab_bot.reminders import Dispatcher
from rehab_bot.send_budget import HEARTBEAT, JOIN_WAIT, SendBudget


async def test_the_rate_is_split_among_live_processes_and_given_back_on_stop(database_factory: Any) -> None:
    require_postgres()
    db: Database = await database_factory("postgres")
    first, second, third = (SendBudget(db, Pacer(30), 30, holder=name) for name in ("a", "b", "c"))
    try:
        await first.start()
        assert first.share == 30 and first.pacer.interval == 1 / 30
        assert first.pacer.chat_ready_in(1) == 0, "alone, the first sends at once"
        await second.start()
        # The newcomer saw the first, so it waits until the first has lowered its share.
        assert second.processes == 2 and second.share == 15
        assert second.pacer._global_blocked_until - second.pacer._monotonic() > JOIN_WAIT - 0.2
        await first.heartbeat()
        assert first.share == 15 and abs(first.pacer.interval - 1 / 15) < 1e-9
        await third.start()
        await first.heartbeat()
        await second.heartbeat()
        assert {b.share for b in (first, second, third)} == {10}
        await third.stop()
        await first.heartbeat()
        assert first.share == 15
    finally:
        for budget in (first, second, third):
            await budget.stop()
            await budget.pacer.close()


async def test_a_429_in_one_process_holds_that_scope_in_the_others(database_factory: Any) -> None:
    require_postgres()
    db: Database = await database_factory("postgres")
    one, other = SendBudget(db, Pacer(30), 30, holder="one"), SendBudget(db, Pacer(30), 30, holder="other")
    try:
        await one.start()
        await other.start()
        one.pacer.block_chat(4242, 3.0)  # as PacingRateLimiter does on a 429 for that chat
        one.pacer.block_all(2.0)  # and on one without a chat
        for _ in range(50):  # written in the background
            await asyncio.sleep(0.02)
            if one._publisher is not None and one._publisher.done():
                break
        before = other.pacer._global_blocked_until
        await other.heartbeat()
        assert other.pacer.chat_ready_in(4242) > 2.5
        assert other.pacer.chat_ready_in(4243) < 1.5, "another chat is held only by the global block"
        assert other.pacer._global_blocked_until > before
        assert other.pacer._global_blocked_until - other.pacer._monotonic() > 1.5
    finally:
        for budget in (one, other):
            await budget.stop()
            await budget.pacer.close()


async def test_a_chat_another_process_is_sending_to_is_left_for_later(database_factory: Any) -> None:
    """The per-chat interval across processes: B does not claim for a chat A has in flight; A may (its pacer spaces)."""
    require_postgres()
    db: Database = await database_factory("postgres")
    table = Delivery.__table__  # type: ignore[attr-defined]
    due = T0 - timedelta(minutes=1)
    row = {
        "kind": "session", "priority": 10, "slot": "", "due_at": due, "not_before": due, "status": "queued",
        "attempts": 0, "late": False, "body": "", "payload": "", "error": "", "claimed_by": "", "claimed_at": None,
        "created_at": due,
    }  # fmt: skip
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(table),
            [
                {**row, "key": "x1", "chat_id": 7, "status": "sending", "claimed_by": "a", "claimed_at": due},
                {**row, "key": "x2", "chat_id": 7},
                {**row, "key": "y1", "chat_id": 8},
            ],
        )

    def dispatcher(worker: str) -> Dispatcher:
        return Dispatcher(db, FakeClock(T0), DeliveryConfig(), ClinicConfig(), FakeSender(), worker_id=worker)

    taken_by_b = await dispatcher("b").claim(T0, 30)
    assert [m.chat_id for m in taken_by_b] == [8]
    taken_by_a = await dispatcher("a").claim(T0, 30)
    assert [m.chat_id for m in taken_by_a] == [7]


async def test_the_heartbeat_waits_on_the_pacers_clock(database_factory: Any) -> None:
    """Beats on the clock JOIN_WAIT runs on: with a scaled pacer (REHAB_BOT_TEST_PACE_CLOCK) both scale together."""
    require_postgres()
    db: Database = await database_factory("postgres")
    waits: list[float] = []

    async def pacer_sleep(seconds: float) -> None:  # the pacer's clock, 100 times as fast as real time
        waits.append(seconds)
        await asyncio.sleep(seconds / 100)

    first = SendBudget(db, Pacer(30, sleep=pacer_sleep), 30, holder="first")
    second = SendBudget(db, Pacer(30), 30, holder="second")
    try:
        await first.start()
        await second.start()
        for _ in range(500):
            if first.share == 15:
                break
            await asyncio.sleep(0.01)
        assert first.share == 15, "the first saw the second join"
        assert HEARTBEAT in waits, waits
    finally:
        for budget in (first, second):
            await budget.stop()
            await budget.pacer.close()
