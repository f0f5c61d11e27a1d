"""Session reminders end to end: the real bot, the fake Bot API, the injected clock.

A simulated week for one patient, in English and in German: done with effort
and pain, partly, skipped with a reason, snoozed and sent again once, missed
after one nudge, then a pause and its resume. Checked in the database and in
every message the patient saw. Then media (upload once, file_id after),
phase changes, and presses that must change nothing: double, stale, forged.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import make_patient
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import col, select

from rehab_bot import session as core
from rehab_bot.bot import session as session_bot
from rehab_bot.content import load_content, localize
from rehab_bot.i18n import t
from rehab_bot.models import Delivery, ExerciseSession, Kind, MediaCache, Patient, PatientStatus, ReminderRule
from rehab_bot.reminders import add_rule

WED = date(2026, 6, 10)  # the clock starts at 07:00 on this Wednesday in Berlin
STALE = "This button is no longer active."
CONTENT = load_content(None)


@pytest.fixture
async def bot(bot_factory: Any) -> Any:
    """The bot, with Telegram's one-message-a-second per chat scaled down so a week runs in seconds."""
    return await bot_factory(delivery={"per_chat_interval": 0.02})


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    """A Berlin wall-clock time in June (UTC+2) as a UTC instant."""
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


async def enrolled(
    bot: Any,
    telegram_id: int,
    *,
    lang: str = "en",
    times: tuple[str, ...] = ("09:00",),
    programme_id: str = "lumbar-example",
    surgery: date = WED - timedelta(days=5),
    phase_id: str = "weeks-1-2",
) -> Patient:
    """An active patient with one session rule per time (payload: the session index)."""
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=telegram_id,
        language=lang,
        programme_id=programme_id,
        surgery_date=surgery,
        phase_id=phase_id,
        session_times=",".join(times),
    )
    async with bot.db.session() as s:
        for index, hhmm in enumerate(times):
            add_rule(
                s, patient, kind=Kind.SESSION, local_time=hhmm, now=bot.clock.now(), payload=core.rule_payload(index)
            )
        await s.commit()
    return patient


async def at(bot: Any, when: datetime) -> None:
    bot.clock.set(when)
    await bot.tick()


async def sessions_of(bot: Any, patient: Patient) -> list[ExerciseSession]:
    async with bot.db.session() as s:
        rows = await s.exec(
            select(ExerciseSession)
            .where(col(ExerciseSession.patient_id) == patient.id)
            .order_by(col(ExerciseSession.local_date), col(ExerciseSession.slot))
        )
        return list(rows.all())


async def press_and_wait(
    user: FakeUser, label: str, events: int, message: SentMessage | None = None
) -> list[SentMessage]:
    """Press a button and wait for the bot's answer plus `events` sends/edits."""
    user.mark_seen()
    await user.press(label, message)
    answer = await user.wait_for_answer()
    assert answer.text in (None, ""), f"a valid press is answered silently, got {answer.text!r}"
    return await user.wait_for(count=events) if events else []


def exercise_count(reminder_text: str) -> int:
    """The number of exercises a short reminder announces ("7 exercises, about 12 min")."""
    match = re.search(r"(\d+) (?:exercises?|Übungen|Übung),", reminder_text)
    assert match is not None, reminder_text
    return int(match.group(1))


def exercise_names(lang: str, phase_id: str, index: int = 0) -> list[str]:
    phase = next(p for p in CONTENT.programme("lumbar-example").phases if p.id == phase_id)
    return [localize(CONTENT.exercise(x).name, lang) for x in phase.exercises_for(index)]


