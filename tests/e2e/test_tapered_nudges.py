"""Tapering end to end: with [delivery] taper_after_weeks = 2, a patient who kept up for two weeks gets no nudge.

Two patients, the same 09:00 reminder left unanswered: the one with two
weeks of sessions done gets no nudge at 12:00, the one without does. Their
reminders themselves are unchanged.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import make_patient
from rig.telegram_server import FakeTelegram

from rehab_bot import session as core
from rehab_bot.models import ExerciseSession, Kind
from rehab_bot.reminders import add_rule

WED = date(2026, 6, 10)


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


@pytest.fixture
async def bot(bot_factory: Any) -> Any:
    return await bot_factory(delivery={"per_chat_interval": 0.02, "taper_after_weeks": 2, "taper_adherence": 0.8})


async def test_a_patient_who_kept_up_gets_no_nudge(bot: Any, tg: FakeTelegram) -> None:
    bot.clock.set(berlin(WED, "07:00"))
    kept, fresh = [
        (
            await make_patient(
                bot.db,
                bot.clock,
                times=(),
                telegram_id=tid,
                programme_id="lumbar-example",
                surgery_date=WED - timedelta(days=20),
                phase_id="weeks-3-6",
                session_times="09:00",
            )
        )[0]
        for tid in (8701, 8702)
    ]
    async with bot.db.session() as s:
        for patient in (kept, fresh):
            add_rule(
                s, patient, kind=Kind.SESSION, local_time="09:00", now=bot.clock.now(), payload=core.rule_payload(0)
            )
        for back in range(1, 15):
            s.add(
                ExerciseSession(patient_id=kept.id, local_date=WED - timedelta(days=back), slot="09:00", status="done")
            )
        await s.commit()
    users = [tg.user(8701), tg.user(8702)]
    bot.clock.set(berlin(WED, "09:00"))
    await bot.tick()
    for user in users:
        reminder = await user.next_message()
        assert reminder.text.startswith("Time for your exercise session (09:00).")
        user.mark_seen()
    bot.clock.set(berlin(WED, "12:00", 5))
    await bot.tick()
    nudge = await users[1].next_message()
    assert nudge.text == "Just checking in: did you manage your 09:00 exercise session?"
    await users[0].expect_silence(0.3)
