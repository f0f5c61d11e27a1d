"""Database tables (SQLModel over SQLAlchemy 2).

Conventions:

* Instants are stored as UTC and come back as aware UTC datetimes on SQLite
  and PostgreSQL alike (UTCDateTime). Local dates and HH:MM slots are stored
  as the patient saw them, because that is what the idempotency keys use.
* Telegram ids are BigInteger: user ids already exceed 2**31.
* No relationships are declared: under AsyncSession a lazy load raises
  MissingGreenlet, so every query says what it joins.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.db import insert_ignore


class UTCDateTime(TypeDecorator[datetime]):
    """Store naive UTC, return aware UTC: SQLite has no time zones."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for bulk statements (SQLModel does not declare ``__table__``)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def utcnow() -> datetime:
    """Default for created_at columns (the dispatcher passes its own clock)."""
    return datetime.now(UTC)


class Role(enum.StrEnum):
    ADMIN = "admin"
    THERAPIST = "therapist"


class PatientStatus(enum.StrEnum):
    ENROLLING = "enrolling"
    ACTIVE = "active"
    PAUSED = "paused"
    UNREACHABLE = "unreachable"
    DISCHARGED = "discharged"
    STOPPED = "stopped"


# In care: enrolled and neither stopped nor discharged. Such a patient may write and be answered,
# read lessons, be paused, have a caregiver answer for them, and is in the digest and the default list.
IN_CARE = frozenset({PatientStatus.ACTIVE.value, PatientStatus.PAUSED.value, PatientStatus.UNREACHABLE.value})


class Kind(enum.StrEnum):
    """What a delivery is. The priority order is in PRIORITY."""

    SAFETY = "safety"
    ALERT = "alert"
    CHECKIN = "checkin"
    SESSION = "session"
    NUDGE = "nudge"
    MOTIVATION = "motivation"
    LESSON = "lesson"
    # A care-team message: a patient's message to their therapist, or a staff reply to the patient.
    MESSAGE = "message"
    # A copy for a patient's caregiver (rehab_bot/caregiver.py), sent to the caregiver's own chat.
    CAREGIVER = "caregiver"


# Lower goes first. Safety messages and clinician alerts are never deferred
# by quiet hours and always jump the queue.
PRIORITY: dict[Kind, int] = {
    Kind.SAFETY: 0,
    Kind.ALERT: 1,
    Kind.CHECKIN: 2,
    Kind.SESSION: 3,
    Kind.NUDGE: 4,
    Kind.MOTIVATION: 5,
    Kind.LESSON: 6,
    Kind.MESSAGE: 1,
    Kind.CAREGIVER: 5,
}
# Never deferred by quiet hours nor dropped by the grace period. A care-team
# message is somebody's own words to a person: it is never dropped either.
URGENT_KINDS = frozenset({Kind.SAFETY, Kind.ALERT, Kind.MESSAGE})


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"  # due, waiting for the sender (maybe until not_before)
    SENDING = "sending"  # claimed by a sender; the request may be in flight
    SENT = "sent"
    FAILED = "failed"  # permanent error or retries exhausted; reason in error
    MISSED = "missed"  # found after the grace period: recorded, not sent
    SKIPPED = "skipped"  # patient paused, stopped or unreachable at due time
    UNKNOWN = "unknown"  # in flight when a process died: not re-sent, never twice


class Staff(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_type=BigInteger, unique=True, index=True)
    name: str
    role: str = Field(default=Role.THERAPIST.value)
    language: str = "en"
    timezone: str = "Europe/Berlin"
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# The kinds of spine surgery a patient is enrolled for (Patient.surgery_type; lessons may target one).
SURGERY_TYPES = ("lumbar", "cervical", "other")


