"""Enrolment in chat: the invite link, consent, timezone, session times, summary.

The patient's progress is ``Patient.enrol_step`` in the database, not a
ConversationHandler in memory; its steps and transitions (consent, time
zone, times, done) are rehab_bot.enrolment's. Whatever the patient does next (a button, some
text, a location, /start, the link again, even after a restart of the bot)
is read against that step, so an abandoned enrolment resumes where it
stopped and nothing is lost.

Callback data is ``e:<patient id>:<action>[:<arg>]`` and never trusted: the
pressing account must be that patient, and the action must fit the current
step; anything else is answered and changes nothing.

    ok / no           consent: agree / decline
    tz:<zone>         a timezone button, or confirming a location's guess
    tzx               the location's guess is wrong: ask again
    tm:<HHMM.HHMM>    a preset of session times
    back              from the times back to the timezone
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from babel.dates import format_date
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

import rehab_bot.bot.staff as staff_bot
from rehab_bot import enrolment, experiment, timezones
from rehab_bot import invite as invites
from rehab_bot import patient as patients
from rehab_bot import programme as programmes
from rehab_bot.bot.common import asking_later
from rehab_bot.bot.miniapp import set_patient_menu_button
from rehab_bot.bot.services import App, svc
from rehab_bot.content import Content, Phase, localize
from rehab_bot.enrolment import EnrolStep
from rehab_bot.i18n import LANGUAGE_NAMES, N_, pick_language, t, tn
from rehab_bot.models import Patient, PatientStatus, Role, Staff
from rehab_bot.redflag import clinic_contact
from rehab_bot.schedule import (
    QuietHours,
    TimesError,
    local_date,
    minutes_of_day,
    parse_times,
)
from rehab_bot.schedule import zone as zone_info

log = logging.getLogger(__name__)

# Morning, afternoon and evening anchors for the presets.
MORNING, AFTERNOON, EVENING = "08:00", "13:00", "18:00"


# --- small helpers ---------------------------------------------------------------


def _content(context: ContextTypes.DEFAULT_TYPE) -> Content:
    return svc(context).content


def _now(context: ContextTypes.DEFAULT_TYPE) -> datetime:
    return svc(context).clock.now()


async def _patient_of(session: AsyncSession, telegram_id: int) -> Patient | None:
    return (await session.exec(select(Patient).where(col(Patient.telegram_id) == telegram_id))).first()


async def _staff_of(session: AsyncSession, telegram_id: int) -> Staff | None:
    return (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).first()


async def _therapist_name(session: AsyncSession, patient: Patient) -> str | None:
    if patient.therapist_id is None:
        return None
    therapist = await session.get(Staff, patient.therapist_id)
    return therapist.name if therapist is not None else None


def _keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


def _data(patient: Patient, action: str, arg: str = "") -> str:
    return f"e:{patient.id}:{action}" + (f":{arg}" if arg else "")


def _times_text(times: list[str]) -> str:
    return ", ".join(times)


# --- the prompts of each step ---------------------------------------------------


def _welcome(lang: str, clinic: str, therapist: str | None) -> str:
    if therapist:
        return t(
            lang,
            "Welcome! {clinic} and your physiotherapist {therapist} have invited you to this exercise and "
            "recovery assistant. Setting it up takes about a minute.",
            clinic=clinic,
            therapist=therapist,
        )
    return t(
        lang,
        "Welcome! {clinic} has invited you to this exercise and recovery assistant. "
        "Setting it up takes about a minute.",
        clinic=clinic,
    )


def consent_prompt(
    lang: str, patient: Patient, content: Content, clinic: str, lead: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The clinic's consent text with Agree / Decline (and, while an experiment runs, Agree without tests)."""
    text = lead + "\n\n" + experiment.consent_text(content, lang, clinic=clinic)  # mentions running experiments
    rows = [[(t(lang, "Yes, I agree"), _data(patient, "ok"))], [(t(lang, "No, thank you"), _data(patient, "no"))]]
    if experiment.any_running(content):
        rows.insert(1, [(t(lang, "Yes, but leave me out of tests"), _data(patient, "okx"))])
    # The consent comes in the language of the patient's Telegram app; a patient who reads another one
    # switches here, before agreeing to anything (each language named in itself: "Deutsch", "English").
    rows.append(
        [
            (f"🌐 {t(code, LANGUAGE_NAMES[code])}", _data(patient, "lang", code))
            for code in LANGUAGE_NAMES
            if code != lang
        ]
    )
    return text, _keyboard(rows)


