"""Recovery lessons in chat: the daily lesson, teach-back answers, /learn.

A lesson arrives through the engine (kind ``lesson``, see
:mod:`rehab_bot.education`) at most once a day; lessons that never went out
(a pause, a missed day, enrolment after surgery) are offered with one button
in the next lesson message rather than sent one by one. Callback data (never
trusted: it must be a button of the pressed message, and the core checks the
lesson is in the presser's own course and its day has come):

    le:a:<lesson id>:<answer index>   a teach-back answer
    le:r:<lesson id>                  try the question again after a wrong answer
    le:o:<lesson id>                  open (reread) a lesson as a new message
    le:m                              list the lessons offered as missed

Commands: /learn (the lessons so far, to reread, and what comes next).
"""

from __future__ import annotations

import logging
from typing import Any

from babel.dates import format_skeleton
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, CommandHandler, ContextTypes

from rehab_bot import education as core
from rehab_bot import patient as patients
from rehab_bot.bot.common import PATIENT_COMMANDS, language_for, message_of
from rehab_bot.bot.services import App, Services, svc
from rehab_bot.config import ClinicConfig
from rehab_bot.content import localize
from rehab_bot.content.lessons import Lesson
from rehab_bot.i18n import N_, t
from rehab_bot.reminders import DueMessage
from rehab_bot.transport import OutgoingMedia, OutgoingMessage, SentItem
from rehab_bot.typed import number

log = logging.getLogger(__name__)

PREFIX = "le:"
STALE = N_("This button is no longer active.")

if ("learn", N_("Your recovery lessons")) not in PATIENT_COMMANDS:
    PATIENT_COMMANDS.insert(
        next((i + 1 for i, (name, _) in enumerate(PATIENT_COMMANDS) if name == "progress"), len(PATIENT_COMMANDS)),
        ("learn", N_("Your recovery lessons")),
    )


def _markup(buttons: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=d) for label, d in row] for row in buttons])


# --------------------------------------------------------------------------- rendering


def lesson_text(lesson: Lesson, lang: str, clinic: ClinicConfig, *, question: bool = True) -> str:
    """A lesson as the patient reads it: title, text, the emergency text for red-flag lessons, the question."""
    mark = "🚨" if lesson.triage in ("emergency", "critical") else "⚠️" if lesson.safety else "📖"
    parts = [f"{mark} {localize(lesson.title, lang)}", localize(lesson.text, lang)]
    if lesson.triage is not None:
        parts.append(clinic.text("emergency_text", lang))
    if question and lesson.question is not None:
        parts.append("❓ " + localize(lesson.question.text, lang))
    return "\n\n".join(parts)


def answer_buttons(lesson: Lesson, lang: str) -> list[list[tuple[str, str]]]:
    if lesson.question is None:
        return []
    return [
        [(localize(answer.text, lang), f"{PREFIX}a:{lesson.id}:{i}")]
        for i, answer in enumerate(lesson.question.answers)
    ]


def lesson_message(lesson: Lesson, lang: str, clinic: ClinicConfig) -> OutgoingMessage:
    media = OutgoingMedia("photo", lesson.picture) if lesson.picture else None
    return OutgoingMessage(lesson_text(lesson, lang, clinic), answer_buttons(lesson, lang), media=media)


def missed_line(lang: str, count: int) -> str:
    return t(
        lang, "📚 Earlier lessons you have not seen yet: {n}. You can read them now or any time with /learn.", n=count
    )


async def render_lesson(app: App, message: DueMessage) -> OutgoingMessage | None:
    """Today's lesson and/or the offer of missed ones (education.due_for_delivery), rendered by lesson_delivery."""
    s = svc(app)
    async with s.db.session() as db:
        due = await core.due_for_delivery(db, s.content, message)
    return lesson_delivery(s, message, due)


