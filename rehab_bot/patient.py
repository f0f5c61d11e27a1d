"""What a patient can do about their own account: settings, pause, stop, their data (core, no telegram).

* Settings: session times, timezone, language and quiet hours. A change of
  times or timezone takes effect from the next slot (rules are recomputed;
  a slot already reminded today is not reminded again).
* Pause until a date (illness, a holiday): the engine skips the patient's
  reminders and resumes by itself after ``paused_until``. Stop: every rule
  off until the patient resumes.
* My data: every row of every table that references the patient, found by
  introspecting the metadata, so a table added later is exported too.
* Delete: every row of health data goes; what is left is a tombstone (the
  clinic's alias and the therapist, status stopped, no Telegram id) so the
  clinic knows what happened and nothing is ever sent again.

Plain Python over SQLModel: no telegram imports. The caller commits.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, func, select, update
from sqlmodel import SQLModel, col
from sqlmodel import select as select_models
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import alert as alerts
from rehab_bot import audit, checkin, crisis, digest, education, enrolment, programme, schedule, timezones
from rehab_bot import message as messages
from rehab_bot import session as sessions
from rehab_bot.access import Access, StaffError, require
from rehab_bot.config import ClinicConfig, DeliveryConfig
from rehab_bot.content import Content
from rehab_bot.i18n import N_, SUPPORTED_LANGUAGES, Label, t
from rehab_bot.models import (
    IN_CARE,
    URGENT_KINDS,
    Alert,
    AuditLog,
    CareMessage,
    Delivery,
    DeliveryStatus,
    Kind,
    Patient,
    PatientStatus,
    ReminderRule,
    Staff,
    table_of,
)
from rehab_bot.reminders import reschedule_patient
from rehab_bot.schedule import QuietHours, ScheduleError, local_date, zone
from rehab_bot.typed import plain

MAX_PAUSE_DAYS = 90
# A patient's status as staff read it (the caseload, the patient page, a refusal), by PatientStatus value.
STATUS_LABELS = {
    "enrolling": N_("enrolling"),
    "active": N_("active"),
    "paused": N_("paused"),
    "unreachable": N_("unreachable"),
    "discharged": N_("discharged"),
    "stopped": N_("stopped"),
}
PAUSE_CHOICES = (3, 7, 14)  # days, as buttons
# Statuses of a patient who has finished enrolment and may use the patient commands.
ENROLLED = frozenset(
    {
        PatientStatus.ACTIVE.value,
        PatientStatus.PAUSED.value,
        PatientStatus.UNREACHABLE.value,
        PatientStatus.STOPPED.value,
        PatientStatus.DISCHARGED.value,
    }
)
ERASE_ACTION = "patient.erase"


class InputError(ValueError):
    """Input the patient has to correct; ``code`` picks the friendly message, ``params`` fill it."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


# --- who is asking ------------------------------------------------------------------


class Standing(enum.StrEnum):
    """How the bot knows a Telegram user, for the patient commands."""

    PATIENT = "patient"  # enrolled: the commands apply
    ENROLLING = "enrolling"  # must finish setting up first
    STAFF = "staff"  # the commands are for patients
    STRANGER = "stranger"  # needs an invitation


async def find(session: AsyncSession, telegram_id: int) -> Patient | None:
    """The patient linked to a Telegram user, if any."""
    result = await session.exec(select_models(Patient).where(col(Patient.telegram_id) == telegram_id))
    return result.first()


async def find_in_care(session: AsyncSession, telegram_id: int) -> Patient | None:
    """The patient linked to a Telegram user while in care (models.IN_CARE): who may still write to us,
    answer, read lessons; a paused patient may catch up."""
    patient = await find(session, telegram_id)
    return patient if patient is not None and patient.status in IN_CARE else None


# Enrolment's steps after consent: the patient is asked for a time zone or session times by typing.
_ASKING_BY_TYPING = frozenset({enrolment.EnrolStep.TIMEZONE.value, enrolment.EnrolStep.TIMES.value})


