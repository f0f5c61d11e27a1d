"""Messages to and from the care team in chat: thin handlers over rehab_bot.message.

Patients: free text that is no crisis (crisis watch ran first, group -5) is
offered to be sent to the care team (``nt:c``), next to the note and the
symptom check (rehab_bot/bot/checkin.py); a photo is offered the same way, and so is
a JPEG or PNG sent "as a file" (kept without its EXIF, which Telegram strips only
from photos).
A Telegram reply to a staff member's reply goes straight to the care team,
threaded. The patient is told when the clinic reads it (office hours) and,
always, the clinic's emergency text.

Staff: the notice of a patient's message carries **Reply** (``cm:r:<id>:<patient id>``)
and **Mark read** (``cm:k:<id>:<patient id>``; the patient too, because a deleted
patient's message id can be another's later on SQLite); a reply is typed after pressing Reply, or
sent as a Telegram reply to the notice. Every press and every reply rechecks
the staff member and their access in the core. Staff-facing text is in the staff
member's language (Staff.language): the notice and its buttons in the one its delivery
payload carries (rehab_bot.staff.payload_language; English for older payloads).

Callback data is parsed as ints, never trusted; a press on anything else
gets the neutral stale answer.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, WebAppInfo
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from rehab_bot import alert as alert_core
from rehab_bot import crisis, formats, media, miniapp
from rehab_bot import message as core
from rehab_bot import patient as patients
from rehab_bot import staff as staff_core
from rehab_bot.access import StaffError
from rehab_bot.bot import common
from rehab_bot.bot.services import App, svc
from rehab_bot.config import photo_dir
from rehab_bot.content import localize
from rehab_bot.i18n import N_, t
from rehab_bot.models import CareMessage, Patient, Staff, table_of
from rehab_bot.reminders import DueMessage
from rehab_bot.schedule import zone
from rehab_bot.transport import OutgoingMedia, OutgoingMessage, SentItem
from rehab_bot.typed import number

log = logging.getLogger(__name__)

STAFF_TEXT_GROUP = -4  # before the staff conversations (-3): a reply to a notice is ours
PATIENT_GROUP = 9  # after every feature, before the free-text offer (10)

SEND_LABEL = N_("✉️ Send to my care team")
SENT_OPEN = N_("✉️ Sent to your care team. They read messages during working hours and answer here.")
SENT_CLOSED = N_("✉️ Sent to your care team. The clinic is closed now: your message will be read from {when}.")
PHOTO_OFFER = N_("Shall I send this photo to your care team?")
PHOTO_TOO_LARGE = N_("This photo is too large (at most {mb} MB). Please send a smaller one.")
GONE = N_("I could not find that message any more. Please send it again.")
STALE = N_("This button is no longer active.")

WRITE_IN_APP = N_("✉️ Write to my care team")
IN_APP = N_("To reach your care team, please write in the app: your messages and photos stay on the clinic's server.")
NEUTRAL_NOTICE = N_("✉️ New message from {alias}. Open the dashboard to read it.")

REPLY_LABEL = N_("↩️ Reply")
READ_LABEL = N_("✓ Mark read")
A_PATIENT = N_("a patient")
THE_PATIENT = N_("the patient")
ALREADY_READ = N_("Already marked read by {name}.")
MARKED_READ = N_("Marked read.")
READ_NOTE = N_("✓ Read by {name}, {when}.")
REPLY_PROMPT = N_("Type your reply to {alias}; it is sent as you write it, signed with your name. /cancel to stop.")
REPLY_SENT = N_("✅ Reply to {alias} on its way.")


def offer_button(lang: str) -> tuple[str, str]:
    """The "send to my care team" button under the free-text offer."""
    return (t(lang, SEND_LABEL), "nt:c")


def app_button(lang: str, public_url: str) -> InlineKeyboardButton:
    """Privacy mode: the button that opens the Mini App's messages page instead of sending through the chat."""
    return InlineKeyboardButton(t(lang, WRITE_IN_APP), web_app=WebAppInfo(miniapp.messages_url(public_url)))


async def _to_the_app(message: Message, lang: str, public_url: str) -> None:
    """Privacy mode: messages and photos for the care team go through the Mini App, not the chat."""
    await message.reply_text(
        t(lang, IN_APP), reply_markup=InlineKeyboardMarkup([[app_button(lang, public_url)]]), do_quote=True
    )


def _markup(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup | None:
    rows = [row for row in rows if row]
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=d) for label, d in row] for row in rows])


