"""The patient commands end to end: each command's happy path and its bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import col, select

from rehab_bot import patient as patient_core
from rehab_bot import programme
from rehab_bot.bot import patient as patient_bot
from rehab_bot.bot.app import stop_app
from rehab_bot.bot.services import svc as services
from rehab_bot.db import Database
from rehab_bot.i18n import t
from rehab_bot.models import Alert, ExerciseSession, Kind, Note, Patient, PatientStatus, ReminderRule

WED = date(2026, 6, 10)  # the clock starts at 07:00 on this Wednesday in Berlin
STALE = "This button is no longer active."
INVITATION = "To use this bot you need an invitation link from your clinic. Please ask your physiotherapist."
COMMANDS = ("today", "progress", "settings", "pause", "resume", "cancel", "mydata", "delete", "stop")


@pytest.fixture
async def bot(bot_factory: Any) -> Any:
    """The bot, with the per-chat pacing scaled down so the tests run in seconds."""
    return await bot_factory(delivery={"per_chat_interval": 0.02})


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


async def enrolled(bot: Any, telegram_id: int, *, lang: str = "en", **kw: Any) -> Patient:
    """A patient five days after lumbar surgery, three sessions a day, as enrolment leaves them."""
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=telegram_id,
        language=lang,
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=5),
        phase_id="weeks-1-2",
        session_times="09:00,13:00,18:00",
        **kw,
    )
    async with bot.db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        await programme.schedule_sessions(s, fresh, bot.services.content, bot.clock.now())
        await s.commit()
    return fresh


async def command(user: FakeUser, text: str, events: int = 1) -> list[SentMessage]:
    user.mark_seen()
    await user.send(text)
    return await user.wait_for(count=events)


async def press(user: FakeUser, label: str, events: int = 1, message: SentMessage | None = None) -> list[SentMessage]:
    user.mark_seen()
    await user.press(label, message)
    await user.wait_for_answer()
    return await user.wait_for(count=events) if events else []


async def stored(bot: Any, patient: Patient) -> Patient:
    async with bot.db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        return fresh


async def session_rules(bot: Any, patient: Patient) -> list[ReminderRule]:
    async with bot.db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        return await programme.session_rules(s, fresh)


# --- who may use them ------------------------------------------------------------------------------


async def test_strangers_staff_and_enrolling_patients_get_a_friendly_pointer(bot: Any, tg: FakeTelegram) -> None:
    stranger = tg.user(8001, language_code="de")
    for name in COMMANDS:
        [reply] = await command(stranger, f"/{name}")
        assert reply.text == t("de", INVITATION), name
    await stranger.expect_silence(0.2)
    staff = await make_staff(bot.db, telegram_id=8002)
    [reply] = await command(tg.user(staff.telegram_id), "/today")
    assert reply.text == "This command is for patients. Your commands are in the menu."
    await make_patient(bot.db, bot.clock, times=(), telegram_id=8003, status=PatientStatus.ENROLLING)
    [reply] = await command(tg.user(8003), "/progress")
    assert reply.text == "Please finish setting up first: send /start."
    # A stranger's press on a patient button is neutral too.
    await stranger.press_data("pt:del:yes:99999999", reply_to(stranger))
    assert (await stranger.wait_for_answer()).text == t("de", STALE)


def reply_to(user: FakeUser) -> int:
    return user.last.message_id


async def test_help_and_menu_list_the_patient_commands(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 8010)  # a stranger is told how to join instead: tests/e2e/test_foundation.py
    [reply] = await command(tg.user(8010), "/help")
    for name in COMMANDS:
        assert f"/{name} – " in reply.text
    for lang in ("en", "de"):
        listed = [c.command for c in tg.commands_for("default", language_code=lang)]
        assert set(COMMANDS) <= set(listed), lang
    german = {c.command: c.description for c in tg.commands_for("default", language_code="de")}
    assert german["today"] == t("de", "Today's sessions") != "Today's sessions"


# --- /today and /progress ------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_today_lists_sessions_and_their_status(bot: Any, tg: FakeTelegram, lang: str) -> None:
    patient = await enrolled(bot, 8020, lang=lang)
    async with bot.db.session() as s:
        s.add(ExerciseSession(patient_id=patient.id or 0, local_date=WED, slot="09:00", status="done"))
        s.add(ExerciseSession(patient_id=patient.id or 0, local_date=WED, slot="13:00", status="pending", message_id=1))
        await s.commit()
    bot.clock.set(berlin(WED, "14:00"))
    [reply] = await command(tg.user(8020), "/today")
    lines = reply.text.split("\n")
    assert lines == [
        t(lang, "📅 Your sessions today:"),
        "09:00  " + t(lang, "✅ done"),
        "13:00  " + t(lang, "⏳ waiting for your answer"),
        "18:00  " + t(lang, "🕒 coming up"),
    ]


async def test_progress_shows_streak_weeks_surgery_day_and_next_session(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8030)
    async with bot.db.session() as s:
        for days_ago, status in [(9, "done"), (8, "missed"), (2, "done"), (1, "done"), (0, "done")]:
            day = WED - timedelta(days=days_ago)
            s.add(ExerciseSession(patient_id=patient.id or 0, local_date=day, slot="09:00", status=status))
        await s.commit()
    seen: list[int] = []

    async def chart(update: Any, context: Any, who: Patient, lang: str) -> None:
        seen.append(who.id or 0)
        await update.effective_message.reply_text(f"extra for {lang}")

    patient_bot.PROGRESS_EXTRAS.append(chart)
    try:
        bot.clock.set(berlin(WED, "10:00"))
        user = tg.user(8030)
        [reply] = await command(user, "/progress")
        await user.wait_for(lambda m: m.text == "extra for en", timeout=15)
    finally:
        patient_bot.PROGRESS_EXTRAS.remove(chart)
    assert reply.text.split("\n") == [
        "📈 Your progress",
        "Day 5 after your surgery.",
        "🔥 4 days in a row with all sessions done.",  # the day missed 8 days ago is a grace day
        "Today: 1 of 3 sessions done, 2 still to come.",
        "This week: 100 % of your sessions done (last week: 50 %).",
        "Sessions done so far: 4.",
        "Next session: Wed, Jun 10, 13:00.",
    ]
    assert seen == [patient.id]


# --- /settings ---------------------------------------------------------------------------------------


async def test_settings_times_with_bad_input_first(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8040)
    user = tg.user(8040)
    [menu] = await command(user, "/settings")
    assert "Session times: 09:00, 13:00, 18:00" in menu.text and "Quiet hours: clinic default" not in menu.text
    assert "Timezone: Berlin (now 07:00)" in menu.text and "Language: English" in menu.text
    [prompt] = await press(user, "🕒 Times", 1, menu)
    assert "Your programme has 3 sessions a day." in prompt.text
    [reply] = await command(user, "banana")
    assert reply.text == "I could not read that. Please send times like 08:00, 13:00, 18:00."
    [reply] = await command(user, "08:00, 12:00")
    assert reply.text == "Your programme has 3 sessions a day: please send 3 times."
    [reply] = await command(user, "8:00 8:00 9:00")
    assert reply.text == "Each time may appear only once. Please send the times again."
    assert [r.local_time for r in await session_rules(bot, patient)] == ["09:00", "13:00", "18:00"], "nothing lost"
    [saved] = await command(user, "8:30, 13.30 18:30")
    assert saved.text.startswith("✅ Saved.") and "Session times: 08:30, 13:30, 18:30" in saved.text
    rules = await session_rules(bot, patient)
    assert [r.local_time for r in rules] == ["08:30", "13:30", "18:30"]
    assert rules[0].next_due_at == berlin(WED, "08:30", 0)
    # Text nobody asked for passes on to the other features, not into the settings.
    [other] = await command(user, "08:00 12:00 17:00")
    assert not other.text.startswith("✅ Saved.") and "Session times" not in other.text
    assert [r.local_time for r in await session_rules(bot, patient)] == ["08:30", "13:30", "18:30"]


async def test_times_typed_with_dashes_and_midnight_as_24_00(bot_factory: Callable[..., Any], tg: FakeTelegram) -> None:
    bot = await bot_factory(delivery={"quiet_hours_start": time(22, 0), "quiet_hours_end": time(7, 0)})
    patient = await enrolled(bot, 8054)
    user = tg.user(8054)
    [menu] = await command(user, "/settings")
    await press(user, "🕒 Times", 1, menu)
    # 24:00 is midnight: a session then is judged as one at 00:00, here inside the clinic's quiet hours.
    [refused] = await command(user, "08:00 13:00 24:00")
    assert refused.text == "00:00 falls in your quiet hours (22:00-07:00). Please choose other times."
    [saved] = await command(user, "08:00 – 13:00 — 18:30")
    assert saved.text.startswith("✅ Saved.") and "Session times: 08:00, 13:00, 18:30" in saved.text
    assert [r.local_time for r in await session_rules(bot, patient)] == ["08:00", "13:00", "18:30"]
    [choices] = await press(user, "🌙 Quiet hours", 1, saved)
    await press(user, "Set my own", 1, choices)
    [saved] = await command(user, "22:00–24:00")
    assert "Quiet hours: 22:00-24:00" in saved.text  # the end of the day, not its start
    p = await stored(bot, patient)
    assert (p.quiet_start, p.quiet_end) == ("22:00", "00:00")
    # Quiet hours that end at midnight leave a session at midnight free, by the same one rule.
    await press(user, "🕒 Times", 1, saved)
    [saved] = await command(user, "08:00, 13:00 and 24:00")
    assert "Session times: 00:00, 08:00, 13:00" in saved.text


async def test_quiet_hours_that_would_swallow_a_session_are_refused_and_asked_again(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8052)
    user = tg.user(8052)
    first = (await stored(bot, patient)).session_times.split(",")[0]
    hour, minute = (int(part) for part in first.split(":"))
    assert hour < 20
    end = f"{hour + 1:02d}:{minute:02d}"
    [menu] = await command(user, "/settings")
    [choices] = await press(user, "🌙 Quiet hours", 1, menu)
    await press(user, "Set my own", 1, choices)
    [refused] = await command(user, f"21:00-{end}")
    assert refused.text == (
        f"Your session at {first} falls in these quiet hours (21:00-{end}), so its reminder would never come. "
        "Please choose other quiet hours, or first change your session times."
    )
    p = await stored(bot, patient)
    assert (p.quiet_start, p.quiet_end) == (None, None), "nothing changed"
    [saved] = await command(user, "22:00-06:30")  # the question is still open
    assert "Quiet hours: 22:00-06:30" in saved.text


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_quiet_hours_over_several_sessions_name_them_in_the_plural(bot: Any, tg: FakeTelegram, lang: str) -> None:
    """Quiet hours over every session said "Your session at 09:00, 13:00, 18:00 falls in these quiet
    hours ... its reminder" ("Ihre Übungseinheit um ... liegt"), and times in the quiet hours "05:00,
    06:00 falls in": one session, in both languages. One time keeps the singular."""
    await enrolled(bot, 8056, lang=lang)
    user = tg.user(8056, language_code=lang)
    [menu] = await command(user, "/settings")
    [choices] = await press(user, t(lang, "🌙 Quiet hours"), 1, menu)
    await press(user, t(lang, "Set my own"), 1, choices)
    [refused] = await command(user, "08:00-23:00")
    assert refused.text == t(
        lang,
        "Your sessions at {times} fall in these quiet hours ({start}-{end}), so their reminders would never "
        "come. Please choose other quiet hours, or first change your session times.",
        times="09:00, 13:00, 18:00",
        start="08:00",
        end="23:00",
    )
    [refused] = await command(user, "08:00-10:00")  # the question is still open
    assert refused.text == t(
        lang,
        "Your session at {times} falls in these quiet hours ({start}-{end}), so its reminder would never come. "
        "Please choose other quiet hours, or first change your session times.",
        times="09:00",
        start="08:00",
        end="10:00",
    )
    [menu] = await command(user, "22:00-07:00")  # saved, with the settings again
    await press(user, t(lang, "🕒 Times"), 1, menu)
    [refused] = await command(user, "05:00, 06:00, 12:00")
    quiet = {"start": "22:00", "end": "07:00"}
    several = "{times} fall in your quiet hours ({start}-{end}). Please choose other times."
    meant = "Did you mean {later}?"
    assert refused.text == f"{t(lang, several, times='05:00, 06:00', **quiet)} {t(lang, meant, later='17:00, 18:00')}"
    [refused] = await command(user, "05:00, 11:00, 17:00")
    one = "{times} falls in your quiet hours ({start}-{end}). Please choose other times."
    assert refused.text == t(lang, one, times="05:00", **quiet), "17:00 is taken: no question"


