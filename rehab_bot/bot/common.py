"""Cross-cutting handlers: private chats only, the error handler, fallbacks, menus."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from telegram import BotCommand, BotCommandScopeDefault, CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from rehab_bot import alert
from rehab_bot import staff as staff_core
from rehab_bot.bot.services import App, svc
from rehab_bot.config import clinic_name_is_placeholder
from rehab_bot.db import insert_ignore
from rehab_bot.i18n import N_, SUPPORTED_LANGUAGES, pick_language, t
from rehab_bot.models import GroupNotice, Patient, PatientStatus, table_of
from rehab_bot.transport import PacingRateLimiter

log = logging.getLogger(__name__)

EDITED_CRISIS_GROUP = -9  # after private_only (-10): crisis words in an edit are still answered (bot/checkin)
EDITS_GROUP = -8  # before every feature: an edit is no input
# The buttons under an alert in the clinic's alert chat ([clinic] alert_chat_id, a group, or the supergroup
# Telegram upgraded it to: alert.is_alert_chat): Acknowledge and,
# after it, the review (bot/staff/alerts). The only updates taken from a chat that is not private; the
# staff handler checks who pressed (an active staff member with access) as in their private chat.
ALERT_CHAT_BUTTONS = ("st:aa:", "st:rv:")

# (command, description msgid) for every patient; features append to this.
PATIENT_COMMANDS: list[tuple[str, str]] = [
    ("start", N_("Start or resume")),
    ("help", N_("How this bot works")),
    ("today", N_("Today's sessions")),
    ("checkin", N_("Answer a check-in now")),
    ("pain", N_("Record your pain now")),
    ("note", N_("Leave a note for your therapist")),
    ("caregiver", N_("Invite a caregiver, choose what they get")),
    ("progress", N_("Your progress")),
    ("settings", N_("Times, timezone, language, quiet hours")),
    ("pause", N_("Pause reminders for a while")),
    ("resume", N_("Start reminders again")),
    ("cancel", N_("Cancel a change you started (times, timezone, quiet hours, pause date)")),
    ("mydata", N_("Get all your data as a file")),
    ("delete", N_("Delete all your data")),
    ("stop", N_("Stop all messages")),
]


async def language_for(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The language to answer in: the patient's setting, else an active staff member's (Staff.language, as
    their commands speak it), else Telegram's, else the clinic's."""
    user = update.effective_user
    s = svc(context)
    if user is not None:
        async with s.db.session() as session:
            patient = (await session.exec(_patient_by_telegram(user.id))).first()
            staff = None if patient is not None else await staff_core.active_staff(session, user.id)
        if patient is not None:
            return patient.language
        if staff is not None:
            return staff.language
        return pick_language(user.language_code, s.config.clinic.language)
    return s.config.clinic.language


def _patient_by_telegram(telegram_id: int) -> Any:
    from sqlmodel import select

    return select(Patient).where(Patient.telegram_id == telegram_id)


