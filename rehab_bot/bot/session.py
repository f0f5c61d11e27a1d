"""Exercise session reminders and one-tap logging (Start, Done, Partly, Skip, Snooze).

The reminder is short (the session, how many exercises, about how long, one
line of encouragement) with ▶ Start and four buttons; callback data is
``s:<session id>:<action>[:<value>]`` (see rehab_bot.session.Press):

    g               Start without a Mini App: the engine sends the exercises,
                    one message each with its media and dose, then Done/Partly
                    (with [web] public_url, Start is a web_app button instead)
    d, p, k         Done, Partly, Skip
    z / z:<min>     open the snooze menu / snooze 15, 30 or 60 minutes
    b               back from the snooze menu
    e:<effort>      easy, ok, hard, or "-" to skip the question
    n:<0-10>        pain during the exercises, or "-"
    r:<reason>      why the session was skipped

A short typed message that says a session is done ("done", "erledigt", "did it": session.says_done) is
no press: the free-text offer (rehab_bot/bot/checkin.py) keeps its buttons and gains one line and one
button, ``sd:<session id>``, that records today's open session as Done, as the reminder's ✅ would
(:func:`said_done`, :func:`on_said_done_pressed`). Only that tap records it. With no session of today
waiting, the button is ``sa:<HHMM>``: today's next session, whose reminder has not gone out, recorded
Done before it (:func:`on_said_ahead_pressed`; its reminder then does not come).

With ``[privacy] health_data_in_chat = false`` the reminder is neutral ("Time
for your session") and carries only Start, which opens the Mini App: the
answers are given there, not in the chat.

Every press is checked in the core against the pressing account and the
session's state, so a repeated, stale or forged press changes nothing and
gets the same neutral answer. The message a press was on is then edited so
its buttons cannot be pressed again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col
from sqlmodel import select as select_models
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, ContextTypes

from rehab_bot import experiment, miniapp, motivation, programme, redflag, tapering
from rehab_bot import patient as patients
from rehab_bot import session as core
from rehab_bot.bot import experiments as experiments_bot
from rehab_bot.bot import timing as timing_bot
from rehab_bot.bot.common import buttons_on, keyboard_without, language_for, repeat
from rehab_bot.bot.services import App, Services, app_of, svc
from rehab_bot.config import ClinicConfig
from rehab_bot.content import Content, Exercise, Phase, localize
from rehab_bot.db import upsert
from rehab_bot.i18n import N_, t
from rehab_bot.models import MediaCache, Patient, PatientStatus, table_of
from rehab_bot.ratelimit import BULK
from rehab_bot.redflag import clinic_contact
from rehab_bot.reminders import DueMessage
from rehab_bot.schedule import local_date, zone
from rehab_bot.session_text import exercise_card, reminder_text
from rehab_bot.transport import (
    MAX_CAPTION,
    MAX_TEXT,
    AfterCommit,
    OutgoingMedia,
    OutgoingMessage,
    SentItem,
    keyboard,
    utf16_len,
)
from rehab_bot.typed import number

log = logging.getLogger(__name__)

SWEEP_JOB = "session-sweep"
STALE = N_("This button is no longer active.")

EFFORT_LABELS = {"easy": N_("😌 Easy"), "ok": N_("🙂 OK"), "hard": N_("😓 Hard")}
REASON_LABELS = {
    "pain": N_("Pain"),
    "no_time": N_("No time"),
    "forgot": N_("Forgot"),
    "unwell": N_("Felt unwell"),
    "other": N_("Other reason"),
}
OUTCOME_LINES = {
    core.Status.DONE: N_("✅ Logged: done."),
    core.Status.PARTLY: N_("🌗 Logged: partly done."),
    core.Status.SKIPPED: N_("⏭ Logged: skipped."),
}
# Clinic content text shown when pain kept a patient from exercising; the
# red-flag "contact us today" text is the fallback if a clinic removed it.
PAIN_TEXT, PAIN_TEXT_FALLBACK = "exercise_pain", "red_flag_urgent"


# --- keyboards ------------------------------------------------------------------------


def _b(lang: str, label: str, press: core.Press) -> tuple[str, str]:
    return t(lang, label), press.data()


START = N_("▶ Start")


def main_buttons(lang: str, session_id: int, *, start: bool = False) -> list[list[tuple[str, str]]]:
    """(▶ Start /) Done, Partly / Skip, Snooze."""
    p = core.Press
    head = [[_b(lang, START, p(session_id, core.Action.START))]] if start else []
    return [
        *head,
        [
            _b(lang, N_("✅ Done"), p(session_id, core.Action.DONE)),
            _b(lang, N_("🌗 Partly"), p(session_id, core.Action.PARTLY)),
        ],
        [
            _b(lang, N_("⏭ Skip"), p(session_id, core.Action.SKIP)),
            _b(lang, N_("⏰ Snooze"), p(session_id, core.Action.SNOOZE)),
        ],
    ]


def snooze_buttons(lang: str, session_id: int, minutes: list[int]) -> list[list[tuple[str, str]]]:
    """The snooze lengths still possible today, and Back."""
    row = [
        (t(lang, "{minutes} min", minutes=m), core.Press(session_id, core.Action.SNOOZE, str(m)).data())
        for m in minutes
    ]
    back = [_b(lang, N_("« Back"), core.Press(session_id, core.Action.BACK))]
    return [row, back] if row else [back]


def effort_buttons(lang: str, session_id: int) -> list[list[tuple[str, str]]]:
    """Easy, OK, Hard, and skip the question."""
    return [
        [_b(lang, label, core.Press(session_id, core.Action.EFFORT, value)) for value, label in EFFORT_LABELS.items()],
        [_b(lang, N_("Skip this question"), core.Press(session_id, core.Action.EFFORT, core.SKIP_ANSWER))],
    ]


def pain_buttons(lang: str, session_id: int) -> list[list[tuple[str, str]]]:
    """0-10 in two rows, and skip the question."""

    def button(n: int) -> tuple[str, str]:
        return str(n), core.Press(session_id, core.Action.PAIN, str(n)).data()

    return [
        [button(n) for n in range(6)],
        [button(n) for n in range(6, core.PAIN_MAX + 1)],
        [_b(lang, N_("Skip this question"), core.Press(session_id, core.Action.PAIN, core.SKIP_ANSWER))],
    ]


def reason_buttons(lang: str, session_id: int) -> list[list[tuple[str, str]]]:
    """Why the session was skipped."""
    buttons = [_b(lang, label, core.Press(session_id, core.Action.REASON, v)) for v, label in REASON_LABELS.items()]
    return [buttons[:2], buttons[2:4], buttons[4:]]


def finish_buttons(lang: str, session_id: int) -> list[list[tuple[str, str]]]:
    """Done, Partly: the last message of a session played in the chat."""
    p = core.Press
    return [
        [
            _b(lang, N_("✅ Done"), p(session_id, core.Action.DONE)),
            _b(lang, N_("🌗 Partly"), p(session_id, core.Action.PARTLY)),
        ]
    ]


def markup(buttons: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Rows of (label, callback_data) as an inline keyboard."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=d) for label, d in row] for row in buttons])


def reminder_keyboard(
    services: Services, lang: str, session_id: int
) -> tuple[list[list[tuple[str, str]]], tuple[str, str] | None]:
    """A session reminder's buttons and its Mini App button, by configuration.

    With [web] public_url, Start opens the session in the Mini App; without,
    it is a press that sends the exercises into the chat. Without health
    data in the chat, Start is all there is: the answers are given in the Mini App.
    """
    url = services.config.web.public_url
    web_app = (t(lang, START), miniapp.session_url(url, session_id)) if url else None
    if not services.config.privacy.health_data_in_chat:
        return [], web_app
    return main_buttons(lang, session_id, start=web_app is None), web_app


# --- the reminder text ---------------------------------------------------------------------


def neutral_reminder_text(lang: str, slot: str) -> str:
    """A session reminder that says nothing about health or treatment ([privacy] health_data_in_chat = false)."""
    return t(lang, "Time for your session ({slot}).", slot=slot)


def reason_free_skip(lang: str, session_id: int) -> list[list[tuple[str, str]]]:
    """The Skip button alone, in a row."""
    return [[_b(lang, N_("⏭ Skip"), core.Press(session_id, core.Action.SKIP))]]


def streak_line(lang: str, streak: int) -> str:
    """The streak, shown as soon as a session is logged Done or Partly."""
    if streak >= 2:
        return t(lang, "🔥 {n} days in a row.", n=streak)
    return t(lang, "🔥 Your streak starts today.")


def praise(lang: str, status: str, streak: int) -> str:
    """What the patient reads after logging a session: thanks, and the streak when there is one."""
    if status == core.Status.PARTLY:
        text = t(lang, "Thank you for logging it. Doing part of your exercises still counts.")
    else:
        text = t(lang, "Well done! 💪")
    if streak >= 2:
        text += " " + t(lang, "That's {n} days in a row.", n=streak)
    else:
        text += " " + t(lang, "Every session counts.")
    return text


def skip_reply(lang: str, reason: str, content: Content, clinic: ClinicConfig) -> str:
    """The answer to a skip reason; for pain, the clinic's own advice text, never ours,
    closed by the clinic's phone (and hours) and its emergency text, in the patient's language."""
    if reason == "pain":
        key = PAIN_TEXT if PAIN_TEXT in content.texts else PAIN_TEXT_FALLBACK
        return "\n\n".join(
            [
                t(lang, "Thank you for telling me."),
                content.text(key, lang).strip(),
                clinic_contact(clinic, lang),
                clinic.text("emergency_text", lang),
            ]
        )
    if reason == "unwell":
        return t(lang, "Thank you for telling me. I hope you feel better soon.")
    return t(lang, "Thanks for letting me know. Your next session is a new chance.")


# --- rendering due reminders ---------------------------------------------------------------


async def _remember_media(db: AsyncSession, source: str, file_id: str, now: datetime) -> None:
    conn = await db.connection()
    table = table_of(MediaCache)
    values = {"source": source, "file_id": file_id, "updated_at": now}
    await conn.execute(upsert(conn.dialect.name, table, values, keys=["source"], update=["file_id", "updated_at"]))


async def render_reminder(app: App, message: DueMessage) -> OutgoingMessage | None:
    """The session reminder with its media and buttons; None if it no longer applies."""
    ref = core.parse_payload(message.payload)
    if ref.play:
        return await _render_player(app, message)
    if ref.session_id is not None:
        return await _render_snoozed(app, message)
    services = svc(app)
    async with services.db.session() as db:
        delivery = services.config.delivery
        taper = (delivery.taper_after_weeks, delivery.taper_adherence)
        reminders = await core.open_for_deliveries(db, services.content, [message], services.clock.now(), taper)
        await db.commit()
        return (await render_reminders(app, db, reminders)).get(message.delivery_id)


async def render_reminders(
    app: App, db: AsyncSession, reminders: Mapping[int, core.Reminder | None]
) -> dict[int, OutgoingMessage | None]:
    """Turn a window's opened session reminders (core.open_for_deliveries) into messages; reads through db only.

    Media are read in one query for the window. A reminder whose session no
    longer exists becomes its phase-change notice, or nothing.
    """
    services = svc(app)
    out: dict[int, OutgoingMessage | None] = {}
    ready = [r for r in reminders.values() if r is not None and r.opened is not None]
    media_of = await _cached_media_many(db, [r.exercises for r in ready])
    media_by = {r.message.delivery_id: media for r, media in zip(ready, media_of, strict=True)}
    for delivery_id, reminder in reminders.items():
        if reminder is None:
            out[delivery_id] = None
            continue
        lang, change, es = reminder.patient.language, reminder.change, reminder.opened
        if es is None:
            notice = None if change is None else f"🆕 {change.title(lang)}\n\n{change.note(lang).strip()}"
            if not services.config.privacy.health_data_in_chat:
                notice = None  # the programme's phases are health data: the Mini App shows them
            out[delivery_id] = None if notice is None else OutgoingMessage(notice)
            continue
        buttons, web_app = reminder_keyboard(services, lang, es.id)
        if not services.config.privacy.health_data_in_chat:
            out[delivery_id] = OutgoingMessage(
                neutral_reminder_text(lang, es.slot),
                web_app=web_app,
                settle=(_settle_first_sends, (services, es.id, None)),
            )
            continue
        media = media_by[delivery_id]
        text = _short_text(
            services,
            reminder.patient,
            es.id,
            es.slot,
            reminder.message,
            reminder.exercises,
            change,
            phase=reminder.phase,
        )
        out[delivery_id] = OutgoingMessage(
            text,
            buttons=buttons,
            web_app=web_app,
            media=media,
            settle=(_settle_first_sends, (services, es.id, media.source if media is not None else None)),
        )
    return out


def _short_text(
    services: Services,
    patient: Patient,
    session_id: int,
    slot: str,
    message: DueMessage,
    exercises: list[Exercise],
    change: programme.PhaseChange | None = None,
    *,
    phase: Phase | None = None,
) -> str:
    """The short reminder; the session's name is the title of the phase the patient follows (their own plan's)."""
    lang = patient.language
    if phase is None:
        day = message.local_date or local_date(patient, services.clock.now())
        phase = core.phase_on(patient, services.content, day)
    return reminder_text(
        lang,
        slot=slot,
        late=message.late,
        exercises=exercises,
        change=change,
        session_name=localize(phase.title, lang) if phase is not None else "",
        encouragement=motivation.encouragement(services.content, lang, session_id),
    )


def session_exercises(content: Content, phase: Phase | None, index: int) -> list[Exercise]:
    """The exercises of the index-th session of the day in a phase, with their dose."""
    return core.exercises_of(phase, index, content)


async def _settle_first_sends(db: AsyncSession, items: list[SentItem]) -> None:
    """The batched after-send step of first-time reminders: bind the message, plan the nudge, keep file_ids.

    One function for every window, so the sender makes one call per recorded
    batch, in the transaction that records it; each item's data is
    (services, session id, media source).
    """
    services = items[0].data[0]
    sent_at = services.clock.now()
    await core.bind_first_messages(db, [core.FirstSend(i.data[1], i.message_id, i.message.delivery_id) for i in items])
    after = timedelta(hours=services.config.delivery.nudge_after_hours)
    await core.ensure_nudges(db, [i.data[1] for i in items], sent_at=sent_at, after=after)
    await _remember_uploads(db, items, sent_at)


async def _remember_uploads(db: AsyncSession, items: list[SentItem], now: datetime) -> None:
    """Keep the file_id of every media uploaded with these messages, to send it by id next time."""
    for item in items:
        for source, file_id in item.uploads:
            await _remember_media(db, source, file_id, now)


async def _cached_media_many(db: AsyncSession, exercises_of: list[list[Exercise]]) -> list[OutgoingMedia | None]:
    """The media of each session (its first exercise with media), with file_ids known from earlier uploads."""
    firsts = [next((ex for ex in exercises if ex.media and ex.media_kind), None) for exercises in exercises_of]
    sources = {ex.media for ex in firsts if ex is not None and ex.media}
    known: dict[str, str] = {}
    if sources:
        rows = await db.exec(select_models(MediaCache).where(col(MediaCache.source).in_(sources)))
        known = {row.source: row.file_id for row in rows.all()}
    return [
        OutgoingMedia(ex.media_kind, ex.media, known.get(ex.media))
        if ex is not None and ex.media and ex.media_kind
        else None
        for ex in firsts
    ]


async def _media_of_each(db: Any, exercises: list[Exercise]) -> list[OutgoingMedia | None]:
    """Every exercise's own media (None without), with file_ids known from earlier uploads."""
    sources = {ex.media for ex in exercises if ex.media and ex.media_kind}
    known: dict[str, str] = {}
    if sources:
        rows = await db.exec(select_models(MediaCache).where(col(MediaCache.source).in_(sources)))
        known = {row.source: row.file_id for row in rows.all()}
    return [
        OutgoingMedia(ex.media_kind, ex.media, known.get(ex.media)) if ex.media and ex.media_kind else None
        for ex in exercises
    ]