async def test_times_in_the_quiet_hours_that_fit_twelve_hours_later_are_asked_about(
    bot_factory: Callable[..., Any], tg: FakeTelegram
) -> None:
    """ "halb zwei" and "um 2" are 01:30 and 02:00, as "1:30" is; refused for the quiet hours, the answer
    asks whether the afternoon was meant, and nothing changes until the patient sends the times again."""
    bot = await bot_factory(delivery={"quiet_hours_start": time(22, 0), "quiet_hours_end": time(7, 0)})
    patient = await enrolled(bot, 8057, lang="de")
    user = tg.user(8057, language_code="de")
    [menu] = await command(user, "/settings")
    await press(user, t("de", "🕒 Times"), 1, menu)
    [refused] = await command(user, "halb neun, halb zwei und um 6")
    assert refused.text == (
        "01:30, 06:00 liegen in Ihren Ruhezeiten (22:00-07:00). Bitte wählen Sie andere Uhrzeiten. "
        "Meinten Sie 13:30, 18:00?"
    )
    assert [r.local_time for r in await session_rules(bot, patient)] == ["09:00", "13:00", "18:00"], "nothing saved"
    [saved] = await command(user, "08:30, 13:30, 18:00")
    assert saved.text.startswith(t("de", "✅ Saved."))
    assert [r.local_time for r in await session_rules(bot, patient)] == ["08:30", "13:30", "18:00"]


