"""Messages between a patient and their care team: sent, answered, read, escalated.

A patient's message (text, a photo, or both) is a :class:`CareMessage` with
direction ``in``; a staff member's reply one with direction ``out`` whose
``parent_id`` is the message it answers, so a conversation is a thread.
Telling somebody about a message is a delivery of kind ``message`` through the
engine like every other message (durable, paced, never dropped by the grace
period): to the responsible therapist (else the admins, else every staff
member: :func:`rehab_bot.alert.route` without the alert chat, which is for
alerts), and a reply to the patient's chat as a Telegram reply to the
message it answers. The delivery payload ``{"cm": id}`` names the message;
``reply_to`` the message id in the reader's chat to reply to.

Access (rehab_bot/access.py), rechecked on every call: replying and marking
read change the record and need WRITE (the responsible therapist, an admin);
reading a thread needs READ. Every view and change is audited.

A message nobody replied to nor marked read within ``[care]
escalate_after_hours`` of office time (rehab_bot/office_hours.py) goes to
every admin, once (:func:`escalate_unanswered`, from the engine's clinic tick).

Photos are kept as files under ``[care] photo_dir`` (folder 0700, files
0600), named by a random token, never by anything about the patient; the log
never names them. Plain Python: no telegram imports.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from babel.numbers import format_decimal
from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import alert as alert_core
from rehab_bot import audit, typed
from rehab_bot.access import Access, Forbidden, StaffError, require
from rehab_bot.config import ClinicConfig, Config
from rehab_bot.db import REPEAT_WINDOW, lock_row
from rehab_bot.files import private_dir, write_private_bytes
from rehab_bot.i18n import N_, t
from rehab_bot.models import (
    CareMessage,
    Delivery,
    Kind,
    Patient,
    PatientStatus,
    Role,
    Staff,
    StaffDraft,
    delivery_row,
    queue_deliveries,
    table_of,
)

log = logging.getLogger(__name__)

IN = "in"
OUT = "out"
MAX_TEXT = 3500  # what a staff member may write in one reply (Telegram's limit is 4096 with our label)

SEND = "message.send"  # audit actions
REPLY = "message.reply"
READ = "message.read"
VIEW_THREAD = "view.thread"
PHOTO_VIEW = "view.photo"
REPLY_DRAFT_TTL = timedelta(hours=24)


class PhotoTooLarge(ValueError):
    """A photo over [care] photo_max_bytes."""


# --- photos -----------------------------------------------------------------------------


def store_photo(directory: Path, data: bytes, limit: int) -> str:
    """Keep a patient's photo as a private file; return its file name (random, says nothing)."""
    if len(data) > limit:
        raise PhotoTooLarge(f"{len(data)} bytes")
    private_dir(directory)
    name = f"{secrets.token_hex(16)}.jpg"
    write_private_bytes(directory / name, data)
    return name


def photo_bytes(directory: Path, message: CareMessage) -> bytes | None:
    """A stored photo's bytes (for the dashboard, after an access check), or None."""
    if not message.photo_path or "/" in message.photo_path or message.photo_path.startswith("."):
        return None
    path = directory / message.photo_path
    try:
        return path.read_bytes()
    except OSError:
        return None


def delete_photos(directory: Path, names: list[str]) -> None:
    """Remove photo files (the patient deleted their data)."""
    for name in names:
        if name and "/" not in name and not name.startswith("."):
            try:
                (directory / name).unlink()
            except FileNotFoundError:
                pass


# --- office hours -----------------------------------------------------------------------


def reads_from(clinic: ClinicConfig, now: datetime) -> datetime | None:
    """None while the clinic is open (or has no office hours); else when it opens next."""
    hours = clinic.office_hours
    if not hours.configured or hours.is_open(now, clinic.timezone):
        return None
    return hours.add_open_time(now, timedelta(0), clinic.timezone)


# --- deliveries -------------------------------------------------------------------------


def payload(message_id: int, reply_to: int | None = None, lang: str | None = None) -> str:
    """The delivery payload naming a care message (and the chat message to reply to); lang: the staff
    reader's language, so the renderer words the notice's buttons in it (see staff.payload_language)."""
    data: dict[str, int | str] = {"cm": message_id}
    if reply_to is not None:
        data["reply_to"] = reply_to
    if lang is not None:
        data["lang"] = lang
    return json.dumps(data)