class Patient(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    alias: str = Field(unique=True, index=True)
    telegram_id: int | None = Field(default=None, sa_type=BigInteger, unique=True, index=True)
    language: str = "en"
    timezone: str = "Europe/Berlin"
    status: str = Field(default=PatientStatus.ENROLLING.value, index=True)
    paused_until: date | None = None
    # None means the clinic default; "" in both means no quiet hours at all.
    quiet_start: str | None = None
    quiet_end: str | None = None
    therapist_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    surgery_date: date | None = None
    surgery_type: str = "lumbar"
    programme_id: str = ""
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    consent_version: str = ""
    # Enrolment progress, so an abandoned enrolment resumes where it stopped:
    # "" (not started), "consent", "declined" (consent refused; may still agree
    # later), "timezone", "times", "done". See rehab_bot/bot/enrol.py.
    enrol_step: str = ""
    # Preferred session times, local HH:MM, comma-separated ("08:00,13:00,18:00").
    session_times: str = ""
    # The programme phase the patient was last told about (phase change notices).
    phase_id: str = ""
    unreachable_reason: str = ""
    discharged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_activity_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The typed answer the bot is waiting for after a /settings or /pause
    # question: "" (none), "times", "tz", "quiet" or "date", and when it was
    # asked (by the injected clock; the question expires). Stored here, not in
    # memory, so an answer typed after a restart is still understood. See
    # rehab_bot/bot/patient.py.
    awaiting: str = ""
    awaiting_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Since when the patient's reminders come at their phase's tapered frequency (rehab_bot/tapering.py);
    # None: full frequency.
    tapered_since: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReminderRule(SQLModel, table=True):
    """A recurring reminder slot. next_due_at *is* the schedule (NULL = none)."""

    __tablename__ = "reminder_rule"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    kind: str
    priority: int
    local_time: str  # HH:MM in the patient's timezone
    days: str = ""  # weekday digits, 0 = Monday; "" = every day
    every_n_days: int | None = None
    start_date: date
    end_date: date | None = None
    once: bool = False  # a one-off (snooze, follow-up): deactivates after firing
    payload: str = Field(default="", sa_type=Text)
    active: bool = True
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    next_local_date: date | None = None
    last_local_date: date | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    """One message the bot owes somebody, with its outcome.

    key is the idempotency key, unique: "r<rule>:<local date>:<slot>" for a
    rule's slot, "a<alert>:<staff>" for an alert. Inserting the same key twice
    fails, which is what makes "no reminder goes out twice" hold across
    crashes and across several dispatch processes.
    """

    __table_args__ = (
        UniqueConstraint("key", name="uq_delivery_key"),
        # Partial indexes: only unfinished rows are in them, so the claim and
        # the per-window statements stay as fast with a year of sent rows as
        # with none (docs/RELIABILITY.md, "Claims that stay flat").
        # The claim: queued rows in claim order, read until `limit` are due.
        Index(
            "ix_delivery_claim",
            "priority",
            "due_at",
            "id",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # Grace-period sweep, backlog count and next wake-up: queued rows by not_before.
        Index(
            "ix_delivery_queued_not_before",
            "not_before",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # Recovery after a crash, and which chats another process is sending to now.
        Index(
            "ix_delivery_sending",
            "chat_id",
            "claimed_at",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str
    kind: str
    priority: int
    rule_id: int | None = Field(default=None, foreign_key="reminder_rule.id", index=True, ondelete="CASCADE")
    patient_id: int | None = Field(default=None, foreign_key="patient.id", index=True, ondelete="CASCADE")
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    chat_id: int = Field(sa_type=BigInteger)
    local_date: date | None = None
    slot: str = ""
    due_at: datetime = Field(sa_type=UTCDateTime)
    not_before: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=DeliveryStatus.QUEUED.value)
    attempts: int = 0
    late: bool = False
    body: str = Field(default="", sa_type=Text)
    payload: str = Field(default="", sa_type=Text)
    error: str = ""
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    claimed_by: str = ""
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def delivery_row(key: str, kind: Kind, chat_id: int, body: str, now: datetime, **extra: Any) -> dict[str, Any]:
    """A Delivery row (as the dict an insert takes) written now and due now: a message whose text is
    already written (alerts, escalations, digests, care-team messages, caregivers' copies).

    The key is its idempotency key (the engine sends one row per key, once); extra sets the other
    columns (patient_id, staff_id, payload, local_date ...).
    """
    return {
        "key": key,
        "kind": kind.value,
        "priority": PRIORITY[kind],
        "patient_id": None,
        "staff_id": None,
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


async def queue_deliveries(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> int:
    """Queue delivery rows (from :func:`delivery_row`); a key already queued is kept. Returns how many were new.

    The one way a written message is queued: staff messages, alerts' escalations,
    digests, care-team messages and caregivers' copies all come here.
    """
    if not rows:
        return 0
    conn = await session.connection()
    result = await conn.execute(insert_ignore(conn.dialect.name, table_of(Delivery), keys=["key"]).values(list(rows)))
    return int(result.rowcount or 0)


class Alert(SQLModel, table=True):
    """Something a clinician must see: a red flag, an unreachable patient."""

    __table_args__ = (UniqueConstraint("key", name="uq_alert_key"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str | None = None  # dedupe key: one open alert per key
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    severity: str
    kind: str
    detail: str = Field(default="", sa_type=Text)  # in English (exports, audit); see detail_parts
    # The detail as parts (JSON) that render in each reader's language (rehab_bot.alert_detail); None for an
    # alert raised before there were parts, or with a plain-text detail: readers then see detail.
    detail_parts: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: int | None = Field(default=None, foreign_key="staff.id")
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class GroupNotice(SQLModel, table=True):
    """Group and channel chats already told that the bot works only in private."""

    __tablename__ = "group_notice"
    chat_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    noticed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChatMove(SQLModel, table=True):
    """A group chat that Telegram upgraded to a supergroup, which gave it a new id (the clinic's alert chat).

    Kept so that alerts go to the new id and its Acknowledge presses are read, across restarts, before
    the operator updates ``[clinic] alert_chat_id`` (see alert.alert_chat).
    """

    __tablename__ = "chat_move"
    old_chat_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    new_chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    moved_at: datetime = Field(sa_type=UTCDateTime)


class Invite(SQLModel, table=True):
    """A single-use, expiring invitation: for a patient (deep link) or a staff member."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    kind: str = "patient"  # "patient" or "staff"
    patient_id: int | None = Field(default=None, foreign_key="patient.id", ondelete="CASCADE")
    role: str = ""  # staff invites: "therapist" or "admin"
    staff_name: str = ""
    created_by: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    used_by: int | None = Field(default=None, sa_type=BigInteger)
    # A staff invitation an admin withdrew (web/admin.py): its link then says so (invite.Outcome.WITHDRAWN).
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ExerciseSession(SQLModel, table=True):
    """One planned exercise session of a patient and what became of it."""

    __tablename__ = "exercise_session"
    __table_args__ = (
        UniqueConstraint("patient_id", "local_date", "slot", name="uq_session_slot"),
        # The end-of-day sweep looks for pending sessions of past days.
        Index("ix_exercise_session_status_date", "status", "local_date"),
    )
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id", ondelete="SET NULL")
    local_date: date
    slot: str
    phase_id: str = ""
    status: str = "pending"  # pending, done, partly, skipped, missed
    effort: str = ""  # easy, ok, hard
    pain: int | None = None  # 0-10 during the exercises
    skip_reason: str = ""  # pain, no_time, forgot, unwell, other
    # What the session's live message (message_id) waits for: "" (the four
    # buttons), snooze, snoozed, effort, pain, reason, or closed. Presses are
    # checked against it, so a stale or repeated press changes nothing.
    step: str = ""
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    snoozed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    nudged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CheckIn(SQLModel, table=True):
    """One questionnaire put to a patient (a check-in, or an extra pain entry)."""

    __tablename__ = "checkin"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    questionnaire_id: str
    status: str = "open"  # open, complete, expired
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id", ondelete="SET NULL")
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    score: float | None = None
    local_date: date | None = None


class Answer(SQLModel, table=True):
    """One item answered in a check-in; a partial check-in keeps its answers."""

    __table_args__ = (
        UniqueConstraint("checkin_id", "item_id", name="uq_answer_item"),
        # The newest pain/mood per patient, and answers after a date (the web caseload, rehab_bot/caseload_overview.py).
        Index("ix_answer_patient_item_time", "patient_id", "item_id", "answered_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    checkin_id: int = Field(foreign_key="checkin.id", index=True, ondelete="CASCADE")
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    item_id: str
    value: int | None = None
    text: str = Field(default="", sa_type=Text)
    answered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Answered by a caregiver on the patient's behalf (rehab_bot/caregiver.py): a proxy answer.
    # caregiver_id is cleared when that caregiver's link is deleted; proxy stays true.
    proxy: bool = False
    caregiver_id: int | None = Field(default=None, foreign_key="caregiver.id", ondelete="SET NULL")


class Note(SQLModel, table=True):
    """Free text a patient wrote, kept for the therapist."""

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    text: str = Field(sa_type=Text)
    crisis: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CrisisQuestion(SQLModel, table=True):
    """The crisis question asked about a patient's message (rehab_bot.crisis.asks_question), in the chat or the
    Mini App. Yes or No, tapped or typed, answers every open one of the patient's; one left unanswered for
    [staff] crisis_question_minutes raises one alert (redflag.check_unanswered_questions)."""

    __tablename__ = "crisis_question"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    said: str = Field(default="", sa_type=Text)  # the patient's message that was asked about
    asked_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    alerted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MotivationLog(SQLModel, table=True):
    """Motivational messages sent, for the no-repeat and daily-cap rules."""

    __tablename__ = "motivation_log"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    message_key: str
    local_date: date
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MediaCache(SQLModel, table=True):
    """Telegram file_id of an uploaded media file, reused after the first upload."""

    __tablename__ = "media_cache"
    source: str = Field(primary_key=True)  # path or URL from content
    file_id: str
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditLog(SQLModel, table=True):
    """Every staff view, export and change: who, what, which patient, when."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    actor: str = ""  # "telegram:<id>", or "cli:<os user>@<host>" from the command line
    action: str
    patient_id: int | None = Field(default=None, foreign_key="patient.id", ondelete="SET NULL")
    detail: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class StaffDraft(SQLModel, table=True):
    """A staff conversation in progress (/invite, new session times), kept across restarts.

    One per staff member: starting another replaces it. Nothing is pickled;
    the row holds the answers given so far and the step that is next.
    """

    __tablename__ = "staff_draft"
    staff_id: int = Field(foreign_key="staff.id", primary_key=True, ondelete="CASCADE")
    kind: str  # "invite", "staff_invite" or "times"
    step: str
    patient_id: int | None = Field(default=None, foreign_key="patient.id", ondelete="CASCADE")
    alias: str = ""
    surgery_date: date | None = None
    surgery_type: str = ""
    programme_id: str = ""
    role: str = ""  # staff invites
    name: str = ""  # staff invites
    message_id: int | None = Field(default=None, sa_type=BigInteger)  # the prompt whose buttons are live
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Installation(SQLModel, table=True):
    """This installation's identity: one row, written once, never changed.

    ``namespace`` (a random UUID, generated by the migration or on first use)
    is the namespace of the ids in FHIR exports, so two clinics' exports never
    share an id. See rehab_bot/installation.py.
    """

    id: int = Field(default=1, primary_key=True)
    namespace: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReceiverLease(SQLModel, table=True):
    """The one process that receives Telegram updates (polling or webhook) holds this row.

    It renews heartbeat_at/expires_at while it runs and deletes the row when it
    stops; a second receiver finds it and refuses to start (rehab_bot.receiver).
    """

    __tablename__ = "receiver_lease"
    name: str = Field(primary_key=True)  # "updates": one lease per database
    holder: str  # a random token of the holding process
    host: str
    pid: int
    node: str  # host plus PID namespace: where pid can be checked (rehab_bot.receiver)
    mode: str  # "polling" or "webhook"
    acquired_at: datetime = Field(sa_type=UTCDateTime)
    heartbeat_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class LessonProgress(SQLModel, table=True):
    """One lesson of the recovery course and a patient: delivered, offered, opened, answered.

    A row exists once the lesson went out (delivered_at) or was offered as
    missed during a pause (offered_at). Answers to its teach-back question:
    the first and last answer (0-based index of the answer button), how many
    were wrong, and understood once a correct answer came. See
    rehab_bot/education.py.
    """

    __tablename__ = "lesson_progress"
    __table_args__ = (UniqueConstraint("patient_id", "lesson_id", name="uq_lesson_progress"),)
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    lesson_id: str
    safety: bool = False
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id", ondelete="SET NULL")
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    local_date: date | None = None  # the day it was delivered or offered
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    offered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_answer: int | None = None
    last_answer: int | None = None
    wrong_answers: int = 0
    understood: bool = False
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SendShare(SQLModel, table=True):
    """A process that sends for the bot holds a row while it runs; the rate is split among live rows.

    Every process renews expires_at about once a second and paces itself at
    the configured rate divided by the number of unexpired rows, so all
    processes together stay within one budget (rehab_bot.send_budget).
    """

    __tablename__ = "send_share"
    holder: str = Field(primary_key=True)  # host:pid:random of the process
    expires_at: datetime = Field(sa_type=UTCDateTime)


class RateBlock(SQLModel, table=True):
    """A 429 from Telegram, shared: every process holds the scope until blocked_until.

    scope is "*" for everything (a 429 without a chat) or the chat id.
    """

    __tablename__ = "rate_block"
    scope: str = Field(primary_key=True)
    blocked_until: datetime = Field(sa_type=UTCDateTime)


class ClinicExercise(SQLModel, table=True):
    """An exercise the clinic added to its library in the web app, beside the content exercises.

    Its id in plans is ``clinic-<id>`` (rehab_bot/library.py). Texts are JSON
    objects per patient language ({"en": ..., "de": ...}); media is a file name
    in the library's media folder (mode 0600), sent once and then by file_id
    (MediaCache, keyed by the file's path).
    """

    __tablename__ = "clinic_exercise"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=Text)
    instructions: str = Field(sa_type=Text)
    safety_notes: str = Field(default="{}", sa_type=Text)
    sets: int = 1
    reps: int | None = None
    hold_seconds: int | None = None
    duration_seconds: int | None = None
    media: str = ""
    media_kind: str = ""  # "photo", "animation" or "video" when media is set
    created_by: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProgrammePlan(SQLModel, table=True):
    """A programme built in the programme builder: a patient's own plan, or a clinic template.

    patient_id set: the patient's own plan, which replaces their content
    programme's phases and sessions (at most one per patient); None: a
    template with a name. body is the plan as JSON, validated by rehab_bot/plan.py.
    Ids only rise, on SQLite too (AUTOINCREMENT): a page still showing a deleted
    template must not act on a newer one that took its id.
    """

    __tablename__ = "programme_plan"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int | None = Field(default=None, foreign_key="patient.id", unique=True, ondelete="CASCADE")
    name: str = ""
    based_on: str = ""  # the content programme it started from, "" when built from empty
    body: str = Field(sa_type=Text)
    version: int = 1
    created_by: int | None = Field(default=None, foreign_key="staff.id")
    updated_by: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebSignin(SQLModel, table=True):
    """A one-time sign-in link for the web app, asked for with /dashboard (rehab_bot/signin.py).

    Only the SHA-256 of the token is stored: a copy of the database cannot sign anyone in.
    """

    __tablename__ = "web_signin"
    token_hash: str = Field(primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebSession(SQLModel, table=True):
    """A signed-in browser or Mini App (rehab_bot/signin.py, rehab_bot/web/auth.py).

    The encrypted cookie carries a random session id and who is signed in; the database keeps only
    the id's SHA-256 and the session's times, no identity. Signing out marks it ended, so every copy
    of the cookie stops working; it also ends at expires_at however active it is.
    """

    __tablename__ = "web_session"
    token_hash: str = Field(primary_key=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CareMessage(SQLModel, table=True):
    """A message between a patient and their care team (rehab_bot/message.py).

    direction "in": the patient wrote it (text and/or a photo) to the care
    team; "out": a staff member's reply to the patient. parent_id is the
    message it answers, so a conversation is a thread. chat_message_id is the
    message's id in the patient's Telegram chat (the patient's own message,
    or the bot's message carrying the reply once sent): Telegram replies to
    it continue the thread. Photos are files under [care] photo_dir (mode
    0600); photo_path is the file name there, photo_file_id Telegram's id to
    send it again.
    """

    __tablename__ = "care_message"
    __table_args__ = (Index("ix_care_message_open", "direction", "answered_at", "read_at"),)
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    direction: str  # "in" (from the patient) or "out" (from staff)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")  # the author of an "out" message
    parent_id: int | None = Field(default=None, foreign_key="care_message.id", ondelete="SET NULL")
    text: str = Field(default="", sa_type=Text)
    photo_path: str = ""
    photo_file_id: str = ""
    photo_bytes: int = 0
    chat_message_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    read_by: int | None = Field(default=None, foreign_key="staff.id")
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Caregiver(SQLModel, table=True):
    """A person the patient invited to follow their rehab (rehab_bot/caregiver.py).

    Made by the patient's /caregiver with a single-use, expiring code; joined
    (telegram_id, name, consent_at) when the caregiver opens the link and
    agrees. Each permission is on or off and the patient can change it;
    removed_at ends the link at once (telegram_id is cleared, so the bot no
    longer knows the account). Ids only rise, on SQLite too (AUTOINCREMENT): a
    Remove button still showing a deleted link must not reach a newer one.
    """

    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    code: str = Field(unique=True, index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    telegram_id: int | None = Field(default=None, sa_type=BigInteger, unique=True, index=True)
    name: str = ""
    language: str = "en"
    reminders: bool = False  # a copy of each session reminder
    missed: bool = False  # a message when two sessions in a row are missed
    emergencies: bool = False  # emergency-level red flags
    weekly: bool = False  # weekly progress
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TimingProposal(SQLModel, table=True):
    """A learned reminder time offered to a patient for one session of the day (rehab_bot.timing).

    One row per (patient, session index, reminder time it would move from): the
    patient is asked once about that reminder; "auto" rows are moves made
    within the patient's own window without asking.
    """

    __tablename__ = "timing_proposal"
    __table_args__ = (UniqueConstraint("patient_id", "session_index", "from_time", name="uq_timing_proposal"),)
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    session_index: int
    from_time: str  # HH:MM, the reminder when asked
    to_time: str  # HH:MM, the reminder proposed
    usual_time: str  # HH:MM, the learned centre of the completion times
    status: str = "asked"  # asked, accepted, declined, auto, stale
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TimingWindow(SQLModel, table=True):
    """A patient's consent to automatic reminder moves, within a local window [start, end]."""

    __tablename__ = "timing_window"
    patient_id: int = Field(foreign_key="patient.id", primary_key=True, ondelete="CASCADE")
    start: str  # HH:MM local
    end: str  # HH:MM local
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExperimentDecision(SQLModel, table=True):
    """One decision point of a micro-randomised experiment (rehab_bot.experiment): what was drawn, and what followed.

    ref names what was decided about (the exercise session a nudge is for);
    one row per (experiment, patient, ref), so a retried render never draws twice.
    """

    __tablename__ = "experiment_decision"
    __table_args__ = (UniqueConstraint("experiment_id", "patient_id", "ref", name="uq_experiment_decision"),)
    id: int | None = Field(default=None, primary_key=True)
    experiment_id: str = Field(index=True)
    patient_id: int = Field(foreign_key="patient.id", index=True, ondelete="CASCADE")
    ref: int  # the exercise session
    decided_at: datetime = Field(sa_type=UTCDateTime)
    treated: bool  # True: the treatment arm
    probability: float  # of the treatment arm at this decision point
    local_hour: int  # context: the patient's local hour
    programme_day: int | None = None  # context: days after surgery
    adherence: float | None = None  # context: share of resolved sessions done in the 7 days before
    outcome: int | None = None  # proximal outcome (1/0), once its window has passed
    outcome_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ExperimentNotice(SQLModel, table=True):
    """Whether a patient was told about the clinic's experiments, and whether they opted out (rehab_bot.experiment).

    One row per patient: told at consent (the consent text mentioned a running experiment), or by
    the one-time notice on the first nudge that would have been randomised; an opted-out patient is
    never randomised again.
    """

    __tablename__ = "experiment_notice"
    patient_id: int = Field(
        sa_column=Column(ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    )
    told_at: datetime = Field(sa_type=UTCDateTime)
    via: str  # "consent", "notice", or "opt-out" (opted out before being told otherwise)
    ref: int | None = None  # the exercise session whose nudge carried the notice
    opted_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AlertReview(SQLModel, table=True):
    """A staff member's one-tap verdict on an acknowledged alert: did it need action? (alert accuracy)."""

    __tablename__ = "alert_review"
    alert_id: int = Field(
        sa_column=Column(ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    )
    needed_action: bool
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    reviewed_at: datetime = Field(sa_type=UTCDateTime)


class CaseloadFigures(SQLModel, table=True):
    """A patient's caseload figures and risk reasons as the rules last computed them: a cache.

    rehab_bot/caseload_overview.py writes a row from the rules' output
    (session.share_7d, caseload.risk_reasons) and reads it back instead of
    recomputing every patient for each filtered or sorted caseload page. A row
    holds until valid_until (the next moment time alone changes a figure: the
    patient's local midnight, a day more without a response, a pain answer
    leaving a week) and only for the settings named in settings_key. Database
    triggers (in the initial migration) bump generation and clear valid_until whenever
    the patient's sessions, answers, notes, alerts, lessons or status change, on
    every write path and in every process; a recomputed row is written only if
    its generation is still the one read before the figures were.
    """

    __tablename__ = "caseload_figures"
    patient_id: int = Field(
        sa_column=Column(Integer, ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    )
    generation: int = 0
    valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime)  # None: to be recomputed
    settings_key: str = ""
    computed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    adherence_7d: float | None = None
    last_pain: int | None = None
    last_mood: int | None = None
    open_alerts: int = 0
    lesson_gaps: str = Field(default="", sa_type=Text)  # JSON list of lesson ids
    risk: str = Field(default="", sa_type=Text)  # JSON list of [kind, {name: value}] (caseload.RiskReason)
    risk_count: int = 0