async def test_settings_timezone_typed_as_a_country_or_in_a_sentence(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8055)
    user = tg.user(8055)
    [menu] = await command(user, "/settings")
    await press(user, "🌍 Timezone", 1, menu)
    [ask] = await command(user, "I live in the USA")
    assert ask.text.startswith("This country has more than one time zone. Please send the city you are in")
    for line in (
        "• New York (now 01:00)",
        "• Chicago (now 00:00)",
        "• Los Angeles (now 22:00)",
        "• Honolulu (now 19:00)",
    ):
        assert line in ask.text, line
    assert (await stored(bot, patient)).timezone == "Europe/Berlin", "nothing changed"
    [saved] = await command(user, "I'm in Chicago")  # the question is still open
    assert "Timezone: Chicago (now 00:00)" in saved.text
    assert (await stored(bot, patient)).timezone == "America/Chicago"
    await press(user, "🌍 Timezone", 1, saved)
    [saved] = await command(user, "Deutschland")
    assert "Timezone: Berlin (now 07:00)" in saved.text
    assert (await stored(bot, patient)).timezone == "Europe/Berlin"


async def test_the_clinics_quiet_hours_over_a_session_are_refused_by_the_button_too(
    bot_factory: Callable[..., Any], tg: FakeTelegram
) -> None:
    bot = await bot_factory(delivery={"quiet_hours_start": time(21, 30), "quiet_hours_end": time(7, 30)})
    patient = await enrolled(bot, 8053)
    user = tg.user(8053)
    async with bot.db.session() as s:  # no own quiet hours, and a session inside the clinic's
        row = await s.get(Patient, patient.id)
        assert row is not None
        times = row.session_times.split(",")
        row.quiet_start, row.quiet_end = "", ""
        row.session_times = ",".join(["07:00", *times[1:]])
        s.add(row)
        await s.commit()
    [menu] = await command(user, "/settings")
    [choices] = await press(user, "🌙 Quiet hours", 1, menu)
    closed, again = await press(user, "Clinic default", 2, choices)
    assert "falls in these quiet hours" in (closed.text or "") and closed.button_labels == []
    assert "🌙 Quiet hours" in again.button_labels, "the settings again, to choose otherwise"
    p = await stored(bot, patient)
    assert (p.quiet_start, p.quiet_end) == ("", ""), "nothing changed"


