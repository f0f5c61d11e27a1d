"""Generated updates through the real Application: nothing escapes, everything is answered or ignored."""

from __future__ import annotations

import logging
from typing import Any

import numpy  # noqa: F401 - see below
import pytest
from fuzz_strategies import CONTROL_USER, spread_users, updates
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rig.telegram_server import FakeTelegram

# A long scenario: `pytest -m "not slow"` leaves it out; .ci/run runs it.
pytestmark = pytest.mark.slow
# numpy is imported above, before the bot starts: the bot's chart warm-up imports it (through
# matplotlib) in a thread at start, and hypothesis, sampling meanwhile, reads a half-imported
# sys.modules["numpy"] ("partially initialized module 'numpy' has no attribute 'ndarray'").


async def drive(tg: FakeTelegram, batch: list[dict[str, Any]]) -> None:
    """Push a batch of updates, then a /help from the control user, and wait for its answer."""
    for update in batch:
        await tg.push_update(update)
    control = tg.user(CONTROL_USER)
    control.mark_seen()
    await control.send("/help")
    await control.wait_for(timeout=30)


async def test_generated_updates_never_escape_and_the_bot_stays_up(bot: Any, tg: FakeTelegram, caplog: Any) -> None:
    caplog.set_level(logging.ERROR)
    seen: list[dict[str, Any]] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(updates(), min_size=5, max_size=10))
    def collect(batch: list[dict[str, Any]]) -> None:
        seen.extend(batch)

    collect()
    spread_users(seen)
    assert len(seen) >= 200
    for start in range(0, len(seen), 50):
        await drive(tg, seen[start : start + 50])
    # The control user's answer says nothing about the other chats, handled side by side.
    await bot.handled()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [(r.getMessage(), r.exc_text) for r in errors][:3]
    # Every button press got an answer, so no patient's spinner hangs.
    pressed = {u["callback_query"]["id"]: u["callback_query"] for u in seen if "callback_query" in u}
    answered = {r.params.get("callback_query_id") for r in tg.calls("answerCallbackQuery")}
    unanswered = [q for qid, q in pressed.items() if qid not in answered]
    assert unanswered == []
    # Groups were told once each, at most.
    group_chats = [r.chat_id for r in tg.calls("sendMessage") if r.chat_id is not None and r.chat_id < 0]
    assert len(group_chats) == len(set(group_chats))
    control = tg.user(CONTROL_USER)
    control.mark_seen()
    await control.send("/help")
    [reply] = await control.wait_for()
    assert "not for emergencies" in reply.text