def lesson_delivery(services: Services, message: DueMessage, due: core.Due | None) -> OutgoingMessage | None:
    """The lesson message; writes nothing (what was sent is recorded after the send, by _settle)."""
    if due is None or message.patient_id is None:
        return None
    lang = message.language
    missed = [lesson.id for lesson in due.missed]
    if due.lesson is not None:
        rendered = lesson_message(due.lesson, lang, services.config.clinic)
        text, buttons, media = rendered.text, rendered.buttons, rendered.media
        if missed:
            text += "\n\n" + missed_line(lang, len(missed))
            buttons = [*buttons, [(t(lang, "📚 Earlier lessons"), f"{PREFIX}m")]]
    else:
        text, buttons, media = missed_line(lang, len(missed)), [[(t(lang, "📚 Earlier lessons"), f"{PREFIX}m")]], None
    data = (services, message.patient_id, due.lesson.id if due.lesson else None, missed)
    return OutgoingMessage(text, buttons, media=media, settle=(_settle, data))


async def _settle(db: AsyncSession, items: list[SentItem]) -> None:
    """After a send window, in the transaction recording it: the lessons sent and offered."""
    services = items[0].data[0]
    now = services.clock.now()
    for item in items:
        _, patient_id, lesson_id, missed = item.data
        await core.record_sent(
            db,
            patient_id,
            lesson_id,
            missed,
            services.content,
            local_date=item.message.local_date,
            delivery_id=item.message.delivery_id,
            message_id=item.message_id,
            now=now,
        )


# --------------------------------------------------------------------------- /learn


def _day(lang: str, when: Any) -> str:
    return format_skeleton("MMMEd", when, locale=lang)


def learn_view(lang: str, overview: core.Overview) -> tuple[str, list[list[tuple[str, str]]]]:
    lines = [t(lang, "📚 Your recovery lessons")]
    buttons: list[list[tuple[str, str]]] = []
    if not overview.so_far:
        lines.append(t(lang, "No lessons yet."))
    for entry in overview.so_far:
        progress = entry.progress
        if progress is not None and progress.understood:
            mark = "✅"
        elif progress is not None and (progress.opened_at or progress.answered_at or progress.delivered_at):
            mark = "✓"
        else:
            mark = "•"
        title = localize(entry.lesson.title, lang)
        lines.append(f"{mark} {title}")
        buttons.append([(title, f"{PREFIX}o:{entry.lesson.id}")])
    if overview.next is not None:
        lines.append(
            t(
                lang,
                "Next: {title} ({day})",
                title=localize(overview.next.lesson.title, lang),
                day=_day(lang, overview.next.on),
            )
        )
    else:
        lines.append(t(lang, "There are no more lessons after these."))
    if overview.so_far:
        lines.append(t(lang, "Tap a lesson to read it again."))
    return "\n".join(lines), buttons