async def test_settings_timezone_language_and_quiet_hours(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8050)
    user = tg.user(8050)
    [menu] = await command(user, "/settings")
    await press(user, "🌍 Timezone", 1, menu)
    [reply] = await command(user, "Atlantis")
    assert reply.text.startswith("I do not know that place.")
    [reply] = await command(user, "UTC+15")
    assert reply.text.startswith("UTC offsets run from -12 to +14")
    [saved] = await command(user, "New York")
    assert "Timezone: New York (now 01:00)" in saved.text
    assert (await stored(bot, patient)).timezone == "America/New_York"
    assert (await session_rules(bot, patient))[0].next_due_at == datetime(2026, 6, 10, 13, 0, tzinfo=UTC)

    [menu] = await command(user, "/settings")
    [choices] = await press(user, "🌙 Quiet hours", 1, menu)
    assert choices.button_labels == ["Clinic default", "No quiet hours", "Set my own"]
    await press(user, "Set my own", 1, choices)
    [reply] = await command(user, "late")
    assert reply.text == "Please send quiet hours as two times, e.g. 22:00-07:00."
    [saved] = await command(user, "22 - 6:30")
    assert "Quiet hours: 22:00-06:30" in saved.text
    assert ((await stored(bot, patient)).quiet_start, (await stored(bot, patient)).quiet_end) == ("22:00", "06:30")
    [choices] = await press(user, "🌙 Quiet hours", 1, saved)
    await press(user, "No quiet hours", 2, choices)
    p = await stored(bot, patient)
    assert (p.quiet_start, p.quiet_end) == ("", "")
    [menu] = await command(user, "/settings")
    [choices] = await press(user, "🌙 Quiet hours", 1, menu)
    await press(user, "Clinic default", 2, choices)
    p = await stored(bot, patient)
    assert (p.quiet_start, p.quiet_end) == (None, None)

    [menu] = await command(user, "/settings")
    [choices] = await press(user, "🗣 Language", 1, menu)
    assert choices.button_labels == ["English", "Deutsch"]
    # The settings message is shown again in German, in place: none is left half in English.
    [german] = await press(user, "Deutsch", 1, choices)
    assert german.message_id == choices.message_id
    assert german.text.startswith("✅ Gespeichert.\n\n" + t("de", "⚙️ Your settings"))
    assert "Sprache: Deutsch" in german.text and "Language" not in german.text
    assert german.button_labels == ["🕒 Zeiten", "🌍 Zeitzone", "🗣 Sprache", "🌙 Ruhezeiten"]
    assert (await stored(bot, patient)).language == "de"
    [today] = await command(user, "/today")
    assert today.text.startswith(t("de", "📅 Your sessions today:"))


# --- typed answers across a restart, and expired questions ----------------------------------------------

SYMPTOM_OFFER = (
    "If this is about a symptom, please answer the check with one tap: it asks the right questions, "
    "and your answers reach your care team."
)
NOTE_OFFER = (
    "I cannot answer messages myself, but your care team can. "
    "Shall I send this to them, or save it as a note for your therapist?"
)
EXPIRED_SETTINGS = "Sorry, that question has expired, so I changed nothing. To change your settings, send /settings."
EXPIRED_PAUSE = "Sorry, that question has expired, so I paused nothing. To pause your reminders, send /pause."


async def restart(bot: Any) -> Any:
    """Stop the bot and start a new Application (a new process) on the same database; return its app."""
    url, schema = bot.db.url, bot.db.pg_schema
    await stop_app(bot.app)
    app = bot.build(db=Database(url, pg_schema=schema))
    await bot.start(app)
    return app


async def stored_in(app: Any, patient: Patient) -> Patient:
    async with services(app).db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        return fresh


async def rules_in(app: Any, patient: Patient) -> list[ReminderRule]:
    async with services(app).db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        return await programme.session_rules(s, fresh)


async def test_settings_typed_times_are_understood_across_a_restart(
    bot_factory: Any, tg: FakeTelegram, backend: str
) -> None:
    bot = await bot_factory(backend, delivery={"per_chat_interval": 0.02})
    patient = await enrolled(bot, 8100)
    user = tg.user(8100)
    [menu] = await command(user, "/settings")
    [prompt] = await press(user, "🕒 Times", 1, menu)
    assert prompt.text.startswith("Send your new session times")
    asked = await stored(bot, patient)
    assert (asked.awaiting, asked.awaiting_since) == ("times", bot.clock.now()), "the question is in the database"
    bot.clock.advance(timedelta(minutes=3))

    # The bot restarts while the patient is typing: a new process on the same database.
    app = await restart(bot)
    try:
        # Bad input after the restart: a clear answer, and the question stays open.
        [reply] = await command(user, "07:30")
        assert reply.text == "Your programme has 3 sessions a day: please send 3 times."
        [reply] = await command(user, "after lunch")  # ("half past seven" is read now: 07:30)
        assert reply.text == "I could not read that. Please send times like 08:00, 13:00, 18:00."
        assert (await stored_in(app, patient)).awaiting == "times"
        assert [r.local_time for r in await rules_in(app, patient)] == ["09:00", "13:00", "18:00"], "nothing lost"
        [saved] = await command(user, "07:30, 12:30, 17:30")
        assert saved.text.startswith("✅ Saved.") and "Session times: 07:30, 12:30, 17:30" in saved.text
        assert saved.button_labels == ["🕒 Times", "🌍 Timezone", "🗣 Language", "🌙 Quiet hours"]
        rules = await rules_in(app, patient)
        assert [r.local_time for r in rules] == ["07:30", "12:30", "17:30"]
        assert rules[1].next_due_at == berlin(WED, "12:30", 0)
        done = await stored_in(app, patient)
        assert (done.session_times, done.awaiting, done.awaiting_since) == ("07:30,12:30,17:30", "", None)
        # Answered: the next text is nobody's answer and passes on to the other features.
        [other] = await command(user, "08:00 12:00 17:00")
        assert other.text == NOTE_OFFER
        assert [r.local_time for r in await rules_in(app, patient)] == ["07:30", "12:30", "17:30"]
    finally:
        await stop_app(app)


