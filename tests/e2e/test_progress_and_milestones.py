"""/progress early in the day, and milestones with a message effect, end to end on the fake Bot API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from factories import make_patient
from rig.telegram_server import FakeTelegram
from sqlmodel import col, select

from rehab_bot import alert as alerts
from rehab_bot import checkin as checkins
from rehab_bot import session as core
from rehab_bot.i18n import t
from rehab_bot.models import CheckIn, Kind, Patient, ReminderRule
from rehab_bot.reminders import add_rule
from rehab_bot.transport import MILESTONE_EFFECT_ID

WED = date(2026, 6, 10)  # the clock starts at 07:00 on this Wednesday in Berlin


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    """A Berlin wall-clock time in June (UTC+2) as a UTC instant."""
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


async def at(bot: Any, when: datetime) -> None:
    bot.clock.set(when)
    await bot.tick()


async def enrolled(bot: Any, telegram_id: int, times: tuple[str, ...], **kw: Any) -> Patient:
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=telegram_id,
        language=kw.pop("language", "en"),
        programme_id="lumbar-example",
        surgery_date=kw.pop("surgery_date", WED - timedelta(days=5)),
        phase_id="weeks-1-2",
        session_times=",".join(times),
        **kw,
    )
    async with bot.db.session() as s:
        for index, hhmm in enumerate(times):
            add_rule(
                s, patient, kind=Kind.SESSION, local_time=hhmm, now=bot.clock.now(), payload=core.rule_payload(index)
            )
        await s.commit()
    return patient


async def test_progress_at_0920_counts_the_sessions_still_to_come(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(delivery={"per_chat_interval": 0.02})
    await enrolled(bot, 7601, ("09:00", "13:00", "18:00"))
    user = tg.user(7601)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    user.mark_seen()
    await user.press("✅ Done", reminder)
    await user.wait_for(count=2)

    bot.clock.set(berlin(WED, "09:20"))
    user.mark_seen()
    await user.send("/progress")
    text, _chart = await user.wait_for(count=2, timeout=30)  # the chart: matplotlib on a busy machine
    assert "All sessions done today" not in text.text
    assert "Today: 1 of 3 sessions done, 2 still to come." in text.text
    assert "Next session: " in text.text and "13:00" in text.text

    # Once the last one is done, the day is complete.
    for slot in ("13:00", "18:00"):
        await at(bot, berlin(WED, slot))
        [later] = await user.wait_for()
        user.mark_seen()
        await user.press("🌗 Partly", later)
        await user.wait_for(count=2)
    bot.clock.set(berlin(WED, "18:30"))
    user.mark_seen()
    await user.send("/progress")
    text, _chart = await user.wait_for(count=2, timeout=30)  # the chart: matplotlib on a busy machine
    assert "🔥 All sessions done today. Keep it up tomorrow!" in text.text
    assert "still to come" not in text.text


async def test_progress_in_german_counts_the_sessions_still_to_come(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(delivery={"per_chat_interval": 0.02})
    await enrolled(bot, 7602, ("09:00", "13:00"), language="de")
    user = tg.user(7602, language_code="de")
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    user.mark_seen()
    await user.press(t("de", "✅ Done"), reminder)
    await user.wait_for(count=2)
    bot.clock.set(berlin(WED, "09:20"))
    user.mark_seen()
    await user.send("/progress")
    text, _chart = await user.wait_for(count=2, timeout=30)  # the chart: matplotlib on a busy machine
    assert "Heute: 1 von 2 Einheiten erledigt, 1 kommt noch." in text.text


async def _pain_history(bot: Any, patient: Patient, first: float, recent: float) -> None:
    """Pain check-ins on the server: a first week at `first`, the last week at `recent`."""
    assert patient.id is not None
    today = WED
    async with bot.db.session() as s:
        for n in range(20, 0, -1):
            day = today - timedelta(days=n)
            if 7 < n < 14:
                continue
            s.add(
                CheckIn(
                    patient_id=patient.id,
                    questionnaire_id="pain",
                    status="complete",
                    started_at=berlin(day, "19:00"),
                    completed_at=berlin(day, "19:01"),
                    score=first if n >= 14 else recent,
                    local_date=day,
                )
            )
        stored = await s.get(Patient, patient.id)
        assert stored is not None
        await checkins.schedule_for(s, stored, bot.services.content, bot.clock.now())
        await s.commit()


async def _motivation_due(bot: Any, patient: Patient) -> datetime:
    async with bot.db.session() as s:
        rule = (
            await s.exec(
                select(ReminderRule).where(
                    col(ReminderRule.patient_id) == patient.id, col(ReminderRule.kind) == Kind.MOTIVATION.value
                )
            )
        ).one()
    assert rule.next_due_at is not None
    return rule.next_due_at


async def test_a_milestone_comes_with_a_message_effect_but_never_on_a_red_flag_day(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    bot = await bot_factory(delivery={"per_chat_interval": 0.02})
    surgery = WED - timedelta(days=30)
    anna = await enrolled(bot, 7701, (), surgery_date=surgery, consent_at=berlin(WED - timedelta(days=21), "10:00"))
    ben = await enrolled(bot, 7702, (), surgery_date=surgery, consent_at=berlin(WED - timedelta(days=21), "10:00"))
    for patient in (anna, ben):
        await _pain_history(bot, patient, first=6.0, recent=2.5)
    # Ben reports a red flag today: no milestone for him today.
    async with bot.db.session() as s:
        stored = await s.get(Patient, ben.id)
        assert stored is not None
        await alerts.raise_alert(
            s,
            stored,
            kind="red_flag",
            severity="high",
            detail="Red flag in a check-in",
            now=bot.clock.now(),
            clinic=bot.config.clinic,
        )
        await s.commit()
    due = max(await _motivation_due(bot, anna), await _motivation_due(bot, ben))
    user_a, user_b = tg.user(7701), tg.user(7702)
    await at(bot, due + timedelta(seconds=1))
    [milestone] = await user_a.wait_for(lambda m: "halved" in (m.text or ""))
    assert milestone.text == "Your average pain has halved since your first week: from 6.0 to 2.5. A real milestone."
    assert milestone.effect_id == MILESTONE_EFFECT_ID
    assert milestone.params["message_effect_id"] == MILESTONE_EFFECT_ID
    await user_b.wait_for()  # his check-in goes out as usual
    await user_b.expect_silence(0.3)
    assert user_b.messages and not [m for m in user_b.messages if m.effect_id is not None or "halved" in (m.text or "")]
    assert [m.effect_id for m in user_a.messages if m.effect_id] == [MILESTONE_EFFECT_ID], "once"