async def private_only(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop every update not from a private chat (but an alert's buttons in the alert chat); tell a group once."""
    chat = update.effective_chat
    if chat is not None and chat.type == ChatType.PRIVATE:
        return
    if chat is not None and await _in_alert_chat(update, context, chat.id):
        query = update.callback_query
        if query is not None and (query.data or "").startswith(ALERT_CHAT_BUTTONS):
            return  # Acknowledge in the alert chat
        message = update.effective_message
        if query is not None or message is None or not message.text:
            raise ApplicationHandlerStop  # a member joined, the group moved: nothing to say in the clinic's group
    if chat is not None and await _first_notice(context, chat.id):
        lang = pick_language(
            update.effective_user.language_code if update.effective_user else None,
            svc(context).config.clinic.language,
        )
        try:
            await context.bot.send_message(
                chat.id, t(lang, "This bot works only in a private chat. Please message me directly.")
            )
        except TelegramError as exc:  # a channel where we may not post, a group that removed us
            log.info("could not post the private-only notice: %s", type(exc).__name__)
    raise ApplicationHandlerStop


async def edits_are_not_input(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edited message never starts, continues or completes anything, and runs no command.

    Editing "/start CODE" must not claim an invite, and an edit of an answer
    must not answer the question asked since. Edits are therefore not input:
    the patient is told, once per edit, to send a new message instead, so a
    symptom added by editing is not silently lost. Nothing is stored, except
    for crisis words: those are answered before this (bot/checkin.crisis_watch,
    group EDITED_CRISIS_GROUP), as in a new message.
    """
    message = update.edited_message
    if message is not None and message.chat.type == ChatType.PRIVATE:
        try:
            await message.reply_text(
                t(
                    await language_for(update, context),
                    "I only read new messages, not edits, so I changed nothing. "
                    "If something is different, please send it as a new message.",
                )
            )
        except TelegramError as exc:  # the message was deleted meanwhile, the chat blocked us
            log.info("could not answer an edited message: %s", type(exc).__name__)
    raise ApplicationHandlerStop


async def _in_alert_chat(update: Update, context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> bool:
    """True in the clinic's alert chat, under any id it had; records Telegram's notice of a new id.

    When Telegram upgrades a group to a supergroup, the old group gets a service message with
    ``migrate_to_chat_id`` and the new one a message with ``migrate_from_chat_id``; for the alert chat
    the move is recorded (alert.record_chat_move), so alerts go to the new id and its Acknowledge
    presses are read, also after a restart and before the configuration is updated.
    """
    s = svc(context)
    if s.config.clinic.alert_chat_id is None:
        return False
    message = update.effective_message
    async with s.db.session() as session:
        if message is not None and (message.migrate_to_chat_id or message.migrate_from_chat_id):
            old, new = (
                (chat_id, message.migrate_to_chat_id)
                if message.migrate_to_chat_id
                else (message.migrate_from_chat_id, chat_id)
            )
            if (
                old is not None
                and new is not None
                and await alert.is_alert_chat(session, s.config.clinic, old)
                and await alert.record_chat_move(session, old, new, s.clock.now())
            ):
                await session.commit()
        return await alert.is_alert_chat(session, s.config.clinic, chat_id)


async def _first_notice(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> bool:
    s = svc(context)
    table = table_of(GroupNotice)
    async with s.db.engine.begin() as conn:
        result = await conn.execute(
            insert_ignore(s.db.dialect, table).values(chat_id=chat_id, noticed_at=s.clock.now())
        )
    return bool(result.rowcount)


async def unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a press on a button no feature claims (stale or forged): reveal nothing."""
    query = update.callback_query
    assert query is not None
    if failed_before(update, context):
        return
    await query.answer(t(await language_for(update, context), "This button is no longer active."))


# Asked after session times refused for the quiet hours, when schedule.QuietHours.meant_later finds them
# twelve hours on ("um 2" read as 02:00): "... Did you mean 14:00?".
MEANT_LATER = N_("Did you mean {later}?")


def asking_later(lang: str, refusal: str, later: str) -> str:
    """The refusal of session times, with the question whether ``later`` (e.g. "13:30, 18:00") was meant."""
    return f"{refusal} {t(lang, MEANT_LATER, later=later)}" if later else refusal


def stranger_text(lang: str, clinic: str) -> str:
    """What someone the bot does not know reads: who it is, and that it needs an invitation."""
    if clinic_name_is_placeholder(clinic):
        # "I am Our clinic's assistant" reads badly; check-config warns the clinic too.
        text = t(lang, "Welcome! I am your clinic's exercise and recovery assistant.")
    else:
        text = t(lang, "Welcome! I am {clinic}'s exercise and recovery assistant.", clinic=clinic)
    return (
        text
        + "\n\n"
        + t(lang, "To use this bot you need an invitation link from your clinic. Please ask your physiotherapist.")
    )


def repeat(app: App, callback: Any, *, every: float, first: float, name: str) -> None:
    """Run a job every ``every`` seconds from ``first``: never two runs at once, one run after a pause (not
    one per missed turn), never dropped for being late (APScheduler's max_instances, coalesce and
    misfire_grace_time)."""
    assert app.job_queue is not None
    app.job_queue.run_repeating(
        callback,
        interval=every,
        first=first,
        name=name,
        job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
    )


UNKNOWN_COMMAND = N_("I don't know that command. Type /help to see what I can do.")
# What a patient no longer in care reads when they write (models.IN_CARE: nothing they write is passed on).
NOT_IN_CARE = {
    PatientStatus.STOPPED.value: N_("🛑 All messages are stopped. To start again, send /resume."),
    PatientStatus.DISCHARGED.value: N_("Your exercise programme has ended. Please contact your clinic."),
}


async def unknown_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Anything we do not understand gets a friendly pointer to /help: a command we do not know (a typo,
    or one that is not this person's: a staff command is never confirmed to others) says so.

    A patient who stopped all messages or was discharged is heard by no feature (not in care): what they
    write ("I can't feel my legs") is answered with where they stand and the clinic's emergency text, not
    with "use the buttons below" (there are none)."""
    message = update.effective_message
    if message is None or failed_before(update, context):
        return
    lang = await language_for(update, context)
    if (message.text or "").startswith("/"):
        await message.reply_text(t(lang, UNKNOWN_COMMAND))
        return
    status = await _patient_status(update, context)
    if status in NOT_IN_CARE:
        emergency = svc(context).config.clinic.text("emergency_text", lang)
        await message.reply_text(t(lang, NOT_IN_CARE[status]) + ("\n\n" + emergency if emergency else ""))
        return
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.is_bot:
        async with svc(context).db.session() as session:
            patient = await alert.patient_of_alert_message(session, message.chat_id, replied.message_id)
        if patient is not None:  # a staff member answered an alert in words, meaning the patient to hear it
            await message.reply_text(t(lang, ALERT_NOT_ANSWERABLE, alias=patient.alias))
            return
    await message.reply_text(t(lang, "Please use the buttons below, or type /help."))


# A staff member's Telegram reply to an alert: an outside test's "will call you in 10 minutes" got "use the
# buttons below" (there were none) and went nowhere; they are told it was not sent, and how to reach them.
ALERT_NOT_ANSWERABLE = N_(
    "Your text was not sent: an alert is not a message from {alias}, so it cannot be answered here. "
    "To reach {alias}, call them, or answer one of their messages (/patient {alias} shows them)."
)


async def _patient_status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | None:
    """The status of the patient behind this update's sender, if they are one."""
    user = update.effective_user
    if user is None:
        return None
    async with svc(context).db.session() as session:
        patient = (await session.exec(_patient_by_telegram(user.id))).first()
    return patient.status if patient is not None else None


FAILED_UPDATES = "failed_updates"


def _failed(context: ContextTypes.DEFAULT_TYPE) -> deque[int]:
    """The ids of the latest updates a handler failed on (the user was told "something went wrong")."""
    found = context.bot_data.get(FAILED_UPDATES)
    if not isinstance(found, deque):
        found = context.bot_data[FAILED_UPDATES] = deque(maxlen=256)
    return found


def failed_before(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """A handler failed on this update and the user was told so ("Something went wrong"): the fallbacks
    (groups after it) say nothing more; an outside test's failed /patient was followed by "I don't know that
    command"."""
    return update.update_id in _failed(context)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the traceback (the log filter scrubs the token) and reassure the user."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.effective_chat.type != ChatType.PRIVATE:
        return
    try:
        lang = pick_language(
            update.effective_user.language_code if update.effective_user else None, svc(context).config.clinic.language
        )
        await context.bot.send_message(
            update.effective_chat.id,
            t(lang, "Something went wrong on our side. What you entered was kept; please try again in a moment."),
        )
        # Told: the fallbacks say nothing more. Not told (Telegram refused this send too, a network fault):
        # a fallback's answer is the person's only sign that they were heard.
        _failed(context).append(update.update_id)
    except Exception:
        log.warning("could not tell the user about the error", exc_info=True)


async def set_command_menus(app: App) -> None:
    """Register the patient command menu (default scope) in every language."""
    for lang in SUPPORTED_LANGUAGES:
        commands = [BotCommand(cmd, t(lang, desc)) for cmd, desc in PATIENT_COMMANDS]
        await app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=lang)
    default = svc(app).config.clinic.language
    await app.bot.set_my_commands(
        [BotCommand(cmd, t(default, desc)) for cmd, desc in PATIENT_COMMANDS], scope=BotCommandScopeDefault()
    )


def register(app: App) -> None:
    """The private-chat guard runs before every other handler."""
    app.add_handler(TypeHandler(Update, private_only), group=-10)
    # Right after the private-chat guard, before enrolment, commands and crisis watch.
    app.add_handler(MessageHandler(filters.UpdateType.EDITED, edits_are_not_input), group=EDITS_GROUP)
    app.add_error_handler(on_error)


def register_fallbacks(app: App) -> None:
    """Catch-alls, added after every feature so they only see what nobody handled."""
    app.add_handler(CallbackQueryHandler(unknown_button), group=10)
    app.add_handler(MessageHandler(filters.ChatType.PRIVATE & ~filters.UpdateType.EDITED, unknown_message), group=10)


def message_of(query: CallbackQuery) -> Message | None:
    """The message a pressed button is on; None when Telegram no longer has it (too old to edit)."""
    return query.message if isinstance(query.message, Message) else None


def keyboard_without(message: Message, data: str) -> InlineKeyboardMarkup | None:
    """The message's buttons less the one with this callback data (and a row it leaves empty); None when
    none are left."""
    current = message.reply_markup.inline_keyboard if message.reply_markup is not None else ()
    rows = [row for row in ([b for b in row if b.callback_data != data] for row in current) if row]
    return InlineKeyboardMarkup(rows) if rows else None


def buttons_on(message: Message | None) -> list[str]:
    """The callback data of the buttons a message carries now.

    Telegram sends the message as it was when the person pressed; a button our own edit has since
    taken away (the first press of a quick double tap) no longer counts (rehab_bot.transport.ShownButtons).
    A press whose data is not among them was forged or is stale: refuse it.
    """
    markup = message.reply_markup if message is not None else None
    if message is None or markup is None:
        return []
    shown = [str(b.callback_data) for row in markup.inline_keyboard for b in row if b.callback_data is not None]
    left = _left_by_our_edit(message)
    return shown if left is None else [data for data in shown if data in left]


def _left_by_our_edit(message: Message) -> frozenset[str] | None:
    try:
        limiter = message.get_bot().rate_limiter  # type: ignore[attr-defined]
    except (RuntimeError, AttributeError):  # a Message built without a bot, or a plain Bot
        return None
    return (
        limiter.shown.left_on(message.chat_id, message.message_id) if isinstance(limiter, PacingRateLimiter) else None
    )