async def _render_player(app: App, message: DueMessage) -> OutgoingMessage | None:
    """Start in the chat: one message per exercise (its media, dose, instructions, safety note), then Done/Partly.

    One delivery: the engine sends its parts in order, each paced like any
    other message. None if the session was answered meanwhile or its day is over.
    """
    services = svc(app)
    ref = core.parse_payload(message.payload)
    if message.patient_id is None or ref.session_id is None:
        return None
    now = services.clock.now()
    async with services.db.session() as db:
        patient = await db.get(Patient, message.patient_id)
        if patient is None or patient.status != PatientStatus.ACTIVE:
            return None
        es = await core.get(db, ref.session_id)
        if es is None or es.patient_id != patient.id or es.status != core.Status.PENDING:
            return None
        if es.step != core.Step.PLAYING or es.local_date < local_date(patient, now):
            return None
        exercises = await core.session_exercises(db, services.content, patient, es.local_date, ref.index)
        media = await _media_of_each(db, exercises)
    assert es.id is not None
    lang, count = patient.language, len(exercises)
    cards = tuple(
        OutgoingMessage(exercise_card(lang, n, count, ex), media=m)
        for n, (ex, m) in enumerate(zip(exercises, media, strict=True), start=1)
    )
    return OutgoingMessage(
        t(lang, "That was your session. How did it go?"),
        buttons=finish_buttons(lang, es.id),
        before=cards,
        settle=(_settle_player, (services, app.bot, es.id, patient.telegram_id)),
    )