@pytest.mark.slow  # a long scenario: a week
@pytest.mark.parametrize("lang", ["en", "de"])
async def test_a_week_of_sessions(bot: Any, tg: FakeTelegram, lang: str) -> None:
    _ = lambda msgid, **kw: t(lang, msgid, **kw)  # noqa: E731
    if lang == "de":
        assert _("✅ Done") != "✅ Done", "the German catalogue must translate the buttons"
    patient = await enrolled(bot, 7001, lang=lang)
    user = tg.user(7001, language_code=lang)

    # Wednesday: Done, effort Hard, pain 3.
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    assert reminder.text.startswith(_("Time for your exercise session ({slot}).", slot="09:00"))
    # Short: the session, how many exercises and about how long, one line of encouragement; no instructions.
    count = len(exercise_names(lang, "weeks-1-2"))
    assert f"{count} " in reminder.text and len(reminder.text) <= 400
    assert "⚠️" not in reminder.text and "🆕" not in reminder.text, "no phase note: the patient knows this phase"
    main = [_("▶ Start"), _("✅ Done"), _("🌗 Partly"), _("⏭ Skip"), _("⏰ Snooze")]
    assert reminder.button_labels == main
    edited, question = await press_and_wait(user, _("✅ Done"), 2)
    assert edited.message_id == reminder.message_id and not edited.has_inline_keyboard
    assert edited.text.endswith(_("✅ Logged: done.") + " " + _("🔥 Your streak starts today."))
    assert question.text == _("How hard did the exercises feel?")
    [pain_question] = await press_and_wait(user, _("😓 Hard"), 1)
    assert pain_question.message_id == question.message_id
    assert _("Effort: {effort}.", effort=_("😓 Hard")) in pain_question.text
    assert pain_question.button_labels[:11] == [str(n) for n in range(11)]
    [thanks] = await press_and_wait(user, "3", 1)
    assert thanks.text == _("Well done! 💪") + " " + _("Every session counts.") and not thanks.has_inline_keyboard
    await at(bot, berlin(WED, "12:00", 5))  # the nudge finds the session answered
    await user.expect_silence(0.3)

    # Thursday: Partly, skip the effort question, pain 2.
    await at(bot, berlin(WED + timedelta(days=1), "09:00"))
    [reminder] = await user.wait_for()
    edited, question = await press_and_wait(user, _("🌗 Partly"), 2)
    assert edited.text.endswith(_("🌗 Logged: partly done.") + " " + _("🔥 {n} days in a row.", n=2))
    [pain_question] = await press_and_wait(user, _("Skip this question"), 1)
    assert _("Effort") not in pain_question.text.split("\n")[0] or lang == "de"
    [thanks] = await press_and_wait(user, "2", 1)
    assert _("That's {n} days in a row.", n=2) in thanks.text
    assert thanks.text.startswith(_("Thank you for logging it. Doing part of your exercises still counts."))

    # Friday: Skip because of pain: the clinic's own advice text, nothing improvised.
    await at(bot, berlin(WED + timedelta(days=2), "09:00"))
    await user.wait_for()
    edited, reasons = await press_and_wait(user, _("⏭ Skip"), 2)
    assert edited.text.endswith(_("⏭ Logged: skipped.")) and reasons.text == _("What got in the way?")
    assert reasons.button_labels == [_("Pain"), _("No time"), _("Forgot"), _("Felt unwell"), _("Other reason")]
    [reply] = await press_and_wait(user, _("Pain"), 1)
    assert CONTENT.text("exercise_pain", lang).strip() in reply.text and not reply.has_inline_keyboard
    assert reply.text.endswith(bot.config.clinic.text("emergency_text", lang)), "the clinic's own emergency text"

    # Saturday: Snooze 30 minutes; sent again once, at 09:30.
    sat = WED + timedelta(days=3)
    await at(bot, berlin(sat, "09:00"))
    [reminder] = await user.wait_for()
    [menu] = await press_and_wait(user, _("⏰ Snooze"), 1)
    assert menu.message_id == reminder.message_id
    assert menu.button_labels == [_("{minutes} min", minutes=m) for m in (15, 30, 60)] + [_("« Back")]
    [back] = await press_and_wait(user, _("« Back"), 1)
    assert back.button_labels == main
    await press_and_wait(user, _("⏰ Snooze"), 1)
    [snoozed] = await press_and_wait(user, _("{minutes} min", minutes=30), 1)
    assert snoozed.text.endswith(_("⏰ Snoozed: I will remind you again at {time}.", time="09:30"))
    assert not snoozed.has_inline_keyboard
    await at(bot, berlin(sat, "09:29", 59))
    await user.expect_silence(0.2)
    await at(bot, berlin(sat, "09:30"))
    [again] = await user.wait_for()
    assert again.text.startswith(_("Time for your exercise session ({slot}).", slot="09:00"))
    assert again.button_labels == main
    await at(bot, berlin(sat, "09:45"))
    await user.expect_silence(0.2)
    await press_and_wait(user, _("✅ Done"), 2)
    await press_and_wait(user, _("Skip this question"), 1)
    [thanks] = await press_and_wait(user, _("Skip this question"), 1)
    # Friday's skip is a grace day: the streak goes on without it (Wednesday, Thursday, Saturday).
    assert thanks.text == _("Well done! 💪") + " " + _("That's {n} days in a row.", n=3)

    # Sunday: no answer, one nudge three hours later, missed at midnight.
    sun = WED + timedelta(days=4)
    await at(bot, berlin(sun, "09:00"))
    [reminder] = await user.wait_for()
    await at(bot, berlin(sun, "11:59", 59))
    await user.expect_silence(0.2)
    await at(bot, berlin(sun, "12:00"))
    nudge, dropped = await user.wait_for(count=2)
    if nudge.message_id == reminder.message_id:
        nudge, dropped = dropped, nudge
    assert nudge.text == _("Just checking in: did you manage your {slot} exercise session?", slot="09:00")
    assert nudge.button_labels == main
    nudge_done = nudge.callback_data[1]
    assert dropped.message_id == reminder.message_id and not dropped.has_inline_keyboard
    await at(bot, berlin(sun, "18:00"))
    await user.expect_silence(0.2)
    bot.clock.set(berlin(sun, "23:59", 59))
    assert await session_bot.sweep(bot.app) == []
    bot.clock.set(berlin(sun + timedelta(days=1), "00:00", 0))
    [swept] = await session_bot.sweep(bot.app)
    [closed] = await user.wait_for()
    assert closed.message_id == nudge.message_id and not closed.has_inline_keyboard
    user.mark_seen()
    await user.press_data(nudge_done, nudge.message_id)
    assert (await user.wait_for_answer()).text == _(STALE)

    # Monday 08:00: pause for three days; back on Thursday by itself.
    mon = sun + timedelta(days=1)
    bot.clock.set(berlin(mon, "08:00"))
    user.mark_seen()
    await user.send("/pause")
    [offer] = await user.wait_for()
    [paused] = await press_and_wait(user, _("3 days"), 1, offer)
    assert not paused.has_inline_keyboard
    for day in range(3):
        await at(bot, berlin(mon + timedelta(days=day), "09:00"))
        await at(bot, berlin(mon + timedelta(days=day), "12:00"))
    await user.expect_silence(0.3)
    async with bot.db.session() as s:
        stored = await s.get(Patient, patient.id)
        assert stored is not None and stored.status == PatientStatus.PAUSED
    thu = mon + timedelta(days=3)
    await at(bot, berlin(thu, "09:00"))
    [back_again] = await user.wait_for()
    assert back_again.text.startswith(_("Time for your exercise session ({slot}).", slot="09:00"))

    # The database agrees with everything the patient saw.
    rows = await sessions_of(bot, patient)
    summary = [(r.local_date, r.status, r.effort, r.pain, r.skip_reason) for r in rows]
    assert summary == [
        (WED, "done", "hard", 3, ""),
        (WED + timedelta(days=1), "partly", "", 2, ""),
        (WED + timedelta(days=2), "skipped", "", None, "pain"),
        (sat, "done", "", None, ""),
        (sun, "missed", "", None, ""),
        (thu, "pending", "", None, ""),
    ]
    assert rows[3].snoozed_until == berlin(sat, "09:30", 0) + timedelta(seconds=1)
    assert rows[4].nudged_at is not None and swept.session_id == rows[4].id
    async with bot.db.session() as s:
        nudges = (await s.exec(select(ReminderRule).where(col(ReminderRule.kind) == Kind.NUDGE.value))).all()
        stored = await s.get(Patient, patient.id)
        assert stored is not None
        stats = await core.stats(s, stored, bot.clock.now())
    assert len(nudges) == len(rows), "one nudge rule per session, never more"
    assert stored.status == PatientStatus.ACTIVE and stored.paused_until is None
    assert stats.done_total == 3 and stats.last_done == sat
    assert stats.adherence_7d == 1 / 3  # Friday to Thursday: skipped, done, missed; today's is still open
    assert stats.adherence_last_week == 3 / 5 and stats.adherence_this_week is None  # this week: paused
    assert stats.days_missed_in_a_row == 1