def parse_payload(text: str) -> tuple[int | None, int | None]:
    """(care message id, message id to reply to) from a delivery payload; Nones if it is not ours."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None

    def number(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return number("cm"), number("reply_to")


def _row(
    key: str, chat_id: int, staff_id: int | None, patient_id: int, body: str, now: datetime, data: str
) -> dict[str, Any]:
    return delivery_row(key, Kind.MESSAGE, chat_id, body, now, patient_id=patient_id, staff_id=staff_id, payload=data)


async def _staff_chat_message(session: AsyncSession, message_id: int | None, chat_id: int) -> int | None:
    """The id of the message in a staff chat that told this reader about a care message."""
    if message_id is None:
        return None
    rows = await session.exec(
        select(Delivery.message_id).where(
            col(Delivery.kind) == Kind.MESSAGE.value,
            col(Delivery.chat_id) == chat_id,
            or_(col(Delivery.payload) == payload(message_id), col(Delivery.payload).like(f'{{"cm": {message_id},%')),
            col(Delivery.message_id).is_not(None),
        )
    )
    return rows.first()


ANSWERED = N_("💬 {alias} answered your team's reply")
PHOTO_FROM = N_("📷 Photo from {alias}")
MESSAGE_FROM = N_("💬 Message from {alias}")


def staff_text(message: CareMessage, patient: Patient, parent: CareMessage | None, lang: str = "en") -> str:
    """What a staff member reads about a patient's message, in their language (the patient's words as written)."""
    if parent is not None and parent.direction == OUT:
        head = t(lang, ANSWERED, alias=patient.alias)
    elif message.photo_path or message.photo_file_id:
        head = t(lang, PHOTO_FROM, alias=patient.alias)
    else:
        head = t(lang, MESSAGE_FROM, alias=patient.alias)
    return head + (f":\n\n{message.text}" if message.text else ".")


# --- a patient writes -------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A patient's message, stored; who it went to; when the clinic reads it (None: open now)."""

    message: CareMessage
    recipients: int
    reads_from: datetime | None
    repeated: bool = False  # the same message again (see REPEAT_WINDOW): nothing new stored or sent


async def repeated_message(
    session: AsyncSession, patient: Patient, text: str, photo_bytes: int, parent: CareMessage | None, now: datetime
) -> CareMessage | None:
    """The patient's last message, if this one repeats it: the same text (and photo size) in the same
    thread, within REPEAT_WINDOW, nothing written in the thread since. A form without a chat message
    to name it (the Mini App) posted twice (a double tap, a reload, a retried request) is sent once.

    The patient's row is locked first (db.lock_row), so a second post racing the first waits for it
    to commit and then finds it.
    """
    assert patient.id is not None
    await lock_row(session, table_of(Patient), patient.id)
    found = await session.exec(
        select(CareMessage)
        .where(col(CareMessage.patient_id) == patient.id)
        .order_by(col(CareMessage.created_at).desc(), col(CareMessage.id).desc())
        .limit(1)
    )
    last = found.first()
    same = (
        last is not None
        and last.direction == IN
        and last.text == text  # send() cleaned it as it is stored (typed.text)
        and last.photo_bytes == photo_bytes
        and last.parent_id == (parent.id if parent is not None else None)
        and timedelta(0) <= now - last.created_at <= REPEAT_WINDOW
    )
    return last if same else None


async def sent_before(session: AsyncSession, patient_id: int, chat_message_id: int) -> CareMessage | None:
    """The patient's message to the care team that this chat message already became, if any
    (a second tap on Send to my care team sends nothing twice)."""
    found = await session.exec(
        select(CareMessage).where(
            col(CareMessage.patient_id) == patient_id,
            col(CareMessage.direction) == IN,
            col(CareMessage.chat_message_id) == chat_message_id,
        )
    )
    return found.first()


