"""Learned reminder times end to end: the question after a logged session, Yes and No, /timing, automatic moves.

Nine earlier days of the first session logged done around 10:40 are in the
database (with the deliveries that reminded them); on the tenth day the
patient gets the 09:00 reminder, logs it done at 10:40 through the real bot,
and after the last question is asked once whether to move that reminder.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import col, select

from rehab_bot import programme
from rehab_bot.content import load_content
from rehab_bot.i18n import t
from rehab_bot.models import Delivery, ExerciseSession, Kind, Patient, ReminderRule, TimingProposal, TimingWindow

WED = date(2026, 6, 10)
CONTENT = load_content(None)


@pytest.fixture
async def bot(bot_factory: Any) -> Any:
    return await bot_factory(delivery={"per_chat_interval": 0.02})


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


async def with_history(bot: Any, telegram_id: int, lang: str, done_at: str = "10:40") -> Patient:
    """A patient in weeks 1-2 (09:00, 13:00, 18:00) who logged the 09:00 session at done_at on nine days."""
    bot.clock.set(berlin(WED, "07:00"))
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=telegram_id,
        language=lang,
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=12),
        phase_id="weeks-1-2",
        session_times="09:00,13:00,18:00",
    )
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        rules = await programme.schedule_sessions(s, p, CONTENT, bot.clock.now())
        first = rules[0]
        for back in range(9, 0, -1):
            day = WED - timedelta(days=back)
            delivery = Delivery(
                key=f"r{first.id}:{day}:09:00",
                kind=Kind.SESSION.value,
                priority=3,
                rule_id=first.id,
                patient_id=p.id,
                chat_id=telegram_id,
                local_date=day,
                slot="09:00",
                due_at=berlin(day, "09:00"),
                not_before=berlin(day, "09:00"),
                status="sent",
            )
            s.add(delivery)
            await s.flush()
            minutes = int(done_at[3:]) + (back % 3 - 1) * 3  # a few minutes either way
            s.add(
                ExerciseSession(
                    patient_id=p.id,
                    delivery_id=delivery.id,
                    local_date=day,
                    slot="09:00",
                    status="done",
                    step="closed",
                    answered_at=berlin(day, f"{done_at[:2]}:{minutes:02d}"),
                )
            )
        await s.commit()
    return patient


async def log_session(bot: Any, user: FakeUser, lang: str, day: date, at: str) -> SentMessage:
    """The 09:00 reminder of `day`, logged done at `at` through the buttons; returns the praise message."""
    bot.clock.set(berlin(day, "09:00"))
    await bot.tick()
    reminder = await user.next_message(
        lambda m: m.text.startswith(t(lang, "Time for your exercise session ({slot}).", slot="09:00").split("(")[0])
    )
    bot.clock.set(berlin(day, at))
    user.mark_seen()
    await user.press(t(lang, "✅ Done"), reminder)
    await user.wait_for(lambda m: m.text == t(lang, "How hard did the exercises feel?"))
    await user.press(t(lang, "🙂 OK"))
    await user.wait_for(lambda m: "0 =" in m.text)
    await user.press("3")
    return await user.next_message(lambda m: t(lang, "Well done! 💪") in m.text)


async def said(user: FakeUser, text: str) -> SentMessage:
    """Send a message and return the bot's one reply."""
    user.mark_seen()
    await user.send(text)
    return await user.next_message()


async def proposals(bot: Any, patient: Patient) -> list[TimingProposal]:
    async with bot.db.session() as s:
        rows = await s.exec(select(TimingProposal).where(col(TimingProposal.patient_id) == patient.id))
        return list(rows.all())


async def rules_of(bot: Any, patient: Patient) -> list[str]:
    async with bot.db.session() as s:
        rows = await s.exec(
            select(ReminderRule).where(
                col(ReminderRule.patient_id) == patient.id,
                col(ReminderRule.kind) == Kind.SESSION.value,
                col(ReminderRule.active).is_(True),
                col(ReminderRule.once).is_(False),
            )
        )
        return sorted(r.local_time for r in rows.all())


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_asked_once_and_yes_moves_the_reminder(bot: Any, tg: FakeTelegram, lang: str) -> None:
    patient = await with_history(bot, 8101, lang)
    user = tg.user(8101, language_code=lang)
    await log_session(bot, user, lang, WED, "10:40")
    question = await user.next_message(lambda m: bool(m.buttons))
    assert question.text == t(
        lang,
        "You usually exercise around {usual}. Move this reminder from {old} to {new}?",
        usual="10:40",
        old="09:00",
        new="10:30",
    )
    assert question.button_labels == [t(lang, "Yes"), t(lang, "No")]
    if lang == "de":
        assert question.button_labels == ["Ja", "Nein"] and "Sie üben meist gegen 10:40" in question.text
    for _ in range(100):  # the question's message id is stored right after the send returns
        [asked] = await proposals(bot, patient)
        if asked.message_id is not None:
            break
        await asyncio.sleep(0.02)
    assert (asked.status, asked.message_id) == ("asked", question.message_id)

    user.mark_seen()
    await user.press(t(lang, "Yes"), question)
    assert (await user.wait_for_answer()).text in (None, "")
    [edited] = await user.wait_for()
    assert edited.message_id == question.message_id and not edited.has_inline_keyboard
    assert edited.text.endswith(t(lang, "Done: this reminder now comes at {time}.", time="10:30"))
    assert await rules_of(bot, patient) == ["10:30", "13:00", "18:00"]
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.session_times == "10:30,13:00,18:00"  # the therapist's /patient shows this
    [accepted] = await proposals(bot, patient)
    assert accepted.status == "accepted"

    # Pressing again (a double tap, or an old copy of the question) changes nothing.
    await user.press_data(f"tm:{accepted.id}:n", question.message_id)
    assert (await user.wait_for_answer()).text == t(lang, "This button is no longer active.")
    assert await rules_of(bot, patient) == ["10:30", "13:00", "18:00"]

    # The therapist sees the new time in the patient's schedule.
    if lang == "en":
        await make_staff(bot.db, role="admin", telegram_id=8190, name="Dr Schedule")
        staff = tg.user(8190)
        await staff.send(f"/patient {patient.alias}")
        [detail] = await staff.wait_for(lambda m: "session times:" in (m.text or ""), timeout=10)
        assert "session times: 10:30, 13:00, 18:00" in (detail.text or "")

    # The next morning the reminder comes at 10:30, not at 09:00.
    user.mark_seen()
    bot.clock.set(berlin(WED + timedelta(days=1), "09:05"))
    await bot.tick()
    await user.expect_silence(0.3)
    bot.clock.set(berlin(WED + timedelta(days=1), "10:30"))
    await bot.tick()
    reminder = await user.next_message(lambda m: bool(m.buttons))
    assert "10:30" in reminder.text


