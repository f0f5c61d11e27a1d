"""Check-ins, red flags, notes and motivational messages in chat.

A check-in arrives through the engine (kind ``checkin``) as one message that
asks its questionnaires one item at a time; each press stores the answer and
edits the message to the next item, so old buttons cannot be pressed again.
Callback data (never trusted: the core rechecks the pressing account):

    ci:<check-in id>:<item index>:<value>   an answer ("s" = skip an optional item)
    cq:<questionnaire id>                   start a check-in from the /checkin menu
    sc:<questionnaire id>                   start the check offered for a symptom word (a new message)
    nt:s / nt:x                             save / don't save the text replied to as a note
    nt:c                                    send it to the care team instead (rehab_bot/bot/care.py)
    pt:wk                                   on the maintenance phase's weekly check: offer to stop it
                                            (answered in rehab_bot/bot/patient.py, with the other pt: buttons)

A red-flag answer is answered at once, right here in the handler, with what
to do now (clinic content); the alert to the care team is queued as
deliveries of kind ``alert`` that the dispatch job sends within one poll
interval. Commands: /checkin (resume or start one), /pain (an extra pain
entry, any time; "/pain 7" records the 7 as its button would), /note (a note
for the therapist). Any other text a patient
types is offered to be saved as a note, and, when it names a symptom word
(``[[symptom_words]]`` in crisis.toml), the symptom check with one tap; a short
"done" while today's session waits for its answer, that session's ✅ Done
(rehab_bot/bot/session.py); every text is first checked against the clinic's
crisis patterns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
    WebAppInfo,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from rehab_bot import checkin as core
from rehab_bot import crisis, miniapp, motivation, redflag, report
from rehab_bot import patient as patients
from rehab_bot import staff as staff_core
from rehab_bot.bot import care, common
from rehab_bot.bot import session as session_bot
from rehab_bot.bot.common import language_for
from rehab_bot.bot.services import App, Services, app_of, svc
from rehab_bot.config import ClinicConfig
from rehab_bot.content import Content, localize
from rehab_bot.i18n import N_, t
from rehab_bot.models import CheckIn, Kind, Patient, delivery_row, queue_deliveries, table_of
from rehab_bot.reminders import DueMessage
from rehab_bot.transport import MILESTONE_EFFECT_ID, OutgoingMessage, SentItem, keyboard
from rehab_bot.typed import number

log = logging.getLogger(__name__)

CRISIS_GROUP = -5  # before every other text handler: a crisis message is never just a typed answer
FREE_TEXT_GROUP = 10  # with the fallbacks: only text no feature handled
PERIODIC_JOB = "checkin-periodic"
PERIODIC_SECONDS = 300.0
FIRST_PERIODIC_SECONDS = 30.0
# The crisis questions left unanswered (hazard H12) are checked every minute on their own, one indexed
# query, so the care team hears of one within a minute of [staff] crisis_question_minutes, not five.
CRISIS_QUESTION_JOB = "crisis-question-check"
CRISIS_QUESTION_SECONDS = 60.0

STALE = N_("This button is no longer active.")
# A danger word too common to alert on by itself ([[concern]] in crisis.toml): the bot asks directly first.
ASKED_YES, ASKED_NO = "cz:y", "cz:n"
YES_NOTE = N_("(Answered Yes to the question about thoughts of ending their life or hurting themselves.)")
ALREADY_SAVED = N_("Already saved.")
# A typed "ja", "no" or "sometimes" answers the crisis question asked in the chat at most this long ago
# (crisis.typed_answer), or any one the message replies to; else it is read as any other message.
QUESTION_OPEN = timedelta(hours=1)
OPEN_QUESTIONS = "crisis-questions"  # bot_data: chat id -> _OpenQuestion, the latest one asked there
NOTE_PROMPT = N_("📝 Please type your note for your therapist and send it.")
OFFER = N_(
    "I cannot answer messages myself, but your care team can. "
    "Shall I send this to them, or save it as a note for your therapist?"
)
OPEN_CHECKIN_HINT = "checkin_open"  # content text: typed text while a check-in question waits for a tap
SYMPTOM_OFFER = N_(
    "If this is about a symptom, please answer the check with one tap: it asks the right questions, "
    "and your answers reach your care team."
)


# The maintenance phase's weekly check (checkin.Opened.weekly) offers to end it; each step and the
# answered message keep the row (rehab_bot/bot/patient.py asks to confirm, then patient.stop_weekly).
WEEKLY_STOP = "pt:wk"
WEEKLY_STOP_LABEL = N_("🔕 Stop the weekly messages")


def weekly_stop_row(lang: str) -> list[tuple[str, str]]:
    """The button row on a weekly check that offers to stop the weekly messages (session and check)."""
    return [(t(lang, WEEKLY_STOP_LABEL), WEEKLY_STOP)]


def _markup(buttons: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=d) for label, d in row] for row in buttons])


# --------------------------------------------------------------------------- rendering a step


def step_text(step: core.Step, lang: str, *, late: bool = False) -> str:
    """The text of one question: which questionnaire, its intro the first time, the item."""
    questionnaire = step.questionnaire
    title = localize(questionnaire.title, lang)
    header = t(lang, "📝 Check-in: {title}", title=title)
    if step.set_size > 1:
        header += f" ({step.set_position}/{step.set_size})"
    lines = []
    if late:
        lines.append(t(lang, "Sorry, this check-in comes late."))
    lines.append(header)
    # Numbering helps where every item is asked; a gate ("none of these") would make it jump.
    gated = any(option.ends for item in questionnaire.items for option in item.options)
    if len(questionnaire.items) > 1 and not gated:
        lines.append(t(lang, "Question {n} of {total}", n=step.index + 1, total=len(questionnaire.items)))
    if step.first_of_questionnaire and questionnaire.intro:
        lines.append(localize(questionnaire.intro, lang))
    lines.append(localize(step.item.text, lang).strip())
    item = step.item
    if item.low and item.high:  # what the ends of the scale mean, as the Mini App shows them under its buttons
        lines.append(f"{localize(item.low, lang).strip()}\n{localize(item.high, lang).strip()}")
    return "\n\n".join(lines)


def step_buttons(step: core.Step, lang: str) -> list[list[tuple[str, str]]]:
    """The answer buttons of one item, in rows of the item's column count."""
    item = step.item
    prefix = f"ci:{step.checkin.id}:{step.index}:"
    labels = []
    for option in item.options:
        if item.yes_no:
            label = t(lang, "Yes") if option.value else t(lang, "No")
        else:
            label = localize(option.label, lang)
        labels.append((label, f"{prefix}{option.value}"))
    if item.yes_no:
        labels.reverse()  # "Yes" first: it is the answer that matters
    rows = [labels[i : i + item.columns] for i in range(0, len(labels), item.columns)]
    if item.optional:
        rows.append([(t(lang, "Skip this question"), f"{prefix}s")])
    return rows