def timezone_keyboard(lang: str, patient: Patient, clinic_zone: str, now: datetime) -> InlineKeyboardMarkup | None:
    """The clinic's zone first, then a few common ones."""
    clinic_label = t(
        lang,
        "{city} – the clinic's time zone (now {time})",
        city=timezones.zone_label(clinic_zone, lang),
        time=timezones.local_time(clinic_zone, now),
    )
    rows = [[(clinic_label, _data(patient, "tz", clinic_zone))]]
    others = [z for z in timezones.COMMON_ZONES if z != clinic_zone]
    buttons = [
        (f"{timezones.zone_label(z, lang)} ({timezones.local_time(z, now)})", _data(patient, "tz", z)) for z in others
    ]
    rows += [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return _keyboard(rows)


def timezone_prompt(
    lang: str, patient: Patient, clinic_zone: str, now: datetime
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Which timezone: buttons, a city, an offset or a location."""
    text = (
        t(lang, "Which time zone are you in? I need it to remind you at the right local time.")
        + "\n\n"
        + t(
            lang,
            "Tap a button, or type the city you are in (for example “Berlin”) or your UTC offset "
            "(for example “+2”), or share your location (📎 → Location).",
        )
    )
    return text, timezone_keyboard(lang, patient, clinic_zone, now)


def _spread(count: int, first: str, last: str) -> list[str]:
    """count times from first to last, evenly spaced, rounded to half hours."""
    start, end = minutes_of_day(first), minutes_of_day(last)
    if count == 1:
        return [first]
    step = (end - start) / (count - 1)
    values = sorted({int(round((start + i * step) / 30) * 30) for i in range(count)})
    return [f"{v // 60:02d}:{v % 60:02d}" for v in values]


def time_presets(count: int, defaults: list[str]) -> list[tuple[str, list[str]]]:
    """(label msgid, times) suggestions for a phase with count sessions a day."""
    if count == 1:
        presets = [(N_("Morning"), [MORNING]), (N_("Afternoon"), [AFTERNOON]), (N_("Evening"), [EVENING])]
    elif count == 2:
        presets = [
            (N_("Morning and afternoon"), [MORNING, AFTERNOON]),
            (N_("Morning and evening"), [MORNING, EVENING]),
            (N_("Afternoon and evening"), [AFTERNOON, EVENING]),
        ]
    else:
        presets = [
            (N_("Starting early"), _spread(count, "07:00", "17:00")),
            (N_("Morning, afternoon and evening"), _spread(count, MORNING, EVENING)),
            (N_("Later in the day"), _spread(count, "10:00", "20:00")),
        ]
    if len(defaults) == count and all(times != defaults for _, times in presets):
        presets.insert(0, (N_("Suggested by your programme"), list(defaults)))
    return [(label, times) for label, times in presets if len(times) == count]


def _quiet_hours(context: ContextTypes.DEFAULT_TYPE, patient: Patient) -> QuietHours | None:
    return patients.quiet_hours(patient, svc(context).config.delivery)


def times_keyboard(lang: str, patient: Patient, phase: Phase, quiet: QuietHours | None) -> InlineKeyboardMarkup | None:
    """Presets that fit the phase and avoid quiet hours, and a way back to the timezone."""
    rows = []
    for label, times in time_presets(phase.sessions_per_day, phase.default_times):
        if quiet is not None and any(quiet.contains(x) for x in times):
            continue
        rows.append(
            [
                (
                    f"{t(lang, label)} · {_times_text(times)}",
                    _data(patient, "tm", ".".join(x.replace(":", "") for x in times)),
                )
            ]
        )
    rows.append([(t(lang, "« Change time zone"), _data(patient, "back"))])
    return _keyboard(rows)


def times_prompt(
    lang: str, patient: Patient, phase: Phase, quiet: QuietHours | None
) -> tuple[str, InlineKeyboardMarkup | None]:
    """When should the reminders come."""
    n = phase.sessions_per_day
    text = tn(
        lang,
        "Your programme has one exercise session a day at the moment. When would you like your reminder?",
        "Your programme has {n} exercise sessions a day at the moment. When would you like your reminders?",
        n,
    )
    text += "\n\n" + tn(
        lang,
        "Tap a suggestion, or type a time, for example 08:30.",
        "Tap a suggestion, or type {n} times separated by commas, for example {example}.",
        n,
        example=_times_text(_spread(n, "08:30", "18:30")),
    )
    return text, times_keyboard(lang, patient, phase, quiet)


# --- replies and edits -------------------------------------------------------------


async def _reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> Message | None:
    message = update.effective_message
    if message is None:
        return None
    return await message.reply_text(text, reply_markup=markup)


async def _close(update: Update, text: str | None = None) -> None:
    """Take the buttons off the pressed message (and optionally replace its text)."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    try:
        if text is not None:
            await query.edit_message_text(text)
        else:
            await query.edit_message_reply_markup(None)
    except TelegramError as exc:  # too old, already edited, deleted
        log.info("could not edit enrolment message: %s", type(exc).__name__)


def _pressed_text(update: Update) -> str:
    query = update.callback_query
    message = query.message if query is not None else None
    return getattr(message, "text", None) or ""


# --- /start <code> ------------------------------------------------------------------


async def start_with_code(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Redeem an invite link: start or resume a patient's enrolment, or register staff."""
    await _redeem_link(update, context)
    raise ApplicationHandlerStop  # handled: the catch-all fallbacks must stay quiet


async def _redeem_link(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    user = update.effective_user
    if user is None or update.effective_message is None:
        return
    s = svc(context)
    clinic = s.config.clinic
    now = _now(context)
    code = context.args[0] if context.args and len(context.args) == 1 else ""
    telegram_lang = pick_language(user.language_code, clinic.language)
    async with s.db.session() as session:
        result = await invites.redeem(
            session, code, telegram_id=user.id, language=telegram_lang, timezone=clinic.timezone, now=now
        )
        await session.commit()
        # The patient's internal id, never the Telegram id.
        log.info(
            "invite link opened: %s (patient %s)",
            result.outcome.value,
            result.patient.id if result.patient is not None else "-",
        )
        lang = telegram_lang
        if result.patient is not None:
            lang = result.patient.language
        elif result.staff is not None:
            lang = result.staff.language
        outcome = result.outcome
        if outcome == invites.Outcome.PATIENT:
            assert result.patient is not None
            patient = result.patient
            if enrolment.step_of(patient) is EnrolStep.DONE:
                await _welcome_back(update, context, session, patient)
            else:
                await _resume(update, context, session, patient, fresh=not result.resumed)
            return
        if outcome == invites.Outcome.STAFF:
            assert result.staff is not None
            role = t(lang, N_("administrator") if result.staff.role == Role.ADMIN.value else N_("therapist"))
            await staff_bot.set_staff_menu(context.bot, result.staff)
            await _reply(
                update,
                t(
                    lang,
                    "Welcome, {name}! You are now registered as clinic staff at {clinic} (role: {role}). "
                    "Your tools are in the command menu.",
                    name=result.staff.name,
                    clinic=clinic.name,
                    role=role,
                ),
            )
            return
        if outcome in LINK_REFUSALS:
            # A broken, used or expired link from someone who is a patient already (an old link opened
            # again, a bookmark): they need no invitation, so they are told where they stand, not alarmed.
            standing, known = await patients.standing(session, user.id)
            if known is not None and standing is patients.Standing.PATIENT:
                await _welcome_back(update, context, session, known, lead=t(known.language, ALREADY_ENROLLED))
                return
            if known is not None and standing is patients.Standing.ENROLLING:
                await _resume(update, context, session, known, fresh=False)
                return
    await _reply(update, refusal(lang, outcome))


# What is wrong with the link itself; for a patient already enrolled or enrolling, the link does not matter.
LINK_REFUSALS = frozenset(
    {
        invites.Outcome.MALFORMED,
        invites.Outcome.UNKNOWN,
        invites.Outcome.USED,
        invites.Outcome.EXPIRED,
        invites.Outcome.WITHDRAWN,
    }
)
ALREADY_ENROLLED = N_("You are already enrolled, so you do not need an invitation link any more.")


def refusal(lang: str, outcome: invites.Outcome) -> str:
    """What to say when an invite link cannot be used."""
    messages = {
        invites.Outcome.MALFORMED: N_(
            "This link looks incomplete. Please open the invitation link from your clinic again, exactly as you "
            "received it, or scan the QR code."
        ),
        invites.Outcome.UNKNOWN: N_(
            "I don't recognise this invitation. Please check that you used the link or QR code from your clinic, "
            "or ask them for a new invitation."
        ),
        invites.Outcome.USED: N_(
            "This invitation has already been used: each invitation works only once. If you did not use it "
            "yourself, please ask your clinic for a new one."
        ),
        invites.Outcome.EXPIRED: N_("This invitation has expired. Please ask your clinic for a new one."),
        invites.Outcome.WITHDRAWN: N_(
            "Your clinic has withdrawn this invitation, so it cannot be used. If you still need one, please ask "
            "your clinic for a new invitation."
        ),
        invites.Outcome.OTHER_PATIENT: N_(
            "This Telegram account is already registered with me under a different invitation, so I cannot use "
            "this one. If you think this is a mistake, please contact your clinic."
        ),
        invites.Outcome.IS_STAFF: N_(
            "You are registered as clinic staff, so I cannot enrol this account as a patient. Please give this "
            "invitation to the patient it is meant for."
        ),
        invites.Outcome.IS_PATIENT: N_(
            "This Telegram account is registered as a patient, so it cannot also become a staff account. Please "
            "use another Telegram account for your clinic work."
        ),
        invites.Outcome.ALREADY_STAFF: N_("You are already registered as clinic staff."),
        invites.Outcome.IS_CAREGIVER: N_(
            "This Telegram account is linked as a caregiver, so it cannot also be used as a patient or staff "
            "account. To use it for this invitation, first end your caregiver link with /delete, then open this "
            "invitation again."
        ),
    }
    return t(lang, messages.get(outcome, messages[invites.Outcome.UNKNOWN]))


# --- plain /start from someone we know ------------------------------------------------


async def greet_known_user(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Plain /start: resume an enrolment, welcome back a patient or active staff; False for a stranger."""
    user = update.effective_user
    if user is None:
        return False
    s = svc(context)
    async with s.db.session() as session:
        patient = await _patient_of(session, user.id)
        if patient is not None:
            if enrolment.step_of(patient) in enrolment.IN_PROGRESS:
                await _resume(update, context, session, patient, fresh=False)
            else:
                await _welcome_back(update, context, session, patient)
            return True
        staff = await _staff_of(session, user.id)
    if staff is None:
        return False
    await staff_bot.set_staff_menu(context.bot, staff)  # a removed member's menu goes
    if not staff.active:
        return False  # removed: a stranger now, with no tools to point to
    await _reply(
        update,
        t(staff.language, "Welcome back, {name}! Your clinic tools are in the command menu.", name=staff.name),
    )
    return True


async def _welcome_back(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, patient: Patient, *, lead: str = ""
) -> None:
    lang = patient.language
    times = programmes.parse_times(patient.session_times)
    text = (lead + "\n\n" if lead else "") + t(lang, "Welcome back!")
    if patient.status == PatientStatus.PAUSED.value:
        if patient.paused_until is not None:
            until = format_date(patient.paused_until, "full", locale=lang)
            text += " " + t(lang, "Your reminders are paused until {date}. Type /resume to restart them.", date=until)
        else:
            text += " " + t(lang, "Your reminders are paused. Type /resume to restart them.")
    elif patient.status == PatientStatus.ACTIVE.value and times:
        text += " " + t(
            lang,
            "Your exercise reminders come at {times} ({zone} time).",
            times=_times_text(times),
            zone=timezones.zone_label(patient.timezone, lang),
        )
    text += "\n\n" + t(lang, "Type /today for today's exercises, or /help to see what I can do.")
    await _reply(update, text)


async def _resume(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, patient: Patient, *, fresh: bool
) -> None:
    """Show the prompt of the step the patient is at (after the link, /start or a restart)."""
    s = svc(context)
    lang = patient.language
    now = _now(context)
    lead = t(lang, "Welcome back! Let's continue where we left off.")
    step = enrolment.step_of(patient)
    if step in enrolment.ASKING_CONSENT:
        if fresh:
            lead = _welcome(lang, s.config.clinic.name, await _therapist_name(session, patient))
        text, markup = consent_prompt(lang, patient, _content(context), s.config.clinic.name, lead)
    elif step is EnrolStep.TIMEZONE:
        text, markup = timezone_prompt(lang, patient, s.config.clinic.timezone, now)
        text = lead + "\n\n" + text
    else:
        phase = programmes.planning_phase(_content(context), patient, local_date(patient, now))
        if phase is None:
            await _programme_problem(update, patient)
            return
        text, markup = times_prompt(lang, patient, phase, _quiet_hours(context, patient))
        text = lead + "\n\n" + text
    await _reply(update, text, markup)


async def _programme_problem(update: Update, patient: Patient) -> None:
    log.warning("patient %s cannot be planned: programme %r has no phase for today", patient.id, patient.programme_id)
    await _reply(
        update,
        t(
            patient.language,
            "Something is not right with your exercise programme. Please contact your clinic; "
            "I have kept your answers so far.",
        ),
    )


# --- text and locations during enrolment -------------------------------------------------


async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """While a patient is enrolling, their text or location answers the current step; text that is no answer
    to the time zone or times step but names a symptom or a word of danger goes on to be heard."""
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None:
        return
    s = svc(context)
    async with s.db.session() as session:
        patient = await _patient_of(session, user.id)
        if patient is None or enrolment.step_of(patient) not in enrolment.IN_PROGRESS:
            return  # not enrolling: the other features handle it
        now = _now(context)
        patient.last_activity_at = now
        session.add(patient)
        step = enrolment.step_of(patient)
        kind = {EnrolStep.TIMEZONE: "tz", EnrolStep.TIMES: "times"}.get(step)
        today = local_date(patient, now)
        if kind and message.text and patients.heard_elsewhere(kind, message.text, today, _content(context)):
            # No answer to the step but a symptom or a word of danger: heard as it is from a patient in care
            # (the symptom check, the crisis question: bot/checkin.py's free_text); the step stays open.
            log.info("patient %s typed no %s answer during enrolment: passed on to triage", patient.id, kind)
            await session.commit()
            return
        if step is EnrolStep.TIMEZONE:
            await _typed_timezone(update, context, session, patient)
        elif step is EnrolStep.TIMES:
            await _typed_times(update, context, session, patient)
        elif step == "declined":
            await _worry_before_consent(update, context, patient)
            await _reply(
                update,
                t(patient.language, enrolment.NOT_TAKING_PART),
            )
        else:
            await _worry_before_consent(update, context, patient)
            text, markup = consent_prompt(
                patient.language,
                patient,
                _content(context),
                s.config.clinic.name,
                t(patient.language, "Please read this and tap one of the buttons below it."),
            )
            await _reply(update, text, markup)
        await session.commit()
    raise ApplicationHandlerStop


TIMES_TOO_EARLY = N_(
    "Those look like session times: I will ask for them next. First, which time zone are you in? "
    "Tap it below, or type your city."
)
# A symptom or a word of danger typed before consent (or after declining): nothing can be asked or kept,
# but where to turn is never withheld.
WORRY_BEFORE_CONSENT = N_(
    "Until you agree to take part, I cannot check symptoms or pass messages on to your care team. "
    "If you are worried about your health, please contact the clinic:"
)


async def _worry_before_consent(update: Update, context: ContextTypes.DEFAULT_TYPE, patient: Patient) -> None:
    """The clinic's phone and emergency text for a message that names a symptom or a word of danger."""
    message, s = update.effective_message, svc(context)
    if message is None or not message.text or not patients.names_a_worry(message.text, _content(context)):
        return
    lang, clinic = patient.language, s.config.clinic
    log.info("patient %s named a symptom or a word of danger before consent: clinic contact shown", patient.id)
    await _reply(
        update,
        "\n\n".join([t(lang, WORRY_BEFORE_CONSENT), clinic_contact(clinic, lang), clinic.text("emergency_text", lang)]),
    )


async def _typed_timezone(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, patient: Patient
) -> None:
    message = update.effective_message
    assert message is not None
    lang = patient.language
    now = _now(context)
    clinic_zone = svc(context).config.clinic.timezone
    if message.location is not None:
        # An approximation (nearest city): always ask before using it.
        guess = timezones.zone_from_location(message.location.latitude, message.location.longitude)
        text = t(
            lang,
            "Your location suggests this time zone: {zone}. Is that right?",
            zone=timezones.zone_now(guess, lang, now),
        )
        rows = [
            [(t(lang, "Yes, that's right"), _data(patient, "tz", guess))],
            [(t(lang, "No, choose another"), _data(patient, "tzx"))],
        ]
        await _reply(update, text, _keyboard(rows))
        return
    match = timezones.place(message.text or "", home=svc(context).config.clinic.timezone)
    if isinstance(match, timezones.SeveralClocks):
        # A country with more than one clock (the USA, Spain with the Canary Islands): ask which.
        text = t(lang, "This country has more than one time zone. Tap yours, or type the city you are in.")
        buttons = [(timezones.zone_now(z, lang, now), _data(patient, "tz", z)) for z in match.zones]
        await _reply(update, text, _keyboard([buttons[i : i + 2] for i in range(0, len(buttons), 2)]))
        return
    if match is None and timezones.offset_out_of_range(message.text or ""):
        await _reply(update, t(lang, timezones.OFFSET_RANGE), timezone_keyboard(lang, patient, clinic_zone, now))
        return
    if match is None and parse_time_list(message.text or "")[0]:
        # Session times, a step early ("08:00, 13:00, 18:00"): not a place; say what comes first.
        text = t(lang, TIMES_TOO_EARLY)
        await _reply(update, text, timezone_keyboard(lang, patient, clinic_zone, now))
        return
    if match is None:
        text = t(
            lang,
            "Sorry, I could not find that place. Please type a larger city near you (for example “Munich”), "
            "your UTC offset (for example “+1”), or tap one of the buttons.",
        )
        await _reply(update, text, timezone_keyboard(lang, patient, clinic_zone, now))
        return
    await _set_timezone(update, context, session, patient, match.zone)


async def _set_timezone(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, patient: Patient, zone: str
) -> None:
    """Store the zone, move on to the times, and say both in one message."""
    lang = patient.language
    now = _now(context)
    patient.timezone = zone
    phase = programmes.planning_phase(_content(context), patient, local_date(patient, now))
    if phase is None:
        await _programme_problem(update, patient)
        return
    await enrolment.set_timezone(session, patient, zone)
    text = t(lang, "Time zone: {zone} ✓", zone=timezones.zone_now(zone, lang, now))
    if timezones.is_fixed_offset(zone):
        text += "\n" + t(
            lang,
            "A UTC offset does not change for summer time. If the clocks change where you are, "
            "tap “Change time zone” and type your city instead.",
        )
    prompt, markup = times_prompt(lang, patient, phase, _quiet_hours(context, patient))
    await _reply(update, text + "\n\n" + prompt, markup)


def parse_time_list(text: str) -> tuple[list[str], str | None]:
    """Typed times ("8:30, 13:00 and 6pm", "18.30 Uhr") -> (HH:MM list, first unreadable part)."""
    try:
        return parse_times(text), None
    except TimesError as exc:
        return [], exc.part


def check_times(lang: str, times: list[str], phase: Phase, quiet: QuietHours | None) -> str | None:
    """A friendly error for times that cannot be used, or None."""
    n = phase.sessions_per_day
    if len(times) != n:
        return tn(
            lang,
            "Your programme has one session a day at the moment, so please send one time (you sent {count}).",
            "Your programme has {n} sessions a day at the moment, so please send {n} times (you sent {count}).",
            n,
            count=len(times),
        )
    if len(set(times)) != len(times):
        return t(lang, "Please choose a different time for each session.")
    for value in sorted(times):
        if quiet is not None and quiet.contains(value):
            text = t(
                lang,
                "{time} is in the quiet hours ({start}–{end}), when I send no reminders. "
                "Please choose a time outside them.",
                time=value,
                start=quiet.start_text,
                end=quiet.end_text,
            )
            return asking_later(lang, text, ", ".join(quiet.meant_later([value], times) or []))
    return None


async def _typed_times(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, patient: Patient
) -> None:
    message = update.effective_message
    assert message is not None
    lang = patient.language
    now = _now(context)
    phase = programmes.planning_phase(_content(context), patient, local_date(patient, now))
    if phase is None:
        await _programme_problem(update, patient)
        return
    quiet = _quiet_hours(context, patient)
    if message.text is None:
        text, markup = times_prompt(lang, patient, phase, quiet)
        await _reply(update, text, markup)
        return
    times, bad = parse_time_list(message.text)
    error: str | None
    if bad is not None:
        error = t(
            lang,
            "I could not read “{text}” as a time of day. Please write times like 08:30 or 18:00.",
            text=bad[:20],
        )
    else:
        error = check_times(lang, times, phase, quiet) if times else t(lang, "Please type a time, for example 08:30.")
    if error is not None:
        await _reply(update, error, times_keyboard(lang, patient, phase, quiet))
        return
    await _finish(update, context, session, patient, times)


async def _finish(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, patient: Patient, times: list[str]
) -> None:
    """Save the times, plan everything, and send the summary."""
    s = svc(context)
    content = _content(context)
    lang = patient.language
    now = _now(context)
    rules = await enrolment.finish(session, patient, times, content, now)
    log.info("patient %s finished enrolment with %d session rules", patient.id, len(rules))
    programme = content.programmes[patient.programme_id]
    today = local_date(patient, now)
    phase = programmes.current_phase(content, patient, today)
    lines = [t(lang, "✅ All set! Here is your plan:"), ""]
    lines.append(t(lang, "Programme: {name}", name=programme.title(lang)))
    if phase is not None:
        lines.append(t(lang, "Current phase: {title}", title=localize(phase.title, lang)))
    lines.append(t(lang, "Time zone: {zone}", zone=timezones.zone_now(patient.timezone, lang, now)))
    lines.append(t(lang, "Reminders: {times}", times=_times_text(programmes.parse_times(patient.session_times))))
    due = sorted(r.next_due_at for r in rules if r.next_due_at is not None)
    if due:
        lines += ["", t(lang, "Your first reminder comes {when}.", when=_when(lang, due[0], patient, now))]
    if phase is not None:
        lines += ["", localize(phase.change_note, lang)]
    elif patient.surgery_date is not None and patient.surgery_date > today:
        start = format_date(patient.surgery_date, "full", locale=lang)
        lines += ["", t(lang, "Your exercises start on the day of your surgery, {date}.", date=start)]
    lines += [
        "",
        t(lang, "You can change your times later with /settings. Type /help to see what I can do."),
        t(lang, "This chat is not for emergencies.") + " " + s.config.clinic.text("emergency_text", lang),
    ]
    await session.commit()
    await _reply(update, "\n".join(lines))
    if patient.telegram_id is not None:  # with [web] public_url: the chat's menu button opens the Mini App
        await set_patient_menu_button(context, context.bot, patient.telegram_id, lang)


def _when(lang: str, due: datetime, patient: Patient, now: datetime) -> str:
    local = due.astimezone(zone_info(patient.timezone))
    today = local_date(patient, now)
    at = local.strftime("%H:%M")
    if local.date() == today:
        return t(lang, "today at {time}", time=at)
    if local.date() == today + timedelta(days=1):
        return t(lang, "tomorrow at {time}", time=at)
    return t(lang, "on {date} at {time}", date=format_date(local.date(), "full", locale=lang), time=at)


# --- buttons --------------------------------------------------------------------------


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An enrolment button: check it is this patient's and fits their step, then act."""
    await _press(update, context)
    raise ApplicationHandlerStop


async def _press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    s = svc(context)
    parts = (query.data or "").split(":", 3)
    async with s.db.session() as session:
        patient = await _patient_of(session, user.id)
        try:
            owner = int(parts[1])
        except (IndexError, ValueError):
            owner = -1
        if patient is None or patient.id != owner or len(parts) < 3:
            lang = patient.language if patient else pick_language(user.language_code, s.config.clinic.language)
            await query.answer(t(lang, "This button is no longer active."))
            return
        action, arg = parts[2], parts[3] if len(parts) > 3 else ""
        patient.last_activity_at = _now(context)
        session.add(patient)
        handled = await _act(update, context, session, patient, action, arg)
        await session.commit()
    if not handled:
        await query.answer(t(patient.language, "That step is already done."))
        await _close(update)


async def _act(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, patient: Patient, action: str, arg: str
) -> bool:
    """Do what the button says if it fits the step; False if it does not."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    lang = patient.language
    now = _now(context)
    step = enrolment.step_of(patient)
    content = _content(context)
    if action in ("ok", "okx") and await enrolment.agree(
        session, patient, content.consent_version, now, content, experiments=action == "ok"
    ):
        await query.answer()
        agreed = t(lang, "✓ You agreed.") if action == "ok" else t(lang, "✓ You agreed, without tests.")
        await _close(update, _pressed_text(update) + "\n\n" + agreed)
        text, markup = timezone_prompt(lang, patient, s.config.clinic.timezone, now)
        await _reply(update, text, markup)
        return True
    if action == "lang" and arg in LANGUAGE_NAMES and arg != lang and step in enrolment.ASKING_CONSENT:
        await query.answer()
        patients.set_language(session, patient, arg)
        lead = _welcome(arg, s.config.clinic.name, await _therapist_name(session, patient))
        text, markup = consent_prompt(arg, patient, content, s.config.clinic.name, lead)
        message = query.message
        if isinstance(message, Message):
            await message.edit_text(text, reply_markup=markup)
        return True
    if action == "no" and await enrolment.decline(session, patient):
        await query.answer()
        await _close(update, _pressed_text(update) + "\n\n" + t(lang, "✗ You declined."))
        await _reply(
            update,
            t(
                lang,
                "That is completely fine. I will not send you anything, and your treatment does not depend on it. "
                "If you change your mind, just tap the link from your clinic again or type /start.",
            ),
        )
        return True
    if action == "tz" and step is EnrolStep.TIMEZONE:
        if not timezones.is_zone(arg):
            await query.answer(t(lang, "This button is no longer active."))
            return True
        await query.answer()
        await _close(update)
        await _set_timezone(update, context, session, patient, arg)
        return True
    if action == "tzx" and step is EnrolStep.TIMEZONE:
        await query.answer()
        await _close(update)
        text, markup = timezone_prompt(lang, patient, s.config.clinic.timezone, now)
        await _reply(update, text, markup)
        return True
    if action == "back" and await enrolment.back_to_timezone(session, patient):
        await query.answer()
        await _close(update)
        text, markup = timezone_prompt(lang, patient, s.config.clinic.timezone, now)
        await _reply(update, text, markup)
        return True
    if action == "tm" and step is EnrolStep.TIMES:
        phase = programmes.planning_phase(_content(context), patient, local_date(patient, now))
        times, bad = parse_time_list(arg.replace(".", ","))
        quiet = _quiet_hours(context, patient)
        if phase is None or bad is not None or check_times(lang, times, phase, quiet) is not None:
            # A preset from an older prompt (the programme changed) or forged data.
            await query.answer(t(lang, "This button is no longer active."))
            await _close(update)
            if phase is not None:
                text, markup = times_prompt(lang, patient, phase, quiet)
                await _reply(update, text, markup)
            return True
        await query.answer()
        await _close(update)
        await _finish(update, context, session, patient, times)
        return True
    return False


def register(app: App) -> None:
    """Add /start <code>, the enrolment buttons, and the enrolment text/location interceptor."""
    app.add_handler(CommandHandler("start", start_with_code, has_args=True))
    app.add_handler(CallbackQueryHandler(on_button, pattern=r"^e:"))
    # Group -1 runs before every feature's handlers; on_message stops the update only
    # for a patient who is enrolling, so everybody else's text flows on.
    app.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE
            & filters.UpdateType.MESSAGE
            & ((filters.TEXT & ~filters.COMMAND) | filters.LOCATION),
            on_message,
        ),
        group=-1,
    )