async def send(
    session: AsyncSession,
    patient: Patient,
    clinic: ClinicConfig,
    *,
    text: str,
    now: datetime,
    chat_message_id: int | None = None,
    parent: CareMessage | None = None,
    photo_path: str = "",
    photo_file_id: str = "",
    photo_bytes: int = 0,
) -> Sent:
    """Store a patient's message to the care team and queue it for the people who read it.

    The text is stored as typed.text reads it (no control characters: PostgreSQL refuses NUL).
    """
    assert patient.id is not None
    text = typed.text(text)
    if parent is not None and parent.patient_id != patient.id:
        parent = None  # never thread into another patient's conversation
    if chat_message_id is None:  # a chat message is sent once by its id (sent_before); a form by its content
        earlier = await repeated_message(session, patient, text, photo_bytes, parent, now)
        if earlier is not None:
            return Sent(earlier, 0, reads_from(clinic, now), repeated=True)
    message = CareMessage(
        patient_id=patient.id,
        direction=IN,
        parent_id=parent.id if parent is not None else None,
        text=text,
        photo_path=photo_path,
        photo_file_id=photo_file_id,
        photo_bytes=photo_bytes,
        chat_message_id=chat_message_id,
        created_at=now,
    )
    session.add(message)
    patient.last_activity_at = now
    session.add(patient)
    await session.flush()
    assert message.id is not None
    routing = await alert_core.route(session, patient, clinic)
    people = [r for r in routing.recipients if r.staff_id is not None]
    if not people:
        log.error("care message %d of patient %s reaches no staff member", message.id, patient.id)
    root = await _thread_root(session, parent)
    rows = []
    for person in people:
        reply_to = await _staff_chat_message(session, root.id if root is not None else None, person.chat_id)
        rows.append(
            _row(
                f"cm{message.id}:{person.chat_id}",
                person.chat_id,
                person.staff_id,
                patient.id,
                staff_text(message, patient, parent, person.language),
                now,
                payload(message.id, reply_to, person.language),
            )
        )
    await queue_deliveries(session, rows)
    audit.record(session, action=SEND, now=now, actor="patient", patient_id=patient.id, detail=f"message={message.id}")
    log.info("patient %s sent care message %d (%d recipient(s))", patient.id, message.id, len(rows))
    return Sent(message, len(rows), reads_from(clinic, now))


async def _thread_root(session: AsyncSession, message: CareMessage | None) -> CareMessage | None:
    """The first message of the thread a message belongs to (at most 50 steps up)."""
    current = message
    for _ in range(50):
        if current is None or current.parent_id is None:
            return current
        parent = await session.get(CareMessage, current.parent_id)
        if parent is None:
            return current
        current = parent
    return current


async def reply_target(session: AsyncSession, patient: Patient, replied_chat_message_id: int) -> CareMessage | None:
    """The staff reply a patient answered with Telegram's reply, if it is one of theirs."""
    rows = await session.exec(
        select(CareMessage).where(
            col(CareMessage.patient_id) == patient.id,
            col(CareMessage.direction) == OUT,
            col(CareMessage.chat_message_id) == replied_chat_message_id,
        )
    )
    return rows.first()


async def staff_reply_target(session: AsyncSession, chat_id: int, replied_message_id: int) -> int | None:
    """The care message a staff member answered with Telegram's reply on our notice, if any."""
    rows = await session.exec(
        select(Delivery.payload).where(
            col(Delivery.chat_id) == chat_id,
            col(Delivery.message_id) == replied_message_id,
            col(Delivery.kind) == Kind.MESSAGE.value,
        )
    )
    found = rows.first()
    return parse_payload(found)[0] if found is not None else None


# --- staff answer -----------------------------------------------------------------------


async def _message_for(
    session: AsyncSession, staff: Staff, message_id: int, needed: Access, patient_id: int | None = None
) -> tuple[CareMessage, Patient]:
    """The care message and its patient, if staff may (needed); patient_id: the patient a button named.

    A notice's buttons name the patient too: SQLite gives a new row the highest id + 1, so once a
    patient deletes their data, another patient's next message can take the id their last one had.
    A button still on the deleted patient's notice must not act on it.
    """
    message = await session.get(CareMessage, message_id)
    patient = await session.get(Patient, message.patient_id) if message is not None else None
    if message is None or patient is None or patient_id not in (None, patient.id):
        raise StaffError(N_("This message no longer exists."))
    require(staff, patient, needed)
    return message, patient


def patient_text(patient: Patient, staff: Staff, clinic: ClinicConfig, text: str) -> str:
    """A staff reply as the patient reads it: who wrote it, from which clinic, how to answer."""
    lang = patient.language
    return "\n\n".join(
        [
            t(lang, "💬 {name}, {clinic}:", name=staff.name, clinic=clinic.name),
            text,
            t(lang, "To answer, reply to this message (swipe it left or tap Reply)."),
        ]
    )