async def test_no_keeps_the_reminder_and_is_not_asked_again(bot: Any, tg: FakeTelegram) -> None:
    patient = await with_history(bot, 8102, "en")
    user = tg.user(8102)
    await log_session(bot, user, "en", WED, "10:40")
    question = await user.next_message(lambda m: bool(m.buttons))
    user.mark_seen()
    await user.press("No", question)
    [edited] = await user.wait_for()
    assert edited.text.endswith("OK, this reminder stays at 09:00. I will not ask again.")
    assert await rules_of(bot, patient) == ["09:00", "13:00", "18:00"]
    # The next day's session logged at the same time: no second question.
    await log_session(bot, user, "en", WED + timedelta(days=1), "10:45")
    await user.expect_silence(0.3)
    assert [p.status for p in await proposals(bot, patient)] == ["declined"]


async def test_forged_and_foreign_presses_change_nothing(bot: Any, tg: FakeTelegram) -> None:
    patient = await with_history(bot, 8103, "en")
    other = await with_history(bot, 8104, "en")
    user, intruder = tg.user(8103), tg.user(8104)
    await log_session(bot, user, "en", WED, "10:40")
    question = await user.next_message(lambda m: bool(m.buttons))
    [asked] = await proposals(bot, patient)
    # The other patient forges presses naming this proposal, on a message of their own chat.
    theirs = await said(intruder, "/timing")
    for data in (f"tm:{asked.id}:y", f"tm:{asked.id}:n", "tm:x:y", f"tm:{asked.id}"):
        await intruder.press_data(data, theirs.message_id)
        assert (await intruder.wait_for_answer()).text == "This button is no longer active."
    # The patient's own question, with data it does not carry: refused as well.
    await user.press_data(f"tm:{asked.id + 1}:y", question.message_id)
    assert (await user.wait_for_answer()).text == "This button is no longer active."
    assert await rules_of(bot, patient) == ["09:00", "13:00", "18:00"]
    assert [p.status for p in await proposals(bot, patient)] == ["asked"]
    assert await proposals(bot, other) == []
    assert question.has_inline_keyboard


async def test_timing_command_sets_a_window_and_moves_come_by_themselves(bot: Any, tg: FakeTelegram) -> None:
    patient = await with_history(bot, 8105, "de")
    user = tg.user(8105, language_code="de")
    shown = await said(user, "/timing")
    assert shown.text.startswith("Ihre Übungserinnerungen: 09:00, 13:00, 18:00.")
    bad = await said(user, "/timing 20:00-08:00")
    assert bad.text == "Bitte senden Sie zwei Uhrzeiten, die frühere zuerst: /timing 08:00-20:00"
    unreadable = await said(user, "/timing 08:00-25:00")  # no time of day at all: said so, then how
    assert unreadable.text == (
        "Ein Teil davon ist keine Uhrzeit: Uhrzeiten reichen von 00:00 bis 24:00.\n"
        "Bitte senden Sie zwei Uhrzeiten, die frühere zuerst: /timing 08:00-20:00"
    )
    ok = await said(user, "/timing 08:00-12:00")
    assert "zwischen 08:00 und 12:00" in ok.text
    async with bot.db.session() as s:
        window = await s.get(TimingWindow, patient.id)
        assert window is not None and (window.start, window.end) == ("08:00", "12:00")
    praise = await log_session(bot, user, "de", WED, "10:40")
    notice = await user.next_message(lambda m: m.message_id != praise.message_id and "10:30" in m.text)
    assert notice.text.startswith("Sie üben meist gegen 10:40, deshalb kommt Ihre Erinnerung von 09:00 jetzt um 10:30")
    assert not notice.has_inline_keyboard
    assert await rules_of(bot, patient) == ["10:30", "13:00", "18:00"]
    assert [p.status for p in await proposals(bot, patient)] == ["auto"]
    # A window until midnight: 24:00 (or 24 Uhr) is the end of the day, and shown so.
    for typed in ("/timing 08:00-24:00", "/timing 8 bis 24 Uhr"):
        late = await said(user, typed)
        assert "zwischen 08:00 und 24:00" in late.text, late.text
    shown = await said(user, "/timing")
    assert "zwischen 08:00 und 24:00" in shown.text
    async with bot.db.session() as s:
        window = await s.get(TimingWindow, patient.id)
        assert window is not None and (window.start, window.end) == ("08:00", "00:00")
    off = await said(user, "/timing off")
    assert off.text == "Automatisches Verschieben ist aus. Ich frage, bevor ich eine Erinnerung verschiebe."
    async with bot.db.session() as s:
        assert await s.get(TimingWindow, patient.id) is None