def agreed_enrolling(patient: Patient) -> bool:
    """A patient who has agreed and not finished enrolling (asked for a time zone or session times): the bot
    hears their symptom or word of danger (find_heard), and the Mini App lets them use the symptom check, its
    red-flag answer and writing to the care team, nothing else (web/auth.py, "agreed")."""
    consented = patient.consent_at is not None and patient.enrol_step in _ASKING_BY_TYPING
    return patient.status == PatientStatus.ENROLLING and consented


async def find_heard(session: AsyncSession, telegram_id: int) -> Patient | None:
    """The patient whose free text the bot hears (the offer to send or keep it, the symptom check, the crisis
    question): one in care, or one still enrolling who has agreed and is being asked for a time zone or
    session times, whose symptom or word of danger typed there goes on to them (heard_elsewhere)."""
    patient = await find(session, telegram_id)
    if patient is None:
        return None
    return patient if patient.status in IN_CARE or agreed_enrolling(patient) else None


async def standing(session: AsyncSession, telegram_id: int) -> tuple[Standing, Patient | None]:
    """Whether this user is an enrolled patient, one still enrolling, staff, or a stranger."""
    patient = await find(session, telegram_id)
    if patient is not None:
        if patient.status in ENROLLED:
            return Standing.PATIENT, patient
        return Standing.ENROLLING, patient
    staff = (await session.exec(select_models(Staff).where(col(Staff.telegram_id) == telegram_id))).first()
    if staff is not None and staff.active:
        return Standing.STAFF, None
    return Standing.STRANGER, None


# --- settings -----------------------------------------------------------------------


def parse_times(text: str) -> list[str]:
    """ "8:00, 13:00 18.30" -> ["08:00", "13:00", "18:30"]; InputError("times_format") otherwise."""
    try:
        times = schedule.parse_times(text)
    except schedule.TimesError as exc:
        raise InputError("times_format", text=exc.part[:20]) from None
    if not times:
        raise InputError("times_format")
    if len(set(times)) != len(times):
        raise InputError("times_duplicate")
    return sorted(times)


def _refuse_clash(code: str, quiet: QuietHours | None, times: list[str], *, typed: bool = False) -> None:
    """InputError ``code`` naming the session times that fall in the quiet hours, if any do; for times the
    patient typed (``typed``), ``later`` names them twelve hours on when that fits (QuietHours.meant_later)."""
    clashing = quiet.clashing(times) if quiet is not None else []
    if clashing and quiet is not None:
        params = {"times": ", ".join(clashing), "start": quiet.start_text, "end": quiet.end_text}
        later = quiet.meant_later(clashing, times) if typed else None
        raise InputError(code, **params, **({"later": ", ".join(later)} if later else {}))


def quiet_hours(patient: Patient, delivery: DeliveryConfig) -> QuietHours | None:
    """The quiet hours that apply to the patient: their own, none, or the clinic's."""
    return QuietHours.for_patient(patient, delivery.quiet_hours_start, delivery.quiet_hours_end)