async def learn_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List the lessons so far, to reread, and what comes next."""
    from rehab_bot.bot.patient import patient_for

    patient = await patient_for(update, context)
    message = update.effective_message
    if patient is not None and message is not None:
        s = svc(context)
        async with s.db.session() as db:
            overview = await core.overview(db, patient, s.content, s.clock.now())
        text, buttons = learn_view(patient.language, overview)
        await message.reply_text(text, reply_markup=_markup(buttons))
    raise ApplicationHandlerStop


# --------------------------------------------------------------------------- presses


def _buttons(message: Message) -> list[str]:
    markup = message.reply_markup
    if markup is None:
        return []
    return [str(b.callback_data) for row in markup.inline_keyboard for b in row if b.callback_data is not None]


def parse(data: str) -> tuple[str, str, int | None] | None:
    """(action, lesson id, answer index) from callback data; None when malformed."""
    parts = data.split(":")
    if parts[0] + ":" != PREFIX or len(parts) < 2:
        return None
    action, args = parts[1], parts[2:]
    if action == "m" and not args:
        return "m", "", None
    if action in ("o", "r") and len(args) == 1 and args[0]:
        return action, args[0], None
    if action == "a" and len(args) == 2 and args[0] and (choice := number(args[1], 1)) is not None:
        return "a", args[0], choice
    return None


async def _edit(message: Message, text: str, buttons: list[list[tuple[str, str]]]) -> None:
    try:
        if message.caption is not None and message.text is None:
            await message.edit_caption(text[:1024], reply_markup=_markup(buttons))
        else:
            await message.edit_text(text, reply_markup=_markup(buttons))
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            log.info("could not edit lesson message %s: %s", message.message_id, exc.message)
    except TelegramError as exc:
        log.info("could not edit lesson message %s: %s", message.message_id, type(exc).__name__)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press on a lesson button: re-check the presser and the lesson, then act."""
    query = update.callback_query
    assert query is not None
    message = message_of(query)
    parsed = parse(query.data or "")
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        patient = await patients.find_in_care(db, query.from_user.id)
        if parsed is None or message is None or query.data not in _buttons(message) or patient is None:
            await query.answer(t(await language_for(update, context), STALE))
            raise ApplicationHandlerStop
        lang = patient.language
        clinic = s.config.clinic
        action, lesson_id, index = parsed
        if action == "m":
            overview = await core.overview(db, patient, s.content, now)
            unread = [
                e
                for e in overview.so_far
                if e.progress is not None and not e.progress.delivered_at and not e.progress.opened_at
            ]
            await query.answer()
            if not unread:
                await message.reply_text(t(lang, "You have read all earlier lessons. /learn lists them all."))
            else:
                buttons = [[(localize(e.lesson.title, lang), f"{PREFIX}o:{e.lesson.id}")] for e in unread]
                await message.reply_text(
                    t(lang, "📚 Earlier lessons: tap one to read it."), reply_markup=_markup(buttons)
                )
            raise ApplicationHandlerStop
        if action == "o":
            opened = await core.open_lesson(db, patient, s.content, lesson_id, now)
            await db.commit()
            if opened is None:
                await query.answer(t(lang, STALE))
                raise ApplicationHandlerStop
            await query.answer()
            await message.reply_text(
                lesson_text(opened[0], lang, clinic), reply_markup=_markup(answer_buttons(opened[0], lang))
            )
            raise ApplicationHandlerStop
        if action == "r":
            again = await core.available(db, patient, s.content, lesson_id, now)
            if again is None or again.question is None:
                await query.answer(t(lang, STALE))
                raise ApplicationHandlerStop
            await query.answer()
            await _edit(message, lesson_text(again, lang, clinic), answer_buttons(again, lang))
            raise ApplicationHandlerStop
        assert index is not None
        answered = await core.answer(db, patient, s.content, lesson_id, index, now)
        await db.commit()
    if answered is None or answered.lesson.question is None:
        await query.answer(t(lang, STALE))
        raise ApplicationHandlerStop
    lesson = answered.lesson
    question = lesson.question
    assert question is not None
    chosen = localize(question.answers[index].text, lang)
    verdict = t(lang, "✅ Right.") if answered.correct else t(lang, "❌ Not quite.")
    await query.answer(verdict)
    text = "\n\n".join(
        [
            lesson_text(lesson, lang, clinic, question=False),
            "❓ " + localize(question.text, lang),
            t(lang, "Your answer: {answer}", answer=chosen),
            verdict + " " + localize(question.explanation, lang),
        ]
    )
    buttons = [] if answered.correct else [[(t(lang, "Try again"), f"{PREFIX}r:{lesson.id}")]]
    await _edit(message, text, buttons)
    raise ApplicationHandlerStop


def register(app: App) -> None:
    """Add /learn and the lesson buttons."""
    app.add_handler(CommandHandler("learn", learn_command))
    app.add_handler(CallbackQueryHandler(on_button, pattern=r"^le:"))
