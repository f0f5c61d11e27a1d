"""Clinician tools, the core: roles, who may see and change what, the patient
list and detail, alerts, escalation to admins and the weekly digest.

Roles are ``admin`` and ``therapist`` (:class:`rehab_bot.models.Role`), read
from the database on every call: a member removed or demoted loses access at
their next press, not at the next restart.

Who may do what lives in rehab_bot.access (re-exported here).

Escalations and digests are messages to staff. They are delivery rows of kind
``alert`` with a unique key, written here and sent by the reminder engine
like every other message: ``e<alert>:<chat>`` for an escalation and
``d<staff>:<ISO year>-W<week>`` for a digest. The key makes each of them
happen once, across restarts and across several processes.

Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import alert as alert_core
from rehab_bot import audit, education, schedule
from rehab_bot import session as session_core
from rehab_bot.access import Access, Forbidden, StaffError, access, is_admin, require  # noqa: F401 (re-exported)
from rehab_bot.config import Config, StaffConfig
from rehab_bot.content import MAX_SESSIONS_PER_DAY, Content
from rehab_bot.content.checkins import SEVERITIES, level_of
from rehab_bot.db import insert_ignore
from rehab_bot.i18n import SUPPORTED_LANGUAGES
from rehab_bot.invite import MAX_DAYS_AGO, MAX_DAYS_AHEAD
from rehab_bot.models import (
    PRIORITY,
    Alert,
    Answer,
    CheckIn,
    Delivery,
    DeliveryStatus,
    ExerciseSession,
    Kind,
    Note,
    Patient,
    PatientStatus,
    ReminderRule,
    Role,
    Staff,
    StaffDraft,
)
from rehab_bot.schedule import ScheduleError, local_date, local_to_utc, zone

log = logging.getLogger(__name__)

PAGE_SIZE = 5
# Alert severities that escalate to the admins when nobody acknowledges them,
# by their triage level (content.checkins.level_of, the one mapping):
# emergency after [staff] escalation_minutes, urgent after urgent_escalation_minutes
# of office time ([clinic] office_hours). Each alert escalates once.
ESCALATING_SEVERITIES = frozenset(s for s in SEVERITIES if level_of(s) in ("emergency", "urgent"))
# Only what the patient reported escalates: red-flag answers, score rules and
# crisis messages. Operational alerts (a silent patient, a blocked bot, deleted
# data) are for the caseload, whatever their severity.
ESCALATING_KINDS = ("red_flag", "checkin", "crisis")
# Answer.item_id values that hold pain (NRS 0-10) and mood; the check-in
# content names its items, these are the names the list and the digest read.
PAIN_ITEMS = ("pain",)
MOOD_ITEMS = ("mood",)
# Statuses that are still in care: the digest and the default list look at these.
IN_CARE = (PatientStatus.ACTIVE.value, PatientStatus.PAUSED.value, PatientStatus.UNREACHABLE.value)
DRAFT_TTL = timedelta(hours=24)
MAX_DIGEST_LINES = 40

_ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,23}$")
_NAME_MAX = 64


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
    """A staff member's display name."""
    name = " ".join(name.split())
    if not name:
        raise StaffError("The name is empty.")
    if len(name) > _NAME_MAX:
        raise StaffError(f"The name is longer than {_NAME_MAX} characters.")
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
    if telegram_id <= 0:
        raise StaffError("A Telegram user id is a positive number (the person can see theirs via @userinfobot).")
    if role not in (Role.ADMIN.value, Role.THERAPIST.value):
        raise StaffError(f"Unknown role {role!r}: use admin or therapist.")
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
        raise StaffError(f"Unknown language {language!r}: use {' or '.join(SUPPORTED_LANGUAGES)}.")
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
    staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).first()
    if staff is None:
        raise StaffError(f"No staff member has the Telegram id {telegram_id}.")
    patients = list(
        (
            await session.exec(
                select(Patient)
                .where(col(Patient.therapist_id) == staff.id, col(Patient.status) != PatientStatus.STOPPED.value)
                .order_by(func.upper(col(Patient.alias)))
            )
        ).all()
    )
    new_owner: Staff | None = None
    if reassign_to is not None:
        new_owner = await _find_member(session, reassign_to)
        if new_owner.id == staff.id:
            raise StaffError("A staff member cannot take over their own patients; name a colleague.")
    elif patients:
        new_owner = next((a for a in await admins(session) if a.id != staff.id), None)
        if new_owner is None:
            raise StaffError(
                f"{staff.name} is responsible for {len(patients)} patient(s) and there is no other admin to take "
                "them over: name a colleague with --reassign-to, or add an admin first."
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
        await _insert_deliveries(
            session,
            [
                _staff_message(
                    f"h{staff.id}:{new_owner.id}:{now:%Y%m%dT%H%M%S}",
                    new_owner.telegram_id,
                    new_owner.id,
                    handover_text(staff, patients),
                    now,
                )
            ],
        )
        log.info("staff %s removed; %d patient(s) moved to staff %s", staff.id, len(patients), new_owner.id)
    return Removal(staff, new_owner, patients)


MAX_HANDOVER_ALIASES = 40


def handover_text(removed: Staff, patients: Sequence[Patient]) -> str:
    """What the new owner reads when a colleague's patients are moved to them."""
    aliases = [p.alias for p in patients[:MAX_HANDOVER_ALIASES]]
    more = f" and {len(patients) - MAX_HANDOVER_ALIASES} more" if len(patients) > MAX_HANDOVER_ALIASES else ""
    return (
        f"👥 {removed.name} was removed from the staff. You are now responsible for their "
        f"{len(patients)} patient{'s' if len(patients) != 1 else ''}: {', '.join(aliases)}{more}.\n"
        "Their alerts now come to you. Open /patients to see them, /alerts for open alerts."
    )


async def deactivate_staff(session: AsyncSession, *, telegram_id: int, now: datetime) -> Staff:
    """Take a staff member's access away; their patients go to an admin (see :func:`remove_staff`)."""
    return (await remove_staff(session, telegram_id=telegram_id, now=now)).staff


# --- patients --------------------------------------------------------------------


def normalise_alias(text: str) -> str:
    """Aliases compare case-insensitively; this is the stored form's key."""
    return text.strip().upper()


def validate_alias(text: str) -> str:
    """A pseudonymous alias: 3-24 letters, digits, - or _, with at least one digit."""
    alias = text.strip()
    if not _ALIAS_RE.match(alias):
        raise StaffError(
            "An alias has 3-24 characters: letters, digits, - or _ (no spaces), and starts with a letter or digit."
        )
    if not any(c.isdigit() for c in alias):
        # Pseudonymous by default: a bare word is too often the patient's name.
        raise StaffError("Use a pseudonym with at least one digit (e.g. LWS-0412), not the patient's name.")
    return alias


_NAME_WORD_RE = re.compile(r"[A-ZÄÖÜ][a-zäöüß]{2,}")


def alias_looks_like_name(alias: str) -> bool:
    """Two capitalised words in a row (Anna-Muster1, AnnaMuster7): probably a real name, worth a warning."""
    words = re.findall(r"[A-Za-zÄÖÜäöüß][a-zäöüß]*", alias)
    shape = "".join("N" if _NAME_WORD_RE.fullmatch(word) else "." for word in words)
    return "NN" in shape


async def patient_by_alias(session: AsyncSession, alias: str) -> Patient | None:
    """The patient with this alias, ignoring case."""
    key = normalise_alias(alias)
    return (await session.exec(select(Patient).where(func.upper(col(Patient.alias)) == key))).first()


async def alias_taken(session: AsyncSession, alias: str) -> bool:
    """True when some patient (or an unredeemed invite's patient) uses this alias."""
    return await patient_by_alias(session, alias) is not None


def parse_surgery_date(text: str, today: date) -> date:
    """YYYY-MM-DD or DD.MM.YYYY, within a year of today."""
    text = text.strip()
    parsed: date | None = None
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            parsed = datetime.strptime(text, pattern).date()
            break
        except ValueError:
            continue
    if parsed is None:
        raise StaffError("Please send the surgery date as YYYY-MM-DD (e.g. 2026-06-03) or DD.MM.YYYY.")
    if parsed > today + timedelta(days=MAX_DAYS_AHEAD):
        raise StaffError("That date is more than 6 months ahead; please check it.")
    if parsed < today - timedelta(days=MAX_DAYS_AGO):
        raise StaffError("That date is more than a year ago; please check it.")
    return parsed


def parse_times(text: str) -> list[str]:
    """Session times "08:00 13:00, 18:00" as sorted distinct HH:MM strings."""
    try:
        times = schedule.parse_times(text)
    except schedule.TimesError as exc:
        raise StaffError(f"{exc.part} is not a time of day (HH:MM, e.g. 08:00).") from exc
    if not times:
        raise StaffError("Send one to six times of day, e.g. 08:00 13:00 18:00.")
    if len(set(times)) != len(times):
        raise StaffError("Each time may appear only once.")
    if len(times) > MAX_SESSIONS_PER_DAY:
        raise StaffError(f"At most {MAX_SESSIONS_PER_DAY} sessions a day.")
    return sorted(times)


def days_since_surgery(patient: Patient, now: datetime) -> int | None:
    """Days after surgery in the patient's zone (0 = the day of surgery)."""
    if patient.surgery_date is None:
        return None
    return (local_date(patient, now) - patient.surgery_date).days


@dataclass(frozen=True)
class PatientRow:
    """One line of /patients."""

    id: int
    alias: str
    status: str
    therapist_id: int | None
    days_since_surgery: int | None
    adherence_7d: float | None
    last_pain: int | None
    last_mood: int | None
    open_alerts: int
    # Safety lessons answered wrongly twice or more: a gap in understanding (rehab_bot/education.py).
    lesson_gaps: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatientPage:
    rows: list[PatientRow]
    page: int
    pages: int
    total: int
    scope: str  # "mine" or "all"


def default_scope(staff: Staff) -> str:
    """A therapist sees their own patients by default, an admin everyone."""
    return "all" if staff.role == Role.ADMIN.value else "mine"


async def _last_value(session: AsyncSession, patient_id: int, items: Sequence[str]) -> int | None:
    query = (
        select(Answer.value)
        .where(
            col(Answer.patient_id) == patient_id,
            col(Answer.item_id).in_(list(items)),
            col(Answer.value).is_not(None),
        )
        .order_by(col(Answer.answered_at).desc(), col(Answer.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def open_alert_count(session: AsyncSession, patient_id: int) -> int:
    query = (
        select(func.count())
        .select_from(Alert)
        .where(col(Alert.patient_id) == patient_id, col(Alert.acknowledged_at).is_(None))
    )
    return int((await session.exec(query)).one())


async def patient_row(session: AsyncSession, patient: Patient, now: datetime) -> PatientRow:
    """The figures /patients shows for one patient."""
    assert patient.id is not None
    stats = await session_core.stats(session, patient, now)
    return PatientRow(
        id=patient.id,
        alias=patient.alias,
        status=patient.status,
        therapist_id=patient.therapist_id,
        days_since_surgery=days_since_surgery(patient, now),
        adherence_7d=stats.adherence_7d,
        last_pain=await _last_value(session, patient.id, PAIN_ITEMS),
        last_mood=await _last_value(session, patient.id, MOOD_ITEMS),
        open_alerts=await open_alert_count(session, patient.id),
        lesson_gaps=tuple(await education.gaps(session, patient.id)),
    )


def _visible(query: Any, staff: Staff, scope: str) -> Any:
    if scope == "mine":
        return query.where(col(Patient.therapist_id) == staff.id)
    return query


async def patient_page(
    session: AsyncSession,
    staff: Staff,
    now: datetime,
    *,
    scope: str | None = None,
    page: int = 0,
    page_size: int = PAGE_SIZE,
) -> PatientPage:
    """One page of the patient list: in care first, then discharged, each by alias."""
    scope = scope if scope in ("mine", "all") else default_scope(staff)
    base = _visible(select(Patient), staff, scope).where(col(Patient.status) != PatientStatus.STOPPED.value)
    count_query = _visible(select(func.count()).select_from(Patient), staff, scope).where(
        col(Patient.status) != PatientStatus.STOPPED.value
    )
    total = int((await session.exec(count_query)).one())
    pages = max(1, math.ceil(total / page_size))
    page = min(max(0, page), pages - 1)
    discharged_last = col(Patient.status) == PatientStatus.DISCHARGED.value
    query = base.order_by(discharged_last, func.upper(col(Patient.alias))).offset(page * page_size).limit(page_size)
    patients = (await session.exec(query)).all()
    rows = [await patient_row(session, p, now) for p in patients]
    return PatientPage(rows=rows, page=page, pages=pages, total=total, scope=scope)


@dataclass(frozen=True)
class AnswerLine:
    answered_at: datetime
    questionnaire_id: str
    item_id: str
    value: int | None
    text: str


@dataclass(frozen=True)
class PatientDetail:
    patient: Patient
    row: PatientRow
    access: Access
    therapist_name: str
    programme_name: str
    session_times: list[str]
    stats: session_core.SessionStats
    answers: list[AnswerLine]
    notes: list[Note]
    alerts: list[Alert]
    lessons: education.Summary | None = None


def answer_text(content: Content | None, line: AnswerLine) -> str:
    """One answer in plain words: the question (its first line) and the chosen option's label.

    Falls back to "questionnaire/item" only when the content no longer has the item.
    """
    questionnaire = content.questionnaires.get(line.questionnaire_id) if content is not None else None
    item = questionnaire.item(line.item_id) if questionnaire is not None else None
    if item is None:
        question = f"{line.questionnaire_id}/{line.item_id}:"
    else:
        text = item.text.get("en") or next(iter(item.text.values()), line.item_id)
        question = alert_core.shorten(text.strip().splitlines()[0], 100)
    if line.value is None:
        value = alert_core.shorten(line.text, 120) or "skipped"
    elif item is not None and item.yes_no:
        value = "Yes" if line.value else "No"
    else:
        option = item.option(line.value) if item is not None else None
        label = option.label.get("en", str(line.value)) if option is not None else str(line.value)
        value = label if label == str(line.value) else f"{label} ({line.value})"
    return f"{question} {value}"


async def patient_detail(
    session: AsyncSession, staff: Staff, patient: Patient, now: datetime, content: Content | None, *, recent: int = 8
) -> PatientDetail:
    """What /patient shows: figures, programme, recent answers and notes, open alerts."""
    assert patient.id is not None
    level = access(staff, patient)
    therapist = await session.get(Staff, patient.therapist_id) if patient.therapist_id is not None else None
    programme_name = patient.programme_id
    if content is not None and patient.programme_id in content.programmes:
        programme_name = content.programmes[patient.programme_id].name.get("en", patient.programme_id)
    answers_query = (
        select(Answer, CheckIn.questionnaire_id)
        .join(CheckIn, col(CheckIn.id) == col(Answer.checkin_id))
        .where(col(Answer.patient_id) == patient.id)
        .order_by(col(Answer.answered_at).desc(), col(Answer.id).desc())
        .limit(recent)
    )
    answers = [
        AnswerLine(a.answered_at, questionnaire_id, a.item_id, a.value, a.text)
        for a, questionnaire_id in (await session.exec(answers_query)).all()
    ]
    notes = list(
        (
            await session.exec(
                select(Note)
                .where(col(Note.patient_id) == patient.id)
                .order_by(col(Note.created_at).desc(), col(Note.id).desc())
                .limit(recent)
            )
        ).all()
    )
    alerts = list(
        (
            await session.exec(
                select(Alert)
                .where(col(Alert.patient_id) == patient.id, col(Alert.acknowledged_at).is_(None))
                .order_by(col(Alert.created_at))
            )
        ).all()
    )
    return PatientDetail(
        patient=patient,
        row=await patient_row(session, patient, now),
        access=level,
        therapist_name=therapist.name if therapist is not None else "",
        programme_name=programme_name,
        session_times=session_times_of(patient, content, now),
        stats=await session_core.stats(session, patient, now),
        answers=answers,
        notes=notes,
        alerts=alerts,
        lessons=await education.summary(session, patient, content),
    )


def session_times_of(patient: Patient, content: Content | None, now: datetime) -> list[str]:
    """The patient's own times, else the current phase's defaults."""
    if patient.session_times:
        return [t for t in patient.session_times.split(",") if t]
    if content is None or patient.programme_id not in content.programmes:
        return []
    day = days_since_surgery(patient, now)
    phase = content.programmes[patient.programme_id].phase_for(day) if day is not None else None
    return list(phase.default_times) if phase is not None else []


# --- changes ---------------------------------------------------------------------


async def change_programme(
    session: AsyncSession,
    staff: Staff,
    patient: Patient,
    programme_id: str,
    content: Content,
    now: datetime,
    *,
    quiet: tuple[time | None, time | None] | None = None,
) -> None:
    """Move the patient to another content programme (it replaces an own plan from the programme builder).

    The same path as a plan saved in the builder (programme.apply_change):
    re-planned from the next slot, one message to the patient when quiet
    (the clinic's quiet hours) is given, audited.
    """
    from rehab_bot import programme as programme_core

    require(staff, patient, Access.WRITE)
    if programme_id not in content.programmes:
        raise StaffError("That programme is no longer available.")
    before = await programme_core.programme_for(session, content, patient)
    old = patient.programme_id
    patient.programme_id = programme_id
    session.add(patient)
    await programme_core.drop_own_plan(session, patient)
    await programme_core.apply_change(
        session,
        staff,
        patient,
        content,
        now,
        before=before,
        times_before=patient.session_times,
        action=audit.CHANGE_PROGRAMME,
        detail=f"programme {old or '-'} -> {programme_id}",
        quiet=quiet,
    )
    if patient.status not in (PatientStatus.DISCHARGED.value, PatientStatus.STOPPED.value):
        await education.schedule_for(session, patient, content, now)  # lessons may depend on the programme


async def change_session_times(
    session: AsyncSession,
    staff: Staff,
    patient: Patient,
    times: list[str],
    content: Content,
    now: datetime,
    *,
    quiet: tuple[time | None, time | None] | None = None,
) -> None:
    """Set the patient's preferred session times (local HH:MM); the same path as a programme change."""
    from rehab_bot import programme as programme_core

    require(staff, patient, Access.WRITE)
    before = await programme_core.programme_for(session, content, patient)
    old = patient.session_times
    patient.session_times = ",".join(times)
    session.add(patient)
    await programme_core.apply_change(
        session,
        staff,
        patient,
        content,
        now,
        before=before,
        times_before=old,
        action=audit.CHANGE_TIMES,
        detail=f"times {old or '-'} -> {patient.session_times}",
        quiet=quiet,
    )


async def pause(session: AsyncSession, staff: Staff, patient: Patient, days: int | None, now: datetime) -> date | None:
    """Pause reminders for some days (the engine resumes after paused_until) or until resumed."""
    require(staff, patient, Access.WRITE)
    if patient.status in (PatientStatus.DISCHARGED.value, PatientStatus.STOPPED.value):
        raise StaffError(f"{patient.alias} is {patient.status}; there is nothing to pause.")
    until = local_date(patient, now) + timedelta(days=days - 1) if days else None
    if patient.status == PatientStatus.PAUSED.value and patient.paused_until == until:
        return until  # the same press again: nothing changes, nothing to record
    patient.status = PatientStatus.PAUSED.value
    patient.paused_until = until
    session.add(patient)
    audit.record(
        session,
        action=audit.PAUSE,
        now=now,
        staff=staff,
        patient_id=patient.id,
        detail=f"until {until.isoformat()}" if until else "until resumed",
    )
    return until


async def resume(session: AsyncSession, staff: Staff, patient: Patient, now: datetime) -> None:
    """End a pause now."""
    require(staff, patient, Access.WRITE)
    if patient.status != PatientStatus.PAUSED.value:
        raise StaffError(f"{patient.alias} is not paused.")
    patient.status = PatientStatus.ACTIVE.value
    patient.paused_until = None
    session.add(patient)
    audit.record(session, action=audit.RESUME, now=now, staff=staff, patient_id=patient.id)


async def discharge(session: AsyncSession, staff: Staff, patient: Patient, now: datetime) -> bool:
    """End the patient's care: no more reminders. False if already discharged."""
    require(staff, patient, Access.WRITE)
    if patient.status == PatientStatus.DISCHARGED.value:
        return False
    patient.status = PatientStatus.DISCHARGED.value
    patient.discharged_at = now
    session.add(patient)
    # Rules stop here rather than being skipped at every slot: a discharged
    # patient's schedule is over, and the engine need not look at it again.
    await session.exec(
        update(ReminderRule)
        .where(col(ReminderRule.patient_id) == patient.id, col(ReminderRule.active).is_(True))
        .values(active=False, next_due_at=None, updated_at=now)
    )
    await session.exec(
        update(Delivery)
        .where(
            col(Delivery.patient_id) == patient.id,
            col(Delivery.status) == DeliveryStatus.QUEUED.value,
            col(Delivery.kind) != Kind.ALERT.value,
        )
        .values(status=DeliveryStatus.SKIPPED.value, error="patient discharged")
    )
    audit.record(session, action=audit.DISCHARGE, now=now, staff=staff, patient_id=patient.id)
    return True


# --- alerts ----------------------------------------------------------------------


async def open_alerts(session: AsyncSession, staff: Staff, *, limit: int = 20) -> list[tuple[Alert, Patient]]:
    """Unacknowledged alerts this staff member must act on: all for admins, own patients' otherwise."""
    query = (
        select(Alert, Patient)
        .join(Patient, col(Patient.id) == col(Alert.patient_id))
        .where(col(Alert.acknowledged_at).is_(None))
        .order_by(col(Alert.created_at), col(Alert.id))
        .limit(limit)
    )
    if staff.role != Role.ADMIN.value:
        query = query.where(col(Patient.therapist_id) == staff.id)
    return [(a, p) for a, p in (await session.exec(query)).all()]


@dataclass(frozen=True)
class Acknowledged:
    alert: Alert
    patient: Patient
    by: str  # who acknowledged it (maybe somebody else, earlier)
    now: bool  # False when it had been acknowledged already


async def acknowledge(session: AsyncSession, staff: Staff, alert_id: int, now: datetime) -> Acknowledged:
    """Acknowledge an alert once; pressing again says who already did."""
    alert = await session.get(Alert, alert_id)
    patient = await session.get(Patient, alert.patient_id) if alert is not None else None
    if alert is None or patient is None:
        raise StaffError("This alert no longer exists.")
    require(staff, patient, Access.WRITE)
    if alert.acknowledged_at is not None:
        earlier = await session.get(Staff, alert.acknowledged_by) if alert.acknowledged_by else None
        return Acknowledged(alert, patient, earlier.name if earlier else "someone", now=False)
    # Conditional, so two staff pressing at once record one acknowledgement.
    result = await session.exec(
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.acknowledged_at).is_(None))
        .values(acknowledged_at=now, acknowledged_by=staff.id)
    )
    await session.refresh(alert)
    if not result.rowcount:
        earlier = await session.get(Staff, alert.acknowledged_by) if alert.acknowledged_by else None
        return Acknowledged(alert, patient, earlier.name if earlier else "someone", now=False)
    audit.record(
        session,
        action=audit.ACKNOWLEDGE,
        now=now,
        staff=staff,
        patient_id=patient.id,
        detail=f"alert={alert_id} kind={alert.kind} severity={alert.severity}",
    )
    return Acknowledged(alert, patient, staff.name, now=True)


async def _insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    conn = await session.connection()
    table = Delivery.__table__  # type: ignore[attr-defined]
    result = await conn.execute(insert_ignore(conn.dialect.name, table, keys=["key"]).values(rows))
    return int(result.rowcount or 0)


def _staff_message(
    key: str, chat_id: int, staff_id: int | None, body: str, now: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "key": key,
        "kind": Kind.ALERT.value,
        "priority": PRIORITY[Kind.ALERT],
        "staff_id": staff_id,
        "chat_id": chat_id,
        "due_at": now,
        "not_before": now,
        "status": DeliveryStatus.QUEUED.value,
        "attempts": 0,
        "late": False,
        "body": body,
        "payload": "",
        "error": "",
        "slot": "",
        "claimed_by": "",
        "created_at": now,
        **extra,
    }


def local_time_text(when: datetime, tz: str) -> str:
    """An instant as the reader's wall-clock time, with the zone's abbreviation ("2026-06-10 07:21 CEST")."""
    return alert_core.local_time_text(when, tz)


def escalation_text(alert: Alert, patient: Patient, therapist: Staff | None, waited: str, tz: str) -> str:
    """What the admins read when an emergency or urgent alert went unacknowledged."""
    who = therapist.name if therapist is not None else "no therapist assigned"
    if therapist is not None and not therapist.active:
        who = f"{therapist.name} (removed)"
    return (
        f"🚨 ESCALATION: the {alert.severity} alert for {patient.alias} ({alert.kind}) has not been "
        f"acknowledged for {waited}.\n{alert.detail}\n"
        f"Raised {local_time_text(alert.created_at, tz)}; responsible: {who}."
    )


def escalation_due(alert: Alert, config: Config) -> datetime | None:
    """When an unacknowledged alert escalates, or None for levels that never do.

    Emergency: escalation_minutes after it was raised. Urgent: after
    urgent_escalation_minutes of the clinic's office hours (every minute counts
    when none are configured). Operational alerts (ESCALATING_KINDS) never do.
    """
    if alert.kind not in ESCALATING_KINDS:
        return None
    level = level_of(alert.severity)
    if level == "emergency":
        return alert.created_at + timedelta(minutes=config.staff.escalation_minutes)
    if level == "urgent":
        span = timedelta(minutes=config.staff.urgent_escalation_minutes)
        return config.clinic.office_hours.add_open_time(alert.created_at, span, config.clinic.timezone)
    return None


def _waited(alert: Alert, config: Config) -> str:
    if level_of(alert.severity) == "urgent":
        minutes = config.staff.urgent_escalation_minutes
        return f"{minutes} minutes" + (" of office hours" if config.clinic.office_hours.configured else "")
    return f"{config.staff.escalation_minutes} minutes"


async def escalate_overdue(session: AsyncSession, now: datetime, config: Config) -> list[int]:
    """Escalate unacknowledged emergency and urgent alerts to every admin once they are due (escalation_due)."""
    soonest = min(config.staff.escalation_minutes, config.staff.urgent_escalation_minutes)
    candidates = (
        await session.exec(
            select(Alert).where(
                col(Alert.acknowledged_at).is_(None),
                col(Alert.escalated_at).is_(None),
                col(Alert.severity).in_(sorted(ESCALATING_SEVERITIES)),
                col(Alert.kind).in_(ESCALATING_KINDS),
                col(Alert.created_at) <= now - timedelta(minutes=soonest),
            )
        )
    ).all()
    due = [a for a in candidates if (at := escalation_due(a, config)) is not None and at <= now]
    escalated: list[int] = []
    if not due:
        return escalated
    recipients = await admins(session) or await staff_members(session)
    for alert in due:
        assert alert.id is not None
        claimed = await session.exec(
            update(Alert)
            .where(col(Alert.id) == alert.id, col(Alert.escalated_at).is_(None), col(Alert.acknowledged_at).is_(None))
            .values(escalated_at=now)
        )
        if not claimed.rowcount:
            continue  # another process escalated it, or somebody acknowledged it just now
        patient = await session.get(Patient, alert.patient_id)
        if patient is None:
            continue
        therapist = await session.get(Staff, patient.therapist_id) if patient.therapist_id else None
        waited = _waited(alert, config)
        rows = [
            _staff_message(
                f"e{alert.id}:{member.telegram_id}",
                member.telegram_id,
                member.id,
                escalation_text(alert, patient, therapist, waited, member.timezone),
                now,
                patient_id=patient.id,
                payload=alert_core.ack_payload(alert.id),
            )
            for member in recipients
        ]
        if not rows and config.clinic.alert_chat_id is not None:
            chat = config.clinic.alert_chat_id
            text = escalation_text(alert, patient, therapist, waited, config.clinic.timezone)
            rows.append(
                _staff_message(
                    f"e{alert.id}:{chat}", chat, None, text, now, patient_id=patient.id,
                    payload=alert_core.ack_payload(alert.id),
                )
            )  # fmt: skip
        if not rows:
            log.error("alert %d needs escalation but reaches nobody: no staff member and no alert chat", alert.id)
        await _insert_deliveries(session, rows)
        escalated.append(alert.id)
        log.info("escalated alert %d to %d recipient(s)", alert.id, len(rows))
    return escalated


# --- the weekly digest ---------------------------------------------------------


@dataclass(frozen=True)
class Risk:
    """Why a patient is in the digest."""

    patient_id: int
    alias: str
    day: int | None
    reasons: list[str] = field(default_factory=list)


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.fmean(values) if values else None


async def last_response(session: AsyncSession, patient: Patient) -> datetime | None:
    """The last time the patient answered anything: a session, a check-in item, a note."""
    candidates: list[datetime] = []
    if patient.last_activity_at is not None:
        candidates.append(patient.last_activity_at)
    for column, model in (
        (Answer.answered_at, Answer),
        (ExerciseSession.answered_at, ExerciseSession),
        (Note.created_at, Note),
    ):
        value = (await session.exec(select(func.max(column)).where(col(model.patient_id) == patient.id))).one()
        if value is not None:
            candidates.append(_aware(value))
    return max(candidates) if candidates else None


def _aware(value: Any) -> datetime:
    # Aggregates bypass the column type: SQLite hands back naive UTC text or datetimes.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def pain_means(session: AsyncSession, patient: Patient, now: datetime) -> tuple[float | None, float | None]:
    """Mean pain over the last 7 days and over the 7 days before."""
    start = now - timedelta(days=14)
    rows = (
        await session.exec(
            select(Answer.answered_at, Answer.value).where(
                col(Answer.patient_id) == patient.id,
                col(Answer.item_id).in_(list(PAIN_ITEMS)),
                col(Answer.value).is_not(None),
                col(Answer.answered_at) > start,
                col(Answer.answered_at) <= now,
            )
        )
    ).all()
    middle = now - timedelta(days=7)
    recent = [float(v) for at, v in rows if v is not None and at > middle]
    before = [float(v) for at, v in rows if v is not None and at <= middle]
    return _mean(recent), _mean(before)


async def risk_for(session: AsyncSession, patient: Patient, now: datetime, settings: StaffConfig) -> Risk | None:
    """Why this patient is at risk this week, or None."""
    assert patient.id is not None
    reasons: list[str] = []
    if patient.status == PatientStatus.UNREACHABLE.value:
        reasons.append("unreachable: Telegram refuses our messages")
    elif patient.status == PatientStatus.ACTIVE.value:
        last = await last_response(session, patient)
        since = last or patient.consent_at or patient.created_at
        silent_days = (now - since).days
        if silent_days >= settings.digest_no_response_days:
            reasons.append(f"no response for {silent_days} days")
    if patient.status == PatientStatus.ACTIVE.value:
        stats = await session_core.stats(session, patient, now)
        if stats.adherence_7d is not None and stats.adherence_7d < settings.digest_low_adherence:
            reasons.append(f"adherence {stats.adherence_7d:.0%} over 7 days")
    recent, before = await pain_means(session, patient, now)
    if recent is not None and before is not None and recent - before >= settings.digest_pain_rise:
        reasons.append(f"pain rising: mean {before:.1f} → {recent:.1f}")
    unanswered = await education.unanswered_safety(session, patient.id)
    if unanswered:
        reasons.append("safety lessons unanswered: " + ", ".join(unanswered))
    if not reasons:
        return None
    return Risk(patient.id, patient.alias, days_since_surgery(patient, now), reasons)


def digest_text(staff: Staff, week_of: date, risks: list[Risk], total: int, settings: StaffConfig) -> str:
    """The digest message for one staff member."""
    head = f"📋 Weekly digest for the week of {week_of.isoformat()}"
    if not risks:
        return (
            f"{head}: no patients at risk ({total} in your care: adherence at least "
            f"{settings.digest_low_adherence:.0%}, no rise in pain of {settings.digest_pain_rise:g} points or more, "
            "everyone answering)."
        )
    lines = [f"{head}: {len(risks)} of the {total} patients in your care at risk."]
    for risk in risks[:MAX_DIGEST_LINES]:
        day = f" (day {risk.day})" if risk.day is not None else ""
        lines.append(f"• {risk.alias}{day}: " + "; ".join(risk.reasons))
    if len(risks) > MAX_DIGEST_LINES:
        lines.append(f"… and {len(risks) - MAX_DIGEST_LINES} more.")
    lines.append("Open /patients or /patient ALIAS for details.")
    return "\n".join(lines)


def digest_due(staff: Staff, now: datetime, settings: StaffConfig) -> date | None:
    """The local digest date if staff's digest is due at now, else None.

    Due from digest_time on the digest weekday, in the staff member's own zone,
    until that local day ends. The instant comes from schedule.local_to_utc,
    so a digest_time inside a DST gap fires at the first valid minute after it.
    """
    try:
        tz = zone(staff.timezone)
    except ScheduleError:
        log.warning("staff %d has an unknown timezone; digest skipped", staff.id)
        return None
    today = now.astimezone(tz).date()
    if today.weekday() != settings.digest_weekday_index:
        return None
    if now < local_to_utc(today, settings.digest_time, staff.timezone):
        return None
    return today


def digest_key(staff: Staff, day: date) -> str:
    """One digest per staff member per ISO week."""
    year, week, _ = day.isocalendar()
    return f"d{staff.id}:{year}-W{week:02d}"


async def queue_digests(session: AsyncSession, now: datetime, config: Config) -> int:
    """Queue the weekly digest for every staff member whose digest is due; returns how many."""
    queued = 0
    for member in await staff_members(session):
        assert member.id is not None
        day = digest_due(member, now, config.staff)
        if day is None:
            continue
        key = digest_key(member, day)
        exists = (await session.exec(select(Delivery.id).where(col(Delivery.key) == key))).first()
        if exists is not None:
            continue
        patients = (
            await session.exec(
                select(Patient)
                .where(col(Patient.therapist_id) == member.id, col(Patient.status).in_(IN_CARE))
                .order_by(func.upper(col(Patient.alias)))
            )
        ).all()
        if not patients:
            continue
        risks = [r for p in patients if (r := await risk_for(session, p, now, config.staff)) is not None]
        body = digest_text(member, day, risks, len(patients), config.staff)
        queued += await _insert_deliveries(
            session, [_staff_message(key, member.telegram_id, member.id, body, now, local_date=day)]
        )
    return queued


async def clinic_tick(session: AsyncSession, now: datetime, config: Config) -> tuple[list[int], int]:
    """Escalate overdue alerts and queue due digests; the caller commits. (escalated ids, digests)."""
    escalated = await escalate_overdue(session, now, config)
    digests = await queue_digests(session, now, config)
    return escalated, digests


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
