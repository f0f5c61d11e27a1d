"""A caregiver's seat: a person the patient invites to follow their rehab in their own chat.

* The patient makes a single-use invitation with ``/caregiver`` (valid
  ``[care] caregiver_invite_hours``); the caregiver opens the link, is asked
  for consent to what the bot keeps about them (their Telegram id and first
  name), and is linked only once they agree. A declined or expired link
  links nobody; a link opened but not answered gives way to the next
  invitation the same account opens: another caregiver link, a patient's or a
  staff invitation (:func:`give_way`, audited). A confirmed link stays: that
  account is refused as a patient or staff member until it ends the link.
* The patient chooses what the caregiver gets, each on or off and changeable
  at any time (:data:`PERMISSIONS`): a copy of each session reminder, a
  message when two sessions in a row were missed, emergency-level red flags,
  weekly progress. Copies are queued by :func:`tick` (from the engine's
  clinic tick) as deliveries of kind ``caregiver`` to the caregiver's chat;
  a permission turned off or a link removed stops them at once, including
  copies already queued.
* A caregiver may answer a check-in on the patient's behalf
  (:func:`proxy_answer`): the answer is stored as a proxy answer (``Answer.proxy``,
  ``Answer.caregiver_id``) and the red-flag rules treat it exactly like the
  patient's own (it goes through :func:`rehab_bot.checkin.answer`).
* The patient removes a caregiver with ``/caregiver``, staff with
  :func:`remove_by_staff` (WRITE access). The caregiver's own ``/delete``
  deletes only their link (:func:`delete_own`); the patient's ``/delete``
  deletes every link and proxy answer with the rest of their data.
* Nothing else: a caregiver sees no other patient, no staff command, and only
  what the patient allowed. Every link, permission change and removal is audited.

Plain Python: no telegram imports.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import alert_detail, audit
from rehab_bot import checkin as checkins
from rehab_bot import patient as patients
from rehab_bot.access import Access, StaffError, require
from rehab_bot.config import ClinicConfig, Config
from rehab_bot.content import Content
from rehab_bot.i18n import N_, t
from rehab_bot.invite import CAREGIVER_PREFIX, is_caregiver_code, new_code
from rehab_bot.models import (
    IN_CARE,
    Alert,
    Answer,
    Caregiver,
    CheckIn,
    Delivery,
    DeliveryStatus,
    ExerciseSession,
    Kind,
    Patient,
    PatientStatus,
    Staff,
    delivery_row,
    queue_deliveries,
)
from rehab_bot.schedule import zone

log = logging.getLogger(__name__)

PERMISSIONS = ("reminders", "missed", "emergencies", "weekly")
MAX_CAREGIVERS = 3  # linked or invited at once, per patient
# How far back tick() looks for what to copy (a dispatcher down for longer does not flood caregivers).
LOOKBACK = timedelta(hours=6)
WEEKLY_DAY, WEEKLY_HOUR = 6, 18  # Sunday 18:00 in the patient's timezone
# Alerts a caregiver may hear about: red flags at emergency level. A crisis note is the patient's own
# words to the clinic and is not passed on.
EMERGENCY_KINDS = ("red_flag", "checkin", "session_pain")

INVITE = "caregiver.invite"  # audit actions
JOIN = "caregiver.join"
PERMISSION = "caregiver.permission"
REMOVE = "caregiver.remove"
DELETE = "caregiver.delete"
RELEASE = "caregiver.release"  # an unanswered link gave way to a newer invitation the same account opened
PROXY = "caregiver.proxy_answer"
# The line an alert's detail gets when a caregiver gave the answer behind it (a msgid: each reader's language).
PROXY_NOTE = N_("Answered by the patient's caregiver on their behalf (proxy answer).")


class CaregiverError(ValueError):
    """A patient's caregiver action that cannot be done; the message is a code ("too_many", "gone")."""


class Outcome(enum.StrEnum):
    """What opening a caregiver link did."""

    ASK_CONSENT = "ask_consent"  # claimed by this account; consent is asked next
    LINKED = "linked"  # this account is already this patient's caregiver
    UNKNOWN = "unknown"  # not a caregiver code
    USED = "used"
    EXPIRED = "expired"
    IS_PATIENT = "is_patient"
    IS_STAFF = "is_staff"
    OTHER = "other"  # already another patient's caregiver


@dataclass(frozen=True)
class Opened:
    outcome: Outcome
    caregiver: Caregiver | None = None


def is_active(link: Caregiver | None) -> bool:
    """Linked, consented and not removed."""
    return link is not None and link.consent_at is not None and link.removed_at is None and link.telegram_id is not None


