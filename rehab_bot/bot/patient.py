"""The patient's own commands: /today, /progress, /settings, /pause, /resume, /cancel, /mydata, /delete, /stop.

Handlers stay thin: they find the patient behind the Telegram account, call
rehab_bot.patient (the core) and render the answer. Anyone else gets a
friendly pointer instead (an invitation is needed; staff have their own
commands; a patient still enrolling finishes that first).

Buttons are ``pt:<what>[:<arg>...]``; each press is re-checked against the
pressing account. Confirmations that cannot be undone (/delete, /stop)
carry the minute they were offered and expire after CONFIRM_MINUTES.
``pt:wk`` is on the maintenance phase's weekly check (rehab_bot/bot/checkin.py):
it asks to confirm (``pt:wk:yes:<minute>`` / ``pt:wk:no``), then
rehab_bot.patient.stop_weekly, which is /stop for a patient still in the
maintenance phase and changes nothing otherwise.

Typed answers (new times, a timezone, quiet hours, a pause date) are
awaited in the patient's row (``Patient.awaiting`` and ``awaiting_since``,
by the injected clock), so an answer typed after a restart is understood;
the question expires after INPUT_MINUTES. The text handler runs in its own
group before the other features and lets every text through that it is not
waiting for. Any command ends the wait (the patient chose something else);
/cancel, or "cancel" / "abbrechen" typed, ends it and says that nothing changed.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, datetime, timedelta
from typing import Any

from babel.dates import format_date, format_skeleton
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update, WebAppInfo
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from rehab_bot import enrolment, timezones
from rehab_bot import message as care_messages
from rehab_bot import patient as core
from rehab_bot import session as sessions
from rehab_bot.bot.common import asking_later, buttons_on, language_for, message_of
from rehab_bot.bot.services import App, svc
from rehab_bot.bot.session import STALE, close_with, edit_message, markup
from rehab_bot.config import photo_dir
from rehab_bot.enrolment import EnrolStep
from rehab_bot.i18n import N_, t, tn
from rehab_bot.miniapp import mydata_url
from rehab_bot.models import Patient, PatientStatus
from rehab_bot.schedule import QuietHours, local_date, zone
from rehab_bot.typed import number

log = logging.getLogger(__name__)

CONFIRM_MINUTES = 15
INPUT_MINUTES = 15
INPUT_GROUP = -2  # before enrolment's and staff's text handlers (group -1)

LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}

# Answers to bad input, by the core's InputError code.
INPUT_ERRORS = {
    "times_format": N_("I could not read that. Please send times like 08:00, 13:00, 18:00."),
    "times_duplicate": N_("Each time may appear only once. Please send the times again."),
    "times_count": N_("Your programme has {n} sessions a day: please send {n} times."),
    "times_quiet": N_("{times} falls in your quiet hours ({start}-{end}). Please choose other times."),
    "timezone_unknown": N_(
        "I do not know that place. Please send a city (e.g. Berlin) or a timezone like Europe/Vienna."
    ),
    "timezone_offset": timezones.OFFSET_RANGE,
    "timezone_several": N_(
        "This country has more than one time zone. Please send the city you are in, for example one of these:\n{zones}"
    ),
    "language_unknown": N_("Please choose one of the languages on the buttons."),
    "quiet_format": N_("Please send quiet hours as two times, e.g. 22:00-07:00."),
    "quiet_sessions": N_(
        "Your session at {times} falls in these quiet hours ({start}-{end}), so its reminder would never come. "
        "Please choose other quiet hours, or first change your session times."
    ),
    "date_format": N_("I could not read that date. Please send it like 24.06.2026 or 2026-06-24."),
    "date_past": N_("That date has already passed. Please send a date from today on."),
    "date_far": N_("You can pause for up to {days} days. For longer, please talk to your clinic."),
}
# The same answers when several session times clash (the core names them all, comma-separated): "Your
# session at 08:30, 13:30, 18:30 falls in" read as one session.
SEVERAL_TIMES = {
    "times_quiet": N_("{times} fall in your quiet hours ({start}-{end}). Please choose other times."),
    "quiet_sessions": N_(
        "Your sessions at {times} fall in these quiet hours ({start}-{end}), so their reminders would never "
        "come. Please choose other quiet hours, or first change your session times."
    ),
}


def input_error_text(lang: str, error: core.InputError) -> str:
    """The answer to bad input in the patient's language, in the plural when it names several times."""
    several = error.code in SEVERAL_TIMES and "," in str(error.params.get("times", ""))
    text = t(lang, (SEVERAL_TIMES if several else INPUT_ERRORS)[error.code], **error.params)
    return asking_later(lang, text, str(error.params.get("later", "")))


# Extra output after /progress (the check-in feature adds a chart here):
# called with the update, the context, the patient and their language.
ProgressExtra = Callable[[Update, ContextTypes.DEFAULT_TYPE, Patient, str], Awaitable[None]]
PROGRESS_EXTRAS: list[ProgressExtra] = []


