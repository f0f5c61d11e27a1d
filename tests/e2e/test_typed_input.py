"""Odd typed input end to end: what phones and keyboards really send is read, or answered kindly.

Invisible marks (a zero-width space, a right-to-left mark), full-width digits and colons,
"13h" and "22 Uhr", a command on a line of its own: none of it may crash the bot,
lose what was typed, or be refused when the same words are accepted elsewhere.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from factories import make_patient
from rig.telegram_server import FakeTelegram
from test_checkins import enrolled as checkin_patient
from test_checkins import rows
from test_enrolment import new_invite, next_text, patient_row
from test_patient_commands import command, enrolled, press, session_rules, stored

from rehab_bot import programme
from rehab_bot.i18n import t
from rehab_bot.models import Note, Patient, PatientStatus, ReminderRule, TimingWindow

SOMETHING_WENT_WRONG = "Something went wrong"


async def first_session_rule(bot: Any, patient: Patient) -> ReminderRule:
    return min(await session_rules(bot, patient), key=lambda rule: rule.local_time)


async def test_a_note_on_the_line_after_note_keeps_its_first_word(bot: Any, tg: FakeTelegram) -> None:
    await checkin_patient(bot, 9101, schedule=False)
    user = tg.user(9101)
    for text in ("/note\nPain 6 since the walk", "/note\u00a0Brace rubs", "/note@rehab_test_bot\n\nCall me please"):
        user.mark_seen()
        await user.send(text)
        [reply] = await user.wait_for()
        assert "Saved as a note" in reply.text, text
    assert [n.text for n in await rows(bot, Note)] == ["Pain 6 since the walk", "Brace rubs", "Call me please"]


async def test_quiet_hours_are_read_like_session_times_and_never_crash(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 9102, lang="de")
    user = tg.user(9102, language_code="de")
    for typed, quiet in [("²²-7", ("22:00", "07:00")), ("22 Uhr bis 6:30 Uhr", ("22:00", "06:30")), ("10pm-7am", None)]:
        [menu] = await command(user, "/settings")
        [choices] = await press(user, t("de", "🌙 Quiet hours"), 1, menu)
        await press(user, t("de", "Set my own"), 1, choices)
        [reply] = await command(user, typed)
        assert SOMETHING_WENT_WRONG not in reply.text and t("de", "Something went wrong") not in reply.text, typed
        assert reply.text.startswith(t("de", "✅ Saved.")), (typed, reply.text)
        if quiet is not None:
            p = await stored(bot, patient)
            assert (p.quiet_start, p.quiet_end) == quiet, typed
    p = await stored(bot, patient)
    assert (p.quiet_start, p.quiet_end) == ("22:00", "07:00")


async def test_enrolment_reads_invisible_marks_full_width_digits_and_13h(bot: Any, tg: FakeTelegram) -> None:
    invite = await new_invite(bot, "P-9103")
    user = tg.user(9103)
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Yes, I agree")
    await next_text(user)
    await user.send("\u200fBerlin\u200b")  # a right-to-left mark and a zero-width space, as some keyboards add
    times_prompt = await next_text(user)
    assert times_prompt.text.startswith("Time zone: Berlin (now 07:00) ✓"), times_prompt.text
    await user.send("０９：００, 13h, 18:00h\u200b")
    summary = await next_text(user)
    assert summary.text.startswith("✅ All set!"), summary.text
    patient = await patient_row(bot, "P-9103")
    assert (patient.timezone, patient.session_times, patient.enrol_step) == (
        "Europe/Berlin",
        "09:00,13:00,18:00",
        "done",
    )


async def test_timing_window_takes_a_range_as_quiet_hours_do(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 9104, lang="de")
    user = tg.user(9104, language_code="de")
    [reply] = await command(user, "/timing 8 bis 20 Uhr")
    assert "08:00" in reply.text and "20:00" in reply.text and "/timing off" in reply.text, reply.text
    async with bot.db.session() as s:
        window = await s.get(TimingWindow, patient.id)
    assert window is not None and (window.start, window.end) == ("08:00", "20:00")


async def test_est_typed_in_summer_is_new_york_time_not_a_fixed_offset(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 9105)
    user = tg.user(9105)
    [menu] = await command(user, "/settings")
    await press(user, "🌍 Timezone", 1, menu)
    [saved] = await command(user, "EST")
    assert "Timezone: New York (now 01:00)" in saved.text, saved.text  # 05:00 UTC in June: EDT, not EST's 00:00
    assert (await stored(bot, patient)).timezone == "America/New_York"


async def test_german_clock_words_set_session_times_and_quiet_hours(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 9105, lang="de")
    user = tg.user(9105, language_code="de")
    [menu] = await command(user, "/settings")
    await press(user, t("de", "🕒 Times"), 1, menu)
    [refused] = await command(user, "nach dem Mittagessen")
    assert refused.text == t("de", "I could not read that. Please send times like 08:00, 13:00, 18:00."), refused.text
    assert "halb acht" in refused.text, "the examples are in the patient's language"
    # "halb acht" is read as "7:30" is, on the 24-hour clock; the confirmation shows what was understood.
    [saved] = await command(user, "halb acht, viertel vor eins mittags und 7 Uhr abends")
    assert saved.text.startswith(t("de", "✅ Saved.")), saved.text
    assert t("de", "Session times: {times}", times="07:30, 12:45, 19:00") in saved.text, saved.text
    assert (await stored(bot, patient)).session_times == "07:30,12:45,19:00"
    await press(user, t("de", "🕒 Times"), 1, menu)
    [saved] = await command(user, "viertel nach acht, 13 Uhr 30 und 19.30 Uhr")
    assert t("de", "Session times: {times}", times="08:15, 13:30, 19:30") in saved.text, saved.text
    [choices] = await press(user, t("de", "🌙 Quiet hours"), 1, menu)
    await press(user, t("de", "Set my own"), 1, choices)
    [saved] = await command(user, "von halb elf abends bis sieben Uhr morgens")
    assert saved.text.startswith(t("de", "✅ Saved.")), saved.text
    p = await stored(bot, patient)
    assert (p.quiet_start, p.quiet_end) == ("22:30", "07:00")


async def test_english_clock_words_still_set_session_times(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 9106)
    user = tg.user(9106)
    [menu] = await command(user, "/settings")
    await press(user, "🕒 Times", 1, menu)
    [saved] = await command(user, "half past seven, 1pm and 7 in the evening")
    assert "Session times: 07:30, 13:00, 19:00" in saved.text, saved.text
    assert (await stored(bot, patient)).session_times == "07:30,13:00,19:00"


async def test_a_pause_date_typed_with_a_german_month_name(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 9107, lang="de")
    user = tg.user(9107, language_code="de")
    [offer] = await command(user, "/pause")
    await press(user, t("de", "📅 Choose a date"), 2, offer)
    [refused] = await command(user, "nächste Woche")
    assert refused.text == t("de", "I could not read that date. Please send it like 24.06.2026 or 2026-06-24.")
    assert "24. Juni" in refused.text, "the examples are in the patient's language"
    [reply] = await command(user, "bis zum 20. Juni")
    assert "20. Juni 2026" in reply.text, reply.text  # the date understood, for the patient to check
    p = await stored(bot, patient)
    assert p.status == PatientStatus.PAUSED and p.paused_until == date(2026, 6, 20)


async def test_mez_typed_as_the_time_zone_is_berlin_and_reminders_follow_summer_time(
    bot: Any, tg: FakeTelegram
) -> None:
    # Friday 23 October 2026, 07:00 in Berlin (summer time, UTC+2); summer time ends on Sunday the 25th.
    friday = date(2026, 10, 23)
    bot.clock.set(datetime(2026, 10, 23, 5, 0, tzinfo=UTC))
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=9108,
        language="de",
        tz="America/New_York",
        programme_id="lumbar-example",
        surgery_date=friday - timedelta(days=5),
        phase_id="weeks-1-2",
        session_times="09:00,13:00,18:00",
    )
    async with bot.db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        await programme.schedule_sessions(s, fresh, bot.services.content, bot.clock.now())
        await s.commit()
    user = tg.user(9108, language_code="de")
    [menu] = await command(user, "/settings")
    await press(user, t("de", "🌍 Timezone"), 1, menu)
    [saved] = await command(user, "MEZ")
    assert t("de", "Timezone: {zone} (now {time})", zone="Berlin", time="07:00") in saved.text, saved.text
    assert (await stored(bot, patient)).timezone == "Europe/Berlin", "a proper zone, not the legacy CET"
    first = await first_session_rule(bot, patient)
    assert first.next_due_at == datetime(2026, 10, 23, 7, 0, tzinfo=UTC), "09:00 in summer time (UTC+2)"

    # Sunday after the change, 07:00 in Berlin (now UTC+1): the 09:00 session is at 08:00 UTC.
    bot.clock.set(datetime(2026, 10, 25, 6, 0, tzinfo=UTC))
    await bot.tick()
    first = await first_session_rule(bot, patient)
    assert first.next_due_at == datetime(2026, 10, 25, 8, 0, tzinfo=UTC), "09:00 in winter time (UTC+1)"
    user.mark_seen()
    bot.clock.set(datetime(2026, 10, 25, 8, 0, 1, tzinfo=UTC))
    await bot.tick()
    reminders = [m for m in await user.wait_for() if "09:00" in m.text]
    assert reminders, "the 09:00 reminder comes at 09:00 Berlin time after the change"


async def test_mez_in_a_clinic_in_vienna_is_vienna(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(clinic={"timezone": "Europe/Vienna"})
    patient = await enrolled(bot, 9109, lang="de")
    user = tg.user(9109, language_code="de")
    [menu] = await command(user, "/settings")
    await press(user, t("de", "🌍 Timezone"), 1, menu)
    [saved] = await command(user, "MESZ")
    assert t("de", "Timezone: {zone} (now {time})", zone="Wien", time="07:00") in saved.text, saved.text
    assert (await stored(bot, patient)).timezone == "Europe/Vienna"


async def test_enrolment_asks_whether_a_time_in_the_quiet_hours_was_meant_in_the_afternoon(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    """ "halb zwei" is 01:30, as "1:30" is; in the clinic's quiet hours the enrolment refuses it, and asks
    "Meinten Sie 13:30?" instead of guessing. Nothing is stored until the times fit."""
    bot = await bot_factory(delivery={"quiet_hours_start": time(22, 0), "quiet_hours_end": time(7, 0)})
    invite = await new_invite(bot, "P-9111")
    user = tg.user(9111, language_code="de")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Ja, ich bin einverstanden")
    await next_text(user)
    await user.send("Berlin")
    await next_text(user)
    await user.send("halb neun, halb zwei und 18 Uhr")
    refused = await next_text(user)
    assert refused.text == (
        "01:30 liegt in der Ruhezeit (22:00–07:00), in der ich keine Erinnerungen sende. Bitte wählen Sie eine "
        "Uhrzeit außerhalb davon. Meinten Sie 13:30?"
    )
    assert (await patient_row(bot, "P-9111")).enrol_step == "times", "nothing stored"
    await user.send("um 2, 13 und 18 Uhr")
    refused = await next_text(user)
    assert refused.text.endswith("Meinten Sie 14:00?"), refused.text
    await user.send("5, 13 und 17 Uhr")  # 17:00 is taken: no question
    refused = await next_text(user)
    assert refused.text.startswith("05:00 liegt in der Ruhezeit") and "Meinten" not in refused.text, refused.text
    await user.send("halb neun, halb zwei nachmittags und 18 Uhr")
    summary = await next_text(user)
    assert summary.text.startswith("✅ Alles bereit!"), summary.text
    assert (await patient_row(bot, "P-9111")).session_times == "08:30,13:30,18:00"