async def link_of(session: AsyncSession, telegram_id: int) -> Caregiver | None:
    """The caregiver link of this Telegram account (pending consent or active), if any."""
    rows = await session.exec(
        select(Caregiver).where(col(Caregiver.telegram_id) == telegram_id, col(Caregiver.removed_at).is_(None))
    )
    return rows.first()


async def active_link(session: AsyncSession, telegram_id: int) -> tuple[Caregiver, Patient] | None:
    """The active link of this account and its patient (one still in the programme), or None.

    A patient who stopped all messages or was discharged has no check-ins to answer: their
    caregiver can still see and delete their own data (/mydata, /delete), nothing else.
    """
    link = await link_of(session, telegram_id)
    if not is_active(link):
        return None
    assert link is not None
    patient = await session.get(Patient, link.patient_id)
    if patient is None or patient.telegram_id is None or patient.status not in IN_CARE:
        return None
    return link, patient


async def caregivers_of(session: AsyncSession, patient: Patient, *, include_removed: bool = False) -> list[Caregiver]:
    """The patient's caregivers (joined or invited), oldest first."""
    query = select(Caregiver).where(col(Caregiver.patient_id) == patient.id)
    if not include_removed:
        query = query.where(col(Caregiver.removed_at).is_(None))
    return list((await session.exec(query.order_by(col(Caregiver.id)))).all())


# --- the patient invites ------------------------------------------------------------------


async def invite(
    session: AsyncSession, patient: Patient, now: datetime, *, hours: int, patient_name: str = ""
) -> Caregiver:
    """A new single-use invitation for one caregiver; older unused invitations of the patient lapse."""
    assert patient.id is not None
    await session.exec(
        delete(Caregiver).where(
            col(Caregiver.patient_id) == patient.id,
            col(Caregiver.consent_at).is_(None),
            col(Caregiver.removed_at).is_(None),
        )
    )
    linked = await caregivers_of(session, patient)
    if len(linked) >= MAX_CAREGIVERS:
        raise CaregiverError("too_many")
    link = Caregiver(
        patient_id=patient.id,
        code=CAREGIVER_PREFIX + new_code(),
        expires_at=now + timedelta(hours=hours),
        emergencies=True,
        created_at=now,
    )
    session.add(link)
    await session.flush()
    audit.record(session, action=INVITE, now=now, actor="patient", patient_id=patient.id, detail=f"caregiver={link.id}")
    return link