def step_message(step: core.Step, lang: str, *, late: bool = False) -> OutgoingMessage:
    """A question as a message with its buttons."""
    return OutgoingMessage(step_text(step, lang, late=late), step_buttons(step, lang))


def done_text(checkins: Sequence[CheckIn], content: Content, lang: str, *, stopped: bool = False) -> str:
    """What the message says once its questionnaires are answered (or closed)."""
    lines = []
    for checkin in checkins:
        questionnaire = content.questionnaires.get(checkin.questionnaire_id)
        title = localize(questionnaire.title, lang) if questionnaire is not None else checkin.questionnaire_id
        if checkin.status == core.COMPLETE:
            lines.append(f"✓ {title}")
        else:
            lines.append("– " + t(lang, "{title}: not answered", title=title))
    head = t(lang, "Thank you! Your answers are saved.")
    if stopped:
        head += "\n" + t(lang, "Please follow the instructions in my message below.")
    return head + "\n\n" + "\n".join(lines)


# --------------------------------------------------------------------------- the engine's renderers


async def render_checkin(app: App, message: DueMessage) -> OutgoingMessage | None:
    """A due check-in: the core opens it (checkin.open_for_delivery), then :func:`checkin_message` renders it."""
    s = svc(app)
    async with s.db.session() as db:
        opened = await core.open_for_delivery(db, s.content, message, s.clock.now())
    return checkin_message(s, message, opened)


def checkin_message(services: Services, message: DueMessage, opened: core.Opened | None) -> OutgoingMessage | None:
    """The opened check-in's first question as a message; writes nothing (None if nothing is left to ask)."""
    if opened is None:
        return None
    if not services.config.privacy.health_data_in_chat:
        # The questions and answers stay on the clinic's server: the chat only opens the form.
        lang = message.language
        form = miniapp.checkin_url(services.config.web.public_url, opened.checkin_ids[0])
        return OutgoingMessage(
            t(lang, "Time for your check-in."),
            [weekly_stop_row(lang)] if opened.weekly else [],
            web_app=(t(lang, "📝 Open the form"), form),
            settle=(_settle_checkins, (services, list(opened.checkin_ids))),
        )
    rendered = step_message(opened.step, message.language, late=message.late)
    buttons = rendered.buttons + ([weekly_stop_row(message.language)] if opened.weekly else [])
    return OutgoingMessage(rendered.text, buttons, settle=(_settle_checkins, (services, list(opened.checkin_ids))))


def result_notice(lang: str, public_url: str) -> OutgoingMessage:
    """A red-flag reply without health data in the chat: a neutral line that opens the result in the Mini App."""
    return OutgoingMessage(
        t(lang, "Please open your check-in result now."),
        web_app=(t(lang, "Open my result"), miniapp.result_url(public_url)),
    )


async def _settle_checkins(db: AsyncSession, items: list[SentItem]) -> None:
    """After a send window, in the transaction recording it: which message opened each check-in, one statement."""
    table = table_of(CheckIn)
    rows = [{"cid": checkin_id, "mid": item.message_id} for item in items for checkin_id in item.data[1]]
    if not rows:
        return
    conn = await db.connection()
    statement = update(table).where(table.c.id == bindparam("cid")).values(message_id=bindparam("mid"))
    await conn.execute(statement, rows)


async def render_motivation(app: App, message: DueMessage) -> OutgoingMessage | None:
    """Today's motivational message: the core chooses and logs it (motivation.choose_for_delivery), then it renders."""
    s = svc(app)
    async with s.db.session() as db:
        chosen = await motivation.choose_for_delivery(
            db,
            s.content,
            message,
            s.clock.now(),
            clinic=s.config.clinic.name,
            health_data=s.config.privacy.health_data_in_chat,
        )
    return motivation_message(chosen)


def motivation_message(chosen: tuple[Patient, motivation.Choice] | None) -> OutgoingMessage | None:
    """The chosen motivational message in the patient's language; writes nothing."""
    if chosen is None:
        return None
    patient, choice = chosen
    return OutgoingMessage(choice.render(patient.language), effect_id=MILESTONE_EFFECT_ID if choice.milestone else None)


# --------------------------------------------------------------------------- answering