async def sessions_per_day(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> int | None:
    """How many session times the patient's current (or first) phase needs; None without a programme.

    The phase of the patient's own plan when they have one (rehab_bot/plan.py).
    """
    followed = await programme.programme_for(session, content, patient)
    phase = programme.planning_phase_in(followed, patient, local_date(patient, now))
    return phase.sessions_per_day if phase is not None else None


async def set_times(
    session: AsyncSession,
    patient: Patient,
    times: list[str],
    *,
    content: Content,
    delivery: DeliveryConfig,
    now: datetime,
) -> list[str]:
    """Store new session times and re-plan the session rules from the next slot; return the times."""
    needed = await sessions_per_day(session, patient, content, now)
    if needed is not None and len(times) != needed:
        raise InputError("times_count", n=needed)
    _refuse_clash("times_quiet", quiet_hours(patient, delivery), times, typed=True)
    if needed is None:
        # No programme to plan from: move the existing rules, one time each.
        rules = await programme.session_rules(session, patient)
        if len(rules) != len(times):
            raise InputError("times_count", n=len(rules))
        for rule, local_time in zip(rules, times, strict=True):
            rule.local_time = local_time
            session.add(rule)
        patient.session_times = ",".join(times)
        session.add(patient)
        await checkin.retime(session, patient, content, now)
        await education.retime(session, patient, content, now)
        await reschedule_patient(session, patient, now)
        return times
    patient.session_times = ",".join(times)
    session.add(patient)
    # The programme keeps one rule per session and updates them in place, so a
    # session already reminded today is not reminded again at its new time;
    # the evening check-in moves with the last session the same way.
    await programme.schedule_sessions(session, patient, content, now)
    return programme.parse_times(patient.session_times)


async def set_timezone(session: AsyncSession, patient: Patient, tz: str, now: datetime) -> None:
    """Move the patient to another IANA zone; every rule keeps its local time from the next slot."""
    try:
        zone(tz)
    except ScheduleError:
        raise InputError("timezone_unknown") from None
    patient.timezone = tz
    session.add(patient)
    await reschedule_patient(session, patient, now)


def set_language(session: AsyncSession, patient: Patient, lang: str) -> None:
    """Switch the patient's language (en or de)."""
    if lang not in SUPPORTED_LANGUAGES:
        raise InputError("language_unknown")
    patient.language = lang
    session.add(patient)


def parse_quiet_hours(text: str) -> tuple[str, str]:
    """ "22:00-07:00" (or "22 - 7", "22 Uhr bis 7 Uhr") -> ("22:00", "07:00"); InputError("quiet_format") otherwise.

    The ends are read as typed session times are (schedule.parse_span): "10pm-7am", "22h-7h" too.
    """
    try:
        start, end = schedule.parse_span(text)
    except ScheduleError:
        raise InputError("quiet_format") from None
    if start == end:
        raise InputError("quiet_format")
    return start, end


def set_quiet_hours(
    session: AsyncSession, patient: Patient, start: str | None, end: str | None, delivery: DeliveryConfig
) -> None:
    """Own quiet hours (HH:MM, HH:MM), none ("", ""), or the clinic's (None, None).

    Quiet hours never swallow a session: as new times may not fall in the quiet hours
    (set_times), quiet hours that would cover one of the patient's session times are
    refused (InputError "quiet_sessions", nothing changed), whichever way they were chosen.
    """
    if (start is None) != (end is None) or (start == "") != (end == ""):
        raise InputError("quiet_format")
    if start and end:
        start, end = parse_quiet_hours(f"{start}-{end}")
    before = patient.quiet_start, patient.quiet_end
    patient.quiet_start, patient.quiet_end = start, end
    try:
        _refuse_clash("quiet_sessions", quiet_hours(patient, delivery), programme.parse_times(patient.session_times))
    except InputError:
        patient.quiet_start, patient.quiet_end = before
        raise
    session.add(patient)


# --- typed answers the bot waits for ---------------------------------------------------

# What a /settings or /pause question asks the patient to type.
AWAITABLE = frozenset({"times", "tz", "quiet", "date"})


@dataclass(frozen=True)
class Awaited:
    """The typed answer a patient owes: its kind, and whether the question has expired."""

    kind: str
    expired: bool


def expect_input(session: AsyncSession, patient: Patient, kind: str, now: datetime) -> None:
    """Remember (in the patient's row, so across restarts) that a typed answer of `kind` is awaited."""
    if kind not in AWAITABLE:
        raise ValueError(f"unknown typed answer {kind!r}")
    patient.awaiting, patient.awaiting_since = kind, now
    session.add(patient)


def forget_input(session: AsyncSession, patient: Patient) -> bool:
    """No typed answer is awaited any more; whether one was."""
    if not patient.awaiting and patient.awaiting_since is None:
        return False
    patient.awaiting, patient.awaiting_since = "", None
    session.add(patient)
    return True


def awaited_input(patient: Patient, now: datetime, minutes: int) -> Awaited | None:
    """The typed answer the patient owes, if any; expired once the question is older than `minutes`."""
    if patient.awaiting not in AWAITABLE:
        return None
    since = patient.awaiting_since
    expired = since is None or now - since > timedelta(minutes=minutes)
    return Awaited(kind=patient.awaiting, expired=expired)


# Typed instead of an answer to a settings or pause question: the patient leaves it (as /cancel does).
CANCEL_WORDS = frozenset({"cancel", "abbrechen", "abbruch"})


def is_cancel(text: str) -> bool:
    """Whether typed text is only a word for leaving the question: "cancel", "Abbrechen!", "abbruch"."""
    return " ".join(re.sub(r"[^\w]+", " ", plain(text).casefold()).split()) in CANCEL_WORDS


def looks_like_answer(kind: str, text: str, today: date) -> bool:
    """Whether `text` reads as an answer to a question of `kind` (valid, or only out of range)."""
    try:
        if kind == "times":
            parse_times(text)
        elif kind == "quiet":
            parse_quiet_hours(text)
        elif kind == "tz":
            return timezones.place(text) is not None
        elif kind == "date":
            parse_pause_date(text, today)
        else:
            return False
    except InputError as error:
        return error.code in ("times_duplicate", "date_past", "date_far")
    return True


def heard_elsewhere(kind: str, text: str, today: date, content: Content) -> bool:
    """Whether text typed while a question of `kind` is open is no answer to it but names a symptom or a
    word of danger: then it goes on to the symptom check or the crisis question, as it would without the
    question (the question stays open). Crisis phrases are answered before any question is looked at.

    The one rule for every wait for a typed answer: the settings and pause questions (`times`, `quiet`,
    `tz`, `date`) and enrolment's time zone and session times steps (`tz`, `times`)."""
    if looks_like_answer(kind, text, today):
        return False
    return names_a_worry(text, content)


def names_a_worry(text: str, content: Content) -> bool:
    """Whether text names a symptom word or a word of danger (the symptom check's or the crisis question's
    trigger). Before consent neither can be asked (nothing may be kept), so enrolment answers such a
    message with the clinic's phone and emergency text instead (rehab_bot/bot/enrol.py)."""
    return crisis.is_concern(text, content) or crisis.symptom_check_for(text, content) is not None


# --- pause, resume, stop ---------------------------------------------------------------


def parse_pause_date(text: str, today: date) -> date:
    """A date to pause until (inclusive), as schedule.read_date reads it ("24.6.", "24.06.2026", "2026-06-24");
    today up to 90 days ahead. Without a year: the next such day."""
    parsed = schedule.read_date(text, today, ahead=True)
    if parsed is None:
        raise InputError("date_format")
    if parsed < today:
        raise InputError("date_past")
    if parsed > today + timedelta(days=MAX_PAUSE_DAYS):
        raise InputError("date_far", days=MAX_PAUSE_DAYS)
    return parsed


def pause_until_for(days: int, today: date) -> date:
    """The last paused day for a pause of `days` days starting today (reminders return on today + days)."""
    return today + timedelta(days=days - 1)


def pause_for(patient: Patient, days: int, now: datetime) -> date | None:
    """A staff member's pause of ``days`` days from the patient's today; 0 days: until resumed (None)."""
    return pause_until_for(days, local_date(patient, now)) if days else None


async def _skip_queued(session: AsyncSession, patient: Patient, reason: str) -> None:
    # Rows already queued (held back by quiet hours, or waiting for a retry)
    # were materialised while the patient was active; they must not go out now.
    await session.exec(
        update(Delivery)
        .where(
            col(Delivery.patient_id) == patient.id,
            col(Delivery.status) == DeliveryStatus.QUEUED.value,
            col(Delivery.kind).not_in([k.value for k in URGENT_KINDS]),
        )
        .values(status=DeliveryStatus.SKIPPED.value, error=reason)
    )


class PauseResult(enum.StrEnum):
    PAUSED = "paused"
    NOT_ACTIVE = "not_active"  # enrolling, stopped or discharged: nothing to pause


async def pause(
    session: AsyncSession, patient: Patient, until: date | None, now: datetime, *, staff: Staff | None = None
) -> PauseResult:
    """Pause every reminder through ``until`` (inclusive; None: until resumed); the engine resumes the day after.

    The one pause, whoever asks: the patient (``staff`` None: the chat and the
    Mini App) or a staff member with write access to them (the chat and the
    web; recorded in the audit log, and a refusal is a StaffError to show
    them). Reminders already queued are skipped; urgent messages still go out.
    """
    if staff is not None:
        require(staff, patient, Access.WRITE)
    if patient.status not in IN_CARE:
        if staff is not None:
            raise StaffError(
                N_("{alias} is {status}; there is nothing to pause."),
                alias=patient.alias,
                status=Label(STATUS_LABELS.get(patient.status, patient.status)),
            )
        return PauseResult.NOT_ACTIVE
    if until is not None and until < local_date(patient, now):
        raise InputError("date_past")
    if patient.status == PatientStatus.PAUSED.value and patient.paused_until == until:
        return PauseResult.PAUSED  # the same press again: nothing changes, nothing to record
    patient.status = PatientStatus.PAUSED.value
    patient.paused_until = until
    session.add(patient)
    await _skip_queued(session, patient, "patient paused")
    if staff is not None:
        audit.record(
            session,
            action=audit.PAUSE,
            now=now,
            staff=staff,
            patient_id=patient.id,
            detail=f"until {until.isoformat()}" if until else "until resumed",
        )
    return PauseResult.PAUSED


class ResumeResult(enum.StrEnum):
    RESUMED = "resumed"  # was paused
    RESTARTED = "restarted"  # was stopped: schedules rebuilt
    REACHABLE = "reachable"  # was unreachable and has written to us
    ALREADY_ACTIVE = "already_active"
    NOT_POSSIBLE = "not_possible"  # discharged, or still enrolling


async def resume(
    session: AsyncSession, patient: Patient, *, content: Content, now: datetime, staff: Staff | None = None
) -> ResumeResult:
    """Start reminders again: after a pause, a stop, or a block the patient has lifted.

    A staff member (with write access; audited) may only end a pause: a stop
    or a block is the patient's own choice, and a refusal is a StaffError.
    """
    status = patient.status
    if staff is not None:
        require(staff, patient, Access.WRITE)
        if status != PatientStatus.PAUSED.value:
            raise StaffError(
                N_("{alias} is {status}, not paused."),
                alias=patient.alias,
                status=Label(STATUS_LABELS.get(status, status)),
            )
    if status == PatientStatus.ACTIVE.value:
        return ResumeResult.ALREADY_ACTIVE
    if status in (PatientStatus.DISCHARGED.value, PatientStatus.ENROLLING.value):
        return ResumeResult.NOT_POSSIBLE
    patient.status = PatientStatus.ACTIVE.value
    patient.paused_until = None
    session.add(patient)
    if status == PatientStatus.PAUSED.value:
        if staff is not None:
            audit.record(session, action=audit.RESUME, now=now, staff=staff, patient_id=patient.id)
        return ResumeResult.RESUMED
    if status == PatientStatus.UNREACHABLE.value:
        patient.unreachable_reason = ""
        return ResumeResult.REACHABLE
    # Stopped: every rule was switched off. Rebuild the plan from the
    # programme and the check-in schedule rather than switching old rules
    # back on, which could revive ones the programme had already retired.
    await programme.schedule_sessions(session, patient, content, now)
    await checkin.schedule_for(session, patient, content, now)
    await education.schedule_for(session, patient, content, now)
    return ResumeResult.RESTARTED


async def stop_weekly(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> bool:
    """The patient ends the maintenance phase's weekly messages (the button on the weekly check): :func:`stop`.

    False, and nothing changes, when the patient is not in care or no longer in
    the maintenance phase (a stale button: the care team changed the programme).
    """
    if not await weekly_check_on(session, patient, content, now):
        return False
    await stop(session, patient, now)
    return True


async def weekly_check_on(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> bool:
    """Whether the patient gets the maintenance phase's weekly check now (in care, past the programme's end)."""
    return patient.status in IN_CARE and await programme.in_maintenance(session, content, patient, now)


async def stop(session: AsyncSession, patient: Patient, now: datetime, clinic: ClinicConfig | None = None) -> None:
    """Stop all messages: status stopped, every rule off, nothing queued goes out.

    With the clinic's configuration, a patient in care who stops is told to their care team: an alert of
    kind ``stopped`` (low: the therapist sees it; no health data), as /delete raises ``data_deleted``.
    """
    was_in_care = patient.status in IN_CARE
    patient.status = PatientStatus.STOPPED.value
    patient.paused_until = None
    session.add(patient)
    await session.exec(
        update(ReminderRule)
        .where(col(ReminderRule.patient_id) == patient.id, col(ReminderRule.active).is_(True))
        .values(active=False, next_due_at=None, next_local_date=None, updated_at=now)
    )
    await _skip_queued(session, patient, "patient stopped")
    if clinic is not None and was_in_care:
        await alerts.raise_alert(
            session, patient, kind="stopped", severity="low", detail="", now=now, clinic=clinic,
            key=f"stopped:{patient.id}:{now.isoformat()}",
        )  # fmt: skip


# --- today and progress ------------------------------------------------------------------


@dataclass(frozen=True)
class TodayItem:
    """One session slot of today: its status, or "upcoming" when its reminder is still to come."""

    slot: str
    status: str  # pending, done, partly, skipped, missed, upcoming
    step: str = ""
    snoozed_until: datetime | None = None


async def today(session: AsyncSession, patient: Patient, now: datetime) -> list[TodayItem]:
    """Today's sessions (local date) with their status, by time."""
    assert patient.id is not None
    local = local_date(patient, now)
    items = {
        es.slot: TodayItem(es.slot, es.status, es.step, es.snoozed_until)
        for es in await sessions.sessions_on(session, patient.id, local)
    }
    if patient.status == PatientStatus.ACTIVE.value:
        for rule in await programme.session_rules(session, patient):
            if rule.next_local_date == local and rule.local_time not in items:
                items[rule.local_time] = TodayItem(rule.local_time, "upcoming")
    return [items[slot] for slot in sorted(items)]


@dataclass(frozen=True)
class Progress:
    """What /progress shows."""

    stats: sessions.SessionStats
    day_after_surgery: int | None
    next_session: datetime | None  # UTC
    status: str
    paused_until: date | None
    remaining_today: int = 0  # today's sessions still to come or waiting for an answer
    planned_today: int = 0  # today's sessions in all


async def next_session(session: AsyncSession, patient: Patient, now: datetime) -> datetime | None:
    """When the next session reminder is due after now (a snoozed re-send included)."""
    result = await session.exec(
        select_models(ReminderRule.next_due_at)
        .where(
            col(ReminderRule.patient_id) == patient.id,
            col(ReminderRule.kind) == Kind.SESSION.value,
            col(ReminderRule.active).is_(True),
            col(ReminderRule.next_due_at) > now,
        )
        .order_by(col(ReminderRule.next_due_at))
        .limit(1)
    )
    return result.first()


async def progress(session: AsyncSession, patient: Patient, now: datetime) -> Progress:
    """Streak, adherence this week and last, days since surgery, and the next session."""
    local = local_date(patient, now)
    upcoming = await next_session(session, patient, now) if patient.status == PatientStatus.ACTIVE.value else None
    items = await today(session, patient, now)
    return Progress(
        remaining_today=sum(1 for item in items if item.status in ("pending", "upcoming")),
        planned_today=len(items),
        stats=await sessions.stats(session, patient, now),
        day_after_surgery=(local - patient.surgery_date).days if patient.surgery_date is not None else None,
        next_session=upcoming,
        status=patient.status,
        paused_until=patient.paused_until,
    )


# --- my data and deletion ------------------------------------------------------------------

# Columns that are the bot's plumbing or other people's data (staff ids,
# Telegram ids of staff chats, invite codes), not information about the patient.
INTERNAL_COLUMNS: dict[str, frozenset[str]] = {
    "patient": frozenset({"id", "therapist_id", "enrol_step", "unreachable_reason"}),
    "delivery": frozenset({"key", "chat_id", "staff_id", "claimed_by", "claimed_at", "attempts", "priority"}),
    "reminder_rule": frozenset({"priority"}),
    "invite": frozenset({"code", "created_by", "used_by"}),
    "alert": frozenset({"key", "acknowledged_by"}),
    "audit_log": frozenset({"staff_id", "actor"}),
    "staff_draft": frozenset({"staff_id", "message_id"}),
    # A caregiver's own account id and the invitation code are theirs and the bot's, not the patient's.
    "caregiver": frozenset({"code", "telegram_id"}),
    "care_message": frozenset({"staff_id", "read_by", "photo_path", "photo_file_id", "chat_message_id"}),
}


def patient_tables() -> list[Table]:
    """Every table with a patient_id column, parents before children."""
    return [t for t in SQLModel.metadata.sorted_tables if "patient_id" in t.c]


def _plain(value: object) -> object:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _staff_columns(table: Table) -> frozenset[str]:
    """Columns naming a staff member (who wrote, read, acknowledged): the clinic's data, never exported."""
    return frozenset(c.name for c in table.c if any(fk.column.table.name == "staff" for fk in c.foreign_keys))


def _row(table: Table, row: Any) -> dict[str, Any]:
    skip = INTERNAL_COLUMNS.get(table.name, frozenset()) | _staff_columns(table)
    return {name: _plain(value) for name, value in row._mapping.items() if name not in skip}


# /mydata's file keeps the database's own names as its keys (stable, the same in every language: what a
# data-protection officer or a program reads and compares); its "about" part, first in the file, says in
# the patient's language what the file is and what each part holds.
ABOUT_FILE = N_(
    "All the data this bot stores about you, as the clinic's server holds it. The names in this file are "
    "the database's own and the same in every language; 'parts' says what each one holds. A point in time "
    "that ends in +00:00 is in UTC."
)
ABOUT_PARTS: dict[str, str] = {
    "exported_at": N_("When this file was made"),
    "patient": N_("Your record: alias, language, time zone, surgery date, programme, settings, status, therapist"),
    "tables": N_("Everything else stored about you, one list per kind, as named below"),
}
# What each table that references a patient holds, in their words (one per table: tests check).
ABOUT_TABLES: dict[str, str] = {
    "alert": N_("Alerts the bot raised to your care team about you, for example a red flag in a check-in"),
    "answer": N_("Your answers to the check-in questions"),
    "audit_log": N_("The clinic's record of who did what with your data, and when"),
    "care_message": N_("Your messages to your care team and their replies"),
    "caregiver": N_("The caregivers you linked, and what each may see"),
    "caseload_figures": N_("Figures about you for your care team's overview: adherence, last pain and mood, risk"),
    "checkin": N_("Your check-ins (questionnaires) and their scores"),
    "crisis_question": N_(
        "When the bot asked whether you have thoughts of ending your life or of hurting yourself, the message "
        "it asked about, and when you answered"
    ),
    "delivery": N_("Messages the bot sent you or planned to send you"),
    "exercise_session": N_("Your exercise sessions: done, partly or skipped, your effort and pain"),
    "experiment_decision": N_("Reminder experiments you took part in: what was decided for you, and what followed"),
    "experiment_notice": N_("When you were told about the reminder experiments, and whether you opted out"),
    "invite": N_("Your invitation to this bot"),
    "lesson_progress": N_("The recovery lessons you were sent, opened and answered"),
    "motivation_log": N_("The encouraging messages the bot sent you"),
    "note": N_("Notes you sent to your care team"),
    "programme_plan": N_("Your own exercise plan, if your therapist made one"),
    "reminder_rule": N_("When the bot reminds you: your session times and other reminders"),
    "staff_draft": N_("A step a staff member started for you in the chat and has not finished"),
    "timing_proposal": N_("Offers to move a session reminder to when you usually exercise, and your answers"),
    "timing_window": N_("The hours within which the bot may move your reminders"),
}


def about_export(lang: str, tables: Iterable[str]) -> dict[str, Any]:
    """The readable part of /mydata's file, in lang: what the file is, what each of its parts holds."""
    parts = {key: t(lang, text) for key, text in ABOUT_PARTS.items()}
    parts.update({name: t(lang, ABOUT_TABLES[name]) for name in tables if name in ABOUT_TABLES})
    return {"language": lang, "text": t(lang, ABOUT_FILE), "parts": parts}


async def export(session: AsyncSession, patient: Patient, now: datetime) -> dict[str, Any]:
    """All the patient's data: their record and every row of every table that references them, after a part
    that says in their language what the file is and what each part holds (about_export)."""
    assert patient.id is not None
    conn = await session.connection()
    patient_table = table_of(Patient)
    record = (await conn.execute(select(patient_table).where(patient_table.c.id == patient.id))).one()
    therapist = await session.get(Staff, patient.therapist_id) if patient.therapist_id is not None else None
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in patient_tables():
        order = [table.c[name] for name in ("id",) if name in table.c]
        rows = (await conn.execute(select(table).where(table.c.patient_id == patient.id).order_by(*order))).all()
        tables[table.name] = [_row(table, row) for row in rows]
    return {
        "about": about_export(patient.language, tables),
        "exported_at": now.isoformat(),
        "patient": {**_row(patient_table, record), "therapist": therapist.name if therapist is not None else None},
        "tables": tables,
    }


# Tables whose rows about the patient stay after /delete: the clinic's record of who
# did what and when (and that the deletion happened). Their details go (an alert's
# kind and severity, a programme, a questionnaire item are health data), see erase.
KEPT_ON_ERASE = frozenset({"audit_log"})


async def erase(
    session: AsyncSession, patient: Patient, *, now: datetime, clinic: ClinicConfig, photo_dir: Path | None
) -> None:
    """Delete all the patient's data, keep a tombstone, tell the therapist (no health data).

    Caregiver links and proxy answers are the patient's data too and go with the
    rest; so do the photo files they sent (under photo_dir, which every caller must
    name: None only where the clinic keeps no photos, so no front end can forget it).
    """
    assert patient.id is not None
    conn = await session.connection()
    photos = list(
        (
            await session.exec(
                select_models(CareMessage.photo_path).where(
                    col(CareMessage.patient_id) == patient.id, col(CareMessage.photo_path) != ""
                )
            )
        ).all()
    )
    # SQLite gives a new row the highest id + 1: deleting the patient's newest alerts would hand their ids to
    # the next alerts, and an Acknowledge button or page still showing an old one would act on another
    # patient's. The data_deleted alert below takes the id after the highest so far, so alert ids only rise
    # (erase is the one place alerts are deleted). PostgreSQL's sequence never gives an id twice.
    top_alert = (await session.exec(select_models(func.max(Alert.id)))).one() if conn.dialect.name == "sqlite" else None
    for table in reversed(patient_tables()):  # children before parents
        if table.name in KEPT_ON_ERASE or table.name == "patient":
            continue
        await conn.execute(delete(table).where(table.c.patient_id == patient.id))
    # A weekly digest still queued may name them and why they were at risk: it is made again without them.
    await digest.drop_queued(session)
    # The audit rows stay anonymised: who, what, when and the alias; no detail.
    audit_table = table_of(AuditLog)
    await conn.execute(update(audit_table).where(audit_table.c.patient_id == patient.id).values(detail=""))
    # The tombstone: the clinic's alias and therapist, so staff see what
    # happened; no Telegram id, so the bot cannot reach or recognise them.
    defaults = Patient(alias=patient.alias)
    for name in (
        "telegram_id",
        "language",
        "timezone",
        "paused_until",
        "quiet_start",
        "quiet_end",
        "surgery_date",
        "surgery_type",
        "programme_id",
        "consent_at",
        "consent_version",
        "enrol_step",
        "session_times",
        "phase_id",
        "unreachable_reason",
        "discharged_at",
        "last_activity_at",
        "awaiting",
        "awaiting_since",
    ):
        setattr(patient, name, getattr(defaults, name))
    patient.status = PatientStatus.STOPPED.value
    session.add(patient)
    await session.flush()
    if photo_dir is not None:
        messages.delete_photos(photo_dir, photos)
    audit.record(session, action=ERASE_ACTION, now=now, actor="patient", patient_id=patient.id)
    await alerts.raise_alert(
        session,
        patient,
        kind="data_deleted",
        severity="low",
        detail="",
        now=now,
        clinic=clinic,
        key=f"erased:{patient.id}",
        after_id=top_alert,
    )