def sent_text(lang: str, reads_from: datetime | None, tz: str, emergency: str) -> str:
    """What the patient reads once their message is on its way: when it is read (in their own
    timezone), and the emergency text."""
    if reads_from is None:
        head = t(lang, SENT_OPEN)
    else:
        head = t(lang, SENT_CLOSED, when=formats.soon(reads_from, tz, lang, weekday=True))
    return head + ("\n\n" + emergency if emergency else "")


# --- the engine's renderer --------------------------------------------------------------


async def render_message(app: App, due: DueMessage) -> OutgoingMessage | None:
    """A care message: to staff with its photo and the Reply / Mark read buttons (in the language the payload
    carries); to the patient as a reply."""
    s = svc(app)
    message_id, reply_to = core.parse_payload(due.payload)
    if message_id is None:
        return OutgoingMessage(due.body) if due.body else None
    async with s.db.session() as db:
        message = await db.get(CareMessage, message_id)
    if message is None:
        return None
    if message.direction == core.OUT:
        return OutgoingMessage(due.body, reply_to=reply_to, settle=(_settle_replies, (s, message.id)))
    lang = staff_core.payload_language(due.payload)
    if not s.config.privacy.health_data_in_chat:
        # Privacy mode: the staff chat learns only that a message is waiting; it is read on the dashboard.
        async with s.db.session() as db:
            patient = await db.get(Patient, message.patient_id)
        alias = patient.alias if patient is not None else t(lang, A_PATIENT)
        return OutgoingMessage(t(lang, NEUTRAL_NOTICE, alias=alias), [[(t(lang, READ_LABEL), _button("k", message))]])
    media = None
    if message.photo_file_id or message.photo_path:
        source = str(photo_dir(s.config) / message.photo_path) if message.photo_path else ""
        media = OutgoingMedia("photo", source, message.photo_file_id or None)
    buttons = [[(t(lang, REPLY_LABEL), _button("r", message)), (t(lang, READ_LABEL), _button("k", message))]]
    return OutgoingMessage(due.body, buttons, media=media, reply_to=reply_to)


async def _settle_replies(db: AsyncSession, items: list[SentItem]) -> None:
    """After a window, in its transaction: the chat message id of each reply, so the patient's Telegram reply
    continues the thread."""
    rows = [{"cid": item.data[1], "mid": item.message_id} for item in items]
    table = table_of(CareMessage)
    conn = await db.connection()
    await conn.execute(
        update(table).where(table.c.id == bindparam("cid")).values(chat_message_id=bindparam("mid")), rows
    )


# A photo sent "as a file": the kinds the bot keeps (rehab_bot.media.photo_kind); other files are not passed on.
PHOTO_FILE_TYPES = ("image/jpeg", "image/png")
PHOTO_FILE = filters.Document.MimeType(PHOTO_FILE_TYPES[0]) | filters.Document.MimeType(PHOTO_FILE_TYPES[1])


def has_photo(message: Message) -> bool:
    """A photo, or a JPEG or PNG sent "as a file": both reach the care team as a photo."""
    document = message.document
    return bool(message.photo) or (document is not None and document.mime_type in PHOTO_FILE_TYPES)


async def _download(context: ContextTypes.DEFAULT_TYPE, message: Message, lang: str) -> tuple[str, str, int] | None:
    """Keep a message's photo (its largest size, or the JPEG or PNG file) under [care] photo_dir; None (patient
    told) if too large or no photo after all.

    A file keeps what a photo loses on its way through Telegram (EXIF: the phone's GPS position, the time,
    the camera), so it is kept re-encoded with its pixels only, as the Mini App keeps uploads, and its
    Telegram file_id is not kept: the staff notice shows the cleaned copy."""
    s = svc(context)
    limit = s.config.care.photo_max_bytes
    document = None if message.photo else message.document
    size = message.photo[-1] if message.photo else document
    assert size is not None
    megabytes = f"{limit / 1_000_000:g}"
    too_large = t(lang, PHOTO_TOO_LARGE, mb=megabytes)
    if size.file_size is not None and size.file_size > limit:
        await message.reply_text(too_large)
        return None
    file = await context.bot.get_file(size.file_id)
    data = bytes(await file.download_as_bytearray())
    if document is not None and len(data) <= limit:  # larger: refused below, never decoded
        cleaned = await asyncio.to_thread(media.photo, data)
        if cleaned is None:  # named a JPEG or PNG, but no picture Pillow can read
            await message.reply_text(t(lang, FILE))
            return None
        data = cleaned
    try:
        name = core.store_photo(photo_dir(s.config), data, limit)
    except core.PhotoTooLarge:
        await message.reply_text(too_large)
        return None
    return name, "" if document is not None else size.file_id, len(data)