def advice_texts(result: core.AnswerResult, content: Content, lang: str, clinic: ClinicConfig) -> list[str]:
    """What to do now after an answer, most severe first; a routine finding with nothing to say has none
    (the therapist sees it). Sent before anything else, whether the answer was tapped or typed (/pain 7)."""
    ranked = sorted(result.findings, key=lambda f: redflag.SEVERITY_RANK[f.severity], reverse=True)
    return [advice for finding in ranked if (advice := redflag.reply_text(finding, content, lang, clinic))]


def parse_answer(data: str, prefix: str = "ci") -> tuple[int, int, int | None] | None:
    """``<prefix>:<check-in>:<item>:<value>`` (value "s": skipped) as ints, or None for anything else:
    the patient's own answers ("ci") and a caregiver's on their behalf ("cp", bot/caregiver)."""
    parts = data.split(":")
    if len(parts) != 4 or parts[0] != prefix:
        return None
    # Longer numbers are forged: larger than any id the database can hold.
    checkin_id, item = number(parts[1], 9), number(parts[2], 4)
    if checkin_id is None or item is None:
        return None
    if parts[3] == "s":
        return checkin_id, item, None
    value = number(parts[3], 4)
    return None if value is None else (checkin_id, item, value)


async def _edit(message: Any, text: str, buttons: list[list[tuple[str, str]]] | None = None) -> None:
    if not isinstance(message, Message):
        return
    try:
        await message.edit_text(text, reply_markup=_markup(buttons or []))
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            log.info("could not edit check-in message %s: %s", message.message_id, exc.message)
    except TelegramError as exc:
        log.info("could not edit check-in message %s: %s", message.message_id, type(exc).__name__)


async def on_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Store one answer, tell the patient at once about a red flag, ask the next item."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    content: Content = s.content
    clinic = s.config.clinic
    now = s.clock.now()
    parsed = parse_answer(query.data or "")
    async with s.db.session() as db:
        patient = await patients.find_heard(db, query.from_user.id)  # a check offered during enrolment too
        if parsed is None or patient is None:
            await query.answer(t(await language_for(update, context), STALE))
            raise ApplicationHandlerStop
        lang = patient.language
        result = await core.answer(db, patient, content, clinic, parsed[0], parsed[1], parsed[2], now)
        chain: list[CheckIn] = []
        step = None
        if result.checkin is not None:
            chain = await core.the_set(db, result.checkin)
            if not result.stopped:
                step = await core.next_step(db, content, chain, now)
        await db.commit()
    if result.status == "invalid" or result.checkin is None:
        notice = STALE if result.status == "invalid" else ALREADY_SAVED
        await query.answer(t(lang, notice))
        raise ApplicationHandlerStop
    notices = {
        "recorded": N_("Saved."),
        "duplicate": ALREADY_SAVED,
        "stale": ALREADY_SAVED,
        "expired": N_("This check-in has closed."),
        "closed": N_("This check-in has closed."),
    }
    await query.answer(t(lang, notices[result.status]))
    # The weekly check keeps its offer to stop on the next question and once answered.
    weekly = [weekly_stop_row(lang)] if WEEKLY_STOP in common.buttons_on(common.message_of(query)) else []
    # What to do now comes first: before the edit, which is paced behind it.
    for advice in advice_texts(result, content, lang, clinic):
        await context.bot.send_message(query.from_user.id, advice)
    if result.status in ("expired", "closed") and step is None:
        text = t(lang, "This check-in has closed. The answers you gave are kept.")
        text += "\n" + t(lang, "You can record your pain at any time with /pain.")
        await _edit(query.message, text)
    elif step is not None:
        rendered = step_message(step, lang)
        await _edit(query.message, rendered.text, rendered.buttons + weekly)
    else:
        await _edit(query.message, done_text(chain, content, lang, stopped=result.stopped), weekly)
    raise ApplicationHandlerStop


# --------------------------------------------------------------------------- /pain and /checkin


async def _send_step(message: Message | None, step: core.Step, lang: str) -> None:
    if message is None:
        return
    rendered = step_message(step, lang)
    await message.reply_text(rendered.text, reply_markup=_markup(rendered.buttons))


