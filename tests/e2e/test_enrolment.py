"""Enrolment end to end: the real bot and the fake Bot API, from the invite link to the first reminder.

Each test checks both what the patient saw (every message, in order) and
what was stored (patient fields, consent, reminder rules and their next
due instant).
"""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import qrcode
from cli_runner import rehab_bot as rehab_bot_command
from factories import TEST_TOKEN, make_patient, make_staff
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import select

import rehab_bot.bot.staff as staff_bot
from rehab_bot import enrolment
from rehab_bot import invite as invites
from rehab_bot.bot.app import start_polling_app, stop_app
from rehab_bot.bot.enrol import TIMES_TOO_EARLY, WORRY_BEFORE_CONSENT
from rehab_bot.db import Database
from rehab_bot.i18n import t
from rehab_bot.models import Alert, Invite, Note, Patient, PatientStatus, ReminderRule, Staff
from rehab_bot.schedule import local_to_utc, parse_hhmm

TODAY = date(2026, 6, 10)  # T0: 07:00 in Berlin, 05:00 UTC
SURGERY = date(2026, 6, 1)  # day 9: weeks 1-2, three sessions a day
CONSENT_VERSION = "2026-11-01"


async def new_invite(bot: Any, alias: str, **kw: Any) -> Invite:
    async with bot.db.session() as session:
        made = await invites.create_patient_invite(
            session,
            bot.services.content,
            alias=alias,
            surgery_date=kw.pop("surgery_date", SURGERY),
            programme_id="lumbar-example",
            now=bot.clock.now(),
            valid_days=14,
            timezone="Europe/Berlin",
            language="en",
            **kw,
        )
        await session.commit()
        return made.invite


async def patient_row(bot: Any, alias: str) -> Patient:
    async with bot.db.session() as session:
        patient = (await session.exec(select(Patient).where(Patient.alias == alias))).one()
    return patient


async def session_rules(bot: Any, patient: Patient) -> list[ReminderRule]:
    async with bot.db.session() as session:
        rules = (
            await session.exec(
                select(ReminderRule).where(
                    ReminderRule.patient_id == patient.id,
                    ReminderRule.kind == "session",
                    ReminderRule.active == True,  # noqa: E712
                )
            )
        ).all()
    return sorted(rules, key=lambda r: r.local_time)


