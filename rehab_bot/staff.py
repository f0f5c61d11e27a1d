"""Clinic staff: who they are (membership), what they type, and messages to them.

Membership: add, update, remove or deactivate a staff member (a removed
member's patients move to a colleague, who is told). Roles and what each may
see and do live in rehab_bot.access; they are read from the database on every
call, so a member removed or demoted loses access at their next press.

Also here: session times as staff type them, staff conversations in
progress (StaffDraft), and the one way a message to a staff member is queued (:func:`staff_message`,
:func:`queue_staff_messages`): a delivery row of kind ``alert`` with a unique
key, sent by the reminder engine like every other message. The key makes each
happen once, across restarts and several processes (``h…`` handover,
``e<alert>:<chat>`` escalation in rehab_bot.alert, ``d<staff>:<ISO week>``
digest in rehab_bot.digest).

The caseload (list, detail, risk, changes) is rehab_bot.caseload, alerts and
escalation rehab_bot.alert, the weekly digest rehab_bot.digest. A new
patient's alias and surgery date, and the patient with an alias, are
rehab_bot.invite's; pausing and resuming a patient is rehab_bot.patient's.

Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import audit, schedule, typed
from rehab_bot.access import StaffError
from rehab_bot.content import MAX_SESSIONS_PER_DAY
from rehab_bot.i18n import N_, SUPPORTED_LANGUAGES, t, tn
from rehab_bot.models import (
    Alert,
    Kind,
    Patient,
    PatientStatus,
    Role,
    Staff,
    StaffDraft,
    delivery_row,
    queue_deliveries,
)
from rehab_bot.schedule import ScheduleError, zone

log = logging.getLogger(__name__)

DRAFT_TTL = timedelta(hours=24)
ALREADY_REMOVED = N_("{name} was already removed; nothing changed.")  # the CLI's and the admin page's words

_NAME_MAX = 64
# The largest Telegram user id accepted: 18 digits, as a typed id is read (typed.number), well
# inside the database's BigInteger (Telegram's own ids have at most 52 bits).
MAX_TELEGRAM_ID = 10**18 - 1


async def active_staff(session: AsyncSession, telegram_id: int) -> Staff | None:
    """The active staff member with this Telegram id, fresh from the database."""
    staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).first()
    if staff is None or not staff.active or staff.role not in (Role.ADMIN.value, Role.THERAPIST.value):
        return None
    return staff


async def staff_members(session: AsyncSession, *, include_inactive: bool = False) -> list[Staff]:
    """Staff, by name."""
    query = select(Staff).order_by(col(Staff.name), col(Staff.id))
    if not include_inactive:
        query = query.where(col(Staff.active).is_(True))
    return list((await session.exec(query)).all())


async def admins(session: AsyncSession) -> list[Staff]:
    """Active admins."""
    return [s for s in await staff_members(session) if s.role == Role.ADMIN.value]


def validate_name(name: str) -> str:
    """A staff member's display name, read as plain text (rehab_bot.typed): a zero-width space or the
    joiner inside an emoji is no error, and a name of nothing visible is empty."""
    name = " ".join(typed.text(typed.plain(name)).split())
    if not name:
        raise StaffError(N_("The name is empty."))
    if len(name) > _NAME_MAX:
        raise StaffError(N_("The name is longer than {n} characters."), n=_NAME_MAX)
    return name


async def add_staff(
    session: AsyncSession,
    *,
    telegram_id: int,
    role: str,
    name: str,
    now: datetime,
    timezone: str | None = None,
    default_timezone: str | None = None,
    language: str | None = None,
    actor: Staff | None = None,
) -> tuple[Staff, bool]:
    """Add a staff member, or update and reactivate an existing one; (staff, created).

    A new member without a timezone gets default_timezone (the clinic's).
    """
    if not 0 < telegram_id <= MAX_TELEGRAM_ID:
        raise StaffError(
            N_(
                "A Telegram user id is a positive number of at most 18 digits "
                "(the person can see theirs via @userinfobot)."
            )
        )
    if role not in (Role.ADMIN.value, Role.THERAPIST.value):
        raise StaffError(N_("Unknown role {role}: use admin or therapist."), role=repr(role))
    name = validate_name(name)
    staff_exists = (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).first()
    if timezone is None and staff_exists is None:
        timezone = default_timezone
    if timezone is not None:
        try:
            zone(timezone)
        except ScheduleError as exc:
            raise StaffError(str(exc)) from exc
    if language is not None and language not in SUPPORTED_LANGUAGES:
        raise StaffError(
            N_("Unknown language {language}: use {languages}."),
            language=repr(language),
            languages=" or ".join(SUPPORTED_LANGUAGES),
        )
    staff = staff_exists
    created = staff is None
    if staff is None:
        staff = Staff(telegram_id=telegram_id, name=name, role=role, created_at=now)
    staff.name, staff.role, staff.active = name, role, True
    if timezone is not None:
        staff.timezone = timezone
    if language is not None:
        staff.language = language
    session.add(staff)
    await session.flush()
    audit.record(
        session,
        action=audit.STAFF_ADD,
        now=now,
        staff=actor,
        actor=None if actor is not None else audit.CLI_ACTOR,
        detail=f"staff={staff.id} role={role} {'created' if created else 'updated'}",
    )
    return staff, created


@dataclass(frozen=True)
class Removal:
    """What removing a staff member did: their patients and who took them over."""

    staff: Staff
    new_owner: Staff | None
    patients: list[Patient]


@dataclass(frozen=True)
class Handover:
    """What removing a staff member hands over: their patients (all but erased ones) and their open alerts."""

    patients: int
    open_alerts: int


def _handed_over(staff: Staff) -> tuple[Any, Any]:
    """The patients removing this staff member hands over (remove_staff, handover_of): theirs, but erased ones."""
    return col(Patient.therapist_id) == staff.id, col(Patient.status) != PatientStatus.STOPPED.value


async def handover_of(session: AsyncSession, staff: Staff) -> Handover:
    """What :func:`remove_staff` would move from this staff member to a colleague, counted now."""
    theirs = select(Patient.id).where(*_handed_over(staff))
    patients = (await session.exec(select(func.count()).select_from(theirs.subquery()))).one()
    alerts = (
        await session.exec(
            select(func.count())
            .select_from(Alert)
            .where(col(Alert.patient_id).in_(theirs), col(Alert.acknowledged_at).is_(None))
        )
    ).one()
    return Handover(int(patients), int(alerts))


async def _find_member(session: AsyncSession, ref: str) -> Staff:
    """An active staff member by Telegram id or name; StaffError otherwise."""
    from rehab_bot.invite import InviteError, find_staff

    try:
        return await find_staff(session, ref)
    except InviteError as exc:
        raise StaffError(str(exc)) from exc


async def remove_staff(
    session: AsyncSession,
    *,
    telegram_id: int,
    now: datetime,
    reassign_to: str | None = None,
    actor: Staff | None = None,
) -> Removal:
    """Take a staff member's access away, and hand their patients to someone (the row stays for the audit).

    Their patients (all but erased ones) move to ``reassign_to`` (a colleague's
    Telegram id or name) or else to an active admin, and the new owner gets a
    message saying so. Without anyone to take them the removal is refused: no
    patient is left without a responsible person.
    """
    staff = None
    if 0 < telegram_id <= MAX_TELEGRAM_ID:  # a larger number is no id the database could hold
        staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).first()
    if staff is None:
        raise StaffError(N_("No staff member has the Telegram id {id}."), id=telegram_id)
    if not staff.active:  # said "deactivated" again and wrote a second staff.remove to the audit log
        raise StaffError(ALREADY_REMOVED, name=staff.name)
    patients = list(
        (await session.exec(select(Patient).where(*_handed_over(staff)).order_by(func.upper(col(Patient.alias))))).all()
    )
    new_owner: Staff | None = None
    if reassign_to is not None:
        new_owner = await _find_member(session, reassign_to)
        if new_owner.id == staff.id:
            raise StaffError(N_("A staff member cannot take over their own patients; name a colleague."))
    elif patients:
        new_owner = next((a for a in await admins(session) if a.id != staff.id), None)
        if new_owner is None:
            raise StaffError(
                N_(
                    "{name} is responsible for {n} patient(s) and there is no other admin to take "
                    "them over: name a colleague with --reassign-to, or add an admin first."
                ),
                name=staff.name,
                n=len(patients),
            )
    staff.active = False
    session.add(staff)
    for patient in patients:
        patient.therapist_id = new_owner.id if new_owner is not None else None
        session.add(patient)
    await session.flush()
    moved = f" patients={len(patients)} to_staff={new_owner.id}" if new_owner is not None and patients else ""
    audit.record(
        session,
        action=audit.STAFF_REMOVE,
        now=now,
        staff=actor,
        actor=None if actor is not None else audit.CLI_ACTOR,
        detail=f"staff={staff.id}{moved}",
    )
    if new_owner is not None and patients:
        assert new_owner.id is not None and staff.id is not None
        await queue_staff_messages(
            session,
            [
                staff_message(
                    f"h{staff.id}:{new_owner.id}:{now:%Y%m%dT%H%M%S}",
                    new_owner.telegram_id,
                    new_owner.id,
                    handover_text(staff, patients, new_owner.language),
                    now,
                )
            ],
        )
        log.info("staff %s removed; %d patient(s) moved to staff %s", staff.id, len(patients), new_owner.id)
    return Removal(staff, new_owner, patients)


MAX_HANDOVER_ALIASES = 40


def handover_text(removed: Staff, patients: Sequence[Patient], lang: str = "en") -> str:
    """What the new owner reads, in their language, when a colleague's patients are moved to them."""
    aliases = ", ".join(p.alias for p in patients[:MAX_HANDOVER_ALIASES])
    if len(patients) > MAX_HANDOVER_ALIASES:
        aliases = t(lang, "{aliases} and {n} more", aliases=aliases, n=len(patients) - MAX_HANDOVER_ALIASES)
    return tn(
        lang,
        "👥 {name} was removed from the staff. You are now responsible for their {n} patient: {aliases}.\n"
        "Their alerts now come to you. Open /patients to see them, /alerts for open alerts.",
        "👥 {name} was removed from the staff. You are now responsible for their {n} patients: {aliases}.\n"
        "Their alerts now come to you. Open /patients to see them, /alerts for open alerts.",
        len(patients),
        name=removed.name,
        aliases=aliases,
    )


async def deactivate_staff(session: AsyncSession, *, telegram_id: int, now: datetime) -> Staff:
    """Take a staff member's access away; their patients go to an admin (see :func:`remove_staff`)."""
    return (await remove_staff(session, telegram_id=telegram_id, now=now)).staff


# --- messages to staff -------------------------------------------------------------


async def queue_staff_messages(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Queue messages to staff (rows from :func:`staff_message`); a key already queued is kept. Returns how many."""
    return await queue_deliveries(session, rows)


def staff_message(
    key: str, chat_id: int, staff_id: int | None, body: str, now: datetime, **extra: Any
) -> dict[str, Any]:
    """A delivery row for a message to a staff member (or the alert chat), due now."""
    return delivery_row(key, Kind.ALERT, chat_id, body, now, staff_id=staff_id, **extra)


def payload_language(payload: str) -> str:
    """The language of the staff reader a delivery's payload names (``"lang"``: an alert's Acknowledge
    payload, alert.ack_payload; a care message's notice, message.payload), so that the renderer words the
    buttons as the text is worded; English for a payload from before, one without it, or anything else."""
    try:
        value = json.loads(payload).get("lang") if payload else None
    except (ValueError, AttributeError):
        return "en"
    return value if isinstance(value, str) and value in SUPPORTED_LANGUAGES else "en"


# --- what staff type: session times ------------------------------------------------


def parse_times(text: str) -> list[str]:
    """Session times "08:00 13:00, 18:00" as sorted distinct HH:MM strings."""
    try:
        times = schedule.parse_times(text)
    except schedule.TimesError as exc:
        raise StaffError(N_("{part} is not a time of day (HH:MM, e.g. 08:00)."), part=exc.part) from exc
    if not times:
        raise StaffError(N_("Send one to six times of day, e.g. 08:00 13:00 18:00."))
    if len(set(times)) != len(times):
        raise StaffError(N_("Each time may appear only once."))
    if len(times) > MAX_SESSIONS_PER_DAY:
        raise StaffError(N_("At most {n} sessions a day."), n=MAX_SESSIONS_PER_DAY)
    return sorted(times)


# --- staff conversations ---------------------------------------------------------


async def draft_for(session: AsyncSession, staff: Staff, now: datetime) -> StaffDraft | None:
    """The staff member's conversation in progress, unless it went stale."""
    draft = await session.get(StaffDraft, staff.id)
    if draft is None:
        return None
    if now - draft.updated_at > DRAFT_TTL:
        await session.delete(draft)
        return None
    return draft


async def end_draft(session: AsyncSession, staff: Staff) -> StaffDraft | None:
    """End the staff member's conversation (finished or cancelled); the draft it was, or None. The caller commits."""
    draft = await session.get(StaffDraft, staff.id)
    if draft is not None:
        await session.delete(draft)
    return draft


async def start_draft(
    session: AsyncSession, staff: Staff, kind: str, step: str, now: datetime, **values: Any
) -> StaffDraft:
    """Start (or restart) a conversation, replacing any other one."""
    assert staff.id is not None
    old = await session.get(StaffDraft, staff.id)
    if old is not None:
        await session.delete(old)
        await session.flush()
    draft = StaffDraft(staff_id=staff.id, kind=kind, step=step, updated_at=now, **values)
    session.add(draft)
    return draft