# --- who is asking -------------------------------------------------------------------------


async def _reply(update: Update, text: str, buttons: list[list[tuple[str, str]]] | None = None) -> Message | None:
    message = update.effective_message
    if message is None:
        return None
    return await message.reply_text(text, reply_markup=markup(buttons) if buttons else None)


async def patient_for(update: Update, context: ContextTypes.DEFAULT_TYPE, *, enrolling: bool = False) -> Patient | None:
    """The enrolled patient behind this account (with ``enrolling``, also one still setting up: /stop and
    /delete work before enrolment is finished, nobody has to finish it to leave); everybody else is told
    what they can do instead."""
    user = update.effective_user
    if user is None:
        return None
    async with svc(context).db.session() as db:
        standing, patient = await core.standing(db, user.id)
    if standing == core.Standing.PATIENT or (enrolling and standing == core.Standing.ENROLLING):
        return patient
    lang = await language_for(update, context)
    if standing == core.Standing.ENROLLING:
        text = t(lang, "Please finish setting up first: send /start.")
    elif standing == core.Standing.STAFF:
        text = t(lang, "This command is for patients. Your commands are in the menu.")
    else:
        text = t(lang, "To use this bot you need an invitation link from your clinic. Please ask your physiotherapist.")
    await _reply(update, text)
    return None


def _local_date(lang: str, day: date) -> str:
    return format_date(day, "full", locale=lang)


def _local_when(lang: str, at: datetime, tz: str) -> str:
    local = at.astimezone(zone(tz))
    return f"{format_skeleton('MMMEd', local.date(), locale=lang)}, {local:%H:%M}"


# --- /today ------------------------------------------------------------------------------------

TODAY_STATUS = {
    "done": N_("✅ done"),
    "partly": N_("🌗 partly done"),
    "skipped": N_("⏭ skipped"),
    "missed": N_("❌ missed"),
    "pending": N_("⏳ waiting for your answer"),
    "upcoming": N_("🕒 coming up"),
}


def today_text(lang: str, items: list[core.TodayItem], patient: Patient) -> str:
    """Today's sessions and their status."""
    lines = [t(lang, "📅 Your sessions today:")]
    for item in items:
        if item.status == sessions.Status.PENDING and item.step == sessions.Step.SNOOZED and item.snoozed_until:
            at = item.snoozed_until.astimezone(zone(patient.timezone)).strftime("%H:%M")
            status = t(lang, "⏰ snoozed until {time}", time=at)
        else:
            status = t(lang, TODAY_STATUS.get(item.status, item.status))
        lines.append(f"{item.slot}  {status}")
    if not items:
        lines.append(t(lang, "No sessions today."))
    if patient.status == PatientStatus.PAUSED and patient.paused_until is not None:
        lines.append(t(lang, "⏸ Reminders are paused until {date}.", date=_local_date(lang, patient.paused_until)))
    elif patient.status == PatientStatus.STOPPED:
        lines.append(t(lang, "🛑 All messages are stopped. To start again, send /resume."))
    return "\n".join(lines)


async def today_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show today's sessions and their status."""
    patient = await patient_for(update, context)
    if patient is not None:
        s = svc(context)
        async with s.db.session() as db:
            items = await core.today(db, patient, s.clock.now())
        await _reply(update, today_text(patient.language, items, patient))
    raise ApplicationHandlerStop


# --- /progress -----------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)} %"


def progress_text(lang: str, progress: core.Progress, tz: str) -> str:
    """The /progress text: streak, this week against last, days since surgery, next session."""
    st = progress.stats
    lines = [t(lang, "📈 Your progress")]
    if progress.day_after_surgery is not None and progress.day_after_surgery >= 0:
        lines.append(t(lang, "Day {n} after your surgery.", n=progress.day_after_surgery))
    left = progress.remaining_today
    if st.streak_days >= 2:
        lines.append(t(lang, "🔥 {n} days in a row with all sessions done.", n=st.streak_days))
    elif st.streak_days == 1 and not left:
        lines.append(t(lang, "🔥 All sessions done today. Keep it up tomorrow!"))
    if left and progress.status == PatientStatus.ACTIVE:
        done = progress.planned_today - left
        lines.append(
            tn(
                lang,
                "Today: {done} of {planned} sessions done, {n} still to come.",
                "Today: {done} of {planned} sessions done, {n} still to come.",
                left,
                done=done,
                planned=progress.planned_today,
                n=left,
            )
        )
    lines.append(
        t(
            lang,
            "This week: {this} of your sessions done (last week: {last}).",
            this=_percent(st.adherence_this_week),
            last=_percent(st.adherence_last_week),
        )
    )
    lines.append(t(lang, "Sessions done so far: {n}.", n=st.done_total))
    if progress.status == PatientStatus.PAUSED and progress.paused_until is not None:
        lines.append(t(lang, "⏸ Reminders are paused until {date}.", date=_local_date(lang, progress.paused_until)))
    elif progress.next_session is not None:
        lines.append(t(lang, "Next session: {when}.", when=_local_when(lang, progress.next_session, tz)))
    return "\n".join(lines)