async def _send(
    context: ContextTypes.DEFAULT_TYPE,
    patient: Patient,
    original: Message,
    *,
    parent: CareMessage | None = None,
) -> str | None:
    """Store and queue the patient's message (text and/or photo); the text to answer with, None if refused."""
    s = svc(context)
    lang = patient.language
    photo = ("", "", 0)
    if has_photo(original):
        downloaded = await _download(context, original, lang)
        if downloaded is None:
            return None
        photo = downloaded
    text = original.text or original.caption or ""
    now = s.clock.now()
    async with s.db.session() as db:
        fresh = await db.get(Patient, patient.id)
        assert fresh is not None
        sent = await core.send(
            db,
            fresh,
            s.config.clinic,
            text=text,
            now=now,
            chat_message_id=original.message_id,
            parent=parent,
            photo_path=photo[0],
            photo_file_id=photo[1],
            photo_bytes=photo[2],
        )
        await db.commit()
    return sent_text(lang, sent.reads_from, patient.timezone, s.config.clinic.text("emergency_text", lang))


async def on_patient_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A patient's answer to a staff reply goes to the care team; a photo is offered to be sent."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    s = svc(context)
    replied = message.reply_to_message
    async with s.db.session() as db:
        patient = await patients.find_in_care(db, user.id)
        if patient is None:
            return
        parent = None
        if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
            parent = await core.reply_target(db, patient, replied.message_id)
    lang = patient.language
    if not s.config.privacy.health_data_in_chat and (parent is not None or has_photo(message)):
        await _to_the_app(message, lang, s.config.web.public_url)
        await _offer_symptom_check(message, context, patient)
        raise ApplicationHandlerStop
    if parent is not None:
        answer = await _send(context, patient, message, parent=parent)
        if answer is not None:
            await message.reply_text(answer, do_quote=True)
        await _offer_symptom_check(message, context, patient)
        raise ApplicationHandlerStop
    if has_photo(message):
        buttons = [[offer_button(lang)], [(t(lang, "No, thanks"), "nt:x")]]
        await message.reply_text(t(lang, PHOTO_OFFER), reply_markup=_markup(buttons), do_quote=True)
        await _offer_symptom_check(message, context, patient)
        raise ApplicationHandlerStop


async def _offer_symptom_check(message: Message, context: ContextTypes.DEFAULT_TYPE, patient: Patient) -> None:
    """Symptom triage on what the patient wrote: the check that asks the right questions, one tap away."""
    s = svc(context)
    check = crisis.symptom_check_for(message.text or message.caption or "", s.content)
    if check is None:
        return
    lang = patient.language
    title = localize(s.content.questionnaires[check].title, lang)
    text = t(
        lang,
        "If this is about a symptom, please answer the check with one tap: it asks the right questions, "
        "and your answers reach your care team.",
    )
    await message.reply_text(text, reply_markup=_markup([[(f"🩺 {title}", f"sc:{check}")]]))