async def _settle_player(db: AsyncSession, items: list[SentItem]) -> AfterCommit | None:
    """After a played session went out: its last message carries the buttons; the reminder's go."""
    services, bot = items[0].data[0], items[0].data[1]
    stale: list[tuple[int, int]] = []
    now = services.clock.now()
    for i in items:
        previous = await core.bind_message(db, i.data[2], message_id=i.message_id, now=now)
        if previous is not None and i.data[3] is not None:
            stale.append((i.data[3], previous))
    await _remember_uploads(db, items, now)
    if not stale:
        return None

    async def drop_old_buttons() -> None:
        # As for nudges: the old buttons go after the transaction is committed, outside it.
        for chat_id, previous in stale:
            await _drop_buttons(bot, chat_id, previous)

    return drop_old_buttons


async def _render_snoozed(app: App, message: DueMessage) -> OutgoingMessage | None:
    """A snoozed session, sent again with its buttons; None if it was answered or its day is over."""
    services = svc(app)
    content = services.content
    now = services.clock.now()
    ref = core.parse_payload(message.payload)
    if message.patient_id is None or ref.session_id is None:
        return None
    async with services.db.session() as db:
        patient = await db.get(Patient, message.patient_id)
        if patient is None or patient.status != PatientStatus.ACTIVE:
            return None
        es = await core.get(db, ref.session_id)
        if es is None or es.patient_id != patient.id or es.status != core.Status.PENDING:
            return None
        if es.local_date < local_date(patient, now):
            return None  # held back past its day: the sweep records it as missed
        phase = await core.followed_phase(db, content, patient, es.local_date)
        exercises = core.exercises_of(phase, ref.index, content)
        [media] = await _cached_media_many(db, [exercises])
    assert es.id is not None
    session_id, lang = es.id, patient.language

    buttons, web_app = reminder_keyboard(services, lang, session_id)
    if not services.config.privacy.health_data_in_chat:
        neutral = (services, session_id, None)
        return OutgoingMessage(neutral_reminder_text(lang, es.slot), web_app=web_app, settle=(_settle_resends, neutral))
    text = _short_text(services, patient, session_id, es.slot, message, exercises, phase=phase)
    data = (services, session_id, media.source if media is not None else None)
    return OutgoingMessage(text, buttons=buttons, web_app=web_app, media=media, settle=(_settle_resends, data))