async def open_link(session: AsyncSession, code: str, telegram_id: int, language: str, now: datetime) -> Opened:
    """Act on /start <code> for a caregiver code: claim it for this account, consent comes next."""
    if not is_caregiver_code(code):
        return Opened(Outcome.UNKNOWN)
    link = (await session.exec(select(Caregiver).where(col(Caregiver.code) == code))).first()
    if link is None or link.removed_at is not None:
        return Opened(Outcome.UNKNOWN if link is None else Outcome.USED)
    if link.telegram_id == telegram_id:
        return Opened(Outcome.LINKED if link.consent_at is not None else Outcome.ASK_CONSENT, link)
    if link.telegram_id is not None or link.consent_at is not None:
        return Opened(Outcome.USED)
    if link.expires_at <= now:
        return Opened(Outcome.EXPIRED)
    if await patients.find(session, telegram_id) is not None:
        return Opened(Outcome.IS_PATIENT)
    staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).first()
    if staff is not None and staff.active:
        return Opened(Outcome.IS_STAFF)
    existing = await link_of(session, telegram_id)
    if existing is not None and existing.consent_at is not None:
        # A second invitation from the person they already support: they are linked, not someone else's.
        return Opened(Outcome.LINKED, existing) if existing.patient_id == link.patient_id else Opened(Outcome.OTHER)
    if existing is not None:
        # Before the claim: an account holds one link at a time (a unique index on the Telegram id).
        await give_way(session, existing, now, to="caregiver_link")
    claimed = await session.exec(
        update(Caregiver)
        .where(col(Caregiver.id) == link.id, col(Caregiver.telegram_id).is_(None), col(Caregiver.consent_at).is_(None))
        .values(telegram_id=telegram_id, language=language)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:
        return Opened(Outcome.USED)
    link.telegram_id, link.language = telegram_id, language
    return Opened(Outcome.ASK_CONSENT, link)


async def consent(session: AsyncSession, link: Caregiver, name: str, now: datetime) -> Caregiver:
    """The caregiver agreed: keep their first name, and the link is active."""
    link.name = name.strip()[:64]
    link.consent_at = now
    session.add(link)
    audit.record(
        session,
        action=JOIN,
        now=now,
        actor=audit.telegram_actor(link.telegram_id or 0),
        patient_id=link.patient_id,
        detail=f"caregiver={link.id}",
    )
    return link


async def decline(session: AsyncSession, link: Caregiver) -> None:
    """The caregiver declined: nothing about them is kept; the link stays open until it expires."""
    link.telegram_id = None
    link.language = "en"
    session.add(link)


async def give_way(session: AsyncSession, link: Caregiver, now: datetime, *, to: str) -> None:
    """A link its account opened and never answered gives way to a newer invitation the same account opened
    (``to``: "caregiver_link", "patient_invite" or "staff_invite"): it binds nobody, so it is released as by
    "No, thanks" (open to its invitee again until it expires; its consent buttons go stale), and audited.
    A confirmed link never gives way: the caller refuses the newer invitation instead."""
    if link.consent_at is not None:
        raise ValueError("a confirmed caregiver link does not give way")
    await decline(session, link)
    await session.flush()
    audit.record(
        session,
        action=RELEASE,
        now=now,
        actor="caregiver",
        patient_id=link.patient_id,
        detail=f"caregiver={link.id} for={to}",
    )


# --- permissions and removal --------------------------------------------------------------


async def _own_link(session: AsyncSession, patient: Patient, caregiver_id: int) -> Caregiver:
    link = await session.get(Caregiver, caregiver_id)
    if link is None or link.patient_id != patient.id or link.removed_at is not None:
        raise CaregiverError("gone")
    return link


async def set_permission(
    session: AsyncSession, patient: Patient, caregiver_id: int, permission: str, on: bool, now: datetime
) -> Caregiver:
    """Turn one permission on or off (the patient); takes effect at once."""
    if permission not in PERMISSIONS:
        raise CaregiverError("gone")
    link = await _own_link(session, patient, caregiver_id)
    if getattr(link, permission) != on:
        setattr(link, permission, on)
        session.add(link)
        if not on:
            await _cancel_queued(session, link)
        audit.record(
            session,
            action=PERMISSION,
            now=now,
            actor="patient",
            patient_id=patient.id,
            detail=f"caregiver={link.id} {permission}={'on' if on else 'off'}",
        )
    return link


async def _cancel_queued(session: AsyncSession, link: Caregiver) -> None:
    """Queued copies for this caregiver do not go out any more (re-queued by tick if still allowed)."""
    await session.exec(
        update(Delivery)
        .where(
            col(Delivery.kind) == Kind.CAREGIVER.value,
            col(Delivery.key).like(f"cg{link.id}:%"),
            col(Delivery.status) == DeliveryStatus.QUEUED.value,
        )
        .values(status=DeliveryStatus.SKIPPED.value, error="caregiver permission or link changed")
    )


async def remove(session: AsyncSession, patient: Patient, caregiver_id: int, now: datetime) -> Caregiver:
    """The patient removes a caregiver (or an unused invitation): at once, nothing more reaches them."""
    link = await _own_link(session, patient, caregiver_id)
    await _end(session, link, now)
    audit.record(session, action=REMOVE, now=now, actor="patient", patient_id=patient.id, detail=f"caregiver={link.id}")
    return link


async def remove_by_staff(session: AsyncSession, staff: Staff, caregiver_id: int, now: datetime) -> Caregiver:
    """A staff member with WRITE access to the patient removes a caregiver (dashboard)."""
    link = await session.get(Caregiver, caregiver_id)
    patient = await session.get(Patient, link.patient_id) if link is not None else None
    if link is None or patient is None or link.removed_at is not None:
        raise StaffError(N_("This caregiver is no longer linked."))
    require(staff, patient, Access.WRITE)
    await _end(session, link, now)
    audit.record(session, action=REMOVE, now=now, staff=staff, patient_id=patient.id, detail=f"caregiver={link.id}")
    return link


async def _end(session: AsyncSession, link: Caregiver, now: datetime) -> None:
    await _cancel_queued(session, link)
    link.removed_at = now
    link.telegram_id = None
    session.add(link)


async def delete_own(session: AsyncSession, link: Caregiver, now: datetime) -> None:
    """The caregiver's own /delete: their link and what it holds about them go; the patient's data stays."""
    # The messages to them go, queued or sent: each row holds their Telegram account id (chat_id).
    await session.exec(
        delete(Delivery).where(col(Delivery.kind) == Kind.CAREGIVER.value, col(Delivery.key).like(f"cg{link.id}:%"))
    )
    audit.record(
        session, action=DELETE, now=now, actor="caregiver", patient_id=link.patient_id, detail=f"caregiver={link.id}"
    )
    await session.delete(link)
    await session.flush()


# The caregiver's /mydata file, like the patient's (patient.about_export), keeps the database's own names as
# its keys and starts with an "about" part in the caregiver's language: what the file is, what each part holds.
ABOUT_FILE = N_(
    "All the data this bot keeps about you as a caregiver, as the clinic's server holds it (nothing about the "
    "person you support). The names in this file are the database's own and the same in every language; "
    "'parts' says what each one holds. A point in time that ends in +00:00 is in UTC."
)
ABOUT_PARTS: dict[str, str] = {
    "telegram_id": N_("The number of your Telegram account, by which the bot knows you"),
    "name": N_("The name you gave when you agreed"),
    "language": N_("The language the bot writes to you in"),
    "consent_at": N_("When you agreed to be linked as a caregiver"),
    "permissions": N_(
        "What the person you support lets you receive: a copy of each session reminder (reminders), a message "
        "when two sessions in a row are missed (missed), urgent warning signs (emergencies), weekly progress "
        "(weekly); true means on"
    ),
}


def own_data(link: Caregiver) -> dict[str, Any]:
    """What the bot keeps about a caregiver (their /mydata), after a part that says in their language what the
    file is and what each part holds."""
    lang = link.language
    about = {"language": lang, "text": t(lang, ABOUT_FILE), "parts": {k: t(lang, v) for k, v in ABOUT_PARTS.items()}}
    return {
        "about": about,
        "telegram_id": link.telegram_id,
        "name": link.name,
        "language": link.language,
        "consent_at": link.consent_at.isoformat() if link.consent_at else None,
        "permissions": {p: getattr(link, p) for p in PERMISSIONS},
    }


# --- proxy answers ------------------------------------------------------------------------


async def proxy_answer(
    session: AsyncSession,
    link: Caregiver,
    patient: Patient,
    content: Content,
    clinic: ClinicConfig,
    checkin_id: int,
    item_index: int,
    value: int | None,
    now: datetime,
) -> checkins.AnswerResult:
    """Answer one check-in item on the patient's behalf: the same rules, stored as a proxy answer."""
    if not is_active(link) or link.patient_id != patient.id:
        return checkins.AnswerResult("invalid")
    result = await checkins.answer(session, patient, content, clinic, checkin_id, item_index, value, now)
    if result.status == "recorded" and result.checkin is not None:
        questionnaire = content.questionnaires.get(result.checkin.questionnaire_id)
        if questionnaire is not None:
            item_id = questionnaire.items[item_index].id
            await session.exec(
                update(Answer)
                .where(col(Answer.checkin_id) == checkin_id, col(Answer.item_id) == item_id)
                .values(proxy=True, caregiver_id=link.id)
            )
            # Staff must see that the caregiver, not the patient, gave the answer behind an alert.
            for finding in result.findings:
                if finding.alert_id is not None:
                    await _note_proxy(session, finding.alert_id, clinic)
            audit.record(
                session,
                action=PROXY,
                now=now,
                actor="caregiver",
                patient_id=patient.id,
                detail=f"caregiver={link.id} checkin={checkin_id} item={item_id}",
            )
    return result


async def _note_proxy(session: AsyncSession, alert_id: int, clinic: ClinicConfig) -> None:
    """Add PROXY_NOTE to an alert's detail (once; its parts too, alert_detail.appended) and to its messages
    still queued, each in its reader's language (the staff member's; the alert chat's is the clinic's).

    Each write is conditional, as a sender may claim a message, or another process note the alert, meanwhile.
    """
    alert = await session.get(Alert, alert_id)
    if alert is None or PROXY_NOTE in alert.detail:
        return
    detail, parts = alert_detail.appended(alert, alert_detail.message(PROXY_NOTE))
    await session.exec(
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.detail) == alert.detail)
        .values(detail=detail, detail_parts=parts)
    )
    queued = await session.exec(
        select(Delivery).where(
            col(Delivery.key).like(f"a{alert_id}:%"), col(Delivery.status) == DeliveryStatus.QUEUED.value
        )
    )
    for delivery in queued.all():
        staff = await session.get(Staff, delivery.staff_id) if delivery.staff_id is not None else None
        note = t(staff.language if staff is not None else clinic.language, PROXY_NOTE)
        if note in delivery.body:
            continue
        await session.exec(
            update(Delivery)
            .where(col(Delivery.id) == delivery.id, col(Delivery.status) == DeliveryStatus.QUEUED.value)
            .values(body=delivery.body + "\n" + note)
        )