async def on_send_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """ "Send to my care team" under the offer: send the patient's message the offer replied to."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    offer = common.message_of(query)
    original = offer.reply_to_message if offer is not None else None
    async with s.db.session() as db:
        patient = await patients.find_heard(db, query.from_user.id)  # offered during enrolment too (bot/enrol.py)
    offered = offer is not None and query.data in common.buttons_on(offer)
    if patient is None or offer is None or not offered:
        await query.answer(t(await common.language_for(update, context), STALE))
        raise ApplicationHandlerStop
    lang = patient.language
    if not s.config.privacy.health_data_in_chat:  # an offer from before privacy mode was switched on
        await query.answer()
        await _edit(offer, t(lang, IN_APP))
        await _to_the_app(offer, lang, s.config.web.public_url)
        raise ApplicationHandlerStop
    own = original is not None and original.from_user is not None and original.from_user.id == query.from_user.id
    if not own or original is None or not (original.text or has_photo(original)):
        await query.answer()
        await _edit(offer, t(lang, GONE))
        raise ApplicationHandlerStop
    async with s.db.session() as db:
        assert patient.id is not None
        again = await core.sent_before(db, patient.id, original.message_id) is not None
    if again:  # a second tap (or a tap on an old offer) before its buttons went: sent once already
        await query.answer(t(lang, STALE))
        raise ApplicationHandlerStop
    await query.answer()
    answer = await _send(context, patient, original)
    await _edit(offer, answer if answer is not None else t(lang, "OK, not saved."))
    raise ApplicationHandlerStop


async def _edit(message: Message, text: str) -> None:
    try:
        await message.edit_text(text, reply_markup=None)
    except TelegramError as exc:
        log.info("could not edit a care message offer: %s", type(exc).__name__)


# --- staff ------------------------------------------------------------------------------


async def _active_staff(db: AsyncSession, telegram_id: int) -> Staff | None:
    rows = await db.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id, col(Staff.active).is_(True)))
    return rows.first()


def _when(staff: Staff, at: datetime) -> str:
    local = at.astimezone(zone(staff.timezone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or staff.timezone}"


async def on_staff_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply / Mark read under a message notice: the staff member and their access are checked again."""
    query = update.callback_query
    assert query is not None
    press = _press(query.data or "")
    message = common.message_of(query)
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        staff = await _active_staff(db, query.from_user.id)
        if staff is None or press is None:
            if staff is None:
                await common.unknown_button(update, context)
            else:
                await query.answer(t(staff.language, STALE))
            raise ApplicationHandlerStop
        action, message_id, patient_id = press
        lang = staff.language  # read now: a rollback below expires the row
        try:
            if action == "k":
                marked = await core.mark_read(db, staff, message_id, now, patient_id=patient_id)
                await db.commit()
                if not marked.now:
                    await query.answer(t(lang, ALREADY_READ, name=alert_core.who(marked.by, lang)))
                    raise ApplicationHandlerStop
                await query.answer(t(lang, MARKED_READ))
                if message is not None:
                    original = message.text or message.caption or ""
                    note = "\n\n" + t(lang, READ_NOTE, name=staff.name, when=_when(staff, now))
                    try:
                        if message.photo:
                            await message.edit_caption((original + note)[-1024:], reply_markup=None)
                        else:
                            await message.edit_text(original + note, reply_markup=None)
                    except TelegramError as exc:
                        log.info("could not edit a message notice: %s", type(exc).__name__)
                raise ApplicationHandlerStop
            _, patient = await core.start_reply(db, staff, message_id, now, patient_id=patient_id)
            await db.commit()
        except StaffError as exc:
            await db.rollback()
            await query.answer(exc.text(lang), show_alert=True)
            raise ApplicationHandlerStop from None
        await query.answer()
        prompt = await context.bot.send_message(
            staff.telegram_id,
            t(lang, REPLY_PROMPT, alias=patient.alias),
            reply_markup=ForceReply(selective=True),
        )
        await core.remember_prompt(db, staff, prompt.message_id)
        await db.commit()
    raise ApplicationHandlerStop


def _button(action: str, message: CareMessage) -> str:
    """A notice's button: ``cm:<action>:<care message id>:<patient id>``."""
    return f"cm:{action}:{message.id}:{message.patient_id}"


def _press(data: str) -> tuple[str, int, int] | None:
    """``cm:r:<id>:<patient id>`` (Reply) or ``cm:k:...`` (Mark read) as (action, care message id, patient id);
    None for anything else."""
    parts = data.split(":")
    if (
        len(parts) == 4
        and parts[0] == "cm"
        and parts[1] in ("r", "k")
        and (care_id := number(parts[2], 9))
        and (patient_id := number(parts[3], 9))
    ):
        return parts[1], care_id, patient_id
    return None


def _noticed(notice: Message) -> tuple[int, int] | None:
    """The care message and patient a notice's Reply button names, if it carries one."""
    for data in common.buttons_on(notice):
        press = _press(data)
        if press is not None and press[0] == "r":
            return press[1], press[2]
    return None


TEXT_ONLY = N_("Only a text reply reaches the patient, so nothing was sent. Please write your answer as text.")