async def _settle_resends(db: AsyncSession, items: list[SentItem]) -> None:
    """After snoozed reminders went out: each becomes its session's live message, with its nudge planned."""
    services = items[0].data[0]
    sent_at = services.clock.now()
    for i in items:
        await core.bind_message(db, i.data[1], message_id=i.message_id, now=sent_at, delivery_id=i.message.delivery_id)
    after = timedelta(hours=services.config.delivery.nudge_after_hours)
    await core.ensure_nudges(db, [i.data[1] for i in items], sent_at=sent_at, after=after)
    await _remember_uploads(db, items, sent_at)


async def render_nudge(app: App, message: DueMessage) -> OutgoingMessage | None:
    """A gentle follow-up when a session got no answer; None if it was answered meanwhile."""
    services = svc(app)
    ref = core.parse_payload(message.payload)
    if ref.session_id is None or message.patient_id is None:
        return None
    async with services.db.session() as db:
        patient = await db.get(Patient, message.patient_id)
        if patient is None or patient.id is None or patient.status != PatientStatus.ACTIVE:
            return None
        now = services.clock.now()
        es = await core.nudge_target(db, patient.id, ref.session_id, now)
        if es is None or es.id is None or es.local_date < local_date(patient, now):
            return None
        lang, session_id, chat_id, slot = patient.language, es.id, patient.telegram_id, es.slot
        playing = es.step == core.Step.PLAYING
        delivery = services.config.delivery
        if await tapering.nudges_stopped(db, patient, now, delivery.taper_after_weeks, delivery.taper_adherence):
            return None  # kept up for weeks: the nudges have tapered off ([delivery] taper_after_weeks)
        # A running experiment may hold this nudge back or word it differently (never any other message);
        # the core drew its arm before this render (experiment.draw_for_nudge, from bot/render.py).
        assignment = await experiment.assignment_of(db, services.content, patient.id, es.id)
        if assignment is not None and not assignment.send:
            return None
        custom = assignment.text(lang) if assignment is not None else None
        # Told once before the first draw (consented before any experiment ran): the notice, and a way out.
        notice = assignment is None and await experiment.notice_due(db, services.content, patient.id, es.id)

    data = (services, app.bot, session_id, chat_id)
    buttons, web_app = reminder_keyboard(services, lang, session_id)
    told = f"\n\n{services.content.text('experiment_notice', lang)}" if notice else ""
    if not services.config.privacy.health_data_in_chat:
        text = t(lang, "Just checking in: your {slot} session is still open.", slot=es.slot) + told
        extra = [experiments_bot.opt_out_row(lang)] if notice else []
        return OutgoingMessage(text, buttons=extra, web_app=web_app, settle=(_settle_nudges, data))
    text = custom.replace("{slot}", slot) if custom else ""
    text = text or t(lang, "Just checking in: did you manage your {slot} exercise session?", slot=slot)
    if playing:
        buttons = finish_buttons(lang, session_id)  # the exercises are in the chat already
    if notice:
        buttons = [*buttons, experiments_bot.opt_out_row(lang)]
    return OutgoingMessage(text + told, buttons=buttons, web_app=web_app, settle=(_settle_nudges, data))