async def checkin_for(session: AsyncSession, checkin_id: int, patient: Patient) -> CheckIn | None:
    """A check-in of this patient (anything else is not the caregiver's to answer)."""
    checkin = await session.get(CheckIn, checkin_id)
    return checkin if checkin is not None and checkin.patient_id == patient.id else None


# --- what caregivers get ------------------------------------------------------------------


def _row(link: Caregiver, key: str, body: str, now: datetime) -> dict[str, Any]:
    assert link.telegram_id is not None
    return delivery_row(f"cg{link.id}:{key}", Kind.CAREGIVER, link.telegram_id, body, now, patient_id=link.patient_id)


def reminder_text(link: Caregiver, slot: str) -> str:
    return t(link.language, "🔔 Copy of a reminder: it is time for the {slot} exercise session.", slot=slot)


def missed_text(link: Caregiver) -> str:
    return t(
        link.language,
        "The last two exercise sessions were missed. A kind word may help to get back on track.",
    )


def emergency_text(link: Caregiver) -> str:
    return t(
        link.language,
        "🚨 A symptom was reported that needs urgent care; the clinic has been told. "
        "Please check in with the person you support now.",
    )


def weekly_text(link: Caregiver, share: float | None, done_total: int) -> str:
    percent = "–" if share is None else f"{round(share * 100)} %"
    return t(
        link.language,
        "📈 Weekly progress: {percent} of this week's sessions done ({done} sessions done so far).",
        percent=percent,
        done=done_total,
    )