def neutral_patient_text(patient: Patient, staff: Staff, clinic: ClinicConfig) -> str:
    """A staff reply as the chat shows it in privacy mode: who answered, not what; read in the Mini App."""
    lang = patient.language
    return t(
        lang,
        "💬 {name}, {clinic}, answered your message. Open My rehab to read it.",
        name=staff.name,
        clinic=clinic.name,
    )


async def reply(
    session: AsyncSession,
    staff: Staff,
    message_id: int,
    text: str,
    now: datetime,
    clinic: ClinicConfig,
    *,
    neutral: bool = False,
    patient_id: int | None = None,
) -> CareMessage:
    """Reply as staff to a patient's message: stored, audited, queued to the patient's chat as a reply.

    neutral ([privacy] health_data_in_chat = false): the chat only says that the team answered; the
    patient reads the reply in the Mini App (/app/messages). patient_id: the patient the notice
    named (_message_for).
    """
    text = typed.text(text)  # nothing visible (a zero-width space) is empty; NUL is never stored
    if not text:
        raise StaffError(N_("The reply is empty."))
    if len(text) > MAX_TEXT:
        raise StaffError(N_("The reply is too long ({n} characters; at most {max})."), n=len(text), max=MAX_TEXT)
    parent, patient = await _message_for(session, staff, message_id, Access.WRITE, patient_id)
    if parent.direction != IN:
        raise StaffError(N_("Only a patient's message can be answered."))
    _reachable(patient)
    assert staff.id is not None and patient.id is not None and patient.telegram_id is not None
    earlier = await _same_reply(session, staff.id, parent.id, text)
    if earlier is not None:
        return earlier  # the same form posted again (a double click, a retried request): sent once
    answer = CareMessage(
        patient_id=patient.id, direction=OUT, staff_id=staff.id, parent_id=parent.id, text=text, created_at=now
    )
    session.add(answer)
    await session.flush()
    assert answer.id is not None
    await session.exec(
        update(CareMessage)
        .where(
            col(CareMessage.patient_id) == patient.id,
            col(CareMessage.direction) == IN,
            col(CareMessage.answered_at).is_(None),
            col(CareMessage.created_at) <= now,
        )
        .values(answered_at=now)
    )
    if parent.read_at is None:
        parent.read_at, parent.read_by = now, staff.id
    parent.answered_at = parent.answered_at or now
    session.add(parent)
    await queue_deliveries(
        session,
        [
            _row(
                f"cm{answer.id}",
                patient.telegram_id,
                None,
                patient.id,
                neutral_patient_text(patient, staff, clinic) if neutral else patient_text(patient, staff, clinic, text),
                now,
                payload(answer.id, parent.chat_message_id),
            )
        ],
    )
    audit.record(
        session,
        action=REPLY,
        now=now,
        staff=staff,
        patient_id=patient.id,
        detail=f"message={parent.id} reply={answer.id}",
    )
    return answer


def _reachable(patient: Patient) -> None:
    """A reply goes only to a patient the bot may still write to: not one whose account is gone, and not one
    who stopped all messages with /stop (nothing is sent to them until they send /resume)."""
    if patient.telegram_id is None:
        raise StaffError(N_("{alias} can no longer be reached through the bot."), alias=patient.alias)
    if patient.status == PatientStatus.STOPPED.value:
        raise StaffError(
            N_("{alias} stopped all messages with /stop: nothing is sent to them until they send /resume."),
            alias=patient.alias,
        )


async def _same_reply(session: AsyncSession, staff_id: int, parent_id: int | None, text: str) -> CareMessage | None:
    """This staff member's reply with this text to this message, if they sent it already.

    The message's row is locked first (db.lock_row), so a second post racing the first waits for it
    to commit and then finds it.
    """
    if parent_id is not None:
        await lock_row(session, table_of(CareMessage), parent_id)
    found = await session.exec(
        select(CareMessage).where(
            col(CareMessage.parent_id) == parent_id,
            col(CareMessage.direction) == OUT,
            col(CareMessage.staff_id) == staff_id,
            col(CareMessage.text) == text,
        )
    )
    return found.first()


@dataclass(frozen=True)
class Marked:
    message: CareMessage
    patient: Patient
    now: bool  # False: it was read before (read_by says by whom)
    by: str  # "" when that staff member is gone: the front end says "someone" in its reader's language