async def _settle_nudges(db: AsyncSession, items: list[SentItem]) -> AfterCommit | None:
    """After nudges went out: each becomes its session's live message; the reminder's buttons move to it."""
    services, bot = items[0].data[0], items[0].data[1]
    await experiment.mark_told(db, [i.data[2] for i in items], services.clock.now())  # a notice they carried
    stale: list[tuple[int, int]] = []
    for i in items:
        previous = await core.bind_message(db, i.data[2], message_id=i.message_id, now=services.clock.now(), nudge=True)
        if previous is not None and i.data[3] is not None:
            stale.append((i.data[3], previous))
    if not stale:
        return None

    async def drop_old_buttons() -> None:
        # One live message per session: the old one's buttons go once the transaction is committed,
        # outside it (an edit waits for the pacer; the engine's transaction must not).
        for chat_id, previous in stale:
            await _drop_buttons(bot, chat_id, previous)

    return drop_old_buttons


async def _drop_buttons(bot: Any, chat_id: int, message_id: int) -> None:
    try:
        await bot.edit_message_reply_markup(
            chat_id=chat_id, message_id=message_id, reply_markup=None, rate_limit_args={"priority": BULK}
        )
    except TelegramError as exc:  # gone, already without buttons, or the chat is blocked
        log.info("could not remove the buttons of message %d: %s", message_id, type(exc).__name__)


# --- presses --------------------------------------------------------------------------------