async def test_a_typed_pause_date_is_understood_across_a_restart(
    bot_factory: Any, tg: FakeTelegram, backend: str
) -> None:
    bot = await bot_factory(backend, delivery={"per_chat_interval": 0.02})
    patient = await enrolled(bot, 8110)
    user = tg.user(8110)
    [offer] = await command(user, "/pause")
    [_edited, prompt] = await press(user, "📅 Choose a date", 2, offer)
    assert prompt.text.startswith("Until which date?")
    assert (await stored(bot, patient)).awaiting == "date"
    app = await restart(bot)
    try:
        [reply] = await command(user, "next week")
        assert reply.text.startswith("I could not read that date.")
        [reply] = await command(user, "2026-06-01")
        assert reply.text == "That date has already passed. Please send a date from today on."
        assert (await stored_in(app, patient)).status == PatientStatus.ACTIVE
        [reply] = await command(user, "20.06.2026")
        assert reply.text.startswith("⏸ Reminders paused until Saturday, June 20, 2026.")
        p = await stored_in(app, patient)
        assert (p.status, p.paused_until, p.awaiting) == (PatientStatus.PAUSED, date(2026, 6, 20), "")
        # Reminders are skipped while paused, by the new process too.
        bot.clock.set(berlin(WED, "09:00"))
        dispatcher = services(app).dispatcher
        assert dispatcher is not None
        await dispatcher.tick(wait=True)
        await user.expect_silence(0.3)
    finally:
        await stop_app(app)


async def test_an_answer_to_an_expired_question_is_told_so_and_changes_nothing(
    bot_factory: Any, tg: FakeTelegram, backend: str
) -> None:
    bot = await bot_factory(backend, delivery={"per_chat_interval": 0.02})
    patient = await enrolled(bot, 8120)
    user = tg.user(8120)
    # Just within the time (by the bot's clock, not the wall clock), an answer still counts.
    [menu] = await command(user, "/settings")
    await press(user, "🌍 Timezone", 1, menu)
    bot.clock.advance(timedelta(minutes=patient_bot.INPUT_MINUTES))
    [saved] = await command(user, "London")
    assert "Timezone: London" in saved.text
    assert (await stored(bot, patient)).timezone == "Europe/London"

    # Too late, and across a restart: the question has expired; a kind answer says how to start again.
    [prompt] = await press(user, "🕒 Times", 1, saved)
    assert prompt.text.startswith("Send your new session times")
    bot.clock.advance(timedelta(minutes=patient_bot.INPUT_MINUTES + 1))
    app = await restart(bot)
    try:
        [reply] = await command(user, "07:30, 12:30, 17:30")
        assert reply.text == EXPIRED_SETTINGS
        p = await stored_in(app, patient)
        assert (p.session_times, p.awaiting, p.awaiting_since) == ("09:00,13:00,18:00", "", None)
        assert [r.local_time for r in await rules_in(app, patient)] == ["09:00", "13:00", "18:00"]
        # Starting again works as usual.
        [menu] = await command(user, "/settings")
        await press(user, "🕒 Times", 1, menu)
        [saved] = await command(user, "07:30, 12:30, 17:30")
        assert saved.text.startswith("✅ Saved.") and "Session times: 07:30, 12:30, 17:30" in saved.text

        # An expired pause question; and text after an expired question that is no answer to it
        # is not swallowed: it passes on (here: the offer to keep it as a note).
        [offer] = await command(user, "/pause")
        await press(user, "📅 Choose a date", 2, offer)
        bot.clock.advance(timedelta(hours=2))
        [reply] = await command(user, "20.06.2026")
        assert reply.text == EXPIRED_PAUSE
        assert (await stored_in(app, patient)).status == PatientStatus.ACTIVE
        [menu] = await command(user, "/settings")
        [choices] = await press(user, "🌙 Quiet hours", 1, menu)
        await press(user, "Set my own", 1, choices)
        bot.clock.advance(timedelta(days=1))
        [other] = await command(user, "Thank you for the exercises")
        assert other.text == NOTE_OFFER
        p = await stored_in(app, patient)
        assert (p.quiet_start, p.quiet_end, p.awaiting) == (None, None, "")
    finally:
        await stop_app(app)