async def progress_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show the streak, adherence this week against last, days since surgery and the next session."""
    patient = await patient_for(update, context)
    if patient is not None:
        s = svc(context)
        if s.config.privacy.health_data_in_chat:  # else the extras point to the Mini App only
            async with s.db.session() as db:
                progress = await core.progress(db, patient, s.clock.now())
            await _reply(update, progress_text(patient.language, progress, patient.timezone))
        for extra in PROGRESS_EXTRAS:
            try:
                await extra(update, context, patient, patient.language)
            except Exception:  # an extra (the chart) must not take the text with it
                log.exception("a /progress extra failed for patient %s", patient.id)
    raise ApplicationHandlerStop


# --- /settings ----------------------------------------------------------------------------------


def _quiet_text(lang: str, patient: Patient, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The patient's quiet hours as the settings show them: "22:00-07:00", "none", "clinic default (...)"."""
    quiet = core.quiet_hours(patient, svc(context).config.delivery)
    if QuietHours.follows_clinic(patient):
        return (
            t(lang, "clinic default ({start}-{end})", start=quiet.start_text, end=quiet.end_text)
            if quiet
            else t(lang, "none")
        )
    if quiet is None:
        return t(lang, "none")
    return f"{quiet.start_text}-{quiet.end_text}"


def _times_text(patient: Patient) -> str:
    return ", ".join(t_ for t_ in patient.session_times.split(",") if t_) or "–"