async def edit_message(
    message: Message,
    text: str | None,
    buttons: list[list[tuple[str, str]]] | None,
    web_app: tuple[str, str] | None = None,
) -> None:
    """Replace a message's text (or caption) and buttons; text None keeps the text."""
    await _edit(message, text, keyboard(buttons or [], web_app))


async def _edit(message: Message, text: str | None, keyboard_: InlineKeyboardMarkup | None) -> None:
    """edit_message with a keyboard as it is (one already on a message, less a button)."""
    try:
        if text is None:
            await message.edit_reply_markup(reply_markup=keyboard_)
        elif message.text is None:
            await message.edit_caption(caption=text, reply_markup=keyboard_)
        else:
            await message.edit_text(text, reply_markup=keyboard_)
    except BadRequest as exc:
        # "message is not modified" after a repeated press, or a message too old to edit.
        log.info("edit of message %d refused: %s", message.message_id, exc.message)


async def close_with(message: Message, line: str) -> None:
    """Add a status line to a message and take its buttons away."""
    current = message.text if message.text is not None else (message.caption or "")
    limit = MAX_TEXT if message.text is not None else MAX_CAPTION
    combined = f"{current}\n\n{line}" if current else line
    if utf16_len(combined) <= limit:
        await edit_message(message, combined, None)
    else:
        await edit_message(message, None, None)
        await message.reply_text(line)


async def _neutral(update: Update, context: ContextTypes.DEFAULT_TYPE, *, drop_buttons: bool = False) -> None:
    """The one answer for every press that is stale, repeated or not the presser's: reveals nothing.

    Buttons are taken away only from the presser's own message of their own
    session that no longer waits for them; any other message is left as it
    is, so a forged press cannot even disturb the forger's own live buttons.
    """
    query = update.callback_query
    assert query is not None
    await query.answer(t(await language_for(update, context), STALE))
    if drop_buttons and isinstance(query.message, Message) and query.message.reply_markup is not None:
        await edit_message(query.message, None, None)


async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press on a session button: record it once, then move the conversation on."""
    await _press(update, context)
    raise ApplicationHandlerStop  # answered: the catch-all must not answer again


async def _press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query, user = update.callback_query, update.effective_user
    assert query is not None
    press = core.parse_press(query.data)
    message = query.message if isinstance(query.message, Message) else None
    if press is None or user is None or message is None:
        await _neutral(update, context)
        return
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        patient = await patients.find(db, user.id)
        if patient is None or patient.id is None:
            await _neutral(update, context)
            return
        quiet = patients.quiet_hours(patient, s.config.delivery)
        applied = await core.apply_press(db, patient, press, message_id=message.message_id, now=now, quiet=quiet)
        if applied is None:
            named = await core.get(db, press.session_id)
            own = named is not None and named.patient_id == patient.id
            live = await core.live_session_on_message(db, patient.id, message.message_id) is not None
            await db.rollback()
            log.info("stale or foreign press on session %d", press.session_id)
            await _neutral(update, context, drop_buttons=own and not live)
            return
        es = applied.session
        streak = 0
        if press.action in (core.Action.PAIN, core.Action.DONE, core.Action.PARTLY):
            streak = (await core.stats(db, patient, now)).streak_days
        pain_finding = (
            await redflag.on_session_pain(db, patient, s.content, s.config.clinic, es, now)
            if press.action == core.Action.PAIN
            else None
        )
        options = core.snooze_options(es, patient, now, quiet) if press.action == core.Action.SNOOZE else []
        await db.commit()
        lang, tz = patient.language, patient.timezone
    assert es.id is not None
    action = press.action
    if action == core.Action.START:
        # The engine sends the exercises (one message each, paced); the last one asks Done or Partly.
        await query.answer(t(lang, "Here come your exercises, one by one."))
        await edit_message(message, None, finish_buttons(lang, es.id) + reason_free_skip(lang, es.id))
    elif action in (core.Action.DONE, core.Action.PARTLY, core.Action.SKIP):
        await query.answer()
        line = t(lang, OUTCOME_LINES[core.Status(es.status)])
        if action != core.Action.SKIP:
            line += " " + streak_line(lang, streak)
        await close_with(message, line)
        await _ask_next(s, message, es.id, lang, action)
    elif action == core.Action.SNOOZE and not press.value:
        await query.answer(None if options else t(lang, "It is too late to snooze today."))
        await edit_message(message, None, snooze_buttons(lang, es.id, options))
    elif action == core.Action.BACK:
        await query.answer()
        await edit_message(message, None, *reminder_keyboard(s, lang, es.id))
    elif action == core.Action.SNOOZE:
        assert applied.snoozed_until is not None
        at = applied.snoozed_until.astimezone(zone(tz)).strftime("%H:%M")
        await query.answer()
        await close_with(message, t(lang, "⏰ Snoozed: I will remind you again at {time}.", time=at))
    elif action == core.Action.EFFORT:
        await query.answer()
        label = t(lang, EFFORT_LABELS[press.value]) if press.value in EFFORT_LABELS else None
        intro = t(lang, "Effort: {effort}.", effort=label) + "\n\n" if label else ""
        ask = intro + t(lang, "How much pain did you have during the exercises? (0 = none, 10 = worst imaginable)")
        await edit_message(message, ask, pain_buttons(lang, es.id))
    elif action == core.Action.PAIN:
        await query.answer()
        if pain_finding is not None:  # pain at the pain rule's threshold: what to do, not praise
            reply = redflag.reply_text(pain_finding, s.content, lang, s.config.clinic)
            await edit_message(message, t(lang, "Thank you for telling me.") + "\n\n" + reply, None)
        else:
            await edit_message(message, praise(lang, es.status, streak), None)
        await timing_bot.after_session(context, es.patient_id, es.id, message.chat_id)  # learned reminder time
    else:  # REASON
        await query.answer()
        await edit_message(message, skip_reply(lang, press.value, s.content, s.config.clinic), None)


async def _ask_next(s: Services, message: Message, session_id: int, lang: str, action: core.Action) -> None:
    """After Done, Partly or Skip: the next question (effort, or why), as a reply; its message is now the
    session's live one."""
    if action == core.Action.SKIP:
        text, buttons = t(lang, "What got in the way?"), reason_buttons(lang, session_id)
    else:
        text, buttons = t(lang, "How hard did the exercises feel?"), effort_buttons(lang, session_id)
    question = await message.reply_text(text, reply_markup=markup(buttons))
    async with s.db.session() as db:
        await core.set_live_message(db, session_id, question.message_id)
        await db.commit()