async def test_double_stale_and_forged_presses_change_nothing(bot: Any, tg: FakeTelegram) -> None:
    anna_patient = await enrolled(bot, 7101)
    ben_patient = await enrolled(bot, 7102)
    anna, ben = tg.user(7101), tg.user(7102)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await anna.wait_for()
    [ben_reminder] = await ben.wait_for()
    done_data, skip_data = reminder.callback_data[1], reminder.callback_data[3]
    assert len(done_data.encode()) <= 64

    # Double press: both presses reach the bot before either is handled.
    anna.mark_seen()
    await anna.press_data(done_data, reminder.message_id)
    first = anna.last_query_id
    await anna.press_data(done_data, reminder.message_id)
    await anna.wait_for_answer()
    await tg.wait_until(lambda: len(anna.callback_answers) == 2, timeout=5, what="both answers")
    answers = {a.query_id: a.text for a in anna.callback_answers}
    assert answers[first] is None and answers[anna.last_query_id] == STALE
    await anna.wait_for(count=2)  # the edit and the effort question, once
    await anna.expect_silence(0.3)
    [row] = await sessions_of(bot, anna_patient)
    assert row.status == "done" and row.step == "effort"
    questions = [m for m in anna.messages if m.text == "How hard did the exercises feel?"]
    assert len(questions) == 1

    # A stale press on the old reminder: neutral answer, nothing changes, no buttons come back.
    anna.mark_seen()
    await anna.press_data(skip_data, reminder.message_id)
    assert (await anna.wait_for_answer()).text == STALE
    await anna.expect_silence(0.3)
    assert not tg.message(7101, reminder.message_id).has_inline_keyboard

    # Ben forges a press on Anna's session from his own (live) reminder: the same neutral
    # answer, Anna's session untouched, and Ben's own buttons stay as they were.
    ben.mark_seen()
    await ben.press_data(f"s:{row.id}:k", ben_reminder.message_id)
    assert (await ben.wait_for_answer()).text == STALE
    await ben.press_data(f"s:{row.id}:e:easy", ben_reminder.message_id)
    assert (await ben.wait_for_answer()).text == STALE
    await ben.press_data(f"s:{row.id}:g", ben_reminder.message_id)
    assert (await ben.wait_for_answer()).text == STALE
    await ben.press_data("s:999999:d", ben_reminder.message_id)
    assert (await ben.wait_for_answer()).text == STALE
    await ben.press_data("s:x:d", ben_reminder.message_id)
    assert (await ben.wait_for_answer()).text == STALE
    await ben.expect_silence(0.3)
    assert tg.message(7102, ben_reminder.message_id).has_inline_keyboard
    [row_after] = await sessions_of(bot, anna_patient)
    assert (row_after.status, row_after.step, row_after.effort, row_after.answered_at) == (
        "done",
        "effort",
        "",
        row.answered_at,
    )
    [ben_row] = await sessions_of(bot, ben_patient)
    assert ben_row.status == "pending"
    await anna.expect_silence(0.2)
    # A stranger pressing the same data gets the same answer.
    stranger = tg.user(7199)
    await stranger.send("hello")
    [hello] = await stranger.wait_for()
    await stranger.press_data(done_data, hello.message_id)
    assert (await stranger.wait_for_answer()).text == STALE

    # Ben's own press still works after all that.
    await press_and_wait(ben, "✅ Done", 2)
    [ben_row] = await sessions_of(bot, ben_patient)
    assert ben_row.status == "done"


