"""The harness's pacing clock (pace_time in tests/e2e/conftest.py) still checks Telegram's limits.

The bot's pacer and the fake Bot API's flood limits run on one ScaledTime, 50
times as fast as real time: a bot that keeps one message a second per chat
passes in a fraction of the wall time, and one that sends faster still earns
429s from the server.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from rig.telegram_server import FakeTelegram
from telegram.error import RetryAfter

from rehab_bot.clock import ScaledTime
from rehab_bot.ratelimit import CHAT_MARGIN


async def test_the_bot_keeps_a_scaled_second_between_messages_to_one_chat(
    bot_factory: Callable[..., Any], tg: FakeTelegram, pace_time: ScaledTime
) -> None:
    bot = await bot_factory()
    tg.enforce_limits(global_per_second=30, per_chat_per_second=1)
    started = time.monotonic()
    for n in range(4):  # one after another, as a handler's replies go
        await bot.app.bot.send_message(4242, f"message {n}")
    real = time.monotonic() - started
    sends = [r for r in tg.calls("sendMessage") if r.chat_id == 4242]
    assert [r.ok for r in sends] == [True] * 4
    assert tg.limit_violations == 0 and tg.retry_after_breaches == 0
    times = sorted(r.time for r in sends)
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), times
    assert real < 3 * (1.0 + CHAT_MARGIN) / pace_time.scale + 1.0, f"{real:.2f} s of real time"


async def test_a_bot_that_sends_faster_than_one_a_second_into_a_chat_earns_429s(
    bot_factory: Callable[..., Any], tg: FakeTelegram
) -> None:
    bot = await bot_factory(delivery={"per_chat_interval": 0.02})  # 20 a second into one chat
    tg.enforce_limits(global_per_second=30, per_chat_per_second=1)
    results = await asyncio.gather(
        *(bot.app.bot.send_message(4243, f"message {n}") for n in range(4)), return_exceptions=True
    )
    assert tg.limit_violations >= 1, "the server measures on the same scaled clock as the pacer"
    assert all(isinstance(r, RetryAfter) for r in results if isinstance(r, BaseException)), results