# --- a session said done in words ------------------------------------------------------------

SAID_DONE_PREFIX = "sd:"
SAID_AHEAD_PREFIX = "sa:"  # sa:<HHMM>, today's session at that time, before its reminder
SAID_DONE = N_("If you finished your {slot} exercise session, tap ✅ Done to record it.")
SAID_AHEAD = N_(
    "If you already did your {slot} exercise session, tap ✅ Done to record it; its reminder will then not come."
)
SAID_DONE_IN_APP = N_("If you finished your {slot} session, open it with ▶ Start and record it there.")


@dataclass(frozen=True)
class SaidDone:
    """What the free-text offer adds for a typed "done": a line, and a button (or, without health data in
    the chat, the Mini App button that opens the session)."""

    line: str
    button: tuple[str, str] | None = None  # (label, callback data)
    web_app: tuple[str, str] | None = None  # (label, url)


async def said_done(s: Services, patient: Patient, text: str) -> SaidDone | None:
    """A short message that says a session is done, while today's session still waits for its answer:
    how to record it. None otherwise (most messages: session.says_done reads no database)."""
    if not core.says_done(text):
        return None
    async with s.db.session() as db:
        es = await core.awaiting_answer(db, patient, s.clock.now())
        ahead = None if es is not None else await core.ahead_today(db, s.content, patient, s.clock.now())
    lang = patient.language
    if ahead is not None and s.config.privacy.health_data_in_chat:  # exercised before the reminder
        data = SAID_AHEAD_PREFIX + ahead.slot.replace(":", "")
        return SaidDone(t(lang, SAID_AHEAD, slot=ahead.slot), button=(t(lang, N_("✅ Done")), data))
    if es is None or es.id is None:
        return None
    if not s.config.privacy.health_data_in_chat:  # the answers are given in the Mini App
        url = s.config.web.public_url
        if not url:
            return None
        return SaidDone(
            t(lang, SAID_DONE_IN_APP, slot=es.slot), web_app=(t(lang, START), miniapp.session_url(url, es.id))
        )
    return SaidDone(t(lang, SAID_DONE, slot=es.slot), button=(t(lang, N_("✅ Done")), f"{SAID_DONE_PREFIX}{es.id}"))


QUESTION_WAITING = N_(
    "Your {slot} session's question above is still waiting: please tap your answer there. "
    "Typed text does not answer it."
)


async def question_waiting_line(s: Services, patient: Patient) -> str | None:
    """The line for the offer on typed text while a session question (effort, pain, why) waits for a tap: an
    outside test typed "hard" and "9" under them and only got the offer, its answers silently not recorded."""
    async with s.db.session() as db:
        es = await core.question_waiting(db, patient, s.clock.now())
    return None if es is None else t(patient.language, QUESTION_WAITING, slot=es.slot)