async def test_another_command_ends_the_wait_for_a_typed_answer(bot: Any, tg: FakeTelegram) -> None:
    """A settings question left open is no trap: after /note, /today or /checkin the patient's text is
    what that command (or the note offer) makes of it, never "I could not read that" about times."""
    patient = await enrolled(bot, 8125, lang="de")
    user = tg.user(8125, language_code="de")
    [menu] = await command(user, "/settings")
    await press(user, t("de", "🕒 Times"), 1, menu)
    [prompt] = await command(user, "/note")
    user.mark_seen()
    await user.send("Die Orthese scheuert an der Hüfte", reply_to=prompt.message_id)
    [saved] = await user.wait_for()
    note_saved = "📝 Saved as a note for your therapist. Notes are read during working hours, not around the clock."
    assert saved.text.startswith(t("de", note_saved)), saved.text
    async with bot.db.session() as s:
        notes = (await s.exec(select(Note).where(col(Note.patient_id) == patient.id))).all()
    assert [n.text for n in notes] == ["Die Orthese scheuert an der Hüfte"]

    await press(user, t("de", "🌍 Timezone"), 1, menu)
    await command(user, "/today")
    [offer] = await command(user, "Bitte rufen Sie mich an")
    assert offer.text == t("de", NOTE_OFFER)
    p = await stored(bot, patient)
    assert (p.session_times, p.timezone, p.awaiting) == ("09:00,13:00,18:00", "Europe/Berlin", "")


async def test_a_symptom_or_a_word_of_danger_is_heard_while_a_settings_question_is_open(
    bot: Any, tg: FakeTelegram
) -> None:
    """Text that is no answer to the open question but names a symptom or a danger word goes on to the
    symptom check and the crisis question, as it would without the question; the question stays open."""
    patient = await enrolled(bot, 8126, lang="de")
    user = tg.user(8126, language_code="de")
    [menu] = await command(user, "/settings")
    await press(user, t("de", "🕒 Times"), 1, menu)
    [offer] = await command(user, "Meine Wunde ist rot und nässt")
    assert offer.text.startswith(t("de", SYMPTOM_OFFER)), offer.text
    assert offer.button_labels[0].startswith("🩺") and t("de", "Save as a note") in offer.button_labels
    [question] = await command(user, "Ich habe heute mein Testament gemacht")
    assert question.text == bot.services.content.text("crisis_question", "de").strip()
    [saved] = await command(user, "7:30, 12:30, 17:30")
    assert saved.text.startswith(t("de", "✅ Saved.")), "the question stayed open"
    assert (await stored(bot, patient)).session_times == "07:30,12:30,17:30"


# --- /pause and /resume -----------------------------------------------------------------------------


async def test_pause_until_a_typed_date_then_resume(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8060)
    user = tg.user(8060)
    [offer] = await command(user, "/pause")
    assert offer.button_labels == ["3 days", "1 week", "2 weeks", "📅 Choose a date"]
    [_edited, prompt] = await press(user, "📅 Choose a date", 2, offer)
    assert prompt.text.startswith("Until which date?")
    [reply] = await command(user, "next week")
    assert reply.text.startswith("I could not read that date.")
    [reply] = await command(user, "2026-06-01")
    assert reply.text == "That date has already passed. Please send a date from today on."
    [reply] = await command(user, "01.12.2026")
    assert reply.text == "You can pause for up to 90 days. For longer, please talk to your clinic."
    assert (await stored(bot, patient)).status == PatientStatus.ACTIVE
    [reply] = await command(user, "20.06.2026")
    assert reply.text.startswith("⏸ Reminders paused until Saturday, June 20, 2026.")
    assert "They start again on Sunday, June 21, 2026." in reply.text
    p = await stored(bot, patient)
    assert p.status == PatientStatus.PAUSED and p.paused_until == date(2026, 6, 20)
    bot.clock.set(berlin(WED, "09:00"))
    await bot.tick()
    await user.expect_silence(0.3)
    [again] = await command(user, "/pause")
    assert "paused until Saturday, June 20, 2026" in again.text
    [reply] = await command(user, "/resume")
    assert reply.text == "▶️ Welcome back! Your reminders start again with your next session."
    p = await stored(bot, patient)
    assert p.status == PatientStatus.ACTIVE and p.paused_until is None
    [reply] = await command(user, "/resume")
    assert reply.text == "Your reminders are running; there is nothing to resume."
    bot.clock.set(berlin(WED, "13:00"))
    await bot.tick()
    [reminder] = await user.wait_for()
    assert reminder.text.startswith("Time for your exercise session (13:00).")


async def test_pause_buttons_in_german(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8065, lang="de")
    user = tg.user(8065)
    [offer] = await command(user, "/pause")
    [paused] = await press(user, t("de", "1 week"), 1, offer)
    assert "Dienstag, 16. Juni 2026" in paused.text and not paused.has_inline_keyboard
    assert (await stored(bot, patient)).paused_until == date(2026, 6, 16)
    # A second press on the answered menu, and a forged length: neutral, nothing changes.
    user.mark_seen()
    await user.press_data("pt:pause:7", paused.message_id)
    assert (await user.wait_for_answer()).text == t("de", STALE)
    [offer] = await command(user, "/pause")
    await user.press_data("pt:pause:5", offer.message_id)
    assert (await user.wait_for_answer()).text == t("de", STALE)
    await user.expect_silence(0.2)
    assert offer.has_inline_keyboard, "a live menu keeps its buttons after a forged press"
    assert (await stored(bot, patient)).paused_until == date(2026, 6, 16)


# --- /stop ---------------------------------------------------------------------------------------