async def test_media_is_uploaded_once_then_sent_by_file_id(bot_factory: Any, tg: FakeTelegram, tmp_path: Path) -> None:
    (tmp_path / "pump.jpg").write_bytes(b"\xff\xd8fake-jpeg-ankle-pumps")
    (tmp_path / "exercises.toml").write_text(
        """
[[exercise]]
id = "ankle-pumps"
sets = 1
reps = 20
name.en = "Ankle pumps"
name.de = "Fußwippen"
instructions.en = "Pull both feet up towards you, then point them away."
instructions.de = "Ziehen Sie beide Füße zu sich heran und strecken Sie sie dann weg."
safety_notes.en = "Stop if a calf hurts."
safety_notes.de = "Hören Sie auf, wenn eine Wade schmerzt."
media = "pump.jpg"
media_kind = "photo"
""",
        encoding="utf-8",
    )
    (tmp_path / "programmes.toml").write_text(
        """
[[programme]]
id = "short"
surgery_types = ["lumbar"]
name.en = "Short"
name.de = "Kurz"

[[programme.phase]]
id = "all"
from_day = 0
title.en = "All of it"
title.de = "Alles"
change_note.en = "Ankle pumps, once a day."
change_note.de = "Fußwippen, einmal am Tag."
sessions_per_day = 1
default_times = ["09:00"]

[[programme.phase.session]]
exercises = ["ankle-pumps"]
""",
        encoding="utf-8",
    )
    bot = await bot_factory(content={"dir": tmp_path}, delivery={"per_chat_interval": 0.02})
    patient = await enrolled(bot, 7201, programme_id="short", phase_id="all")
    user = tg.user(7201)
    await at(bot, berlin(WED, "09:00"))
    [first] = await user.wait_for()
    assert first.photo is not None and first.photo.data == b"\xff\xd8fake-jpeg-ankle-pumps"
    assert first.caption is not None and exercise_count(first.caption) == 1 and first.has_inline_keyboard
    [upload] = tg.calls("sendPhoto")
    assert "photo" in upload.files
    async with bot.db.session() as s:
        cached = (await s.exec(select(MediaCache))).one()
    assert cached.file_id == first.photo.file_id and cached.source == str(tmp_path / "pump.jpg")
    # Pressing works on a photo's caption too.
    [edited, _question] = await press_and_wait(user, "✅ Done", 2)
    assert edited.message_id == first.message_id and edited.text.endswith(
        "✅ Logged: done. 🔥 Your streak starts today."
    )
    assert not edited.has_inline_keyboard and edited.photo is not None
    await at(bot, berlin(WED + timedelta(days=1), "09:00"))
    [second] = await user.wait_for()
    resend = tg.calls("sendPhoto")[1]
    assert resend.files == {} and resend.params["photo"] == cached.file_id, "the second send reuses the file_id"
    assert second.photo is not None and second.photo.file_id == cached.file_id
    [row1, row2] = await sessions_of(bot, patient)
    assert row2.message_id == second.message_id and row1.status == "done"