async def on_said_done_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """✅ Done under the offer for a typed "done": record the session as the reminder's ✅ does (its
    effort and pain questions follow); the offer keeps "send to my care team" and "save as a note"."""
    query, user = update.callback_query, update.effective_user
    assert query is not None
    offer = query.message if isinstance(query.message, Message) else None
    data = query.data or ""
    session_id = number(data.removeprefix(SAID_DONE_PREFIX), 12) if data.startswith(SAID_DONE_PREFIX) else None
    if offer is None or user is None or session_id is None or data not in buttons_on(offer):
        await _neutral(update, context)
        raise ApplicationHandlerStop
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        patient = await patients.find(db, user.id)
        es = await core.get(db, session_id)
        if patient is None or patient.id is None or es is None or es.patient_id != patient.id:
            await _neutral(update, context)
            raise ApplicationHandlerStop
        reminder = es.message_id  # the session's live message: the press counts as a press there
        press = core.Press(session_id, core.Action.DONE)
        applied = await core.apply_press(db, patient, press, message_id=reminder, now=now)
        streak = (await core.stats(db, patient, now)).streak_days if applied is not None else 0
        await db.commit()
        lang = patient.language
    # Answered meanwhile (the reminder's own button, the Mini App) or the day is over: applied is None.
    said = t(lang, SAID_DONE, slot=applied.session.slot) if applied is not None else ""
    if await _logged_on_offer(query, offer, data, lang, streak, said, applied is not None):
        if reminder is not None and reminder != offer.message_id:
            await _drop_buttons(context.bot, offer.chat_id, reminder)  # one place to answer a session
        await _ask_next(s, offer, session_id, lang, core.Action.DONE)
    raise ApplicationHandlerStop


async def _logged_on_offer(
    query: CallbackQuery, offer: Message, data: str, lang: str, streak: int, said: str, recorded: bool
) -> bool:
    """The offer's ✅ Done answered: recorded, its line ``said`` becomes "✅ Logged: done." with the streak;
    not (a stale press), "no longer active". Either way the button goes and the offer keeps its others."""
    if not recorded:
        await query.answer(t(lang, STALE))
        await _edit(offer, None, keyboard_without(offer, data))
        return False
    await query.answer()
    logged = t(lang, OUTCOME_LINES[core.Status.DONE]) + " " + streak_line(lang, streak)
    text = offer.text or ""
    await _edit(
        offer, text.replace(said, logged) if said in text else f"{text}\n\n{logged}", keyboard_without(offer, data)
    )
    return True


async def on_said_ahead_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """✅ Done under the offer for a typed "done" before today's next session was reminded: record that
    session Done (rehab_bot.session.record_ahead; its reminder then does not come), and its effort and pain
    questions follow. A stale press (the reminder went out meanwhile, a new day) changes nothing."""
    query, user = update.callback_query, update.effective_user
    assert query is not None
    offer = query.message if isinstance(query.message, Message) else None
    data = query.data or ""
    digits = data.removeprefix(SAID_AHEAD_PREFIX)
    hhmm = f"{digits[:2]}:{digits[2:]}" if len(digits) == 4 and digits.isascii() and digits.isdigit() else None
    if offer is None or user is None or hhmm is None or data not in buttons_on(offer):
        await _neutral(update, context)
        raise ApplicationHandlerStop
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        patient = await patients.find(db, user.id)
        if patient is None or patient.id is None:
            await _neutral(update, context)
            raise ApplicationHandlerStop
        applied = await core.record_ahead(db, s.content, patient, hhmm, now)
        streak = (await core.stats(db, patient, now)).streak_days if applied is not None else 0
        await db.commit()
        lang = patient.language
    recorded = applied is not None and applied.session.id is not None
    if await _logged_on_offer(query, offer, data, lang, streak, t(lang, SAID_AHEAD, slot=hhmm), recorded):
        assert applied is not None and applied.session.id is not None
        await _ask_next(s, offer, applied.session.id, lang, core.Action.DONE)
    raise ApplicationHandlerStop


# --- the end-of-day sweep --------------------------------------------------------------------


async def sweep(app: App) -> list[core.Missed]:
    """Record the sessions still open after their local day as missed; take their buttons away."""
    services = svc(app)
    async with services.db.session() as db:
        missed = await core.sweep_missed(db, services.clock.now())
        await experiment.record_outcomes(db, services.content, services.clock.now())  # experiments' outcomes
        await db.commit()
    for item in missed:
        if item.chat_id is not None and item.message_id is not None:
            await _drop_buttons(app.bot, item.chat_id, item.message_id)
    if missed:
        log.info("recorded %d sessions as missed", len(missed))
    return missed


async def sweep_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The repeating job: run the sweep at the injected clock's now."""
    await sweep(app_of(context))


def register(app: App) -> None:
    """Add the session button handler and the missed-session sweep."""
    app.add_handler(CallbackQueryHandler(on_press, pattern=r"^s:"))
    app.add_handler(CallbackQueryHandler(on_said_done_pressed, pattern=r"^sd:"))
    app.add_handler(CallbackQueryHandler(on_said_ahead_pressed, pattern=r"^sa:"))
    services = svc(app)
    if app.job_queue is not None:
        # Minutes matter little here (a day ends once); the engine's poll
        # interval keeps tests, which slow that right down, in charge of it.
        interval = max(60.0, services.config.delivery.poll_interval)
        repeat(app, sweep_job, every=interval, first=interval, name=SWEEP_JOB)