async def test_stop_with_confirmation_and_restart(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8070)
    user = tg.user(8070)
    [ask] = await command(user, "/stop")
    [kept] = await press(user, "No, keep them", 1, ask)
    assert kept.text.endswith("Your messages continue as before.") and not kept.has_inline_keyboard
    assert (await stored(bot, patient)).status == PatientStatus.ACTIVE
    [ask] = await command(user, "/stop")
    [done] = await press(user, "🛑 Yes, stop all messages", 1, ask)
    assert done.text.endswith("🛑 All messages are stopped. To start again, send /resume.")
    assert (await stored(bot, patient)).status == PatientStatus.STOPPED
    # The care team is told (an outside test found nobody was): one low alert, no health data.
    async with bot.db.session() as s:
        [told] = (await s.exec(select(Alert).where(col(Alert.patient_id) == patient.id))).all()
    assert (told.kind, told.severity) == ("stopped", "low")
    async with bot.db.session() as s:
        rules = (await s.exec(select(ReminderRule).where(col(ReminderRule.patient_id) == patient.id))).all()
    assert rules and not any(r.active for r in rules)
    for hhmm in ("09:00", "13:00", "18:00"):
        bot.clock.set(berlin(WED, hhmm))
        await bot.tick()
    await user.expect_silence(0.3)
    [reply] = await command(user, "/resume")
    assert reply.text.startswith("▶️ Welcome back!")
    bot.clock.set(berlin(WED + timedelta(days=1), "09:00"))
    await bot.tick()
    [reminder] = await user.wait_for()
    assert reminder.text.startswith("Time for your exercise session (09:00).")


async def test_an_old_confirmation_expires(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8075)
    user = tg.user(8075)
    [ask] = await command(user, "/stop")
    bot.clock.advance(timedelta(minutes=patient_bot.CONFIRM_MINUTES + 1))
    user.mark_seen()
    await user.press("🛑 Yes, stop all messages", ask)
    assert (await user.wait_for_answer()).text == STALE
    [edited] = await user.wait_for()
    assert not edited.has_inline_keyboard
    assert (await stored(bot, patient)).status == PatientStatus.ACTIVE


# --- /mydata and /delete -------------------------------------------------------------------------------


async def test_mydata_sends_every_table_as_a_json_file(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8080)
    await enrolled(bot, 8081)
    async with bot.db.session() as s:
        s.add(ExerciseSession(patient_id=patient.id or 0, local_date=WED, slot="09:00", status="done", pain=3))
        await s.commit()
    user = tg.user(8080)
    [reply] = await command(user, "/mydata")
    assert reply.document is not None and reply.document.filename == "my-data.json"
    assert reply.caption == "All the data this bot stores about you."
    data = json.loads(reply.document.data or b"")
    assert data["patient"]["alias"] == patient.alias and data["patient"]["telegram_id"] == 8080
    assert set(data["tables"]) == {t.name for t in patient_core.patient_tables()}
    [session_row] = data["tables"]["exercise_session"]
    assert session_row["pain"] == 3 and session_row["local_date"] == "2026-06-10"
    assert len(data["tables"]["reminder_rule"]) == 3
    assert all(r["patient_id"] == patient.id for rows in data["tables"].values() for r in rows)


async def test_delete_after_confirmation_tells_the_therapist_nothing_medical(bot: Any, tg: FakeTelegram) -> None:
    therapist = await make_staff(bot.db, telegram_id=8099, name="Dr Weiss")
    patient = await enrolled(bot, 8090, therapist_id=therapist.id)
    async with bot.db.session() as s:
        s.add(
            ExerciseSession(
                patient_id=patient.id or 0, local_date=WED, slot="09:00", status="skipped", skip_reason="pain"
            )
        )
        await s.commit()
    user = tg.user(8090)
    [ask] = await command(user, "/delete")
    assert "This cannot be undone." in ask.text
    [kept] = await press(user, "No, keep my data", 1, ask)
    assert kept.text.endswith("Nothing was deleted.")
    assert (await stored(bot, patient)).telegram_id == 8090
    [ask] = await command(user, "/delete")
    [gone] = await press(user, "🗑 Yes, delete everything", 1, ask)
    assert gone.text.endswith(
        "🗑 Your data has been deleted and this bot will not message you again. "
        "If you want to use it again one day, please ask your clinic for a new invitation."
    )
    tombstone = await stored(bot, patient)
    assert tombstone.telegram_id is None and tombstone.status == PatientStatus.STOPPED
    async with bot.db.session() as s:
        assert (await s.exec(select(ExerciseSession))).all() == []
        assert (await s.exec(select(ReminderRule).where(col(ReminderRule.kind) == Kind.SESSION.value))).all() == []
    await bot.tick()
    doctor = tg.user(8099)
    [notice] = await doctor.wait_for()
    assert patient.alias in notice.text and "deleted their data" in notice.text
    assert "pain" not in notice.text.lower() and "lumbar" not in notice.text.lower()
    # The old confirmation, pressed again, and the commands: the bot no longer knows them.
    user.mark_seen()
    await user.press_data(ask.callback_data[0] if ask.callback_data else "pt:del:no", ask.message_id)
    assert (await user.wait_for_answer()).text == STALE
    [reply] = await command(user, "/today")
    assert reply.text == INVITATION


async def test_a_mistyped_command_is_named_as_such(bot: Any, tg: FakeTelegram) -> None:
    # It got "Please use the buttons below, or type /help", with no buttons in sight.
    await enrolled(bot, 4701)
    user = tg.user(4701)
    await user.send("/todya")
    assert (await user.wait_for())[0].text == "I don't know that command. Type /help to see what I can do."
    await user.send_sticker()  # not "Please use the buttons below" either (none are there): tests/e2e/test_care.py
    assert (await user.wait_for())[0].text.startswith("I can read typed messages and photos.")