async def mark_read(
    session: AsyncSession, staff: Staff, message_id: int, now: datetime, *, patient_id: int | None = None
) -> Marked:
    """Mark a patient's message read (it needs no answer): recorded once, audited.

    patient_id: the patient the notice named (_message_for).
    """
    message, patient = await _message_for(session, staff, message_id, Access.WRITE, patient_id)
    if message.direction != IN:
        raise StaffError(N_("Only a patient's message can be marked read."))
    if message.read_at is not None:
        reader = await session.get(Staff, message.read_by) if message.read_by is not None else None
        return Marked(message, patient, False, reader.name if reader is not None else "")
    message.read_at, message.read_by = now, staff.id
    session.add(message)
    audit.record(session, action=READ, now=now, staff=staff, patient_id=patient.id, detail=f"message={message.id}")
    return Marked(message, patient, True, staff.name)


async def thread(session: AsyncSession, staff: Staff, patient: Patient, now: datetime) -> list[CareMessage]:
    """A patient's messages and the replies, oldest first (for the dashboard): READ access, audited."""
    require(staff, patient, Access.READ)
    rows = await session.exec(
        select(CareMessage)
        .where(col(CareMessage.patient_id) == patient.id)
        .order_by(col(CareMessage.created_at), col(CareMessage.id))
    )
    audit.record(session, action=VIEW_THREAD, now=now, staff=staff, patient_id=patient.id)
    return list(rows.all())


async def own_thread(session: AsyncSession, patient: Patient) -> list[CareMessage]:
    """The patient's own messages and the team's replies, oldest first (the Mini App: their data only)."""
    rows = await session.exec(
        select(CareMessage)
        .where(col(CareMessage.patient_id) == patient.id)
        .order_by(col(CareMessage.created_at), col(CareMessage.id))
    )
    return list(rows.all())


async def own_message(session: AsyncSession, patient: Patient, message_id: int) -> CareMessage | None:
    """One message the patient wrote (never the team's, never another patient's), or None."""
    found = await session.get(CareMessage, message_id)
    if found is None or found.patient_id != patient.id or found.direction != IN:
        return None
    return found


async def staff_names(session: AsyncSession, messages: list[CareMessage]) -> dict[int, str]:
    """The names of the staff members who wrote or read a thread's messages, by staff id (for labels)."""
    ids = {m.staff_id for m in messages if m.staff_id} | {m.read_by for m in messages if m.read_by}
    if not ids:
        return {}
    rows = await session.exec(select(Staff).where(col(Staff.id).in_(ids)))
    return {s.id: s.name for s in rows.all() if s.id is not None}


async def photo_for_staff(
    session: AsyncSession, staff: Staff, message_id: int, directory: Path, now: datetime
) -> bytes | None:
    """A message's photo for a staff member who may see the patient (dashboard); audited."""
    message, patient = await _message_for(session, staff, message_id, Access.READ)
    data = photo_bytes(directory, message)
    if data is not None:
        audit.record(
            session, action=PHOTO_VIEW, now=now, staff=staff, patient_id=patient.id, detail=f"message={message.id}"
        )
    return data


# --- a reply typed after pressing Reply -------------------------------------------------------

REPLY_DRAFT = "reply"  # StaffDraft.kind; step is "m<care message id>"


async def start_reply(
    session: AsyncSession, staff: Staff, message_id: int, now: datetime, *, patient_id: int | None = None
) -> tuple[CareMessage, Patient]:
    """Staff pressed Reply: check WRITE access and remember (across restarts) what they answer.

    patient_id: the patient the notice named (_message_for).
    """
    message, patient = await _message_for(session, staff, message_id, Access.WRITE, patient_id)
    if message.direction != IN:
        raise StaffError(N_("Only a patient's message can be answered."))
    _reachable(patient)
    assert staff.id is not None
    old = await session.get(StaffDraft, staff.id)
    if old is not None:
        await session.delete(old)
        await session.flush()
    session.add(
        StaffDraft(staff_id=staff.id, kind=REPLY_DRAFT, step=f"m{message.id}", patient_id=patient.id, updated_at=now)
    )
    return message, patient


async def pending_reply(session: AsyncSession, staff: Staff, now: datetime) -> int | None:
    """The care message this staff member is typing a reply to (after pressing Reply), if any."""
    draft = await session.get(StaffDraft, staff.id)
    if draft is None or draft.kind != REPLY_DRAFT or typed.number(draft.step[1:]) is None:
        return None
    if now - draft.updated_at > REPLY_DRAFT_TTL:
        await session.delete(draft)
        return None
    return int(draft.step[1:])