async def _enrolled(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Patient | None:
    from rehab_bot.bot.patient import patient_for

    return await patient_for(update, context)


PAIN_TYPED_HELP = N_(
    "Please send your pain as a whole number from {low} to {high} after /pain, for example /pain 7, or tap it below."
)
# Privacy mode's answer to a typed number off the scale: names neither the check nor what was typed.
FORM_TYPED_HELP = N_(
    "I could not read a whole number from {low} to {high} there, so nothing was saved. Please answer in the form."
)


async def pain_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Record an extra pain entry now: one tap on 0-10, or the number typed after it ("/pain 7").

    A typed number is recorded in both privacy modes; without health data in the chat the replies
    name neither the number nor the check and point to the Mini App (:func:`_typed_reply_on_server`).
    """
    patient = await _enrolled(update, context)
    message = update.effective_message
    if patient is None:
        raise ApplicationHandlerStop
    typed = _after_command(message) if message is not None else ""
    if not typed:
        if not await _form_instead(update, context, patient, "pain"):
            await _start_and_ask(update, context, patient, ["pain"])
        raise ApplicationHandlerStop
    s = svc(context)
    content, clinic, now, lang = s.content, s.config.clinic, s.clock.now(), patient.language
    async with s.db.session() as db:
        row = await db.get(Patient, patient.id)
        assert row is not None
        started = await core.begin(db, row, content, ["pain"], now)
        checkins, step = started.checkins, started.step
        value = core.typed_value(step.item, typed) if step is not None else None
        result = None
        if step is not None and value is not None:
            # The same call as the button with that number: the same red flags, alerts and reply.
            assert step.checkin.id is not None
            result = await core.answer(db, row, content, clinic, step.checkin.id, step.index, value, now)
            step = None if result.stopped else await core.next_step(db, content, checkins, now)
        await db.commit()
    if message is None:
        raise ApplicationHandlerStop
    recorded = result if result is not None and result.status == "recorded" else None
    if not s.config.privacy.health_data_in_chat:
        await _typed_reply_on_server(message, s, lang, recorded, step)
        raise ApplicationHandlerStop
    if recorded is None:
        # Not a number on the scale: say what to send, and ask the question as /pain alone does.
        if step is not None:
            low, high = core.value_range(step.item)
            rendered = step_message(step, lang)
            text = t(lang, PAIN_TYPED_HELP, low=low, high=high) + "\n\n" + rendered.text
            await message.reply_text(text, reply_markup=_markup(rendered.buttons))
        raise ApplicationHandlerStop
    for advice in advice_texts(recorded, content, lang, clinic):
        await message.reply_text(advice)
    if step is not None:
        await _send_step(message, step, lang)
    else:
        await message.reply_text(done_text(checkins, content, lang, stopped=recorded.stopped))
    raise ApplicationHandlerStop


async def _typed_reply_on_server(
    message: Message, s: Services, lang: str, recorded: core.AnswerResult | None, step: core.Step | None
) -> None:
    """The reply to a typed answer without health data in the chat, in privacy mode's words: a red flag's
    advice is the result in the Mini App (as after its form), the next question or a retry is the form."""
    url = s.config.web.public_url
    form = (
        (t(lang, "📝 Open the form"), miniapp.checkin_url(url, step.checkin.id)) if step and step.checkin.id else None
    )
    if recorded is None:
        if step is not None:
            low, high = core.value_range(step.item)
            await message.reply_text(t(lang, FORM_TYPED_HELP, low=low, high=high), reply_markup=keyboard([], form))
        return
    if advice_texts(recorded, s.content, lang, s.config.clinic):
        notice = result_notice(lang, url)
        await message.reply_text(notice.text, reply_markup=keyboard([], notice.web_app))
    if step is not None:
        await message.reply_text(t(lang, "Time for your check-in."), reply_markup=keyboard([], form))
    else:
        await message.reply_text(t(lang, "Thank you! Your answers are saved."))


async def _open_on_server(context: ContextTypes.DEFAULT_TYPE, patient: Patient, questionnaire_id: str) -> int | None:
    """Open a check-in for the Mini App's form (the answers never pass through the chat); its id."""
    s = svc(context)
    async with s.db.session() as db:
        opened = await core.start(db, patient, s.content, [questionnaire_id], s.clock.now())
        await db.commit()
    return next((c.id for c in opened if c.id is not None), None)


async def _form_instead(
    update: Update, context: ContextTypes.DEFAULT_TYPE, patient: Patient, questionnaire_id: str | None
) -> bool:
    """Without health data in the chat: point to the form on the clinic's server and return True."""
    s = svc(context)
    message = update.effective_message
    if s.config.privacy.health_data_in_chat or message is None:
        return False
    url = s.config.web.public_url
    form = await _open_on_server(context, patient, questionnaire_id) if questionnaire_id else None
    target = miniapp.checkin_url(url, form) if form is not None else miniapp.home_url(url)
    lang = patient.language
    await message.reply_text(
        t(lang, "Time for your check-in."), reply_markup=keyboard([], (t(lang, "📝 Open the form"), target))
    )
    return True


async def _start_and_ask(
    update: Update, context: ContextTypes.DEFAULT_TYPE, patient: Patient, questionnaires: list[str]
) -> None:
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        started = await core.begin(db, patient, s.content, questionnaires, now)
        await db.commit()
    if started.step is not None:
        await _send_step(update.effective_message, started.step, patient.language)


async def checkin_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Resume an open check-in, or offer the ones a patient can start now."""
    patient = await _enrolled(update, context)
    if patient is None or await _form_instead(update, context, patient, None):
        raise ApplicationHandlerStop
    s = svc(context)
    content: Content = s.content
    now = s.clock.now()
    lang = patient.language
    async with s.db.session() as db:
        step = await core.waiting_step(db, patient, content, now)
        await db.commit()
    if step is not None:
        await _send_step(update.effective_message, step, lang)
        raise ApplicationHandlerStop
    buttons = [[(localize(q.title, lang), f"cq:{q.id}")] for q in core.on_demand_for(patient, content)]
    message = update.effective_message
    if message is not None:
        await message.reply_text(
            t(lang, "No check-in is waiting for you. Which would you like to fill in now?"),
            reply_markup=_markup(buttons),
        )
    raise ApplicationHandlerStop


async def on_start_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start the questionnaire chosen in the /checkin menu, in the same message."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    content: Content = s.content
    now = s.clock.now()
    questionnaire_id = (query.data or "").partition(":")[2]
    async with s.db.session() as db:
        patient = await patients.find_in_care(db, query.from_user.id)
        questionnaire = content.questionnaires.get(questionnaire_id)
        if patient is None or questionnaire is None or questionnaire not in core.on_demand_for(patient, content):
            await query.answer(t(await language_for(update, context), STALE))
            raise ApplicationHandlerStop
        step = (await core.begin(db, patient, content, [questionnaire_id], now)).step
        await db.commit()
    await query.answer()
    if step is not None:
        rendered = step_message(step, patient.language)
        await _edit(query.message, rendered.text, rendered.buttons)
    raise ApplicationHandlerStop


# --------------------------------------------------------------------------- notes and crisis phrases


def _saved_text(lang: str, emergency: str) -> str:
    return (
        t(lang, "📝 Saved as a note for your therapist. Notes are read during working hours, not around the clock.")
        + "\n\n"
        + emergency
    )


def _after_command(message: Message) -> str:
    """The text typed after the leading /command (and its @botname), whatever whitespace follows it.

    "/note\nmy leg hurts" (the command on a line of its own) or a no-break space after it
    keep the note's first word.
    """
    text = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return text[entity.length :].strip()  # a command and its @botname are ASCII: UTF-16 length = len
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else ""


async def note_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Save the text after /note for the therapist, or ask for it."""
    patient = await _enrolled(update, context)
    message = update.effective_message
    if patient is None or message is None or message.text is None:
        raise ApplicationHandlerStop
    s = svc(context)
    text = _after_command(message)
    lang = patient.language
    if not text:
        await message.reply_text(t(lang, NOTE_PROMPT), reply_markup=ForceReply(selective=True))
        raise ApplicationHandlerStop
    async with s.db.session() as db:
        row = await db.get(Patient, patient.id)
        assert row is not None
        await redflag.save_note(db, row, text, s.clock.now())
        await db.commit()
    await message.reply_text(_saved_text(lang, s.config.clinic.text("emergency_text", lang)))
    raise ApplicationHandlerStop


async def crisis_watch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any text from a patient with a crisis phrase: crisis help now, a note and an urgent alert."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    text = message.text or message.caption or ""
    s = svc(context)
    content: Content = s.content
    if not text or not redflag.is_crisis(text, content):
        return  # the cheap check first: most messages never touch the database here
    async with s.db.session() as db:
        patient = await patients.find(db, user.id)
        if patient is not None:
            finding = await redflag.on_crisis(db, patient, content, s.config.clinic, text, s.clock.now())
            await db.commit()
        elif await staff_core.active_staff(db, user.id) is not None:
            return  # staff write about patients (a reply, a note): their own handlers read it
    if patient is None:
        # Not (or no longer) a patient: a stranger, a caregiver. Nobody's record to keep it in and
        # nobody to alert, but the crisis text and the emergency numbers are never withheld.
        finding = redflag.Finding("emergency", (redflag.CRISIS_REPLY,))
        lang = await common.language_for(update, context)
    else:
        lang = patient.language
    await _crisis_reply(context, message, redflag.reply_text(finding, content, lang, s.config.clinic), patient)
    raise ApplicationHandlerStop


async def _crisis_reply(
    context: ContextTypes.DEFAULT_TYPE, message: Message, reply: str, patient: Patient | None
) -> None:
    """The crisis text as a reply to message; if Telegram does not take it, after the transport's own
    retries, the engine sends it as soon as it can: a safety delivery, first in the queue, never held
    by quiet hours, one per message. Nothing else may answer in its place (the note offer would)."""
    try:
        await message.reply_text(reply)
    except TelegramError as exc:
        log.warning("crisis reply not sent (%s): queued for the engine", type(exc).__name__)
        s = svc(context)
        key = f"crisis-reply:{message.chat_id}:{message.message_id}"
        row = delivery_row(
            key, Kind.SAFETY, message.chat_id, reply, s.clock.now(), patient_id=patient.id if patient else None
        )
        async with s.db.session() as db:
            await queue_deliveries(db, [row])
            await db.commit()


def _is_note_prompt(message: Message, bot_id: int, lang: str) -> bool:
    replied = message.reply_to_message
    return (
        replied is not None
        and replied.from_user is not None
        and replied.from_user.id == bot_id
        and (replied.text or "") in {t(lang, NOTE_PROMPT), t("en", NOTE_PROMPT)}
    )


async def free_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text nobody else handled: offer to keep it as a note for the therapist."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.text is None:
        return
    s = svc(context)
    async with s.db.session() as db:
        # A patient still enrolling reaches this only with a symptom or a word of danger (bot/enrol.py).
        patient = await patients.find_heard(db, user.id)
        if patient is None:
            if await patients.find(db, user.id) is None and await staff_core.active_staff(db, user.id) is None:
                # Someone the bot does not know: "use the buttons" would point at buttons they never got.
                lang = await common.language_for(update, context)
                await message.reply_text(common.stranger_text(lang, s.config.clinic.name))
            else:
                await common.unknown_message(update, context)
            raise ApplicationHandlerStop
        lang = patient.language
        if _is_note_prompt(message, context.bot.id, lang):
            await redflag.save_note(db, patient, message.text.strip(), s.clock.now())
            await db.commit()
            await message.reply_text(_saved_text(lang, s.config.clinic.text("emergency_text", lang)))
            raise ApplicationHandlerStop
        now = s.clock.now()
        open_question = _open_question(context, message, lang, now)
        answer = crisis.typed_answer(message.text) if open_question is not None else None
        if open_question is not None and answer is not None:  # typed instead of tapped: as its button
            finding, waiting = await _record_crisis_answer(context, db, patient, open_question.said, answer)
        else:
            asks = crisis.asks_question(message.text, s.content)
            waiting = None if asks else await _waiting_step(context, db, patient)  # only the offer shows it
            if asks:  # kept before it is asked: unanswered, it alerts the care team (redflag)
                await redflag.asked_crisis_question(db, patient, message.text.strip(), now)
                await db.commit()
    if open_question is not None and answer is not None:
        _question_answered(context, open_question.question)
        await _show_crisis_answer(
            context, open_question.question, message, open_question.original, patient, finding, waiting
        )
        raise ApplicationHandlerStop
    if asks:
        # Not a crisis pattern, but a word of danger: ask directly (asking does not put the idea in
        # anyone's head); Yes is a crisis, No goes on to the offer (on_crisis_question_pressed).
        buttons = [[(t(lang, "Yes"), ASKED_YES), (t(lang, "No"), ASKED_NO)]]
        question = s.content.text(crisis.QUESTION, lang).strip()
        asked = await message.reply_text(question, reply_markup=_markup(buttons), do_quote=True)
        _remember_question(context, _OpenQuestion(asked, message, now))
        raise ApplicationHandlerStop
    await _offer(message, context, patient, lang, waiting)
    raise ApplicationHandlerStop


async def _record_crisis_answer(
    context: ContextTypes.DEFAULT_TYPE, db: AsyncSession, patient: Patient, said: str, yes: bool
) -> tuple[redflag.Finding | None, core.Step | None]:
    """The crisis question answered, by its button or in words: Yes is a crisis (the patient's words kept as
    a crisis note, the emergency alert raised); No reads the check-in question that waits, for the offer."""
    s = svc(context)
    await redflag.crisis_question_answered(db, patient, s.clock.now())
    if yes:
        lang = patient.language
        finding = await redflag.on_crisis(
            db, patient, s.content, s.config.clinic, said or t(lang, YES_NOTE), s.clock.now(), answered_yes=True
        )
        await db.commit()
        return finding, None
    await db.commit()
    return None, await _waiting_step(context, db, patient)


async def _show_crisis_answer(
    context: ContextTypes.DEFAULT_TYPE,
    question: Message,
    reply_to: Message,
    original: Message | None,
    patient: Patient,
    finding: redflag.Finding | None,
    waiting: core.Step | None,
) -> None:
    """The question shows the answer; Yes (finding) gets the crisis text below reply_to, No the usual offer for
    the patient's message the question quoted (when it is known and has words)."""
    lang, s = patient.language, svc(context)
    await _edit(question, f"{question.text}\n\n✓ {t(lang, 'Yes' if finding is not None else 'No')}")
    if finding is not None:
        await _crisis_reply(context, reply_to, redflag.reply_text(finding, s.content, lang, s.config.clinic), patient)
    elif original is not None and (original.text or "").strip():
        await _offer(original, context, patient, lang, waiting)


@dataclass(frozen=True)
class _OpenQuestion:
    """The crisis question asked in a chat, and the patient's message it quoted (None when unknown)."""

    question: Message
    original: Message | None
    asked_at: datetime | None

    @property
    def said(self) -> str:
        return (self.original.text or "").strip() if self.original is not None else ""


def _open_questions(context: ContextTypes.DEFAULT_TYPE) -> dict[int, _OpenQuestion]:
    found = context.bot_data.setdefault(OPEN_QUESTIONS, {})
    assert isinstance(found, dict)
    return found


def _remember_question(context: ContextTypes.DEFAULT_TYPE, asked: _OpenQuestion) -> None:
    questions = _open_questions(context)
    now = asked.asked_at
    for chat_id in [
        c for c, q in questions.items() if q.asked_at is None or now is None or now - q.asked_at > QUESTION_OPEN
    ]:
        del questions[chat_id]  # long unanswered: a typed "yes" no longer answers them
    questions[asked.question.chat_id] = asked


def _question_answered(context: ContextTypes.DEFAULT_TYPE, question: Message) -> None:
    """Pressed or answered in words: a typed yes or no no longer answers it."""
    questions = _open_questions(context)
    if (found := questions.get(question.chat_id)) is not None and found.question.message_id == question.message_id:
        del questions[question.chat_id]


def _open_question(
    context: ContextTypes.DEFAULT_TYPE, message: Message, lang: str, now: datetime
) -> _OpenQuestion | None:
    """The crisis question a typed message may answer: the one it replies to (after a restart too), else
    the latest one asked in the chat within QUESTION_OPEN and not yet answered."""
    questions = _open_questions(context)
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
        found = questions.get(message.chat_id)
        if found is not None and found.question.message_id == replied.message_id:
            return found
        asked = {svc(context).content.text(crisis.QUESTION, code).strip() for code in (lang, "en")}
        if (replied.text or "").strip() in asked and common.buttons_on(replied):
            return _OpenQuestion(replied, None, None)
        return None
    found = questions.get(message.chat_id)
    if found is None or found.asked_at is None or now - found.asked_at > QUESTION_OPEN:
        return None
    return found if common.buttons_on(found.question) else None


async def _waiting_step(context: ContextTypes.DEFAULT_TYPE, db: AsyncSession, patient: Patient) -> core.Step | None:
    """A check-in question still open: typed text is no answer ("yes" to a red-flag question must
    not pass as a note), so the patient is told and the question comes again (_offer)."""
    s = svc(context)
    if not s.config.privacy.health_data_in_chat:
        return None
    waiting = await core.waiting_step(db, patient, s.content, s.clock.now())
    await db.commit()
    return waiting


async def _offer(
    message: Message, context: ContextTypes.DEFAULT_TYPE, patient: Patient, lang: str, waiting: core.Step | None
) -> None:
    """Offer to send the patient's message to the care team or keep it as a note, quoting it.

    A short "done" while today's session waits for its answer adds how to record it: a line and its
    button first (bot/session.said_done); the offer stays, so what the patient typed is not lost.
    """
    s = svc(context)
    text = t(lang, OFFER)
    said = await session_bot.said_done(s, patient, message.text or "")
    if said is not None:
        text = said.line + "\n\n" + text
    elif (asked := await session_bot.question_waiting_line(s, patient)) is not None:
        text = asked + "\n\n" + text
    if waiting is not None and OPEN_CHECKIN_HINT in s.content.texts:
        text = s.content.text(OPEN_CHECKIN_HINT, lang).strip() + "\n\n" + text
    buttons = _note_buttons(lang)
    check = crisis.symptom_check_for(message.text or "", s.content)
    web_app: tuple[str, str] | None = None
    if check is not None:
        # A symptom word: the check that asks the right questions is one tap away.
        text = t(lang, SYMPTOM_OFFER) + "\n\n" + text
        title = f"🩺 {localize(s.content.questionnaires[check].title, lang)}"
        if s.config.privacy.health_data_in_chat:
            buttons = [[(title, f"sc:{check}")], *buttons]
        else:  # the answers go to the clinic's server: the check is opened there, the button opens its form
            form = await _open_on_server(context, patient, check)
            web_app = (title, miniapp.checkin_url(s.config.web.public_url, form)) if form is not None else None
    if said is not None and said.button is not None:
        buttons = [[said.button], *buttons]
    markup = keyboard(buttons, web_app)
    if not s.config.privacy.health_data_in_chat and markup is not None:
        # Privacy mode: a message for the care team is written in the Mini App, not sent from the chat.
        rows = [list(row) for row in markup.inline_keyboard if not any(b.callback_data == "nt:c" for b in row)]
        rows.insert(1 if web_app is not None else 0, [care.app_button(lang, s.config.web.public_url)])
        if said is not None and said.web_app is not None:  # the session, opened where it is recorded
            rows.insert(0, [InlineKeyboardButton(said.web_app[0], web_app=WebAppInfo(said.web_app[1]))])
        markup = InlineKeyboardMarkup(rows)
    await message.reply_text(text, reply_markup=markup, do_quote=True)
    if waiting is not None:
        await _send_step(message, waiting, lang)


@dataclass(frozen=True)
class _QuotedPress:
    """A press on a bot message that quotes the patient's message (the note offer, the crisis question)."""

    shown: Message  # the bot's message with the button
    patient: Patient
    original: Message | None  # the quoted message, when it is the presser's own
    said: str  # its text, stripped ("" when there is none)


async def _quoted_press(update: Update, context: ContextTypes.DEFAULT_TYPE, db: AsyncSession) -> _QuotedPress:
    """The press, checked: a patient in care, a button that message shows. Else STALE, and the update stops."""
    query = update.callback_query
    assert query is not None
    shown = query.message if isinstance(query.message, Message) else None
    patient = await patients.find_heard(db, query.from_user.id)
    if patient is None or shown is None or query.data not in common.buttons_on(shown):
        await query.answer(t(await language_for(update, context), STALE))
        raise ApplicationHandlerStop
    original = shown.reply_to_message
    theirs = original is not None and original.from_user is not None and original.from_user.id == query.from_user.id
    mine = original if theirs else None
    return _QuotedPress(shown, patient, mine, (mine.text or "").strip() if mine is not None else "")


async def on_crisis_question_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Yes to the crisis question is a crisis (its note, the emergency alert, the crisis text); No goes
    on to the usual offer for the patient's message, which the question quoted."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    async with s.db.session() as db:
        press = await _quoted_press(update, context, db)
        _question_answered(context, press.shown)
        await query.answer()
        finding, waiting = await _record_crisis_answer(context, db, press.patient, press.said, query.data == ASKED_YES)
    await _show_crisis_answer(context, press.shown, press.shown, press.original, press.patient, finding, waiting)
    raise ApplicationHandlerStop


def _note_buttons(lang: str) -> list[list[tuple[str, str]]]:
    """Send to the care team (rehab_bot/bot/care.py), keep as a note, or neither."""
    return [[care.offer_button(lang)], [(t(lang, "Save as a note"), "nt:s"), (t(lang, "No, thanks"), "nt:x")]]


async def on_symptom_check_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start the check offered for a symptom word, as a new message; the note offer stays."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    content: Content = s.content
    now = s.clock.now()
    questionnaire_id = (query.data or "").partition(":")[2]
    offer = query.message if isinstance(query.message, Message) else None
    async with s.db.session() as db:
        patient = await patients.find_heard(db, query.from_user.id)
        questionnaire = content.questionnaires.get(questionnaire_id)
        offered = query.data in common.buttons_on(offer)  # only the check this message offers
        if patient is None or questionnaire is None or not questionnaire.on_demand or not offered:
            await query.answer(t(await language_for(update, context), STALE))
            raise ApplicationHandlerStop
        step = (await core.begin(db, patient, content, [questionnaire_id], now)).step
        await db.commit()
    lang = patient.language
    await query.answer()
    if step is not None:
        rendered = step_message(step, lang)
        await context.bot.send_message(query.from_user.id, rendered.text, reply_markup=_markup(rendered.buttons))
    if offer is not None and offer.text:
        await _edit(offer, offer.text, _note_buttons(lang))  # the check is started: keep "send" and "save as a note"
    raise ApplicationHandlerStop


async def on_note_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Save (or not) the patient's message that the offer replied to."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    async with s.db.session() as db:
        press = await _quoted_press(update, context, db)
        offer, patient = press.shown, press.patient
        lang = patient.language
        if query.data == "nt:x":
            await query.answer()
            await _edit(offer, t(lang, "OK, not saved."))
            raise ApplicationHandlerStop
        if not press.said:
            await query.answer()
            await _edit(offer, t(lang, "I could not find that message any more. Please send it with /note."))
            raise ApplicationHandlerStop
        await redflag.save_note(db, patient, press.said, s.clock.now())
        await db.commit()
    await query.answer(t(lang, "Saved."))
    await _edit(offer, _saved_text(lang, s.config.clinic.text("emergency_text", lang)))
    raise ApplicationHandlerStop


# --------------------------------------------------------------------------- periodic checks and /progress


async def run_periodic(app: App) -> int:
    """Close expired check-ins, raise no-response alerts and alerts for crisis questions left unanswered, at
    the injected clock's now."""
    s = svc(app)
    now = s.clock.now()
    async with s.db.session() as db:
        await core.expire_due(db, s.content, now)
        await db.commit()
        raised = await _alerts_once(db, "inactivity check", redflag.check_inactive(db, s.content, s.config.clinic, now))
    return raised + await run_crisis_questions(app)


async def run_crisis_questions(app: App) -> int:
    """Alerts for crisis questions left unanswered [staff] crisis_question_minutes, at the injected clock's
    now (also part of run_periodic); returns alerts raised."""
    s = svc(app)
    now = s.clock.now()
    unanswered = timedelta(minutes=s.config.staff.crisis_question_minutes)
    async with s.db.session() as db:
        check = redflag.check_unanswered_questions(db, s.config.clinic, now, unanswered)
        return await _alerts_once(db, "crisis question check", check)


async def _alerts_once(db: AsyncSession, what: str, check: Awaitable[int]) -> int:
    """Run one periodic alert check and commit; 0 when another process (a second dispatcher) raised the
    same alert first (its key is unique)."""
    try:
        raised = await check
        await db.commit()
    except IntegrityError:
        await db.rollback()
        log.info("%s: another process raised the same alert", what)
        return 0
    return raised


async def periodic_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The repeating job behind run_periodic."""
    await run_periodic(app_of(context))


async def crisis_question_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The repeating job behind run_crisis_questions."""
    await run_crisis_questions(app_of(context))


async def progress_extra(update: Update, context: ContextTypes.DEFAULT_TYPE, patient: Patient, lang: str) -> None:
    """/progress: the chart, with the same facts in words as its caption (for screen readers)."""
    message = update.effective_message
    if message is None:
        return
    s = svc(context)
    if not s.config.privacy.health_data_in_chat:
        # Pain and mood stay on the clinic's server: the chart is in the Mini App.
        url = miniapp.home_url(s.config.web.public_url)
        await message.reply_text(
            t(lang, "Your charts are in the app."),
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton(t(lang, "📈 Open the app"), web_app=WebAppInfo(url))]]
            ),
        )
        return
    async with s.db.session() as db:
        progress = await report.load_progress(db, patient, s.clock.now())
        measures = await report.outcome_items(db, patient, s.content, lang, skip=report.ON_PROGRESS_CHART)
    png = await asyncio.to_thread(report.render_chart, progress)
    summary = report.summary_text(progress, lang)
    await _photo_with_text(message, png, summary)
    if measures:
        # Outcome questionnaires (PSFS, a licensed ODI) by day after surgery with the MCID marked, and in words.
        png = await asyncio.to_thread(report.render_outcome_chart, measures, lang)
        await _photo_with_text(message, png, report.outcome_summary(measures, lang))


