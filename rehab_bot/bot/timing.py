"""Learned reminder times in the chat: the one question, the notice of an automatic move, and /timing.

After a logged session (its last question answered) the core may find that
the patient usually exercises well away from the reminder (rehab_bot.timing):

* the patient is asked once, "You usually exercise around 10:40. Move this
  reminder to 10:30?", with Yes / No; callback data ``tm:<proposal id>:y|n``,
  checked in the core against the presser and the proposal's state;
* with a window for automatic moves (``/timing 08:00-20:00``), a move inside
  it is made at once and the patient gets a notice instead;
* ``/timing`` shows the reminder times and the window; ``/timing off`` ends
  automatic moves.
"""

from __future__ import annotations

import logging
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, CommandHandler, ContextTypes

from rehab_bot import patient as patients
from rehab_bot import programme, timing
from rehab_bot import session as session_core
from rehab_bot.bot.common import PATIENT_COMMANDS, buttons_on, language_for
from rehab_bot.bot.services import App, svc
from rehab_bot.i18n import N_, t
from rehab_bot.models import Patient
from rehab_bot.patient import find as find_patient
from rehab_bot.schedule import QuietHours, ScheduleError, TimesError, end_label, parse_span, parse_times

log = logging.getLogger(__name__)

if ("timing", N_("When your reminders come")) not in PATIENT_COMMANDS:
    PATIENT_COMMANDS.insert(
        next((i + 1 for i, (name, _) in enumerate(PATIENT_COMMANDS) if name == "settings"), len(PATIENT_COMMANDS)),
        ("timing", N_("When your reminders come")),
    )

_PRESS = re.compile(r"^tm:(\d{1,18}):([yn])$")
STALE = N_("This button is no longer active.")


def markup(buttons: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in buttons]
    )


async def edit_message(message: Message, text: str | None) -> None:
    """Replace the question's text (or only take its buttons away); an unchanged message is fine."""
    try:
        if text is None:
            await message.edit_reply_markup(reply_markup=None)
        else:
            await message.edit_text(text, reply_markup=None)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


def question_buttons(lang: str, proposal_id: int) -> list[list[tuple[str, str]]]:
    return [[(t(lang, "Yes"), f"tm:{proposal_id}:y"), (t(lang, "No"), f"tm:{proposal_id}:n")]]


def quiet_of(context: ContextTypes.DEFAULT_TYPE, patient: Patient) -> QuietHours | None:
    return patients.quiet_hours(patient, svc(context).config.delivery)


async def after_session(context: ContextTypes.DEFAULT_TYPE, patient_id: int, session_id: int, chat_id: int) -> None:
    """A session was logged: ask about moving its reminder, or tell the patient it moved by itself."""
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        patient = await db.get(Patient, patient_id)
        es = await session_core.get(db, session_id)
        index = await timing.index_of(db, es) if es is not None else None
        if patient is None or index is None:
            return
        outcome = await timing.consider(db, patient, index, s.content, now, quiet_of(context, patient))
        await db.commit()
        lang = patient.language
    if outcome is None:
        return
    proposal = outcome.proposal
    assert proposal.id is not None
    if outcome.moved:
        text = t(
            lang,
            "You usually exercise around {usual}, so your {old} reminder now comes at {new}, as you allowed. "
            "/timing shows or changes this.",
            usual=proposal.usual_time,
            old=proposal.from_time,
            new=proposal.to_time,
        )
        await context.bot.send_message(chat_id, text)
        return
    text = t(
        lang,
        "You usually exercise around {usual}. Move this reminder from {old} to {new}?",
        usual=proposal.usual_time,
        old=proposal.from_time,
        new=proposal.to_time,
    )
    sent = await context.bot.send_message(chat_id, text, reply_markup=markup(question_buttons(lang, proposal.id)))
    async with s.db.session() as db:
        await timing.set_question_message(db, proposal.id, sent.message_id)
        await db.commit()