def settings_text(lang: str, patient: Patient, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The patient's current settings."""
    s = svc(context)
    label = timezones.zone_label(patient.timezone, lang)
    now = timezones.local_time(patient.timezone, s.clock.now())
    return "\n".join(
        [
            t(lang, "⚙️ Your settings"),
            t(lang, "Session times: {times}", times=_times_text(patient)),
            t(lang, "Timezone: {zone} (now {time})", zone=label, time=now),
            t(lang, "Language: {language}", language=LANGUAGE_NAMES.get(patient.language, patient.language)),
            t(lang, "Quiet hours: {quiet}", quiet=_quiet_text(lang, patient, context)),
            "",
            t(lang, "What would you like to change?"),
        ]
    )


def settings_buttons(lang: str) -> list[list[tuple[str, str]]]:
    """The settings menu."""
    return [
        [(t(lang, "🕒 Times"), "pt:set:times"), (t(lang, "🌍 Timezone"), "pt:set:tz")],
        [(t(lang, "🗣 Language"), "pt:set:lang"), (t(lang, "🌙 Quiet hours"), "pt:set:quiet")],
    ]


async def settings_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show the settings and what can be changed."""
    patient = await patient_for(update, context)
    await _forget_input(context, patient)
    if patient is not None:
        lang = patient.language
        await _reply(update, settings_text(lang, patient, context), settings_buttons(lang))
    raise ApplicationHandlerStop


# --- /pause and /resume ---------------------------------------------------------------------------


def pause_buttons(lang: str) -> list[list[tuple[str, str]]]:
    """3 days, 1 week, 2 weeks, or a date."""
    return [
        [
            (t(lang, "3 days"), "pt:pause:3"),
            (t(lang, "1 week"), "pt:pause:7"),
            (t(lang, "2 weeks"), "pt:pause:14"),
        ],
        [(t(lang, "📅 Choose a date"), "pt:pause:date")],
    ]


async def pause_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Offer to pause the reminders until a date."""
    patient = await patient_for(update, context)
    await _forget_input(context, patient)
    if patient is None:
        raise ApplicationHandlerStop
    lang = patient.language
    if patient.status == PatientStatus.PAUSED and patient.paused_until is not None:
        text = t(lang, "⏸ Reminders are paused until {date}.", date=_local_date(lang, patient.paused_until))
        text += "\n" + t(lang, "Send /resume to start again now, or choose a new date:")
        await _reply(update, text, pause_buttons(lang))
    elif patient.status in (PatientStatus.ACTIVE, PatientStatus.UNREACHABLE):
        text = t(lang, "Need a break, for example while you are ill or on holiday? Pause your reminders until:")
        await _reply(update, text, pause_buttons(lang))
    elif patient.status == PatientStatus.STOPPED:
        await _reply(update, t(lang, "🛑 All messages are stopped. To start again, send /resume."))
    else:
        await _reply(update, t(lang, "Your exercise programme has ended, so there is nothing to pause."))
    raise ApplicationHandlerStop


async def _pause(db: AsyncSession, patient: Patient, until: date, now: datetime) -> str:
    """Pause (in the caller's transaction) and say until when."""
    lang = patient.language
    fresh = await db.get(Patient, patient.id)
    assert fresh is not None
    result = await core.pause(db, fresh, until, now)
    if result == core.PauseResult.NOT_ACTIVE:
        return t(lang, "🛑 All messages are stopped. To start again, send /resume.")
    resumes = _local_date(lang, until + timedelta(days=1))
    return "\n".join(
        [
            t(lang, "⏸ Reminders paused until {date}.", date=_local_date(lang, until)),
            t(lang, "They start again on {date}. To start earlier, send /resume.", date=resumes),
        ]
    )


async def resume_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """End a pause or a stop now."""
    patient = await patient_for(update, context)
    await _forget_input(context, patient)
    if patient is None:
        raise ApplicationHandlerStop
    s = svc(context)
    lang = patient.language
    async with s.db.session() as db:
        fresh = await db.get(Patient, patient.id)
        assert fresh is not None
        result = await core.resume(db, fresh, content=s.content, now=s.clock.now())
        await db.commit()
    text = {
        core.ResumeResult.RESUMED: N_("▶️ Welcome back! Your reminders start again with your next session."),
        core.ResumeResult.RESTARTED: N_("▶️ Welcome back! Your reminders start again with your next session."),
        core.ResumeResult.REACHABLE: N_("▶️ Welcome back! Your reminders start again with your next session."),
        core.ResumeResult.ALREADY_ACTIVE: N_("Your reminders are running; there is nothing to resume."),
        core.ResumeResult.NOT_POSSIBLE: N_("Your exercise programme has ended. Please contact your clinic."),
    }[result]
    await _reply(update, t(lang, text))
    raise ApplicationHandlerStop


# --- /mydata, /delete, /stop -------------------------------------------------------------------------


async def mydata_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send every piece of data the bot holds about the patient as a JSON file."""
    patient = await patient_for(update, context)
    await _forget_input(context, patient)
    message = update.effective_message
    if patient is None or message is None:
        raise ApplicationHandlerStop
    s = svc(context)
    if not s.config.privacy.health_data_in_chat:
        # Privacy mode: the file would carry health data through Telegram; the Mini App shows it instead.
        lang = patient.language
        opener = InlineKeyboardButton(t(lang, "Open my data"), web_app=WebAppInfo(mydata_url(s.config.web.public_url)))
        await message.reply_text(
            t(lang, "Your data stays on the clinic's server. Open it here:"),
            reply_markup=InlineKeyboardMarkup([[opener]]),
        )
        raise ApplicationHandlerStop
    async with s.db.session() as db:
        data = await core.export(db, patient, s.clock.now())
    body = json.dumps(data, ensure_ascii=False, indent=2).encode()
    log.info("patient %s exported their data (%d bytes)", patient.id, len(body))
    await message.reply_document(
        InputFile(io.BytesIO(body), filename="my-data.json"),
        caption=t(patient.language, "All the data this bot stores about you."),
    )
    raise ApplicationHandlerStop


def _stamp(now: datetime) -> int:
    return int(now.timestamp() // 60)


def _fresh(stamp: str, now: datetime) -> bool:
    minute = number(stamp)
    return minute is not None and 0 <= _stamp(now) - minute <= CONFIRM_MINUTES


async def delete_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask whether to delete all the patient's data (also while setting up)."""
    patient = await patient_for(update, context, enrolling=True)
    await _forget_input(context, patient)
    if patient is not None:
        lang, stamp = patient.language, _stamp(svc(context).clock.now())
        text = t(
            lang,
            "This deletes all your data: your sessions, answers, notes and settings. "
            "Your therapist is told that you deleted your data, but not what it was. "
            "All messages from this bot stop. This cannot be undone.\n\nDelete everything?",
        )
        buttons = [
            [(t(lang, "🗑 Yes, delete everything"), f"pt:del:yes:{stamp}")],
            [(t(lang, "No, keep my data"), "pt:del:no")],
        ]
        await _reply(update, text, buttons)
    raise ApplicationHandlerStop


async def stop_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask whether to stop all messages; while setting up, whether to stop setting up."""
    patient = await patient_for(update, context, enrolling=True)
    await _forget_input(context, patient)
    if patient is not None and patient.status not in core.ENROLLED:
        lang, stamp = patient.language, _stamp(svc(context).clock.now())
        if enrolment.step_of(patient) is EnrolStep.DECLINED:
            await _reply(update, t(lang, enrolment.NOT_TAKING_PART))
        else:
            buttons = [
                [(t(lang, "🛑 Yes, stop setting up"), f"pt:stop:yes:{stamp}")],
                [(t(lang, "No, carry on"), "pt:stop:no")],
            ]
            await _reply(update, t(lang, "Stop setting up? I will then send you nothing."), buttons)
    elif patient is not None:
        lang, stamp = patient.language, _stamp(svc(context).clock.now())
        text = t(lang, "Stop all messages from this bot? You can start again at any time with /resume.")
        buttons = [
            [(t(lang, "🛑 Yes, stop all messages"), f"pt:stop:yes:{stamp}")],
            [(t(lang, "No, keep them"), "pt:stop:no")],
        ]
        await _reply(update, text, buttons)
    raise ApplicationHandlerStop


# --- buttons ------------------------------------------------------------------------------------------


async def _stale(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The neutral answer. A button really on the message that no longer works (an expired
    confirmation) takes its menu away; a forged press leaves every message as it is."""
    query = update.callback_query
    assert query is not None
    await query.answer(t(await language_for(update, context), STALE))
    message = query.message
    if isinstance(message, Message) and query.data in buttons_on(message):
        await edit_message(message, None, None)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press on a patient-command button: re-check the presser, then act once."""
    query, user = update.callback_query, update.effective_user
    assert query is not None
    parts = (query.data or "").split(":")
    message = message_of(query)
    if (
        user is None
        or message is None
        or not 2 <= len(parts) <= 4
        or len((query.data or "").encode()) > 64
        or query.data not in buttons_on(message)  # not (or no longer) offered on this message
    ):
        await _stale(update, context)
        raise ApplicationHandlerStop
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        standing, patient = await core.standing(db, user.id)
    what, args = parts[1], parts[2:]
    if standing == core.Standing.ENROLLING and patient is not None and what in ("del", "stop"):
        await _enrolling_button(update, context, patient, what, args, message)  # /stop and /delete while setting up
        raise ApplicationHandlerStop
    if standing != core.Standing.PATIENT or patient is None:
        await _stale(update, context)
        raise ApplicationHandlerStop
    lang = patient.language
    handled = False
    if what == "pause" and args and number(args[0], 3) in core.PAUSE_CHOICES:
        await query.answer()
        until = core.pause_until_for(int(args[0]), local_date(patient, now))
        async with s.db.session() as db:
            line = await _pause(db, patient, until, now)
            await db.commit()
        await close_with(message, line)
        handled = True
    elif what == "pause" and args == ["date"]:
        await query.answer()
        await _expect(context, patient, "date", now)
        await message.edit_reply_markup(reply_markup=None)
        await message.reply_text(
            t(lang, "Until which date? Send it like 24.06.2026 (the last day without reminders).")
            + "\n"
            + t(lang, "To pause nothing, send /cancel.")
        )
        handled = True
    elif what == "set":
        handled = await _settings_button(update, context, patient, args, message)
    elif what == "wk" and not args:
        handled = await _offer_weekly_stop(update, context, patient)
    elif what == "wk" and len(args) == 2 and args[0] == "yes" and _fresh(args[1], now):
        await _stop_weekly(update, context, patient, message)
        handled = True
    elif what in ("del", "stop", "wk") and args == ["no"]:
        await query.answer()
        line = N_("Nothing was deleted.") if what == "del" else N_("Your messages continue as before.")
        await close_with(message, t(lang, line))
        handled = True
    elif what in ("del", "stop") and len(args) == 2 and args[0] == "yes" and _fresh(args[1], now):
        await query.answer()
        async with s.db.session() as db:
            fresh = await db.get(Patient, patient.id)
            assert fresh is not None
            if what == "del":
                line = await _erase(db, fresh, context, now)
            else:
                await core.stop(db, fresh, now, s.config.clinic)  # the care team is told
                line = t(lang, "🛑 All messages are stopped. To start again, send /resume.")
            await db.commit()
        log.info("patient %s: %s confirmed", patient.id, "delete" if what == "del" else "stop")
        await close_with(message, line)
        handled = True
    if not handled:
        await _stale(update, context)
    raise ApplicationHandlerStop


async def _erase(db: AsyncSession, patient: Patient, context: ContextTypes.DEFAULT_TYPE, now: datetime) -> str:
    """/delete confirmed (enrolled or still setting up): everything goes (patient.erase); the line that says so."""
    s, lang = svc(context), patient.language  # read first: erase leaves a tombstone without a language
    await core.erase(db, patient, now=now, clinic=s.config.clinic, photo_dir=photo_dir(s.config))
    return t(
        lang,
        "🗑 Your data has been deleted and this bot will not message you again. "
        "If you want to use it again one day, please ask your clinic for a new invitation.",
    )


async def _enrolling_button(
    update: Update, context: ContextTypes.DEFAULT_TYPE, patient: Patient, what: str, args: list[str], message: Message
) -> None:
    """/stop's and /delete's answer from a patient still setting up: stop setting up (enrolment.withdraw: as
    declining), or delete everything (as for an enrolled patient), or nothing."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    now, lang = s.clock.now(), patient.language
    if args == ["no"]:
        await query.answer()
        line = N_("Nothing was deleted.") if what == "del" else N_("Nothing changed.")
        await close_with(message, t(lang, line) + " " + t(lang, "To carry on setting up, send /start."))
        return
    if not (len(args) == 2 and args[0] == "yes" and _fresh(args[1], now)):
        await _stale(update, context)
        return
    await query.answer()
    async with s.db.session() as db:
        fresh = await db.get(Patient, patient.id)
        assert fresh is not None
        if what == "del":
            line = await _erase(db, fresh, context, now)
        elif await enrolment.withdraw(db, fresh):
            line = "🛑 " + t(lang, enrolment.NOT_TAKING_PART)
        else:
            line = t(lang, enrolment.NOT_TAKING_PART)
        await db.commit()
    log.info("patient %s (setting up): %s confirmed", patient.id, "delete" if what == "del" else "stop")
    await close_with(message, line)


WEEKLY_STOPPED = N_("🛑 The weekly messages are stopped. To start again, send /resume.")


async def _offer_weekly_stop(update: Update, context: ContextTypes.DEFAULT_TYPE, patient: Patient) -> bool:
    """The weekly check's stop button: ask to confirm, in a new message (the check stays as it is)."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        weekly = await core.weekly_check_on(db, patient, s.content, now)
    if not weekly:
        return False  # no longer in the maintenance phase (or in care): the neutral answer
    await query.answer()
    lang = patient.language
    buttons = [
        [(t(lang, "🛑 Yes, stop"), f"pt:wk:yes:{_stamp(now)}")],
        [(t(lang, "Keep them"), "pt:wk:no")],
    ]
    await _reply(
        update,
        t(
            lang,
            "Stop the weekly messages (the exercise reminder and this check)? "
            "You can start again at any time with /resume.",
        ),
        buttons,
    )
    return True


async def _stop_weekly(update: Update, context: ContextTypes.DEFAULT_TYPE, patient: Patient, message: Message) -> None:
    """Confirmed: the same as /stop (rehab_bot.patient.stop_weekly), or nothing when it no longer applies."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        fresh = await db.get(Patient, patient.id)
        stopped = fresh is not None and await core.stop_weekly(db, fresh, s.content, now)
        await db.commit()
    lang = patient.language
    if not stopped:
        await query.answer(t(lang, STALE))
        await edit_message(message, None, None)
        return
    await query.answer()
    log.info("patient %s: weekly messages stopped", patient.id)
    await close_with(message, t(lang, WEEKLY_STOPPED))


async def _settings_button(
    update: Update, context: ContextTypes.DEFAULT_TYPE, patient: Patient, args: list[str], message: Message
) -> bool:
    query = update.callback_query
    assert query is not None
    s = svc(context)
    lang = patient.language
    now = s.clock.now()
    if args == ["times"]:
        await query.answer()
        async with s.db.session() as db:
            needed = await core.sessions_per_day(db, patient, s.content, now)
        current = ", ".join(x for x in patient.session_times.split(",") if x) or "08:00, 13:00, 18:00"
        prompt = t(lang, "Send your new session times, like: {example}", example=current)
        if needed is not None:
            prompt += "\n" + t(lang, "Your programme has {n} sessions a day.", n=needed)
        prompt += "\n" + t(lang, "To keep them as they are, send /cancel.")
        await _expect(context, patient, "times", now)
        await message.reply_text(prompt)
        return True
    if args == ["tz"]:
        await query.answer()
        await _expect(context, patient, "tz", now)
        await message.reply_text(
            t(lang, "Which city are you in? Send its name (e.g. Berlin) or a timezone like Europe/Vienna.")
            + "\n"
            + t(lang, "To keep it as it is, send /cancel.")
        )
        return True
    if args == ["lang"]:
        await query.answer()
        buttons = [[(name, f"pt:set:lang:{code}") for code, name in LANGUAGE_NAMES.items()]]
        await message.edit_reply_markup(reply_markup=markup(buttons))
        return True
    if len(args) == 2 and args[0] == "lang" and args[1] in LANGUAGE_NAMES:
        await query.answer()
        async with s.db.session() as db:
            fresh = await db.get(Patient, patient.id)
            assert fresh is not None
            core.set_language(db, fresh, args[1])
            await db.commit()
        # The settings message itself becomes the new language's: one message, nothing left in the old one.
        saved = t(args[1], "✅ Saved.") + "\n\n" + settings_text(args[1], fresh, context)
        await edit_message(message, saved, settings_buttons(args[1]))
        return True
    if args == ["quiet"]:
        await query.answer()
        buttons = [
            [(t(lang, "Clinic default"), "pt:set:quiet:default"), (t(lang, "No quiet hours"), "pt:set:quiet:off")],
            [(t(lang, "Set my own"), "pt:set:quiet:own")],
        ]
        await message.edit_reply_markup(reply_markup=markup(buttons))
        return True
    if len(args) == 2 and args[0] == "quiet" and args[1] in ("default", "off"):
        await query.answer()
        async with s.db.session() as db:
            fresh = await db.get(Patient, patient.id)
            assert fresh is not None
            value = None if args[1] == "default" else ""
            try:
                core.set_quiet_hours(db, fresh, value, value, s.config.delivery)
            except core.InputError as error:  # the clinic's quiet hours would cover a session
                await close_with(message, input_error_text(lang, error))
                await message.reply_text(
                    settings_text(lang, fresh, context), reply_markup=markup(settings_buttons(lang))
                )
                return True
            await db.commit()
        await close_with(message, t(lang, "✅ Saved."))
        await message.reply_text(settings_text(lang, fresh, context), reply_markup=markup(settings_buttons(lang)))
        return True
    if args == ["quiet", "own"]:
        await query.answer()
        await _expect(context, patient, "quiet", now)
        await message.reply_text(
            t(lang, "Send your quiet hours, e.g. 22:00-07:00. I send no reminders then.")
            + "\n"
            + t(lang, "To keep them as they are, send /cancel.")
        )
        return True
    return False


# --- typed answers ------------------------------------------------------------------------------------

# Said when the patient answers a question that has expired, by what it asked.
EXPIRED_INPUT = {
    "times": N_("Sorry, that question has expired, so I changed nothing. To change your settings, send /settings."),
    "tz": N_("Sorry, that question has expired, so I changed nothing. To change your settings, send /settings."),
    "quiet": N_("Sorry, that question has expired, so I changed nothing. To change your settings, send /settings."),
    "date": N_("Sorry, that question has expired, so I paused nothing. To pause your reminders, send /pause."),
}


async def _expect(context: ContextTypes.DEFAULT_TYPE, patient: Patient, kind: str, now: datetime) -> None:
    """Wait for a typed answer of `kind`: stored in the patient's row, so it survives a restart."""
    async with svc(context).db.session() as db:
        fresh = await db.get(Patient, patient.id)
        if fresh is None:
            return
        core.expect_input(db, fresh, kind, now)
        await db.commit()


async def _forget_input(context: ContextTypes.DEFAULT_TYPE, patient: Patient | None) -> None:
    """Stop waiting for a typed answer (another command was chosen instead)."""
    if patient is None or (not patient.awaiting and patient.awaiting_since is None):
        return
    async with svc(context).db.session() as db:
        fresh = await db.get(Patient, patient.id)
        if fresh is not None and core.forget_input(db, fresh):
            await db.commit()
    patient.awaiting, patient.awaiting_since = "", None


def cancelled_text(lang: str, kind: str, patient: Patient, context: ContextTypes.DEFAULT_TYPE) -> str:
    """What the patient reads on leaving a question of ``kind``: that nothing changed, and what stays."""
    if kind == "times":
        return t(lang, "Cancelled. Your session times stay as they were: {times}.", times=_times_text(patient))
    if kind == "tz":
        return t(
            lang, "Cancelled. Your timezone stays as it was: {zone}.", zone=timezones.zone_label(patient.timezone, lang)
        )
    if kind == "quiet":
        return t(
            lang, "Cancelled. Your quiet hours stay as they were: {quiet}.", quiet=_quiet_text(lang, patient, context)
        )
    if patient.status == PatientStatus.PAUSED and patient.paused_until is not None:
        return t(
            lang,
            "Cancelled. Your reminders stay paused until {date}.",
            date=_local_date(lang, patient.paused_until),
        )
    return t(lang, "Cancelled. Nothing is paused: your reminders come as before.")


async def cancel_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel: leave the open settings or pause question; the setting stays as it was, and the patient is told.

    Registered in the typed answers' group, before the handler that ends the wait on any command."""
    message = update.effective_message
    patient = await patient_for(update, context)
    if patient is None or message is None:
        raise ApplicationHandlerStop
    lang = patient.language
    async with svc(context).db.session() as db:
        fresh = await db.get(Patient, patient.id)
        kind = fresh.awaiting if fresh is not None and fresh.awaiting in core.AWAITABLE else None
        if fresh is not None and core.forget_input(db, fresh):
            await db.commit()
    if fresh is None or kind is None:
        await message.reply_text(t(lang, "There is nothing to cancel."))
    else:
        log.info("patient %s cancelled a %s question", patient.id, kind)
        await message.reply_text(cancelled_text(lang, kind, fresh, context))
    raise ApplicationHandlerStop


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any command ends the wait for a typed answer (the patient chose something else), then runs as usual.

    Without this a question left open after /note, /today or /checkin swallowed the next text (a note
    typed for the therapist was answered "I could not read that" about session times, and lost).
    """
    user = update.effective_user
    if user is None:
        return
    async with svc(context).db.session() as db:
        patient = await core.find(db, user.id)
        if patient is not None and core.forget_input(db, patient):
            await db.commit()


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed answer to a settings or pause question; any other text passes on untouched.

    What is awaited is read from the patient's row, so an answer typed after a
    restart is understood. The answer is applied and the question closed in
    one transaction; bad input keeps the question open. An answer to an
    expired question is told so; other text after one passes on.
    """
    message, user = update.effective_message, update.effective_user
    if message is None or message.text is None or user is None:
        return
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        patient = await core.find(db, user.id)
        if patient is None or not patient.awaiting:
            return
        awaited = core.awaited_input(patient, now, INPUT_MINUTES)
        if awaited is None or patient.status not in core.ENROLLED:
            core.forget_input(db, patient)
            await db.commit()
            return
        lang, today = patient.language, local_date(patient, now)  # read before a rollback expires the row
        if awaited.expired:
            core.forget_input(db, patient)
            await db.commit()
            if core.is_cancel(message.text):
                await message.reply_text(cancelled_text(lang, awaited.kind, patient, context))
                raise ApplicationHandlerStop
            if not core.looks_like_answer(awaited.kind, message.text, today):
                return  # not an answer to the old question: the other features see it
            log.info("patient %s answered an expired %s question", patient.id, awaited.kind)
            await message.reply_text(t(lang, EXPIRED_INPUT[awaited.kind]))
            raise ApplicationHandlerStop
        replied = message.reply_to_message
        if (
            replied is not None
            and replied.from_user is not None
            and replied.from_user.id == context.bot.id
            and await care_messages.reply_target(db, patient, replied.message_id) is not None
        ):
            return  # an answer to the care team's message (Telegram's reply): theirs, not the question's
        if core.is_cancel(message.text):  # "cancel", "abbrechen": as /cancel
            core.forget_input(db, patient)
            await db.commit()
            log.info("patient %s cancelled a %s question", patient.id, awaited.kind)
            await message.reply_text(cancelled_text(lang, awaited.kind, patient, context))
            raise ApplicationHandlerStop
        try:
            reply = await _apply_input(db, context, patient, awaited.kind, message.text, now)
        except core.InputError as error:
            await db.rollback()  # the question stays open
            if core.heard_elsewhere(awaited.kind, message.text, today, s.content):
                return  # a symptom or a word of danger: the free-text offer hears it, never "could not read"
            await message.reply_text(input_error_text(lang, error))
            raise ApplicationHandlerStop from None
        core.forget_input(db, patient)
        await db.commit()
    if reply is not None:
        await message.reply_text(reply)
    else:
        await message.reply_text(
            t(patient.language, "✅ Saved.") + "\n\n" + settings_text(patient.language, patient, context),
            reply_markup=markup(settings_buttons(patient.language)),
        )
    raise ApplicationHandlerStop


async def _apply_input(
    db: AsyncSession, context: ContextTypes.DEFAULT_TYPE, patient: Patient, kind: str, text: str, now: datetime
) -> str | None:
    """Apply one typed answer; the reply to send, or None for "saved" plus the settings."""
    s = svc(context)
    if kind == "times":
        await core.set_times(
            db, patient, core.parse_times(text), content=s.content, delivery=s.config.delivery, now=now
        )
        return None
    if kind == "tz":
        match = timezones.place(text, home=s.config.clinic.timezone)
        if isinstance(match, timezones.SeveralClocks):
            lines = (timezones.zone_now(z, patient.language, now) for z in match.zones)
            raise core.InputError("timezone_several", zones="\n".join(f"• {line}" for line in lines))
        if match is None:
            raise core.InputError("timezone_offset" if timezones.offset_out_of_range(text) else "timezone_unknown")
        await core.set_timezone(db, patient, match.zone, now)
        return None
    if kind == "quiet":
        start, end = core.parse_quiet_hours(text)
        core.set_quiet_hours(db, patient, start, end, s.config.delivery)
        return None
    # kind == "date": the last day of a pause
    until = core.parse_pause_date(text, local_date(patient, now))
    return await _pause(db, patient, until, now)


# --- the menu and registration -----------------------------------------------------------------------

COMMANDS: list[tuple[str, Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]]] = [
    ("today", today_command),
    ("progress", progress_command),
    ("settings", settings_command),
    ("pause", pause_command),
    ("resume", resume_command),
    ("mydata", mydata_command),
    ("delete", delete_command),
    ("stop", stop_command),
]


def register(app: App) -> None:
    """Add the patient commands, their buttons and the typed-answer handler."""
    for name, callback in COMMANDS:
        app.add_handler(CommandHandler(name, callback))
    app.add_handler(CallbackQueryHandler(on_button, pattern=r"^pt:"))
    private_message = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(MessageHandler(private_message & filters.TEXT & ~filters.COMMAND, on_text), group=INPUT_GROUP)
    # /cancel before the handler that ends the wait on any command: one handler per group sees an update.
    app.add_handler(CommandHandler("cancel", cancel_command, filters=private_message), group=INPUT_GROUP)
    app.add_handler(MessageHandler(private_message & filters.COMMAND, on_command), group=INPUT_GROUP)
