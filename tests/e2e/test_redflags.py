"""Every red-flag path end to end: what the patient sees, who is alerted, and how fast.

These bots run the real dispatch job at a short poll interval, as in
production (only shorter), and nobody calls tick(): an alert reaches the
therapist and the clinic's alert chat only because the job sent it. Each test
measures the wall-clock time from the patient's answer to the alert arriving
at the fake Bot API server, and holds it to the 60 s the clinic is promised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from rig.telegram_server import FakeTelegram, SentMessage
from sqlmodel import select
from test_checkins import EVENING, enrolled, rows

from rehab_bot.bot import checkin as checkin_bot
from rehab_bot.models import Alert, Note

ALERT_CHAT = -100_777
POLL = 0.5
PROMISE = 60.0
THERAPIST = 5001


@pytest.fixture
async def live(bot_factory: Callable[..., Any]) -> Any:
    """A bot whose dispatch job runs every POLL seconds, with a clinic alert chat."""
    return await bot_factory(delivery={"poll_interval": POLL}, clinic={"alert_chat_id": ALERT_CHAT})


def alert_about(marker: str) -> Callable[[SentMessage], bool]:
    return lambda m: m.text is not None and marker in m.text


async def alerts_arrive(tg: FakeTelegram, started: float, marker: str) -> tuple[SentMessage, SentMessage, float]:
    """Wait for the alert in the therapist's chat and the clinic's alert chat; return both and the delay."""
    [to_therapist] = await tg.user(THERAPIST).wait_for(alert_about(marker), timeout=PROMISE)
    [to_chat] = await tg.group(ALERT_CHAT, "Alerts").wait_for(alert_about(marker), timeout=PROMISE)
    return to_therapist, to_chat, time.monotonic() - started


async def press(user: Any, label: str) -> float:
    started = time.monotonic()
    await user.press(label)
    return started


async def answer(user: Any, label: str) -> SentMessage:
    """Press a button and wait for the message to move on (edit or new message)."""
    await user.press(label)
    [message] = await user.wait_for()
    return message


@pytest.mark.slow
async def test_an_emergency_answer_tells_the_patient_to_call_112_and_alerts_within_a_minute(
    live: Any, tg: FakeTelegram
) -> None:
    patient = await enrolled(live, 5101, therapist=THERAPIST)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5101)
    live.clock.set(EVENING + timedelta(seconds=2))
    [question] = await user.wait_for(timeout=10)  # sent by the dispatch job itself
    assert "Check-in: Pain" in question.text
    await answer(user, "5")
    await answer(user, "😐 3")
    bladder = await answer(user, "Yes, at least one")
    assert "bladder or bowel" in bladder.text and bladder.button_labels == ["Yes", "No"]

    started = await press(user, "Yes")
    [instructions] = await user.wait_for(alert_about("Call 112 now"))
    assert "Your care team has been told." in instructions.text
    assert time.monotonic() - started < 5, "what to do now is a direct reply, not a queued message"
    [closed] = await user.wait_for()
    assert closed.message_id == bladder.message_id and "follow the instructions" in closed.text
    assert not closed.has_inline_keyboard, "an emergency ends the check-in"

    to_therapist, to_chat, delay = await alerts_arrive(tg, started, "Red flag")
    assert delay <= PROMISE
    for alert in (to_therapist, to_chat):
        assert alert.text is not None
        assert f"EMERGENCY alert for {patient.alias}" in alert.text
        assert "⚠ New trouble controlling your bladder or bowel" in alert.text and "Yes" in alert.text
        assert "Raised 2026-06-10 19:0" in alert.text and " CEST." in alert.text, "the reader's time and zone"
        assert alert.button_labels == ["✅ Acknowledge"]
    [row] = await rows(live, Alert)
    assert (row.kind, row.severity) == ("red_flag", "emergency")


@pytest.mark.slow
async def test_an_urgent_answer_says_call_the_clinic_today_and_the_check_goes_on(live: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(live, 5102, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5102)
    await user.send("/checkin")
    await user.wait_for()
    await answer(user, "Wound and symptom check")
    await answer(user, "Yes, at least one")
    for _ in range(5):  # bladder, chest, legs, walking, calf: no
        await answer(user, "No")
    fever = user.last
    assert "38 °C" in fever.text
    neck = await answer(user, "Yes")  # fever: the follow-ups decide how urgent
    assert "stiff neck" in neck.text
    wound = await answer(user, "No")
    assert "Is your wound also red" in wound.text

    started = await press(user, "No")
    [advice] = await user.wait_for(alert_about("contact the clinic today"))
    assert "temperature over 38 °C" in advice.text and "Your care team has been told." in advice.text
    [next_question] = await user.wait_for()
    assert "opening, bleeding or leaking" in next_question.text and next_question.has_inline_keyboard

    to_therapist, _, delay = await alerts_arrive(tg, started, "Red flag")
    assert delay <= PROMISE
    assert f"HIGH alert for {patient.alias}" in (to_therapist.text or "")
    assert "A temperature of 38 °C or more" in (to_therapist.text or "")


async def test_pain_of_seven_or_more_is_a_critical_alert(live: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(live, 5103, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5103)
    await user.send("/pain")
    await user.wait_for()
    started = await press(user, "8")
    [advice] = await user.wait_for(alert_about("Your pain is high"))
    assert "contact the clinic today" in advice.text and "112" in advice.text
    to_therapist, to_chat, delay = await alerts_arrive(tg, started, "Check-in answers need attention")
    assert delay <= PROMISE
    for alert in (to_therapist, to_chat):
        assert f"CRITICAL alert for {patient.alias}" in (alert.text or "")
        assert "Pain: 8" in (alert.text or "") and "[pain-critical]" in (alert.text or "")


async def _pain_on(live: Any, user: Any, day: date, value: str) -> float:
    live.clock.set(datetime(day.year, day.month, day.day, 17, 0, tzinfo=UTC))
    await user.send("/pain")
    await user.wait_for()
    return await press(user, value)


@pytest.mark.slow
async def test_pain_three_points_above_the_first_days_baseline(live: Any, tg: FakeTelegram) -> None:
    await enrolled(live, 5104, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5104)
    first = live.clock.now().date()
    for n, value in enumerate(("2", "3", "2")):  # baseline 2.3
        await _pain_on(live, user, first + timedelta(days=n), value)
        await user.wait_for()
    started = await _pain_on(live, user, first + timedelta(days=5), "6")
    [advice] = await user.wait_for(alert_about("higher than in your first days"))
    assert "contact the clinic" in advice.text
    to_therapist, _, delay = await alerts_arrive(tg, started, "baseline")
    assert delay <= PROMISE
    assert "HIGH alert" in (to_therapist.text or "") and "above the baseline 2.3" in (to_therapist.text or "")


@pytest.mark.slow
async def test_pain_rising_three_days_in_a_row(live: Any, tg: FakeTelegram) -> None:
    await enrolled(live, 5105, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5105)
    first = live.clock.now().date()
    for n, value in enumerate(("1", "2")):
        await _pain_on(live, user, first + timedelta(days=n), value)
        await user.wait_for()
    started = await _pain_on(live, user, first + timedelta(days=2), "4")
    [advice] = await user.wait_for(alert_about("risen over the last few days"))
    assert "contact the clinic" in advice.text
    to_therapist, _, delay = await alerts_arrive(tg, started, "rose every day")
    assert delay <= PROMISE and "1.0 → 2.0 → 4.0" in (to_therapist.text or "")


async def test_a_positive_phq2_alerts_and_points_the_patient_to_help(live: Any, tg: FakeTelegram) -> None:
    today = EVENING.date()
    await enrolled(live, 5106, therapist=THERAPIST, surgery_date=today - timedelta(days=7))
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5106)
    live.clock.set(EVENING + timedelta(seconds=2))
    messages = await user.wait_for(count=2, timeout=10)  # the daily check-in and the weekly PHQ-2/GAD-2
    phq = next(m for m in messages if "PHQ-2" in (m.text or ""))
    assert "Little interest or pleasure" in phq.text and "Over the last 2 weeks" in phq.text
    await user.press("Several days", phq)
    await user.wait_for()
    started = await press(user, "More than half the days")
    [advice] = await user.wait_for(alert_about("Feeling low is common"))
    assert "0800 111 0 111" in advice.text
    to_therapist, to_chat, delay = await alerts_arrive(tg, started, "PHQ-2")
    assert delay <= PROMISE
    assert "HIGH alert" in (to_therapist.text or "") and "PHQ-2: mood over the last 2 weeks: 3" in (to_chat.text or "")


async def test_no_response_for_48_hours_alerts_the_team(live: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(live, 5107, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5107)
    live.clock.advance(timedelta(hours=47))
    assert await checkin_bot.run_periodic(live.app) == 0
    live.clock.advance(timedelta(hours=1))
    started = time.monotonic()
    assert await checkin_bot.run_periodic(live.app) == 1
    to_therapist, _, delay = await alerts_arrive(tg, started, "No response")
    assert delay <= PROMISE
    assert f"LOW alert for {patient.alias}" in (to_therapist.text or "") and "48 hours" in (to_therapist.text or "")
    assert not user.messages, "the patient is not told off"


async def test_a_crisis_phrase_gets_crisis_help_at_once_and_an_emergency_alert(live: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(live, 5108, therapist=THERAPIST, schedule=False, language="de")
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5108, language_code="de")
    started = time.monotonic()
    await user.send("Ich schaffe das alles nicht, ich will nicht mehr leben.")
    [help_now] = await user.wait_for(timeout=5)
    assert "TelefonSeelsorge" in help_now.text and "112" in help_now.text
    assert "Ihr Behandlungsteam wurde informiert." in help_now.text
    to_therapist, to_chat, delay = await alerts_arrive(tg, started, "Possible crisis")
    assert delay <= PROMISE
    assert f"EMERGENCY alert for {patient.alias}" in (to_chat.text or "")
    assert "will nicht mehr leben" in (to_therapist.text or "")
    await user.expect_silence(1.2)  # no "save as a note?" offer on top
    async with live.db.session() as session:
        [note] = (await session.exec(select(Note))).all()
    assert note.crisis and "nicht mehr leben" in note.text