async def test_a_stopped_or_discharged_patient_who_writes_learns_where_they_stand_and_the_emergency_text(
    bot: Any, tg: FakeTelegram
) -> None:
    # Both got "Please use the buttons below, or type /help": no buttons, and no word on what to do when
    # "I can't feel my legs" (nothing they write is passed on: they are not in care).
    await enrolled(bot, 4702, status=PatientStatus.STOPPED)
    await enrolled(bot, 4703, lang="de", status=PatientStatus.DISCHARGED)
    emergency = "If this is an emergency, call 112 (or your local emergency number) now"
    stopped = tg.user(4702)
    [reply] = await command(stopped, "I can't feel my legs and can't pee")
    assert reply.text.startswith("🛑 All messages are stopped. To start again, send /resume.\n\n"), reply.text
    assert emergency in reply.text
    stopped.mark_seen()
    await stopped.send_sticker()
    [reply] = await stopped.wait_for()
    assert reply.text.startswith("🛑 All messages are stopped.") and emergency in reply.text
    discharged = tg.user(4703, language_code="de")
    ended = t("de", "Your exercise programme has ended. Please contact your clinic.")
    for send in (discharged.send("Meine Wunde blutet"), discharged.send_photo()):
        discharged.mark_seen()
        await send
        [reply] = await discharged.wait_for()
        assert reply.text.startswith(ended + "\n\n"), reply.text
        assert "Wenn es ein Notfall ist, rufen Sie jetzt die 112" in reply.text, reply.text


# --- /cancel -------------------------------------------------------------------------------------------


async def test_cancel_leaves_every_settings_and_pause_question_and_keeps_the_old_setting(
    bot: Any, tg: FakeTelegram
) -> None:
    patient = await enrolled(bot, 8140, quiet_start="22:00", quiet_end="06:00")
    user = tg.user(8140)
    [menu] = await command(user, "/settings")
    [prompt] = await press(user, "🕒 Times", 1, menu)
    assert "To keep them as they are, send /cancel." in prompt.text, prompt.text
    [reply] = await command(user, "/cancel")
    assert reply.text == "Cancelled. Your session times stay as they were: 09:00, 13:00, 18:00."
    assert (await stored(bot, patient)).awaiting == ""
    [offer] = await command(user, "08:00, 12:00, 17:00")  # no longer an answer: free text, offered to the team
    assert "Session times" not in offer.text
    assert (await stored(bot, patient)).session_times == "09:00,13:00,18:00"

    await press(user, "🌍 Timezone", 1, menu)
    [reply] = await command(user, "cancel")  # the typed word
    assert reply.text == "Cancelled. Your timezone stays as it was: Berlin."
    [choices] = await press(user, "🌙 Quiet hours", 1, menu)
    await press(user, "Set my own", 1, choices)
    [reply] = await command(user, "Cancel.")
    assert reply.text == "Cancelled. Your quiet hours stay as they were: 22:00-06:00."
    [offer] = await command(user, "/pause")
    [_edited, prompt] = await press(user, "📅 Choose a date", 2, offer)
    assert "send /cancel" in prompt.text, prompt.text
    [reply] = await command(user, "/cancel")
    assert reply.text == "Cancelled. Nothing is paused: your reminders come as before."
    [reply] = await command(user, "/cancel")
    assert reply.text == "There is nothing to cancel."
    p = await stored(bot, patient)
    assert (p.session_times, p.timezone, p.quiet_start, p.quiet_end, p.status, p.awaiting) == (
        "09:00,13:00,18:00",
        "Europe/Berlin",
        "22:00",
        "06:00",
        PatientStatus.ACTIVE,
        "",
    )
    assert [r.local_time for r in await session_rules(bot, patient)] == ["09:00", "13:00", "18:00"]


async def test_abbrechen_typed_in_german_leaves_the_question(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8141, lang="de")
    user = tg.user(8141, language_code="de")
    [menu] = await command(user, "/settings")
    [prompt] = await press(user, t("de", "🕒 Times"), 1, menu)
    assert t("de", "To keep them as they are, send /cancel.") in prompt.text
    [reply] = await command(user, "Abbrechen")
    assert reply.text == t(
        "de", "Cancelled. Your session times stay as they were: {times}.", times="09:00, 13:00, 18:00"
    )
    assert reply.text.startswith("Abgebrochen."), reply.text
    assert (await stored(bot, patient)).awaiting == ""
    [offer] = await press(user, t("de", "🌙 Quiet hours"), 1, menu)
    await press(user, t("de", "Set my own"), 1, offer)
    [reply] = await command(user, "/cancel")
    assert reply.text.startswith("Abgebrochen."), reply.text
    [help_text] = await command(user, "/help")
    assert "/cancel – " + t("de", "Cancel a change you started (times, timezone, quiet hours, pause date)") in (
        help_text.text
    )


async def test_cancel_typed_after_the_question_expired_still_says_nothing_changed(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 8142)
    user = tg.user(8142)
    [menu] = await command(user, "/settings")
    await press(user, "🕒 Times", 1, menu)
    bot.clock.advance(timedelta(minutes=patient_bot.INPUT_MINUTES + 1))
    [reply] = await command(user, "cancel")
    assert reply.text == "Cancelled. Your session times stay as they were: 09:00, 13:00, 18:00."
    assert (await stored(bot, patient)).awaiting == ""