async def tick(session: AsyncSession, now: datetime, config: Config) -> int:
    """Queue what each active caregiver is allowed to get; idempotent (one key per item). Returns rows queued."""
    links = list(
        (
            await session.exec(
                select(Caregiver).where(
                    col(Caregiver.consent_at).is_not(None),
                    col(Caregiver.removed_at).is_(None),
                    col(Caregiver.telegram_id).is_not(None),
                )
            )
        ).all()
    )
    rows: list[dict[str, Any]] = []
    since = now - LOOKBACK
    for link in links:
        patient = await session.get(Patient, link.patient_id)
        if patient is None or patient.status not in (PatientStatus.ACTIVE.value, PatientStatus.PAUSED.value):
            continue
        joined = link.consent_at or now  # only what happens after the caregiver joined
        start = max(since, joined)
        if link.reminders:
            sent = await session.exec(
                select(Delivery).where(
                    col(Delivery.patient_id) == patient.id,
                    col(Delivery.kind) == Kind.SESSION.value,
                    col(Delivery.status) == DeliveryStatus.SENT.value,
                    col(Delivery.sent_at) >= start,
                    col(Delivery.sent_at) > joined,
                )
            )
            rows += [_row(link, f"d{d.id}", reminder_text(link, d.slot), now) for d in sent.all()]
        if link.missed:
            last_two = (
                await session.exec(
                    select(ExerciseSession)
                    .where(col(ExerciseSession.patient_id) == patient.id, col(ExerciseSession.status) != "pending")
                    .order_by(col(ExerciseSession.local_date).desc(), col(ExerciseSession.slot).desc())
                    .limit(2)
                )
            ).all()
            if len(last_two) == 2 and all(s.status == "missed" for s in last_two):
                latest = last_two[0]
                if latest.created_at >= (link.consent_at or now) - timedelta(days=1):
                    rows.append(_row(link, f"m{latest.id}", missed_text(link), now))
        if link.emergencies:
            alerts = await session.exec(
                select(Alert).where(
                    col(Alert.patient_id) == patient.id,
                    col(Alert.severity) == "emergency",
                    col(Alert.kind).in_(EMERGENCY_KINDS),
                    col(Alert.created_at) >= start,
                    col(Alert.created_at) > joined,
                    # A caregiver's own proxy answer: they were told what to do at once.
                    col(Alert.detail).not_like(f"%{PROXY_NOTE}%"),
                )
            )
            rows += [_row(link, f"a{a.id}", emergency_text(link), now) for a in alerts.all()]
        if link.weekly:
            local = now.astimezone(zone(patient.timezone))
            if local.weekday() == WEEKLY_DAY and local.hour >= WEEKLY_HOUR:
                progress = await patients.progress(session, patient, now)
                year, week, _ = local.date().isocalendar()
                text = weekly_text(link, progress.stats.adherence_this_week, progress.stats.done_total)
                rows.append(_row(link, f"w{year}-{week:02d}", text, now))
    queued = await queue_deliveries(session, rows)
    if queued:
        log.info("caregivers: %d message(s) queued", queued)
    return queued