async def test_a_video_too_large_for_telegram_costs_the_patient_no_reminder(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    """Telegram refuses an upload over 50 MB with HTTP 413 (PTB: NetworkError, not BadRequest). That
    is no passing network fault: retrying uploads the same file again, so the reminder goes out
    without it, as for a missing file, instead of being retried until the engine gives up."""
    tg.max_upload_bytes = 1000  # Telegram's 50 MB, scaled down
    (tmp_path / "pump.mp4").write_bytes(b"\x00" * 2000)
    (tmp_path / "exercises.toml").write_text(MEDIA_EXERCISE, encoding="utf-8")
    (tmp_path / "programmes.toml").write_text(MEDIA_PROGRAMME, encoding="utf-8")
    bot = await bot_factory(content={"dir": tmp_path}, delivery={"per_chat_interval": 0.02})
    patient = await enrolled(bot, 7202, programme_id="short", phase_id="all")
    user = tg.user(7202)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    assert reminder.media is None and exercise_count(reminder.text or "") == 1 and reminder.has_inline_keyboard
    assert [c.response_status for c in tg.calls("sendVideo")] == [413]
    [row] = await sessions_of(bot, patient)
    assert row.message_id == reminder.message_id
    async with bot.db.session() as s:
        [delivery] = (await s.exec(select(Delivery).where(Delivery.patient_id == patient.id))).all()
    assert delivery.status == "sent"


MEDIA_EXERCISE = """
[[exercise]]
id = "ankle-pumps"
sets = 1
reps = 20
name.en = "Ankle pumps"
name.de = "Fußwippen"
instructions.en = "Pull both feet up towards you, then point them away."
instructions.de = "Ziehen Sie beide Füße zu sich heran und strecken Sie sie dann weg."
safety_notes.en = "Stop if a calf hurts."
safety_notes.de = "Hören Sie auf, wenn eine Wade schmerzt."
media = "pump.mp4"
media_kind = "video"
"""

MEDIA_PROGRAMME = """
[[programme]]
id = "short"
surgery_types = ["lumbar"]
name.en = "Short"
name.de = "Kurz"

[[programme.phase]]
id = "all"
from_day = 0
title.en = "All of it"
title.de = "Alles"
change_note.en = "Ankle pumps, once a day."
change_note.de = "Fußwippen, einmal am Tag."
sessions_per_day = 1
default_times = ["09:00"]

[[programme.phase.session]]
exercises = ["ankle-pumps"]
"""


PLAYER_EXERCISES = """
[[exercise]]
id = "walking"
sets = 1
name.en = "Walking"
name.de = "Gehen"
instructions.en = "Walk at an easy pace on level ground. {long}"
instructions.de = "Gehen Sie in ruhigem Tempo auf ebenem Boden. {long}"
safety_notes.en = "Wear firm shoes."
safety_notes.de = "Tragen Sie feste Schuhe."
media = "walk.gif"
media_kind = "animation"

[[exercise]]
id = "ankle-pumps"
sets = 2
reps = 20
name.en = "Ankle pumps"
name.de = "Fußwippen"
instructions.en = "Pull both feet up towards you, then point them away."
instructions.de = "Ziehen Sie beide Füße zu sich heran und strecken Sie sie dann weg."
safety_notes.en = "Stop if a calf hurts."
safety_notes.de = "Hören Sie auf, wenn eine Wade schmerzt."
media = "pump.jpg"
media_kind = "photo"

[[exercise]]
id = "quad-sets"
sets = 1
reps = 10
hold_seconds = 5
name.en = "Thigh tightening"
name.de = "Oberschenkel anspannen"
instructions.en = "Press the back of your knee down into the bed."
instructions.de = "Drücken Sie die Kniekehle in die Unterlage."
safety_notes.en = "Breathe normally."
safety_notes.de = "Atmen Sie normal weiter."
"""

PLAYER_PROGRAMME = """
[[programme]]
id = "short"
surgery_types = ["lumbar"]
name.en = "Short"
name.de = "Kurz"

[[programme.phase]]
id = "all"
from_day = 0
title.en = "Gentle start"
title.de = "Sanfter Anfang"
change_note.en = "Three exercises, once a day."
change_note.de = "Drei Übungen, einmal am Tag."
sessions_per_day = 1
default_times = ["09:00"]

[[programme.phase.session]]
exercises = ["walking", "ankle-pumps", "quad-sets"]
"""


async def player_bot(bot_factory: Any, tmp_path: Path, **sections: Any) -> Any:
    """A bot whose one session has three exercises: an animation with long instructions, a photo, no media."""
    (tmp_path / "walk.gif").write_bytes(b"GIF89a-walking")
    (tmp_path / "pump.jpg").write_bytes(b"\xff\xd8fake-jpeg-ankle-pumps")
    long = " ".join(["Keep your back straight and breathe calmly."] * 30)
    (tmp_path / "exercises.toml").write_text(PLAYER_EXERCISES.replace("{long}", long), encoding="utf-8")
    (tmp_path / "programmes.toml").write_text(PLAYER_PROGRAMME, encoding="utf-8")
    return await bot_factory(content={"dir": tmp_path}, delivery={"per_chat_interval": 0.02}, **sections)


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_start_without_a_mini_app_sends_one_message_per_exercise_then_done(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, lang: str
) -> None:
    _ = lambda msgid, **kw: t(lang, msgid, **kw)  # noqa: E731
    bot = await player_bot(bot_factory, tmp_path)
    patient = await enrolled(bot, 7301, lang=lang, programme_id="short", phase_id="all")
    user = tg.user(7301, language_code=lang)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    # The short reminder carries the first exercise's animation, with the short text as its caption.
    assert reminder.method == "sendAnimation" and len(reminder.text) <= 400
    assert (
        exercise_count(reminder.text) == 3 and _("Gentle start" if lang == "en" else "Sanfter Anfang") in reminder.text
    )
    assert reminder.button_labels == [_("▶ Start"), _("✅ Done"), _("🌗 Partly"), _("⏭ Skip"), _("⏰ Snooze")]

    user.mark_seen()
    await user.press(_("▶ Start"), reminder)
    answer = await user.wait_for_answer()
    assert answer.text == _("Here come your exercises, one by one.")
    [trimmed] = await user.wait_for()
    assert trimmed.message_id == reminder.message_id
    assert trimmed.button_labels == [_("✅ Done"), _("🌗 Partly"), _("⏭ Skip")], "Start is pressed once"
    # A second Start on the same reminder is stale (the buttons are gone; a forged one changes nothing).
    await user.press_data(f"{reminder.callback_data[0].rsplit(':', 1)[0]}:g", reminder.message_id)
    assert (await user.wait_for_answer()).text == _(STALE)

    # The engine sends the exercises in its next tick: one message each, in order, then Done / Partly.
    user.mark_seen()
    await bot.tick()
    walk_media, walk_text, pump, quad, last = await user.wait_for(count=5, include_edits=False)
    name = lambda en, de: en if lang == "en" else de  # noqa: E731
    assert walk_media.method == "sendAnimation" and not walk_media.text, "too long for a caption: media, then text"
    assert walk_text.text.startswith("1/3 · " + name("Walking", "Gehen")) and len(walk_text.text) > 1024
    assert "⚠️ " + name("Wear firm shoes.", "Tragen Sie feste Schuhe.") in walk_text.text
    assert pump.method == "sendPhoto" and pump.photo is not None
    assert pump.text.startswith("2/3 · " + name("Ankle pumps", "Fußwippen"))
    assert _("{sets} × {reps} repetitions", sets=2, reps=20) in pump.text
    assert quad.method == "sendMessage" and quad.text.startswith("3/3 · ")
    assert _("hold {seconds} s", seconds=5) in quad.text and quad.text.endswith(
        "⚠️ " + name("Breathe normally.", "Atmen Sie normal weiter.")
    )
    assert last.text == _("That was your session. How did it go?")
    assert last.button_labels == [_("✅ Done"), _("🌗 Partly")]
    assert not any(m.has_inline_keyboard for m in (walk_media, walk_text, pump, quad))
    # Paced like any other send: through the per-chat pacer, never faster than its interval.
    sends = [
        c for c in tg.calls("sendMessage") + tg.calls("sendPhoto") + tg.calls("sendAnimation") if c.chat_id == 7301
    ]
    times = sorted(c.time for c in sends)[-5:]
    assert all(b - a >= 0.015 for a, b in itertools.pairwise(times))
    # The reminder's buttons moved to the last message: pressing Done there logs the session.
    [dropped] = await user.wait_for()
    assert dropped.message_id == reminder.message_id and not dropped.has_inline_keyboard
    edited, question = await press_and_wait(user, _("✅ Done"), 2, last)
    assert edited.message_id == last.message_id and question.text == _("How hard did the exercises feel?")
    [row] = await sessions_of(bot, patient)
    assert (row.status, row.step) == ("done", "effort")
    # Media uploaded for the player are reused by file_id next time.
    async with bot.db.session() as s:
        cached = {m.source for m in (await s.exec(select(MediaCache))).all()}
    assert cached == {str(tmp_path / "walk.gif"), str(tmp_path / "pump.jpg")}


async def test_start_with_a_public_url_opens_the_mini_app(bot_factory: Any, tg: FakeTelegram, tmp_path: Path) -> None:
    bot = await player_bot(bot_factory, tmp_path, web={"public_url": "https://rehab.clinic.test/"})
    patient = await enrolled(bot, 7302, programme_id="short", phase_id="all")
    user = tg.user(7302)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    [[start], *_rest] = reminder.reply_markup["inline_keyboard"]  # type: ignore[index]
    assert start["text"] == "▶ Start" and "callback_data" not in start
    [row] = await sessions_of(bot, patient)
    assert start["web_app"] == {"url": f"https://rehab.clinic.test/app/session/{row.id}"}
    assert reminder.button_labels[1:] == ["✅ Done", "🌗 Partly", "⏭ Skip", "⏰ Snooze"]


async def test_phase_notes_come_with_the_first_reminder_of_a_new_phase(bot: Any, tg: FakeTelegram) -> None:
    # Day 13 after surgery: tomorrow (day 14) the programme moves to two sessions a day.
    from rehab_bot import programme

    patient = await enrolled(bot, 7401, times=("09:00", "13:00", "18:00"), surgery=WED - timedelta(days=13))
    async with bot.db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        await programme.schedule_sessions(s, fresh, bot.services.content, bot.clock.now())
        await s.commit()
    user = tg.user(7401)

    def reminder(m: SentMessage) -> bool:
        return (m.text or "").startswith("Time for your exercise session")

    for hhmm in ("09:00", "13:00", "18:00"):
        await at(bot, berlin(WED, hhmm))
    today = await user.wait_for(reminder, count=3, include_edits=False)
    assert all("🆕" not in m.text for m in today)
    thu = WED + timedelta(days=1)
    await at(bot, berlin(thu, "09:00"))
    [first] = await user.wait_for(reminder, include_edits=False)
    phase = next(p for p in CONTENT.programme("lumbar-example").phases if p.id == "weeks-3-6")
    assert "🆕 " + phase.title["en"] in first.text and phase.change_note["en"].strip()[:40] in first.text
    assert exercise_count(first.text) == len(exercise_names("en", "weeks-3-6"))
    await at(bot, berlin(thu, "13:00"))
    await at(bot, berlin(thu, "18:00"))
    [evening] = await user.wait_for(reminder, include_edits=False)
    assert "🆕" not in evening.text and exercise_count(evening.text) == len(exercise_names("en", "weeks-3-6", 1))
    assert len([m for m in user.messages if reminder(m)]) == 5, "no 13:00 session in the new phase"
    rows = await sessions_of(bot, patient)
    assert [(r.local_date, r.slot, r.phase_id) for r in rows if r.local_date == thu] == [
        (thu, "09:00", "weeks-3-6"),
        (thu, "18:00", "weeks-3-6"),
    ]


async def test_a_reminder_held_past_its_day_is_dropped(bot: Any, tg: FakeTelegram) -> None:
    # Quiet hours from 20:00 hold a 21:00 session until 07:00 tomorrow: by then its day is over.
    patient = await enrolled(bot, 7501, times=("21:00",))
    async with bot.db.session() as s:
        stored = await s.get(Patient, patient.id)
        assert stored is not None
        stored.quiet_start, stored.quiet_end = "20:00", "07:00"
        s.add(stored)
        await s.commit()
    user = tg.user(7501)
    await at(bot, berlin(WED, "21:00"))
    await at(bot, berlin(WED + timedelta(days=1), "07:00"))
    await user.expect_silence(0.3)
    async with bot.db.session() as s:
        [delivery] = (await s.exec(select(Delivery))).all()
    assert delivery.local_date == WED and delivery.status == "failed" and "superseded" in delivery.error
    assert await sessions_of(bot, patient) == []


async def test_no_nudge_once_the_patient_has_stopped(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 7502, times=("09:00",))
    user = tg.user(7502)
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    async with bot.db.session() as s:
        stored = await s.get(Patient, patient.id)
        assert stored is not None
        stored.status = PatientStatus.STOPPED.value
        s.add(stored)
        await s.commit()
    await at(bot, berlin(WED, "12:00", 5))
    await user.expect_silence(0.3)
    async with bot.db.session() as s:
        [nudge] = (await s.exec(select(Delivery).where(col(Delivery.kind) == Kind.NUDGE.value))).all()
    assert nudge.status == "skipped"


async def test_a_stale_message_that_kept_its_buttons_loses_them_on_a_press(bot: Any, tg: FakeTelegram) -> None:
    from rig.telegram_server import server_error

    patient = await enrolled(bot, 7503, times=("09:00",))
    user = tg.user(7503)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    data = reminder.callback_data[0]
    # The end-of-day sweep cannot edit the message (Telegram is down for a moment).
    tg.inject("editMessageReplyMarkup", chat_id=7503, error=server_error(500), times=1)
    bot.clock.set(berlin(WED + timedelta(days=1), "00:00", 0))
    assert len(await session_bot.sweep(bot.app)) == 1
    assert tg.message(7503, reminder.message_id).has_inline_keyboard
    user.mark_seen()
    await user.press_data(data, reminder.message_id)
    assert (await user.wait_for_answer()).text == STALE
    [edited] = await user.wait_for()
    assert edited.message_id == reminder.message_id and not edited.has_inline_keyboard
    [row] = await sessions_of(bot, patient)
    assert row.status == "missed" and row.answered_at is None


async def test_a_window_of_reminders_costs_statements_per_window_not_per_patient(bot: Any, tg: FakeTelegram) -> None:
    """Rendering and after-send bookkeeping are batched: 60 reminders must not cost a statement each."""
    from sqlalchemy import event

    patients = [await enrolled(bot, 7600 + n) for n in range(60)]
    users = [tg.user(7600 + n) for n in range(60)]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    # The bot's connections and, on PostgreSQL, the reminder engine's own (rehab_bot.db).
    engines = {bot.db.engine.sync_engine, bot.db.dispatch_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        await at(bot, berlin(WED, "09:00"))
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    for user in users:
        [reminder] = await user.wait_for()
        assert reminder.text.startswith("Time for your exercise session (09:00).")
    assert len(statements) < len(patients), f"{len(statements)} statements for {len(patients)} reminders"
    for patient in patients:
        [es] = await sessions_of(bot, patient)
        assert es.message_id is not None and es.status == core.Status.PENDING
    async with bot.db.session() as s:
        nudges = (await s.exec(select(ReminderRule).where(col(ReminderRule.kind) == Kind.NUDGE))).all()
    assert len(nudges) == len(patients)


async def _own_quiet_hours(bot: Any, patient: Patient, start: str, end: str) -> None:
    async with bot.db.session() as s:
        stored = await s.get(Patient, patient.id)
        assert stored is not None
        stored.quiet_start, stored.quiet_end = start, end
        s.add(stored)
        await s.commit()


async def test_start_pressed_in_quiet_hours_sends_the_exercises_at_once(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    # The 21:00 reminder, Start pressed at 21:40 inside the patient's quiet hours (21:30-07:30):
    # the exercises answer the tap and come now; held until 07:30 they were past their day and dropped.
    bot = await player_bot(bot_factory, tmp_path)
    patient = await enrolled(bot, 7611, times=("21:00",), programme_id="short", phase_id="all")
    await _own_quiet_hours(bot, patient, "21:30", "07:30")
    user = tg.user(7611)
    await at(bot, berlin(WED, "21:00"))
    [reminder] = await user.wait_for()
    bot.clock.set(berlin(WED, "21:40"))
    user.mark_seen()
    await user.press("▶ Start", reminder)
    assert (await user.wait_for_answer()).text == "Here come your exercises, one by one."
    await user.wait_for()  # the reminder keeps Done / Partly / Skip
    user.mark_seen()
    await bot.tick()
    *cards, last = await user.wait_for(count=5, include_edits=False)
    assert cards[-1].text.startswith("3/3 · ") and last.text == "That was your session. How did it go?"


async def test_snooze_offers_only_lengths_whose_reminder_comes_before_quiet_hours(bot: Any, tg: FakeTelegram) -> None:
    # A 21:00 reminder, quiet hours from 21:30: a 30 or 60 minute snooze would be held until
    # 07:30, past the session's day, and the promised reminder would never come.
    patient = await enrolled(bot, 7612, times=("21:00",))
    await _own_quiet_hours(bot, patient, "21:30", "07:30")
    user = tg.user(7612)
    await at(bot, berlin(WED, "21:00"))
    [reminder] = await user.wait_for()
    [menu] = await press_and_wait(user, "⏰ Snooze", 1, reminder)
    assert menu.button_labels == ["15 min", "« Back"]
    # A forged 30-minute snooze (an old menu) is refused, and the session stays open.
    [row] = await sessions_of(bot, patient)
    await user.press_data(f"s:{row.id}:z:30", menu.message_id)
    assert (await user.wait_for_answer()).text == STALE
    [row] = await sessions_of(bot, patient)
    assert (row.status, row.step, row.snoozed_until) == ("pending", "snooze", None)
    [snoozed] = await press_and_wait(user, "15 min", 1, menu)
    assert snoozed.text.endswith("⏰ Snoozed: I will remind you again at 21:15.")
    user.mark_seen()
    await at(bot, berlin(WED, "21:15", 30))
    [again] = await user.wait_for(include_edits=False)
    assert again.text.startswith("Time for your exercise session (21:00).")