async def snapshot(bot: Any) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Everything an invite link could change."""
    async with bot.db.session() as session:
        patients = [
            (p.id, p.telegram_id, p.enrol_step, p.status, p.consent_at, p.timezone, p.session_times, p.language)
            for p in (await session.exec(select(Patient))).all()
        ]
        invites_ = [(i.id, i.used_at, i.used_by) for i in (await session.exec(select(Invite))).all()]
        staff = [(s.id, s.telegram_id) for s in (await session.exec(select(Staff))).all()]
        rules = [(r.id, r.next_due_at) for r in (await session.exec(select(ReminderRule))).all()]
    return sorted(patients), sorted(invites_), sorted(staff), sorted(rules)


def at(day: date, hhmm: str, tz: str) -> datetime:
    return local_to_utc(day, parse_hhmm(hhmm), tz)


async def next_text(user: FakeUser) -> SentMessage:
    """The next new message the bot sends (edits of earlier ones are skipped)."""
    [message] = await user.wait_for(include_edits=False)
    return message


async def only_message(user: FakeUser) -> SentMessage:
    """The one message the bot sends or edits next (a pressed confirmation closes with a line added)."""
    [message] = await user.wait_for()
    return message


# --- the whole journey ------------------------------------------------------------------


@pytest.mark.slow
async def test_english_patient_enrols_with_buttons_and_gets_the_first_reminder(bot: Any, tg: FakeTelegram) -> None:
    doc = await make_staff(bot.db, name="Dr Weber", telegram_id=3001)
    invite = await new_invite(bot, "P-100", therapist_id=doc.id)
    user = tg.user(2001, first_name="Anna", language_code="en-GB")
    await user.send(f"/start {invite.code}")
    consent = await next_text(user)
    assert "Welcome! Our clinic and your physiotherapist Dr Weber have invited you" in consent.text
    assert "not end-to-end encrypted" in consent.text and "not for emergencies" in consent.text
    assert consent.button_labels == ["Yes, I agree", "No, thank you", "🌐 Deutsch"]
    linked = await patient_row(bot, "P-100")
    assert (linked.telegram_id, linked.enrol_step, linked.language, linked.consent_at) == (2001, "consent", "en", None)

    await user.press("Yes, I agree")
    zone_prompt = await next_text(user)
    assert consent.text.endswith("✓ You agreed.") and not consent.buttons, "consent message closed"
    agreed = await patient_row(bot, "P-100")
    assert agreed.consent_at == bot.clock.now() and agreed.consent_version == CONSENT_VERSION
    assert agreed.enrol_step == "timezone"
    assert zone_prompt.text.startswith("Which time zone are you in?")
    assert "share your location" in zone_prompt.text
    assert zone_prompt.button_labels[0] == "Berlin – the clinic's time zone (now 07:00)"
    assert "New York (01:00)" in zone_prompt.button_labels and "London (06:00)" in zone_prompt.button_labels

    await user.press("Berlin – the clinic's time zone (now 07:00)")
    times_prompt = await next_text(user)
    assert not zone_prompt.buttons
    assert times_prompt.text.startswith("Time zone: Berlin (now 07:00) ✓")
    assert "Your programme has 3 exercise sessions a day at the moment" in times_prompt.text
    assert times_prompt.button_labels == [
        "Suggested by your programme · 09:00, 13:00, 18:00",
        "Starting early · 07:00, 12:00, 17:00",
        "Morning, afternoon and evening · 08:00, 13:00, 18:00",
        "Later in the day · 10:00, 15:00, 20:00",
        "« Change time zone",
    ]

    await user.press("Morning, afternoon and evening · 08:00, 13:00, 18:00")
    summary = await next_text(user)
    assert not times_prompt.buttons
    assert summary.text.startswith("✅ All set! Here is your plan:")
    for line in (
        "Programme: Example: first 12 weeks after lumbar spine surgery",
        "Current phase: Weeks 1-2: gentle activation and walking",
        "Time zone: Berlin (now 07:00)",
        "Reminders: 08:00, 13:00, 18:00",
        "Your first reminder comes today at 08:00.",
        "Welcome to your home exercise programme.",
        "/settings",
        "This chat is not for emergencies. " + bot.config.clinic.text("emergency_text", "en"),
    ):
        assert line in summary.text, line
    assert "EXAMPLE" not in summary.text and "review" not in summary.text.lower(), "the review note is for staff"
    assert len(user.messages) == 4

    done = await patient_row(bot, "P-100")
    assert (done.status, done.enrol_step, done.timezone, done.session_times, done.phase_id) == (
        PatientStatus.ACTIVE,
        "done",
        "Europe/Berlin",
        "08:00,13:00,18:00",
        "weeks-1-2",
    )
    rules = await session_rules(bot, done)
    assert [(r.local_time, r.next_due_at) for r in rules] == [
        (x, at(TODAY, x, "Europe/Berlin")) for x in ("08:00", "13:00", "18:00")
    ]
    # The rules are live: at 08:00 the first reminder arrives.
    bot.clock.set(at(TODAY, "08:00", "Europe/Berlin") + timedelta(seconds=2))
    await bot.tick()
    reminder = await next_text(user)
    assert "08:00" in (reminder.text or "")


@pytest.mark.slow
async def test_german_patient_types_a_city_and_times_with_a_typo(bot: Any, tg: FakeTelegram) -> None:
    invite = await new_invite(bot, "P-200")
    user = tg.user(2002, first_name="Jonas", language_code="de")
    await user.send(f"/start {invite.code}")
    consent = await next_text(user)
    assert consent.text.startswith(
        "Willkommen! Our clinic hat Sie zu diesem Übungs- und Genesungsassistenten eingeladen."
    )
    assert "nicht Ende-zu-Ende-verschlüsselt" in consent.text
    assert consent.button_labels == ["Ja, ich bin einverstanden", "Nein, danke", "🌐 English"]

    await user.press("Ja, ich bin einverstanden")
    zone_prompt = await next_text(user)
    assert consent.text.endswith("✓ Sie haben zugestimmt.")
    assert zone_prompt.text.startswith("In welcher Zeitzone sind Sie?")
    assert zone_prompt.button_labels[0] == "Berlin – Zeitzone der Klinik (jetzt 07:00)"

    await user.send("Wien")
    times_prompt = await next_text(user)
    assert times_prompt.text.startswith("Zeitzone: Wien (jetzt 07:00) ✓")
    assert "Ihr Programm sieht derzeit 3 Übungseinheiten am Tag vor" in times_prompt.text
    assert (await patient_row(bot, "P-200")).timezone == "Europe/Vienna"

    await user.send("8:75, 13:00, 18:30")
    typo = await next_text(user)
    assert typo.text.startswith("„8:75“ kann ich nicht als Uhrzeit lesen.")
    assert "Morgens, nachmittags und abends · 08:00, 13:00, 18:00" in typo.button_labels
    await user.send("7:30, 13")
    too_few = await next_text(user)
    assert "bitte senden Sie also 3 Uhrzeiten (Sie haben 2 gesendet)" in too_few.text
    assert (await patient_row(bot, "P-200")).enrol_step == "times", "nothing lost"

    await user.send("07:30, 13:00 und 18:30 Uhr")
    summary = await next_text(user)
    assert summary.text.startswith("✅ Alles bereit! Das ist Ihr Plan:")
    for line in (
        "Programm: Beispiel: die ersten 12 Wochen nach einer Operation an der Lendenwirbelsäule",
        "Aktuelle Phase: Woche 1-2: sanfte Aktivierung und Gehen",
        "Zeitzone: Wien (jetzt 07:00)",
        "Erinnerungen: 07:30, 13:00, 18:30",
        "Ihre erste Erinnerung kommt heute um 07:30.",
        "Willkommen zu Ihrem Übungsprogramm für zu Hause.",
        "Dieser Chat ist nicht für Notfälle gedacht.",
    ):
        assert line in summary.text, line
    assert len(user.messages) == 6
    done = await patient_row(bot, "P-200")
    assert (done.language, done.timezone, done.session_times, done.status) == (
        "de",
        "Europe/Vienna",
        "07:30,13:00,18:30",
        PatientStatus.ACTIVE,
    )
    assert done.consent_at is not None and done.consent_version == CONSENT_VERSION
    rules = await session_rules(bot, done)
    assert [r.next_due_at for r in rules] == [at(TODAY, x, "Europe/Vienna") for x in ("07:30", "13:00", "18:30")]


SYMPTOM_OFFER = (
    "If this is about a symptom, please answer the check with one tap: it asks the right questions, "
    "and your answers reach your care team."
)


async def test_a_symptom_or_a_word_of_danger_is_heard_while_enrolment_asks_for_the_zone_or_the_times(
    bot: Any, tg: FakeTelegram
) -> None:
    """'I can't feel my legs' typed when asked for the session times got 'I could not read that time': text
    that is no answer but names a symptom or a danger word goes on to the symptom check and the crisis
    question (patient.heard_elsewhere, the rule of the settings questions); the step stays open."""
    doc = await make_staff(bot.db, name="Dr Weber", telegram_id=3021)
    invite = await new_invite(bot, "P-120", therapist_id=doc.id)
    user = tg.user(2021, language_code="en")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Yes, I agree")
    await next_text(user)
    await user.send("I have a fever since this morning")
    offer = await next_text(user)
    assert offer.text.startswith(SYMPTOM_OFFER), offer.text
    await user.press("Berlin – the clinic's time zone (now 07:00)")
    await next_text(user)

    await user.send("I can't feel my legs")
    offer = await next_text(user)
    assert offer.text.startswith(SYMPTOM_OFFER), offer.text
    assert offer.button_labels[0].startswith("🩺") and "Save as a note" in offer.button_labels
    # The check runs for the patient still enrolling: its red-flag answers say what to do now.
    await user.press(offer.button_labels[0], offer)
    question = await next_text(user)
    assert question.button_labels[-1] == "Yes, at least one", question.text
    await user.press("Yes, at least one", question)
    [bladder] = await user.wait_for(lambda m: "bladder or bowel (for" in (m.text or ""))
    await user.press("Yes", bladder)
    advice = await next_text(user)
    assert bot.services.content.text("red_flag", "en").strip()[:60] in advice.text, advice.text
    async with bot.db.session() as session:
        alert = (await session.exec(select(Alert))).one()
    assert (alert.kind, alert.severity) == ("red_flag", "emergency")
    await user.send("I took an extra pill")
    asked = await next_text(user)
    assert asked.text == bot.services.content.text("crisis_question", "en").strip()
    await user.press("Save as a note", offer)
    assert (await user.wait_for_answer()).text == "Saved."
    async with bot.db.session() as session:
        notes = (await session.exec(select(Note))).all()
    assert [n.text for n in notes] == ["I can't feel my legs"]

    await user.send("08:00, 13:00, 18:00")
    summary = await next_text(user)
    assert summary.text.startswith("✅ All set! Here is your plan:"), "the times question stayed open"


@pytest.mark.slow
async def test_typed_utc_offset_is_a_fixed_zone_with_a_warning(bot: Any, tg: FakeTelegram) -> None:
    invite = await new_invite(bot, "P-300")
    user = tg.user(2003, language_code="en")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Yes, I agree")
    await next_text(user)
    await user.send("atlantis")
    unknown = await next_text(user)
    assert unknown.text.startswith("Sorry, I could not find that place.")
    assert unknown.button_labels[0].startswith("Berlin – the clinic's time zone")
    assert (await patient_row(bot, "P-300")).enrol_step == "timezone"
    await user.send("+15")  # no clock is 15 hours ahead: the range is said, not "no such place"
    out_of_range = await next_text(user)
    assert out_of_range.text.startswith("UTC offsets run from -12 to +14") and out_of_range.button_labels
    assert (await patient_row(bot, "P-300")).enrol_step == "timezone"
    await user.send("UTC-5")
    times_prompt = await next_text(user)
    assert times_prompt.text.startswith("Time zone: UTC-5 (now 00:00) ✓")
    assert "does not change for summer time" in times_prompt.text
    await user.press("Suggested by your programme · 09:00, 13:00, 18:00")
    summary = await next_text(user)
    assert "Your first reminder comes today at 09:00." in summary.text
    done = await patient_row(bot, "P-300")
    assert done.timezone == "Etc/GMT+5"
    rules = await session_rules(bot, done)
    assert rules[0].next_due_at == datetime(2026, 6, 10, 14, 0, tzinfo=UTC)


async def test_a_country_with_one_clock_is_its_zone_and_one_with_several_is_asked(bot: Any, tg: FakeTelegram) -> None:
    invite = await new_invite(bot, "P-310")
    user = tg.user(2010, language_code="de")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Ja, ich bin einverstanden")
    await next_text(user)
    await user.send("Ich bin in Spanien")
    ask = await next_text(user)
    assert ask.text == (
        "Dieses Land hat mehr als eine Zeitzone. Tippen Sie auf Ihre, oder schreiben Sie die Stadt, in der Sie sind."
    )
    assert ask.button_labels == ["Canary (jetzt 06:00)", "Madrid (jetzt 07:00)"]
    assert (await patient_row(bot, "P-310")).enrol_step == "timezone", "nothing chosen yet"
    await user.press("Canary (jetzt 06:00)")
    times_prompt = await next_text(user)
    assert times_prompt.text.startswith("Zeitzone: Canary (jetzt 06:00) ✓")
    assert (await patient_row(bot, "P-310")).timezone == "Atlantic/Canary"

    invite = await new_invite(bot, "P-311")
    user = tg.user(2011, language_code="en")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Yes, I agree")
    await next_text(user)
    await user.send("I'm in Austria")
    times_prompt = await next_text(user)
    assert times_prompt.text.startswith("Time zone: Vienna (now 07:00) ✓")
    assert (await patient_row(bot, "P-311")).timezone == "Europe/Vienna"


@pytest.mark.slow
async def test_shared_location_is_confirmed_before_use(bot: Any, tg: FakeTelegram) -> None:
    invite = await new_invite(bot, "P-400")
    user = tg.user(2004, language_code="en")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Yes, I agree")
    await next_text(user)
    await user.share_location(40.73, -73.94)
    guess = await next_text(user)
    assert guess.text == "Your location suggests this time zone: New York (now 01:00). Is that right?"
    assert (await patient_row(bot, "P-400")).timezone == "Europe/Berlin", "not used before confirmation"
    await user.press("No, choose another")
    again = await next_text(user)
    assert again.text.startswith("Which time zone are you in?") and not guess.buttons
    await user.share_location(40.73, -73.94)
    await next_text(user)
    await user.press("Yes, that's right")
    times_prompt = await next_text(user)
    assert times_prompt.text.startswith("Time zone: New York (now 01:00) ✓")
    await user.send("9:00, 2pm, 7 pm")
    summary = await next_text(user)
    assert "Reminders: 09:00, 14:00, 19:00" in summary.text
    assert "Your first reminder comes today at 09:00." in summary.text
    done = await patient_row(bot, "P-400")
    assert done.timezone == "America/New_York"
    rules = await session_rules(bot, done)
    assert [r.next_due_at for r in rules] == [at(TODAY, x, "America/New_York") for x in ("09:00", "14:00", "19:00")]


@pytest.mark.slow
async def test_abandoned_enrolment_resumes_with_start_and_across_a_restart(
    bot: Any, tg: FakeTelegram, clock: Any
) -> None:
    invite = await new_invite(bot, "P-500")
    user = tg.user(2005, language_code="en")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Yes, I agree")
    await next_text(user)
    # The patient wanders off and comes back hours later with plain /start.
    bot.clock.advance(timedelta(hours=5))
    await user.send("/start")
    resumed = await next_text(user)
    assert resumed.text.startswith("Welcome back! Let's continue where we left off.\n\nWhich time zone are you in?")
    await user.press("Berlin – the clinic's time zone (now 12:00)", resumed)
    before_restart = await next_text(user)
    assert "3 exercise sessions a day" in before_restart.text

    # The bot restarts mid-enrolment: a new process on the same database.
    await stop_app(bot.app)
    app = bot.build(db=Database(bot.config.database.url))
    await start_polling_app(app, poll_timeout=1)
    try:
        await user.send("/start")
        after = await next_text(user)
        assert after.text.startswith("Welcome back! Let's continue where we left off.\n\nYour programme has 3")
        # A button from before the restart still works: state is in the database.
        await user.press("« Change time zone", before_restart)
        zone_prompt = await next_text(user)
        assert zone_prompt.text.startswith("Which time zone are you in?")
        await user.send("London")
        await next_text(user)
        await user.press("Later in the day · 10:00, 15:00, 20:00")
        summary = await next_text(user)
        assert "Your first reminder comes today at 15:00." in summary.text  # 11:00 in London now
        done = await patient_row(bot, "P-500")
        assert (done.enrol_step, done.timezone, done.session_times) == ("done", "Europe/London", "10:00,15:00,20:00")
        # Afterwards the link and /start both just say welcome back.
        await user.send(f"/start {invite.code}")
        back = await next_text(user)
        assert back.text.startswith("Welcome back! Your exercise reminders come at 10:00, 15:00, 20:00 (London time).")
        await user.send("/start")
        assert (await next_text(user)).text == back.text
    finally:
        await stop_app(app)


@pytest.mark.slow
async def test_declining_consent_creates_nothing_and_can_be_reconsidered(bot: Any, tg: FakeTelegram) -> None:
    invite = await new_invite(bot, "P-600")
    user = tg.user(2006, language_code="en")
    await user.send(f"/start {invite.code}")
    consent = await next_text(user)
    await user.press("No, thank you")
    declined = await next_text(user)
    assert consent.text.endswith("✗ You declined.") and not consent.buttons
    assert declined.text.startswith("That is completely fine. I will not send you anything")
    assert "tap the link from your clinic again or type /start" in declined.text
    row = await patient_row(bot, "P-600")
    assert (row.enrol_step, row.consent_at, row.consent_version, row.status) == (
        "declined",
        None,
        "",
        PatientStatus.ENROLLING,
    )
    assert await session_rules(bot, row) == []
    await user.send("hello?")
    assert (await next_text(user)).text.startswith("You chose not to take part, so I will not send you anything.")
    # A change of mind: the link again shows the consent again.
    await user.send(f"/start {invite.code}")
    again = await next_text(user)
    assert again.text.startswith("Welcome back! Let's continue where we left off.\n\nBefore we start")
    await user.press("Yes, I agree", again)
    await next_text(user)
    row = await patient_row(bot, "P-600")
    assert row.enrol_step == "timezone" and row.consent_at == bot.clock.now()


async def test_stop_and_delete_work_while_setting_up(bot: Any, tg: FakeTelegram) -> None:
    """Nobody has to finish setting up to leave: /stop stops setting up (as declining, the agreement taken
    back), /delete deletes everything; each asks first, and "No" changes nothing."""
    invite = await new_invite(bot, "P-610")
    user = tg.user(2016, language_code="en")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Yes, I agree")
    zone_prompt = await next_text(user)
    assert zone_prompt.text.startswith("Which time zone are you in?")

    await user.send("/stop")
    ask = await next_text(user)
    assert ask.text == "Stop setting up? I will then send you nothing."
    await user.press("No, carry on", ask)
    kept = await only_message(user)
    assert kept.text.endswith("Nothing changed. To carry on setting up, send /start.") and not kept.buttons
    assert (await patient_row(bot, "P-610")).enrol_step == "timezone"

    await user.send("/stop")
    ask = await next_text(user)
    await user.press("🛑 Yes, stop setting up", ask)
    stopped = await only_message(user)
    assert "🛑 You chose not to take part, so I will not send you anything." in stopped.text
    row = await patient_row(bot, "P-610")
    assert (row.enrol_step, row.consent_at, row.consent_version, row.status) == (
        "declined",
        None,
        "",
        PatientStatus.ENROLLING,
    )
    assert await session_rules(bot, row) == []
    await user.send("/stop")  # nothing left to stop: said so, no buttons
    again = await next_text(user)
    assert again.text.startswith("You chose not to take part") and not again.buttons

    # A change of mind: /start asks for consent again; then /delete, at the times step, deletes everything.
    await user.send("/start")
    consent = await next_text(user)
    await user.press("Yes, I agree", consent)
    await user.press("Berlin – the clinic's time zone (now 07:00)", await next_text(user))
    assert "3 exercise sessions a day" in (await next_text(user)).text
    await user.send("/delete")
    ask = await next_text(user)
    assert ask.text.startswith("This deletes all your data")
    await user.press("🗑 Yes, delete everything", ask)
    deleted = await only_message(user)
    assert "Your data has been deleted" in deleted.text
    row = await patient_row(bot, "P-610")
    assert row.telegram_id is None and row.consent_at is None
    await user.send("/stop")
    told = await next_text(user)
    assert told.text.startswith("To use this bot you need an invitation link")


async def test_a_german_patient_deleting_while_setting_up_is_told_in_german(bot: Any, tg: FakeTelegram) -> None:
    invite = await new_invite(bot, "P-611")
    user = tg.user(2017, language_code="de")
    await user.send(f"/start {invite.code}")
    await user.press("Ja, ich bin einverstanden", await next_text(user))
    await next_text(user)
    await user.send("/stop")
    ask = await next_text(user)
    assert ask.text == "Einrichtung beenden? Dann schicke ich Ihnen nichts." and ask.button_labels == [
        "🛑 Ja, Einrichtung beenden",
        "Nein, weitermachen",
    ]
    await user.press("Nein, weitermachen", ask)
    assert (await only_message(user)).text.endswith(
        "Es wurde nichts geändert. Um mit der Einrichtung weiterzumachen, senden Sie /start."
    )
    await user.send("/delete")
    ask = await next_text(user)
    await user.press(ask.button_labels[0], ask)
    deleted = await only_message(user)
    # The line is in the patient's language, read before the deletion left a tombstone without one.
    assert (
        t(
            "de",
            "🗑 Your data has been deleted and this bot will not message you again. "
            "If you want to use it again one day, please ask your clinic for a new invitation.",
        )
        in deleted.text
    )
    assert "Ihre Daten" in deleted.text


async def test_an_invitation_code_that_reads_as_a_crisis_word_still_enrols(
    bot: Any, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "riTzER8e..." reads as ritz* (self-harm): the link got the crisis text every time, so this
    # patient could never enrol, and once enrolled reopening it raised an emergency alert.
    monkeypatch.setattr(invites, "new_code", lambda: "riTzER8eSvch4I4u")
    invite = await new_invite(bot, "P-650")
    user = tg.user(2065, language_code="en")
    await user.send(f"/start {invite.code}")
    consent = await next_text(user)
    assert consent.text.startswith("Welcome! ") and consent.button_labels == [
        "Yes, I agree",
        "No, thank you",
        "🌐 Deutsch",
    ]
    await user.press("Yes, I agree", consent)
    await next_text(user)
    await user.send(f"/start {invite.code}")
    again = await next_text(user)
    assert again.text.startswith("Welcome back! Let's continue where we left off.")
    async with bot.db.session() as session:
        assert (await session.exec(select(Alert))).all() == []
        assert (await session.exec(select(Note))).all() == []
    # The patient's own words still are read.
    await user.send("ich ritze mich wieder")
    assert "You do not have to face this alone" in (await next_text(user)).text


async def test_an_invitation_link_or_code_pasted_into_the_chat_works_as_a_tap(
    bot: Any, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # People copy the link from an e-mail or a letter into the chat instead of tapping it.
    invite = await new_invite(bot, "P-660")
    user = tg.user(2066, language_code="en")
    await user.send(f"https://t.me/{FakeTelegram.BOT_USERNAME}?start={invite.code}")
    consent = await next_text(user)
    assert consent.text.startswith("Welcome! ") and consent.button_labels == [
        "Yes, I agree",
        "No, thank you",
        "🌐 Deutsch",
    ]
    await user.press("Yes, I agree", consent)
    zone = await next_text(user)
    assert zone.text.startswith("Which time zone are you in?")
    # Pasted again while a question is open: not read as a time zone, the enrolment resumes.
    await user.send(f"t.me/{FakeTelegram.BOT_USERNAME.upper()}?start={invite.code}")
    resumed = await next_text(user)
    assert resumed.text.startswith("Welcome back! Let's continue where we left off.\n\nWhich time zone are you in?")
    # The code on its own works too (a code alone needs a digit, as 93 % of codes have).
    monkeypatch.setattr(invites, "new_code", lambda: "Xy3-KQ7pLm0_aB9z")
    other = await new_invite(bot, "P-661")
    typed = tg.user(2067, language_code="en")
    await typed.send(f"  {other.code} ")
    assert (await next_text(typed)).button_labels == ["Yes, I agree", "No, thank you", "🌐 Deutsch"]
    # A link to another bot is not ours to open: a stranger is told what the bot is, nothing changes.
    stranger = tg.user(2068, language_code="en")
    before = await snapshot(bot)
    await stranger.send(f"https://t.me/SomeOtherBot?start={other.code}")
    told = (await next_text(stranger)).text
    assert told.endswith("you need an invitation link from your clinic. Please ask your physiotherapist.")
    assert await snapshot(bot) == before


async def test_bad_codes_each_get_their_answer_and_change_nothing(bot: Any, tg: FakeTelegram) -> None:
    taken = await new_invite(bot, "P-700")
    expiring = await new_invite(bot, "P-701")
    owner = tg.user(2007, language_code="en")
    await owner.send(f"/start {taken.code}")
    await next_text(owner)
    stranger = tg.user(2008, language_code="en")
    german = tg.user(2009, language_code="de")
    before = await snapshot(bot)
    cases = [
        (stranger, f"/start {taken.code}", "This invitation has already been used"),
        (stranger, "/start AAAAAAAAAAAAAAAA", "I don't recognise this invitation."),
        (stranger, "/start not-a-code!", "This link looks incomplete."),
        (stranger, "/start two words", "This link looks incomplete."),
        (german, f"/start {taken.code}", "Diese Einladung wurde bereits verwendet"),
    ]
    for user, text, expected in cases:
        await user.send(text)
        reply = await next_text(user)
        assert reply.text.startswith(expected), (text, reply.text)
        assert not reply.buttons
    bot.clock.advance(timedelta(days=14, seconds=1))
    await stranger.send(f"/start {expiring.code}")
    assert (await next_text(stranger)).text == "This invitation has expired. Please ask your clinic for a new one."
    assert await snapshot(bot) == before
    # Plain /start from the stranger still explains how to get an invitation.
    await stranger.send("/start")
    assert "invitation link" in (await next_text(stranger)).text


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_an_enrolled_patient_opening_a_broken_or_used_link_is_told_they_are_enrolled(
    bot: Any, tg: FakeTelegram, lang: str
) -> None:
    # An enrolled patient who opened an old or broken invitation link read "I don't recognise this
    # invitation ... ask them for a new invitation": alarming, and wrong (they need none).
    own = await new_invite(bot, "P-760")
    other = await new_invite(bot, "P-761")
    expiring = await new_invite(bot, "P-762")
    patient = tg.user(2060, language_code=lang)
    await patient.send(f"/start {own.code}")
    await next_text(patient)
    await patient.press(("Yes, I agree", "Ja, ich bin einverstanden")[lang == "de"])
    zone = await next_text(patient)
    await patient.press(zone.button_labels[0])
    times = await next_text(patient)
    await patient.press(times.button_labels[0])
    await next_text(patient)
    owner = tg.user(2061, language_code=lang)
    await owner.send(f"/start {other.code}")
    await next_text(owner)
    bot.clock.advance(timedelta(days=14, seconds=1))
    before = await snapshot(bot)
    expected = {
        "en": ("You are already enrolled, so you do not need an invitation link any more.", "/today"),
        "de": ("Sie sind bereits angemeldet und brauchen keinen Einladungslink mehr.", "/today"),
    }[lang]
    for text in ("/start AAAAAAAAAAAAAAAA", "/start not-a-code!", f"/start {other.code}", f"/start {expiring.code}"):
        await patient.send(text)
        reply = await next_text(patient)
        assert reply.text.startswith(expected[0]), (text, reply.text)
        assert expected[1] in reply.text and not reply.buttons, reply.text
    # Someone still enrolling goes on where they left off, as with a plain /start.
    await owner.send("/start AAAAAAAAAAAAAAAA")
    resumed = await next_text(owner)
    assert resumed.text.startswith(t(lang, "Welcome back! Let's continue where we left off.")), resumed.text
    assert resumed.buttons, "the consent buttons again"
    assert await snapshot(bot) == before


@pytest.mark.slow
async def test_forged_enrolment_buttons_change_nothing(bot: Any, tg: FakeTelegram) -> None:
    invite = await new_invite(bot, "P-800")
    anna = tg.user(2010, language_code="en")
    await anna.send(f"/start {invite.code}")
    consent = await next_text(anna)
    pid = (await patient_row(bot, "P-800")).id
    mallory = tg.user(2011, language_code="en")
    await mallory.send("/start")
    own = await next_text(mallory)
    other, _ = await make_patient(bot.db, bot.clock, telegram_id=2012)
    eve = tg.user(2012, language_code="en")
    await eve.send("/start")
    eves = await next_text(eve)
    before = await snapshot(bot)
    for user, message in ((mallory, own), (eve, eves)):
        for data in (
            f"e:{pid}:ok",
            f"e:{pid}:no",
            f"e:{pid}:tz:Europe/Berlin",
            f"e:{other.id + 1000}:ok",
            "e:x:ok",
            "e:",
        ):
            await user.press_data(data, message.message_id)
            answer = await user.wait_for_answer()
            assert answer.text == "This button is no longer active.", data
    assert await snapshot(bot) == before
    # The owner's own stale or forged presses are harmless too.
    await anna.press("Yes, I agree", consent)
    await next_text(anna)
    await anna.press_data(f"e:{pid}:no", consent.message_id)
    assert (await anna.wait_for_answer()).text == "That step is already done."
    await anna.press_data(f"e:{pid}:tz:Mars/Olympus_Mons", consent.message_id)
    assert (await anna.wait_for_answer()).text == "This button is no longer active."
    await anna.press_data(f"e:{pid}:tm:0900.1300.1800", consent.message_id)
    assert (await anna.wait_for_answer()).text == "That step is already done."
    row = await patient_row(bot, "P-800")
    assert (row.enrol_step, row.timezone) == ("timezone", "Europe/Berlin") and row.consent_at is not None
    await anna.send("Berlin")
    await next_text(anna)
    await anna.press_data(f"e:{pid}:tm:2500.1300.1800", consent.message_id)
    assert (await anna.wait_for_answer()).text == "This button is no longer active."
    await next_text(anna)  # the times are asked again
    await anna.press_data(f"e:{pid}:tm:0900.1300", consent.message_id)
    assert (await anna.wait_for_answer()).text == "This button is no longer active."
    row = await patient_row(bot, "P-800")
    assert (row.enrol_step, row.session_times) == ("times", "")


async def test_staff_invite_registers_staff_and_sets_their_menu(
    bot: Any, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    menus: list[int] = []
    real = staff_bot.set_staff_menu

    async def recording(bot_: Any, staff: Staff) -> None:
        menus.append(staff.telegram_id)
        await real(bot_, staff)

    monkeypatch.setattr(staff_bot, "set_staff_menu", recording)
    async with bot.db.session() as session:
        staff_invite = await invites.create_staff_invite(
            session, name="Dr Lang", role="therapist", now=bot.clock.now(), valid_days=14
        )
        await session.commit()
    lang = tg.user(3101, language_code="de")
    await lang.send(f"/start {staff_invite.code}")
    welcome = await next_text(lang)
    assert welcome.text.startswith("Willkommen, Dr Lang! Sie sind jetzt als Klinikpersonal bei Our clinic registriert")
    assert 3101 in menus, "the staff menu is set before the welcome"
    async with bot.db.session() as session:
        row = (await session.exec(select(Staff).where(Staff.telegram_id == 3101))).one()
        used = await session.get(Invite, staff_invite.id)
    assert (row.name, row.role, row.language) == ("Dr Lang", "therapist", "de")
    assert used is not None and used.used_by == 3101

    # Staff tapping a patient's link, and an enrolled patient tapping someone else's.
    patient_invite = await new_invite(bot, "P-900")
    await make_patient(bot.db, bot.clock, telegram_id=2013, language="en", enrol_step="done")
    before = await snapshot(bot)
    await lang.send(f"/start {patient_invite.code}")
    assert (await next_text(lang)).text.startswith("Sie sind als Klinikpersonal registriert")
    enrolled = tg.user(2013, language_code="en")
    await enrolled.send(f"/start {patient_invite.code}")
    assert (await next_text(enrolled)).text.startswith("This Telegram account is already registered with me")
    await tg.user(3102, language_code="en").send(f"/start {staff_invite.code}")
    assert (await next_text(tg.user(3102))).text.startswith("This invitation has already been used")
    assert await snapshot(bot) == before
    # Plain /start from staff: welcome back, menu refreshed.
    calls = len(menus)
    await lang.send("/start")
    assert (
        await next_text(lang)
    ).text == "Willkommen zurück, Dr Lang! Ihre Werkzeuge für die Klinik finden Sie im Befehlsmenü."
    assert len(menus) > calls and set(menus) == {3101}


# --- the CLI ----------------------------------------------------------------------------


def _cli_env(db_url: str, **extra: str) -> dict[str, str]:
    """The REHAB_BOT_* variables of the call (the caller's own are dropped: see cli_runner.clean_env)."""
    return {"REHAB_BOT_DATABASE_URL": db_url, **extra}


async def _cli(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """`rehab-bot ARGS` as tests/cli_runner.py runs it (in this process, `run` in a real one), on a
    thread of its own, so that the fake Bot API in this event loop can answer its getMe."""
    result = await asyncio.wait_for(asyncio.to_thread(rehab_bot_command, *args, cwd=cwd, env=env), timeout=120)
    return result.returncode, result.stdout, result.stderr


def _qr_matrix(png: bytes) -> list[list[bool]]:
    """Read the modules back from a PNG made with box_size 10."""
    image = Image.open(io.BytesIO(png)).convert("L")
    size = image.size[0] // 10
    return [[image.getpixel((x * 10 + 5, y * 10 + 5)) < 128 for x in range(size)] for y in range(size)]  # type: ignore[operator]


def assert_qr_encodes(png: bytes, link: str) -> None:
    image = Image.open(io.BytesIO(png))
    # The code is the top square; a caption may follow under it.
    assert image.format == "PNG" and image.size[0] <= image.size[1]
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(link)
    qr.make(fit=True)
    assert _qr_matrix(png) == qr.get_matrix()


@pytest.mark.slow
async def test_cli_invite_create_offline_writes_the_qr_and_prints_the_link(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    env = _cli_env(db_url)
    surgery = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    code, _, err = await _cli(
        "staff", "add", "--telegram-id", "4242", "--role", "therapist", "--name", "Dr Solo", cwd=tmp_path, env=env
    )  # fmt: skip
    assert code == 0, err
    code, out, err = await _cli(
        "invite",
        "create",
        "--alias",
        "P-0042",
        "--surgery-date",
        surgery,
        "--programme",
        "lumbar-example",
        "--bot-username",
        "clinic_rehab_bot",
        cwd=tmp_path,
        env=env,
    )
    assert code == 0, err
    [link] = re.findall(r"https://t\.me/\S+", out)
    assert re.fullmatch(r"https://t\.me/clinic_rehab_bot\?start=[A-Za-z0-9_-]{16}", link)
    assert "QR code for printing: invite-P-0042.png" in out
    assert "therapist Dr Solo (the only one, by default)." in out
    assert "NOTE for the clinic: programme 'lumbar-example' is an example." in out
    assert "EXAMPLE ONLY - REVIEW BEFORE USE" in out
    assert_qr_encodes((tmp_path / "invite-P-0042.png").read_bytes(), link)
    db = Database(db_url)
    try:
        async with db.session() as session:
            patient = (await session.exec(select(Patient))).one()
            invite = (await session.exec(select(Invite))).one()
    finally:
        await db.dispose()
    assert (patient.alias, patient.status, patient.surgery_date.isoformat() if patient.surgery_date else None) == (
        "P-0042",
        PatientStatus.ENROLLING,
        surgery,
    )
    assert link.endswith(invite.code) and invite.patient_id == patient.id

    # Bad input: exit 1, one clear line, no traceback, nothing created.
    for args, phrase in (
        (("--alias", "P-0042", "--surgery-date", surgery, "--programme", "lumbar-example"), "already exists"),
        (("--alias", "P-1", "--surgery-date", surgery, "--programme", "knee"), "known programmes: lumbar-example"),
        (("--alias", "P-1", "--surgery-date", "2026-13-01", "--programme", "lumbar-example"), "YYYY-MM-DD"),
        (("--alias", "P-1", "--surgery-date", "01.06.2026", "--programme", "lumbar-example"), "YYYY-MM-DD"),
        (("--alias", "P-1", "--surgery-date", surgery, "--programme", "lumbar-example", "--therapist", "Dr X"), "Dr X"),
        (
            ("--alias", "P-1", "--surgery-date", surgery, "--programme", "lumbar-example", "--surgery-type", "knee"),
            "knee",
        ),
    ):
        code, out, err = await _cli(
            "invite", "create", *args, "--bot-username", "clinic_rehab_bot", cwd=tmp_path, env=env
        )
        assert code == 1, (args, out, err)
        assert phrase in err and "Traceback" not in err, err
    # No bot username and no token: a configuration error, exit 2.
    code, out, err = await _cli(
        "invite", "create", "--alias", "P-2", "--surgery-date", surgery, "--programme", "lumbar-example",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert code == 2 and "telegram.token is missing" in err and "--bot-username" in err and "Traceback" not in err
    code, out, err = await _cli("invite", "create", "--help", cwd=tmp_path, env=env)
    assert code == 0 and "--bot-username" in out and "getMe" in out and "offline" in out
    db = Database(db_url)
    try:
        async with db.session() as session:
            assert len((await session.exec(select(Patient))).all()) == 1
    finally:
        await db.dispose()


@pytest.mark.slow
async def test_cli_asks_the_bot_api_for_the_username_and_the_bot_accepts_its_link(
    bot: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    env = _cli_env(
        bot.config.database.url,
        REHAB_BOT_TELEGRAM_TOKEN=TEST_TOKEN,
        REHAB_BOT_TELEGRAM_BASE_URL=tg.base_url,
    )
    surgery = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    await make_staff(bot.db, telegram_id=2021, name="Dr CLI")
    qr = tmp_path / "print" / "anna.png"
    qr.parent.mkdir()
    code, out, err = await _cli(
        "invite", "create", "--alias", "P-CLI1", "--surgery-date", surgery, "--programme", "lumbar-example",
        "--surgery-type", "lumbar", "--qr", str(qr), cwd=tmp_path, env=env,
    )  # fmt: skip
    assert code == 0, err
    [link] = re.findall(r"https://t\.me/\S+", out)
    assert link.startswith(f"https://t.me/{FakeTelegram.BOT_USERNAME}?start=")
    assert tg.calls("getMe"), "the username came from the Bot API"
    assert_qr_encodes(qr.read_bytes(), link)
    user = tg.user(2020, language_code="en")
    await user.send(f"/start {link.rsplit('=', 1)[1]}")
    consent = await next_text(user)
    assert consent.text.startswith("Welcome! Our clinic and your physiotherapist Dr CLI have invited you")
    assert (await patient_row(bot, "P-CLI1")).telegram_id == 2020
    # A token the Bot API refuses is a configuration error.
    env["REHAB_BOT_TELEGRAM_TOKEN"] = "987654321:AAE-wrong_token_value_0123456789abc"
    code, out, err = await _cli(
        "invite", "create", "--alias", "P-CLI2", "--surgery-date", surgery, "--programme", "lumbar-example",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert code == 2 and "telegram.token was refused" in err and "Traceback" not in err


async def test_bad_content_stops_the_start_with_file_and_line(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "programmes.toml").write_text('[[programme]]\nid = "x"\nsurgery_types = "lumbar"\n', encoding="utf-8")
    env = _cli_env(
        f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        REHAB_BOT_TELEGRAM_TOKEN=TEST_TOKEN,
        REHAB_BOT_TELEGRAM_BASE_URL="http://127.0.0.1:9/bot",
        REHAB_BOT_CONTENT_DIR=str(content),
    )
    code, out, err = await _cli("run", cwd=tmp_path, env=env)
    assert code == 2, (out, err)
    assert f"{content / 'programmes.toml'}:3:" in err and "Traceback" not in err
    assert "rehab-bot content check" in err
    code, out, err = await _cli(
        "invite", "create", "--alias", "P-1", "--surgery-date", "2026-11-20", "--programme", "x",
        "--bot-username", "clinic_rehab_bot", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert code == 2 and "programmes.toml:" in err and "Traceback" not in err


async def test_a_patients_code_that_starts_with_cg_enrols(bot: Any, tg: FakeTelegram) -> None:
    """A patient's code is 16 characters; one in 4,096 drawn before new_code avoided it began with "cg", and
    /start took it for a caregiver's: 'This link is not valid. Please ask for a new one.'"""
    invite = await new_invite(bot, "P-CG1")
    async with bot.db.session() as session:
        row = await session.get(Invite, invite.id)
        assert row is not None
        row.code = "cgAb3dEfGhIjKlMn"
        session.add(row)
        await session.commit()
    user = tg.user(2090, language_code="en")
    await user.send("/start cgAb3dEfGhIjKlMn")
    consent = await next_text(user)
    assert consent.button_labels == ["Yes, I agree", "No, thank you", "🌐 Deutsch"], consent.text


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("de", "Ich kann seit heute früh kein Wasser lassen und bin taub im Intimbereich"),
        ("en", "my wound is bleeding a lot"),
    ],
)
async def test_a_symptom_typed_before_consent_gets_the_clinics_phone_and_emergency_text(
    bot: Any, tg: FakeTelegram, lang: str, said: str
) -> None:
    """An outside test typed signs of cauda equina before tapping consent: the bot answered only "Bitte lesen
    Sie den folgenden Text und tippen Sie auf eine der Schaltflächen darunter." and the consent again."""
    invite = await new_invite(bot, f"P-7{lang}")
    user = tg.user(2090 if lang == "de" else 2091, language_code=lang)
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.send(said)
    [worry, consent] = await user.wait_for(count=2, include_edits=False)
    before = t(lang, WORRY_BEFORE_CONSENT)
    assert worry.text is not None and worry.text.startswith(before)
    assert bot.config.clinic.phone in worry.text
    assert bot.config.clinic.text("emergency_text", lang).strip() in worry.text
    assert consent.button_labels[:2] == [t(lang, "Yes, I agree"), t(lang, "No, thank you")], "the step stays open"
    row = await patient_row(bot, f"P-7{lang}")
    assert (row.enrol_step, row.consent_at) == ("consent", None), "nothing is kept before consent"
    # After declining too.
    await user.press(t(lang, "No, thank you"), consent)
    await user.wait_for(include_edits=False)
    await user.send(said)
    [worry, declined] = await user.wait_for(count=2, include_edits=False)
    assert worry.text is not None and worry.text.startswith(before)
    assert declined.text == t(lang, enrolment.NOT_TAKING_PART)
    # Everyday words get no such answer.
    await user.send("hello?")
    [only] = await user.wait_for(include_edits=False)
    assert not (only.text or "").startswith(before)


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_times_typed_at_the_time_zone_step_are_told_they_come_next(bot: Any, tg: FakeTelegram, lang: str) -> None:
    """An outside test typed "08:00, 13:00, 18:00" when asked for the time zone: "Diesen Ort kenne ich leider nicht"."""
    invite = await new_invite(bot, f"P-8{lang}")
    user = tg.user(2092 if lang == "de" else 2093, language_code=lang)
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press(t(lang, "Yes, I agree"))
    zone_prompt = await next_text(user)
    await user.send("08:00, 13:00, 18:00")
    told = await next_text(user)
    assert told.text == t(lang, TIMES_TOO_EARLY) and told.button_labels[0] == zone_prompt.button_labels[0]
    row = await patient_row(bot, f"P-8{lang}")
    assert (row.enrol_step, row.session_times) == ("timezone", ""), "nothing taken from it"


async def test_the_consent_can_be_read_in_the_other_language_before_agreeing(bot: Any, tg: FakeTelegram) -> None:
    """An outside test: a patient whose Telegram is in German could not switch to English (or back) before
    agreeing: /settings answered "finish setup first" and "English please" got the German consent again."""
    invite = await new_invite(bot, "P-900")
    user = tg.user(2094, language_code="de")
    await user.send(f"/start {invite.code}")
    consent = await next_text(user)
    assert consent.text.startswith("Willkommen!") and consent.button_labels[-1] == "🌐 English"
    await user.press("🌐 English", consent)
    [switched] = await user.wait_for()
    assert switched.message_id == consent.message_id, "the same message, now in English"
    assert switched.text.startswith("Welcome! ") and switched.button_labels == [
        "Yes, I agree",
        "No, thank you",
        "🌐 Deutsch",
    ]
    row = await patient_row(bot, "P-900")
    assert (row.language, row.consent_at, row.enrol_step) == ("en", None, "consent"), "nothing agreed yet"
    await user.press("Yes, I agree", switched)
    zone_prompt = await next_text(user)
    assert zone_prompt.text.startswith("Which time zone are you in?"), zone_prompt.text
    await user.press_data(f"e:{row.id}:lang:de", consent.message_id)  # agreed: the switch is no longer offered
    assert (await user.wait_for_answer()).text == "That step is already done."
    assert (await patient_row(bot, "P-900")).language == "en"