async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Yes or No to a proposed move: the presser's own open question, on the message that asked it."""
    query, user = update.callback_query, update.effective_user
    assert query is not None
    match = _PRESS.match(query.data or "")
    message = query.message if isinstance(query.message, Message) else None
    if match is None or user is None or message is None or query.data not in buttons_on(message):
        await query.answer(t(await language_for(update, context), STALE))
        raise ApplicationHandlerStop
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        patient = await find_patient(db, user.id)
        answered = None
        if patient is not None:
            answered = await timing.answer(
                db, patient, int(match[1]), match[2] == "y", s.content, now, quiet_of(context, patient)
            )
        await db.commit()
    lang = patient.language if patient is not None else await language_for(update, context)
    if answered is None:
        await query.answer(t(lang, STALE))
        await edit_message(message, None)  # the button was on this message: take it away
        raise ApplicationHandlerStop
    await query.answer()
    if answered.status == timing.Status.ACCEPTED:
        line = t(lang, "Done: this reminder now comes at {time}.", time=answered.to_time)
    elif answered.status == timing.Status.DECLINED:
        line = t(lang, "OK, this reminder stays at {time}. I will not ask again.", time=answered.from_time)
    else:
        line = t(lang, "Your reminder times changed meanwhile, so I changed nothing. /timing shows them.")
    await edit_message(message, f"{message.text or ''}\n\n{line}")
    raise ApplicationHandlerStop


def _window(args: list[str]) -> tuple[str, str] | None:
    """ "08:00-20:00", "8 bis 20 Uhr", "8am to 8pm" (a range, schedule.parse_span) or "08:00 20:00"."""
    text = " ".join(args)
    try:
        return parse_span(text)
    except ScheduleError:
        pass
    try:
        times = parse_times(text)
    except ScheduleError:
        return None
    return (times[0], times[1]) if len(times) == 2 else None


def _unreadable(args: list[str]) -> bool:
    """Whether a part of a refused window is no time of day at all ("25:00"), not only one time or the
    later one first."""
    try:
        parse_times(" ".join(args))
    except TimesError:
        return True
    return False


async def timing_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/timing: show the reminder times and the window; /timing 08:00-20:00 or /timing off."""
    from rehab_bot.bot.patient import patient_for  # bot/patient imports bot/session, which calls this module

    patient = await patient_for(update, context)
    message = update.effective_message
    if patient is None or message is None:
        raise ApplicationHandlerStop
    s = svc(context)
    now = s.clock.now()
    args = context.args or []
    lang = patient.language
    async with s.db.session() as db:
        fresh = await db.get(Patient, patient.id)
        assert fresh is not None
        if args and args[0].casefold() in ("off", "aus"):
            await timing.clear_window(db, fresh)
            await db.commit()
            await message.reply_text(t(lang, "Automatic moves are off. I will ask before moving a reminder."))
            raise ApplicationHandlerStop
        if args:
            window = _window(args)
            try:
                if window is None:
                    raise ValueError("no window")
                await timing.set_window(db, fresh, window[0], window[1], now)
            except ValueError:
                # What is wrong, without repeating what was typed (it may be anything, another's alias too).
                said = (
                    [t(lang, "Part of that is no time of day: times run from 00:00 to 24:00.")]
                    if _unreadable(args)
                    else []
                )
                said.append(t(lang, "Please send two times, the earlier first: /timing 08:00-20:00"))
                await message.reply_text("\n".join(said))
                raise ApplicationHandlerStop from None
            await db.commit()
            await message.reply_text(
                t(
                    lang,
                    "From now on I move a reminder by myself to when you usually exercise, "
                    "between {start} and {end}, and tell you. /timing off stops this.",
                    start=window[0],
                    end=end_label(window[1]),
                )
            )
            raise ApplicationHandlerStop
        current = await timing.window_of(db, fresh.id) if fresh.id is not None else None
        times = programme.parse_times(fresh.session_times)
    lines = [t(lang, "Your session reminders: {times}.", times=", ".join(times) or "–")]
    if current is None:
        lines.append(
            t(
                lang,
                "When you usually exercise at another time, I ask once whether to move the reminder. "
                "To let me move it by myself within a window, send for example /timing 08:00-20:00.",
            )
        )
    else:
        lines.append(
            t(
                lang,
                "I move reminders by myself between {start} and {end}. /timing off stops this.",
                start=current.start,
                end=end_label(current.end),
            )
        )
    await message.reply_text("\n\n".join(lines))
    raise ApplicationHandlerStop


def register(app: App) -> None:
    """Add the Yes/No handler and /timing."""
    app.add_handler(CallbackQueryHandler(on_press, pattern=r"^tm:"))
    app.add_handler(CommandHandler("timing", timing_command))