async def _photo_with_text(message: Message, png: bytes, text: str) -> None:
    """A chart with its words as the caption, or after it when they are too long for one."""
    if len(text) <= 1024:
        await message.reply_photo(png, caption=text)
    else:
        await message.reply_photo(png)
        await message.reply_text(text)


def register(app: App) -> None:
    """Add the check-in handlers, the periodic red-flag job and the /progress chart."""
    patient_text = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(MessageHandler(patient_text & (filters.TEXT | filters.CAPTION), crisis_watch), group=CRISIS_GROUP)
    # An edit is no input (common.edits_are_not_input), but crisis words added by editing still get help at once.
    edited_text = filters.ChatType.PRIVATE & filters.UpdateType.EDITED_MESSAGE & (filters.TEXT | filters.CAPTION)
    app.add_handler(MessageHandler(edited_text, crisis_watch), group=common.EDITED_CRISIS_GROUP)
    app.add_handler(CommandHandler("checkin", checkin_command))
    app.add_handler(CommandHandler("pain", pain_command))
    app.add_handler(CommandHandler("note", note_command))
    app.add_handler(CallbackQueryHandler(on_answer, pattern=r"^ci:"))
    app.add_handler(CallbackQueryHandler(on_start_pressed, pattern=r"^cq:"))
    app.add_handler(CallbackQueryHandler(on_note_pressed, pattern=r"^nt:[sx]$"))
    app.add_handler(CallbackQueryHandler(on_symptom_check_pressed, pattern=r"^sc:"))
    app.add_handler(CallbackQueryHandler(on_crisis_question_pressed, pattern=r"^cz:[yn]$"))
    app.add_handler(MessageHandler(patient_text & filters.TEXT & ~filters.COMMAND, free_text), group=FREE_TEXT_GROUP)
    if app.job_queue is not None:
        services = svc(app)
        poll = services.config.delivery.poll_interval
        interval = max(PERIODIC_SECONDS, poll)
        # Within a minute of start, then every interval. An engine slowed right
        # down (the e2e tests' poll_interval of an hour) leaves the sweep to its
        # caller, like the engine itself, so it never runs in the middle of a test.
        first = FIRST_PERIODIC_SECONDS if poll <= FIRST_PERIODIC_SECONDS else interval
        common.repeat(app, periodic_job, every=interval, first=first, name=PERIODIC_JOB)
        every = max(CRISIS_QUESTION_SECONDS, poll)
        common.repeat(app, crisis_question_job, every=every, first=every, name=CRISIS_QUESTION_JOB)
    try:
        from rehab_bot.bot import patient as patient_bot
    except ImportError:  # pragma: no cover - the patient commands are part of the bot
        return
    extras = getattr(patient_bot, "PROGRESS_EXTRAS", None)
    if isinstance(extras, list) and progress_extra not in extras:
        extras.append(progress_extra)