async def on_staff_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A staff member's reply: typed after pressing Reply, or a Telegram reply to a notice. Else not ours.

    A reply that is not text (a photo, a file, a voice message) is not passed on, and the staff member
    is told so; the Reply started with the button stays open for the text.
    """
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    s = svc(context)
    now = s.clock.now()
    async with s.db.session() as db:
        staff = await _active_staff(db, user.id)
        if staff is None:
            return
        lang = staff.language  # read now: a rollback below expires the row
        target, named = None, None  # the care message answered; the patient a notice's button named
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
            target = await core.staff_reply_target(db, staff.telegram_id, replied.message_id)
            if target is None and (noticed := _noticed(replied)) is not None:
                # Its delivery is gone (the patient deleted their data): the notice's Reply button still
                # names the message and patient, so the reply is refused in words rather than left to
                # the fallback, and never reaches another patient's message that took the same id.
                target, named = noticed
        from_draft = False
        if target is None:
            target = await core.pending_reply(db, staff, now)
            from_draft = target is not None
        if target is None:
            await db.commit()  # a stale reply draft was dropped
            return
        if message.text is None:  # a photo, file, sticker or voice message: only text is passed on
            await db.commit()
            await message.reply_text(t(lang, TEXT_ONLY))
            raise ApplicationHandlerStop
        try:
            answer = await core.reply(
                db,
                staff,
                target,
                message.text,
                now,
                s.config.clinic,
                neutral=not s.config.privacy.health_data_in_chat,
                patient_id=named,
            )
            if from_draft:
                await core.finish_reply(db, staff)
            patient = await db.get(Patient, answer.patient_id)
            await db.commit()
        except StaffError as exc:
            await db.rollback()
            await message.reply_text(exc.text(lang))
            raise ApplicationHandlerStop from None
    alias = patient.alias if patient is not None else t(lang, THE_PATIENT)
    log.info("staff %s replied to care message %s", staff.id, target)
    await message.reply_text(t(lang, REPLY_SENT, alias=alias))
    raise ApplicationHandlerStop


VOICE = N_(
    "I cannot listen to voice or video messages. Please type your message instead: I will offer to pass it "
    "on to your care team."
)


FILE = N_(
    "I cannot pass on files. To show your care team a photo, please send it as a photo (not as a file); "
    "to write to them, type your message: I will offer to pass it on."
)


UNREAD = N_(
    "I can read typed messages and photos. To reach your care team, type your message: I will offer to pass "
    "it on. Type /help to see what else I can do."
)


async def on_patient_voice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A patient's voice, video or audio message: the bot cannot hear or see it, so the patient is asked to type,
    with the clinic's emergency text (it may have been urgent). Not a patient in care: the fallbacks answer."""
    await _cannot_pass_on(update, context, VOICE)


async def on_patient_file(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A patient's file other than a JPEG or PNG (those are photos: on_patient_message): not passed on, so the
    patient is told how to send a photo or a message, with the clinic's emergency text. Not a patient in care:
    the fallbacks answer."""
    await _cannot_pass_on(update, context, FILE)


async def on_patient_unread(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A patient's sticker, location, contact, dice or poll: nothing the bot reads, and there are no buttons to
    point at, so the patient is told what it reads and how to reach the care team, with the clinic's emergency
    text. Not a patient in care: the fallbacks answer."""
    await _cannot_pass_on(update, context, UNREAD)


async def _cannot_pass_on(update: Update, context: ContextTypes.DEFAULT_TYPE, msgid: str) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    s = svc(context)
    async with s.db.session() as db:
        patient = await patients.find_in_care(db, user.id)
    if patient is None:
        return
    lang = patient.language
    await message.reply_text(t(lang, msgid) + "\n\n" + s.config.clinic.text("emergency_text", lang), do_quote=True)
    raise ApplicationHandlerStop


# --- registration -----------------------------------------------------------------------


def register(app: App) -> None:
    """Add the patients' message handlers and the staff's Reply / Mark read."""
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(MessageHandler(private & ~filters.COMMAND, on_staff_text), group=STAFF_TEXT_GROUP)
    app.add_handler(
        MessageHandler(private & ((filters.TEXT & ~filters.COMMAND) | filters.PHOTO | PHOTO_FILE), on_patient_message),
        group=PATIENT_GROUP,
    )
    spoken = filters.VOICE | filters.VIDEO_NOTE | filters.VIDEO | filters.AUDIO
    app.add_handler(MessageHandler(private & spoken, on_patient_voice), group=PATIENT_GROUP)
    app.add_handler(MessageHandler(private & filters.Document.ALL, on_patient_file), group=PATIENT_GROUP)
    unread = filters.Sticker.ALL | filters.LOCATION | filters.CONTACT | filters.Dice.ALL | filters.POLL
    app.add_handler(MessageHandler(private & unread, on_patient_unread), group=PATIENT_GROUP)
    app.add_handler(CallbackQueryHandler(on_send_pressed, pattern=r"^nt:c$"))
    app.add_handler(CallbackQueryHandler(on_staff_button, pattern=r"^cm:"))