async def finish_reply(session: AsyncSession, staff: Staff) -> None:
    """Forget the reply draft once it was sent."""
    draft = await session.get(StaffDraft, staff.id)
    if draft is not None and draft.kind == REPLY_DRAFT:
        await session.delete(draft)


async def remember_prompt(session: AsyncSession, staff: Staff, prompt_message_id: int) -> None:
    """The prompt the reply draft belongs to."""
    draft = await session.get(StaffDraft, staff.id)
    if draft is not None and draft.kind == REPLY_DRAFT:
        draft.message_id = prompt_message_id
        session.add(draft)


# --- escalation -------------------------------------------------------------------------


def reply_due(message: CareMessage, config: Config) -> datetime:
    """When an unanswered message goes to the admins: after escalate_after_hours of office time."""
    span = timedelta(hours=config.care.escalate_after_hours)
    return config.clinic.office_hours.add_open_time(message.created_at, span, config.clinic.timezone)


UNANSWERED = N_(
    "⏰ UNANSWERED: a message from {alias} has had no reply for {hours} working hours (responsible: {who})."
)
A_PHOTO = N_("(a photo)")


def escalation_text(
    message: CareMessage, patient: Patient, therapist: Staff | None, config: Config, lang: str = "en"
) -> str:
    """What an admin reads about a message nobody answered, in their language (the patient's words as written)."""
    hours = format_decimal(config.care.escalate_after_hours, locale=lang)
    who = therapist.name if therapist is not None else t(lang, alert_core.UNASSIGNED)
    head = t(lang, UNANSWERED, alias=patient.alias, hours=hours, who=who)
    return f"{head}\n\n{message.text or t(lang, A_PHOTO)}"


async def escalate_unanswered(session: AsyncSession, now: datetime, config: Config) -> list[int]:
    """Send every message unanswered and unread past its due time to the admins, once; return their ids."""
    candidates = (
        await session.exec(
            select(CareMessage).where(
                col(CareMessage.direction) == IN,
                col(CareMessage.answered_at).is_(None),
                col(CareMessage.read_at).is_(None),
                col(CareMessage.escalated_at).is_(None),
                col(CareMessage.created_at) <= now - timedelta(hours=config.care.escalate_after_hours),
            )
        )
    ).all()
    due = [m for m in candidates if reply_due(m, config) <= now]
    if not due:
        return []
    admins = list(
        (
            await session.exec(
                select(Staff)
                .where(col(Staff.active).is_(True), col(Staff.role) == Role.ADMIN.value)
                .order_by(col(Staff.id))
            )
        ).all()
    )
    if not admins:
        admins = list(
            (await session.exec(select(Staff).where(col(Staff.active).is_(True)).order_by(col(Staff.id)))).all()
        )
    escalated: list[int] = []
    for message in due:
        assert message.id is not None
        claimed = await session.exec(
            update(CareMessage)
            .where(
                col(CareMessage.id) == message.id,
                col(CareMessage.escalated_at).is_(None),
                col(CareMessage.read_at).is_(None),
                col(CareMessage.answered_at).is_(None),
            )
            .values(escalated_at=now)
        )
        if not claimed.rowcount:
            continue  # another process escalated it, or somebody read or answered it just now
        patient = await session.get(Patient, message.patient_id)
        if patient is None:
            continue
        therapist = await session.get(Staff, patient.therapist_id) if patient.therapist_id else None
        rows = []
        for admin in admins:
            assert admin.id is not None
            reply_to = await _staff_chat_message(session, message.id, admin.telegram_id)
            rows.append(
                _row(
                    f"cm{message.id}:esc:{admin.telegram_id}",
                    admin.telegram_id,
                    admin.id,
                    message.patient_id,
                    escalation_text(message, patient, therapist, config, admin.language),
                    now,
                    payload(message.id, reply_to, admin.language),
                )
            )
        if not rows:
            log.error("care message %d needs escalation but no staff member exists", message.id)
        await queue_deliveries(session, rows)
        escalated.append(message.id)
        log.info("escalated unanswered care message %d to %d admin(s)", message.id, len(rows))
    return escalated


__all__ = [
    "IN",
    "OUT",
    "Forbidden",
    "Marked",
    "PhotoTooLarge",
    "Sent",
    "escalate_unanswered",
    "mark_read",
    "reply",
    "send",
    "thread",
]
