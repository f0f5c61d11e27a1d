"""Exercise sessions: outcomes, nudges, missed sessions, streaks and adherence (core, no telegram).

A session is one planned exercise slot of a patient on a local date. Its row
is made when the reminder is rendered (so the buttons can name it) and is
bound to the message that carries its live buttons once that is sent. From
then on it moves through a small state machine, one conditional UPDATE per
press, so a repeated, stale or forged press changes nothing:

* ``pending`` with step ``""`` (the reminder's
  buttons), ``snooze`` (the snooze menu), ``snoozed`` (waiting for the re-send)
  or ``playing`` (Start was pressed: the exercises are sent one by one, and a
  last message asks Done or Partly);
* Done/Partly -> ``done``/``partly`` with step ``effort`` then ``pain``;
* Skip -> ``skipped`` with step ``reason``; every flow ends in ``closed``;
* ``missed``: still pending when the patient's local day ended (the sweep).

Sessions count for adherence only once resolved (done, partly, skipped,
missed): a session still open today neither helps nor hurts, and days
without any session (a pause) are neutral for streaks. A single missed day
inside a streak is a grace day (see :func:`streak_run`): one missed day never
resets a streak to zero.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlmodel import col
from sqlmodel import select as select_models
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import plan, programme, session_text, tapering
from rehab_bot.content import Content, Exercise, Phase
from rehab_bot.db import insert_ignore
from rehab_bot.models import (
    Delivery,
    DeliveryStatus,
    ExerciseSession,
    Kind,
    Patient,
    PatientStatus,
    ReminderRule,
    table_of,
)
from rehab_bot.reminders import ASKED, DueMessage, WindowOpener, add_one_off, one_off_values
from rehab_bot.schedule import QuietHours, local_date, local_to_utc, parse_hhmm
from rehab_bot.typed import number, one_slip

SESSIONS = table_of(ExerciseSession)
PATIENTS = table_of(Patient)
DELIVERIES = table_of(Delivery)
RULES = table_of(ReminderRule)


class Status(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    PARTLY = "partly"
    SKIPPED = "skipped"
    MISSED = "missed"


class Step(enum.StrEnum):
    BUTTONS = ""
    SNOOZE = "snooze"
    SNOOZED = "snoozed"
    EFFORT = "effort"
    PAIN = "pain"
    REASON = "reason"
    CLOSED = "closed"
    PLAYING = "playing"


EFFORTS = ("easy", "ok", "hard")
SKIP_REASONS = ("pain", "no_time", "forgot", "unwell", "other")
SNOOZE_MINUTES = (15, 30, 60)
PAIN_MAX = 10
DONE_STATUSES = (Status.DONE.value, Status.PARTLY.value)
RESOLVED_STATUSES = (*DONE_STATUSES, Status.SKIPPED.value, Status.MISSED.value)
# How far back streaks look; a longer streak is shown as this many days.
STATS_WINDOW_DAYS = 400

# The statements a send window runs, built once and executed with parameters: building a
# statement and its cache key again for every window cost more CPU than running it.
_PATIENTS_BY_ID = select_models(Patient).where(col(Patient.id).in_(bindparam("ids", expanding=True)))
_OPENED = select(SESSIONS.c.id, SESSIONS.c.patient_id, SESSIONS.c.local_date, SESSIONS.c.slot, SESSIONS.c.status).where(
    SESSIONS.c.patient_id.in_(bindparam("pids", expanding=True)),
    SESSIONS.c.local_date.in_(bindparam("days", expanding=True)),
)
_BIND_FIRST = (
    update(SESSIONS)
    .where(
        SESSIONS.c.id == bindparam("sid"),
        SESSIONS.c.status == Status.PENDING.value,
        SESSIONS.c.message_id.is_(None),
    )
    .values(message_id=bindparam("mid"), delivery_id=bindparam("did"))
)
_PENDING_WITH_ZONE = (
    select(SESSIONS.c.id, SESSIONS.c.patient_id, SESSIONS.c.local_date, PATIENTS.c.timezone)
    .join(PATIENTS, PATIENTS.c.id == SESSIONS.c.patient_id)
    .where(SESSIONS.c.id.in_(bindparam("sids", expanding=True)), SESSIONS.c.status == Status.PENDING.value)
)
_EXISTING_NUDGES = select(RULES.c.payload).where(
    RULES.c.patient_id.in_(bindparam("pids", expanding=True)),
    RULES.c.kind == Kind.NUDGE.value,
    RULES.c.payload.in_(bindparam("payloads", expanding=True)),
)
_INSERT_RULES = insert(RULES)
_INSERT_SESSIONS: dict[str, Any] = {}


def _insert_sessions(dialect: str) -> Any:
    """The insert that opens sessions and keeps existing rows, per dialect (built once)."""
    statement = _INSERT_SESSIONS.get(dialect)
    if statement is None:
        statement = _INSERT_SESSIONS[dialect] = insert_ignore(
            dialect, SESSIONS, keys=["patient_id", "local_date", "slot"]
        )
    return statement


# --- rule payloads ------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """What a session or nudge rule's payload names."""

    index: int = 0  # which session of the day (0-based), for recurring session rules
    session_id: int | None = None  # a snooze re-send or a nudge: this very session
    play: bool = False  # the exercises of session_id, one message each (Start in the chat)


def rule_payload(index: int) -> str:
    """The payload of a recurring session rule for the index-th session of the day."""
    return json.dumps({"session": index})


def one_off_payload(session_id: int, index: int | None = None) -> str:
    """The payload of a snooze re-send (with its session index) or a nudge for one session."""
    if index is None:
        return json.dumps({"session_id": session_id})
    return json.dumps({"session_id": session_id, "session": index})


def player_payload(session_id: int, index: int) -> str:
    """The payload of the one-off delivery that sends a session's exercises one by one (Start).

    Asked for with a tap (reminders.ASKED): sent at once, not held by quiet hours.
    """
    return json.dumps({"session_id": session_id, "session": index, "play": True, ASKED: True})


@functools.lru_cache(maxsize=4096)
def parse_payload(payload: str) -> Ref:
    """Read a rule payload defensively: {"session": i}, {"index": i}, "i", or {"session_id": n}."""
    text = (payload or "").strip()
    if not text:
        return Ref()
    try:
        data = json.loads(text)
    except ValueError:
        return Ref()
    if isinstance(data, int) and not isinstance(data, bool):
        return Ref(index=max(0, data))
    if not isinstance(data, dict):
        return Ref()
    session_id = data.get("session_id")
    index: object = next((data[k] for k in ("session", "index", "session_index") if k in data), 0)
    session_id = session_id if isinstance(session_id, int) and not isinstance(session_id, bool) else None
    return Ref(
        index=index if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else 0,
        session_id=session_id,
        play=session_id is not None and data.get("play") is True,
    )


# --- dates --------------------------------------------------------------------


def day_end(local_date: date, tz: str) -> datetime:
    """The UTC instant at which a local date ends (the next local midnight)."""
    return local_to_utc(local_date + timedelta(days=1), time(0, 0), tz)


def phase_on(patient: Patient, content: Content, local_date: date) -> Phase | None:
    """The programme phase the patient is in on a local date (None before surgery or without a programme)."""
    programme = content.programmes.get(patient.programme_id)
    if programme is None or patient.surgery_date is None:
        return None
    return programme.phase_for((local_date - patient.surgery_date).days)


def exercises_for(phase: Phase | None, index: int) -> list[str]:
    """Exercise ids for the index-th session of the day; a rule beyond the phase's count gets the last plan."""
    if phase is None:
        return []
    return phase.exercises_for(min(max(index, 0), phase.sessions_per_day - 1))


exercises_of = programme.exercises_of


async def followed_phase(session: AsyncSession, content: Content, patient: Patient, local_date: date) -> Phase | None:
    """The phase the patient is in on a local date, in their own plan or content programme."""
    followed = await programme.programme_for(session, content, patient)
    return programme.phase_in(followed, patient, local_date)


async def session_exercises(
    session: AsyncSession, content: Content, patient: Patient, local_date: date, index: int
) -> list[Exercise]:
    """The exercises of a patient's index-th session on a local date, from their own plan or content programme."""
    return exercises_of(await followed_phase(session, content, patient, local_date), index, content)


# --- the session row ------------------------------------------------------------


async def get(session: AsyncSession, session_id: int) -> ExerciseSession | None:
    """A session by id, read fresh from the database."""
    result = await session.exec(
        select_models(ExerciseSession)
        .where(col(ExerciseSession.id) == session_id)
        .execution_options(populate_existing=True)
    )
    return result.first()


async def has_session_on(session: AsyncSession, patient_id: int, local_date: date) -> bool:
    """True when the patient already has a session on that local date."""
    found = await session.exec(
        select_models(ExerciseSession.id).where(
            col(ExerciseSession.patient_id) == patient_id, col(ExerciseSession.local_date) == local_date
        )
    )
    return found.first() is not None


async def open_session(
    session: AsyncSession,
    patient: Patient,
    *,
    local_date: date,
    slot: str,
    phase_id: str,
    delivery_id: int | None,
    now: datetime,
) -> ExerciseSession:
    """The session for this slot, created pending if new (idempotent: a retry renders the same row)."""
    assert patient.id is not None
    opening = Opening(patient.id, local_date, slot, phase_id, delivery_id)
    opened = (await open_sessions(session, [opening], now))[opening]
    es = await get(session, opened.id)
    assert es is not None
    return es


@dataclass(frozen=True)
class Opening:
    """One session to open for a rendered reminder (the batch form of :func:`open_session`)."""

    patient_id: int
    local_date: date
    slot: str
    phase_id: str
    delivery_id: int | None


@dataclass(frozen=True)
class Opened:
    """A session row as a batch render needs it."""

    id: int
    status: str
    slot: str


async def open_sessions(session: AsyncSession, openings: Sequence[Opening], now: datetime) -> dict[Opening, Opened]:
    """Open many sessions in two statements: one insert that keeps existing rows, one select.

    The same contract as :func:`open_session` (idempotent: a retried delivery
    renders the same row), for a whole send window at once.
    """
    if not openings:
        return {}
    conn = await session.connection()
    base = {"status": Status.PENDING.value, "effort": "", "skip_reason": "", "step": Step.BUTTONS.value}
    rows = [
        {
            "patient_id": o.patient_id,
            "delivery_id": o.delivery_id,
            "local_date": o.local_date,
            "slot": o.slot,
            "phase_id": o.phase_id,
            "created_at": now,
            **base,
        }
        for o in openings
    ]
    await conn.execute(_insert_sessions(conn.dialect.name), rows)
    found = await conn.execute(
        _OPENED, {"pids": list({o.patient_id for o in openings}), "days": list({o.local_date for o in openings})}
    )
    by_key = {(r.patient_id, r.local_date, r.slot): Opened(r.id, r.status, r.slot) for r in found}
    return {o: by_key[(o.patient_id, o.local_date, o.slot)] for o in openings}


@dataclass(frozen=True)
class FirstSend:
    """A session reminder that went out: its message now carries the session's buttons."""

    session_id: int
    message_id: int
    delivery_id: int | None


def first_sends(messages: Sequence[DueMessage]) -> list[DueMessage]:
    """The first-time session reminders of a window (snoozed re-sends are rendered one by one)."""
    return [
        m
        for m in messages
        if m.kind == Kind.SESSION.value
        and m.patient_id is not None
        and m.local_date is not None
        and parse_payload(m.payload).session_id is None
    ]


@dataclass(frozen=True)
class Reminder:
    """A first-time session reminder whose session is open: what a renderer turns into a message.

    opened is None when the phase changed to fewer sessions a day: this
    session no longer exists, and only the phase-change notice (if any) is sent.
    """

    message: DueMessage
    patient: Patient
    change: programme.PhaseChange | None
    opened: Opened | None
    exercises: list[Exercise]
    phase: Phase | None = None  # the phase of the programme the patient follows (their own plan's)


async def open_for_deliveries(
    session: AsyncSession,
    content: Content,
    messages: Sequence[DueMessage],
    now: datetime,
    taper: tuple[int, float] = (0, 1.0),
) -> dict[int, Reminder | None]:
    """Before a window is sent: re-plan each patient's phase and open the sessions; the caller commits.

    Returns {delivery_id: Reminder, or None when the reminder no longer applies
    (the patient left, its day is over, or the session was answered meanwhile)}.
    One transaction for the window (patients in one query, sessions opened in
    one insert); the per-patient work left is the phase check, which writes
    only on a change. Idempotent: a retried delivery gets the same session.
    taper: ``[delivery] taper_after_weeks`` and ``taper_adherence``: the
    tapering state is brought up to date too (rehab_bot.tapering.sync_many),
    also when it is 0 (off), for patients still tapered.
    """
    fresh = first_sends(messages)
    out: dict[int, Reminder | None] = {}
    if not fresh:
        return out
    planned: list[tuple[DueMessage, Patient, programme.PhaseChange | None, Opening, list[Exercise], Phase | None]] = []
    ids = {m.patient_id for m in fresh}
    found = await session.exec(_PATIENTS_BY_ID, params={"ids": list(ids)})
    by_id = {p.id: p for p in found.all()}
    own = await plan.own_programmes(session, content, by_id.values())  # the patients' own plans, one query
    # Kept up, or fell short: the reminders thin out or come back (one query for the window). Also with
    # tapering off (taper_after_weeks = 0): a patient still tapered gets the full reminders back.
    active = [p for p in by_id.values() if p.status == PatientStatus.ACTIVE and p.id is not None]
    if taper[0] > 0 or any(p.tapered_since is not None for p in active):
        follows = {p.id: own.get(p.id) or programme.programme_of(content, p) for p in active if p.id is not None}
        await tapering.sync_many(session, active, content, now, taper[0], taper[1], follows)
    for m in fresh:
        assert m.patient_id is not None and m.local_date is not None
        patient = by_id.get(m.patient_id)
        if patient is None or patient.status != PatientStatus.ACTIVE:
            out[m.delivery_id] = None
            continue
        if m.local_date < local_date(patient, now):
            out[m.delivery_id] = None  # held back past its day (quiet hours): the day is over
            continue
        followed = own.get(m.patient_id) or programme.programme_of(content, patient)
        change = await programme.sync_phase(session, patient, content, now, followed)
        phase = change.phase if change is not None else programme.phase_in(followed, patient, m.local_date)
        index = parse_payload(m.payload).index
        if phase is not None and index >= phase.sessions_per_day:
            # The new phase has fewer sessions: this one no longer exists.
            out[m.delivery_id] = None if change is None else Reminder(m, patient, change, None, [])
            continue
        phase_id = phase.id if phase is not None else ""
        opening = Opening(m.patient_id, m.local_date, m.slot, phase_id, m.delivery_id)
        exercises = exercises_of(phase, index, content)
        planned.append((m, patient, change, opening, exercises, phase))
    opened = await open_sessions(session, [p[3] for p in planned], now)
    for m, patient, change, opening, exercises, phase in planned:
        row = opened[opening]
        pending = row.status == Status.PENDING
        out[m.delivery_id] = Reminder(m, patient, change, row, exercises, phase) if pending else None
    return out


def window_opener(content: Content, taper: tuple[int, float] = (0, 1.0)) -> WindowOpener:
    """The dispatcher's window preparation (reminders.WindowOpener): open the window's sessions, in its claim."""

    async def open_window(session: AsyncSession, messages: Sequence[DueMessage], now: datetime) -> dict[int, Any]:
        # Alerts and safety messages carry their text (body); they open nothing.
        return await open_for_deliveries(session, content, [m for m in messages if not m.body], now, taper)

    return open_window


async def bind_first_messages(session: AsyncSession, sends: Sequence[FirstSend]) -> None:
    """Bind each session to its first message, unless a press already moved it on.

    Batched after a send window is recorded, so a patient can press before
    this runs: the press is accepted (no live message yet), and a session that
    was answered or given a live message meanwhile is left alone here.
    """
    if not sends:
        return
    conn = await session.connection()
    await conn.execute(
        _BIND_FIRST,
        [{"sid": x.session_id, "mid": x.message_id, "did": x.delivery_id} for x in sends],
    )


async def ensure_nudges(
    session: AsyncSession, session_ids: Sequence[int], *, sent_at: datetime, after: timedelta
) -> int:
    """One nudge per session, `after` it was sent, if still within its local day; return how many were added."""
    if not session_ids:
        return 0
    conn = await session.connection()
    rows = (await conn.execute(_PENDING_WITH_ZONE, {"sids": list(session_ids)})).all()
    due = sent_at + after
    wanted = {
        one_off_payload(r.id): r for r in rows if due < day_end(r.local_date, r.timezone)
    }  # else the session is recorded as missed at midnight instead
    if not wanted:
        return 0
    existing = await conn.execute(
        _EXISTING_NUDGES, {"pids": list({r.patient_id for r in wanted.values()}), "payloads": list(wanted)}
    )
    for (payload,) in existing:
        wanted.pop(payload, None)
    if not wanted:
        return 0
    # Core executemany: the ORM would insert one rule per statement to learn their ids.
    await conn.execute(
        _INSERT_RULES,
        [
            one_off_values(r.patient_id, r.timezone, kind=Kind.NUDGE, due_at=due, now=sent_at, payload=payload)
            for payload, r in wanted.items()
        ],
    )
    return len(wanted)


async def bind_message(
    session: AsyncSession,
    session_id: int,
    *,
    message_id: int,
    now: datetime,
    delivery_id: int | None = None,
    nudge: bool = False,
) -> int | None:
    """Make message_id the session's live message; return the previous one (its buttons must go).

    A snooze re-send puts the four buttons back (step ""); a nudge records
    when it went out. A session answered meanwhile is left alone.
    """
    es = await get(session, session_id)
    if es is None or es.status != Status.PENDING:
        return None
    previous = es.message_id if es.message_id != message_id else None
    es.message_id = message_id
    if delivery_id is not None:
        es.delivery_id = delivery_id
    if nudge:
        es.nudged_at = now
    if es.step in (Step.SNOOZE, Step.SNOOZED):
        es.step = Step.BUTTONS.value  # (a session being played keeps its step: Done or Partly)
    session.add(es)
    return previous


# --- presses --------------------------------------------------------------------


class Action(enum.StrEnum):
    DONE = "d"
    PARTLY = "p"
    SKIP = "k"
    SNOOZE = "z"  # without a value: open the menu; with minutes: snooze
    BACK = "b"
    EFFORT = "e"
    PAIN = "n"
    REASON = "r"
    START = "g"  # send the exercises one by one (only without a Mini App)


SKIP_ANSWER = "-"  # "skip this question"
# Steps in which a pending session still takes Done, Partly or Skip.
OPEN_STEPS = (Step.BUTTONS.value, Step.SNOOZE.value, Step.SNOOZED.value, Step.PLAYING.value)
# A press's transition: the statuses and steps it may leave, and the columns it writes.
_Transition = tuple[Sequence[str], Sequence[str], dict[str, Any]]


@dataclass(frozen=True)
class Press:
    """A parsed button press: s:<session id>:<action>[:<value>]."""

    session_id: int
    action: Action
    value: str = ""

    def data(self) -> str:
        """The callback_data for this press (at most 64 bytes)."""
        text = f"s:{self.session_id}:{self.action.value}"
        return f"{text}:{self.value}" if self.value else text


def parse_press(data: str | None) -> Press | None:
    """Parse callback_data; None for anything malformed or out of range."""
    if not data or len(data.encode()) > 64:
        return None
    parts = data.split(":")
    if len(parts) not in (3, 4) or parts[0] != "s" or number(parts[1]) is None:
        return None
    try:
        action = Action(parts[2])
    except ValueError:
        return None
    value = parts[3] if len(parts) == 4 else ""
    valid = {
        Action.DONE: ("",),
        Action.PARTLY: ("",),
        Action.SKIP: ("",),
        Action.BACK: ("",),
        Action.START: ("",),
        Action.SNOOZE: ("", *(str(m) for m in SNOOZE_MINUTES)),
        Action.EFFORT: (*EFFORTS, SKIP_ANSWER),
        Action.PAIN: (*(str(n) for n in range(PAIN_MAX + 1)), SKIP_ANSWER),
        Action.REASON: SKIP_REASONS,
    }[action]
    if value not in valid:
        return None
    return Press(int(parts[1]), action, value)


@dataclass(frozen=True)
class Applied:
    """A press that changed the session, and the session as it is now."""

    press: Press
    session: ExerciseSession
    snoozed_until: datetime | None = None


async def _advance(
    session: AsyncSession,
    press: Press,
    patient_id: int,
    message_id: int | None,
    *,
    statuses: Sequence[str],
    steps: Sequence[str],
    values: dict[str, Any],
) -> bool:
    """One conditional UPDATE: the press counts only if the session is still where it expected."""
    s = SESSIONS.c
    conditions = [
        s.id == press.session_id,
        s.patient_id == patient_id,
        s.status.in_(list(statuses)),
        s.step.in_(list(steps)),
    ]
    if message_id is not None:
        # Only the session's live message: a press on an older one is stale.
        conditions.append(or_(s.message_id.is_(None), s.message_id == message_id))
    conn = await session.connection()
    result = await conn.execute(update(SESSIONS).where(and_(*conditions)).values(**values))
    return bool(result.rowcount)


def _transition(press: Press, now: datetime, snoozed_until: datetime | None) -> _Transition:
    """Where a press may come from (statuses, steps) and what it writes: the session's state machine."""
    action, value = press.action, press.value
    pending = (Status.PENDING.value,)
    if action in (Action.DONE, Action.PARTLY, Action.SKIP):
        status = {Action.DONE: Status.DONE, Action.PARTLY: Status.PARTLY, Action.SKIP: Status.SKIPPED}[action]
        step = Step.REASON if action == Action.SKIP else Step.EFFORT
        return pending, OPEN_STEPS, {"status": status.value, "step": step.value, "answered_at": now}
    if action == Action.START:
        return pending, (Step.BUTTONS.value,), {"step": Step.PLAYING.value}
    if action == Action.SNOOZE and not value:
        return pending, (Step.BUTTONS.value, Step.SNOOZE.value), {"step": Step.SNOOZE.value}
    if action == Action.BACK:
        return pending, (Step.SNOOZE.value,), {"step": Step.BUTTONS.value}
    if action == Action.SNOOZE:
        return pending, (Step.SNOOZE.value,), {"step": Step.SNOOZED.value, "snoozed_until": snoozed_until}
    if action == Action.EFFORT:
        effort = "" if value == SKIP_ANSWER else value
        return DONE_STATUSES, (Step.EFFORT.value,), {"step": Step.PAIN.value, "effort": effort}
    if action == Action.PAIN:
        pain = None if value == SKIP_ANSWER else int(value)
        return DONE_STATUSES, (Step.PAIN.value,), {"step": Step.CLOSED.value, "pain": pain}
    # Action.REASON
    return (Status.SKIPPED.value,), (Step.REASON.value,), {"step": Step.CLOSED.value, "skip_reason": value}


async def apply_press(
    session: AsyncSession,
    patient: Patient,
    press: Press,
    *,
    message_id: int | None,
    now: datetime,
    quiet: QuietHours | None = None,
) -> Applied | None:
    """Apply a press by the patient on their message; None if it is stale, repeated or not theirs.

    The caller commits. message_id is the message the button was on (None
    only for calls that are not presses, e.g. tests of the state machine).
    quiet: the patient's quiet hours, which a snooze must not end in past the day.
    """
    assert patient.id is not None
    snoozed_until: datetime | None = None
    if press.action == Action.SNOOZE and press.value:
        snoozed_until = now + timedelta(minutes=int(press.value))
        es = await get(session, press.session_id)
        if es is None or es.patient_id != patient.id or not snooze_fits(es, patient, snoozed_until, quiet):
            return None
    statuses, steps, values = _transition(press, now, snoozed_until)
    if not await _advance(session, press, patient.id, message_id, statuses=statuses, steps=steps, values=values):
        return None
    es = await get(session, press.session_id)
    assert es is not None
    if press.action == Action.START:
        # The player: the session's exercises one by one, from now.
        payload = player_payload(press.session_id, await session_index(session, es))
    elif snoozed_until is not None:
        payload = one_off_payload(press.session_id, await session_index(session, es))
    else:
        return Applied(press, es, snoozed_until)
    add_one_off(session, patient, kind=Kind.SESSION, due_at=snoozed_until or now, now=now, payload=payload)
    return Applied(press, es, snoozed_until)


@dataclass(frozen=True)
class Outcome:
    """What became of a session after :func:`record_outcome`."""

    session: ExerciseSession
    recorded: bool  # False: an outcome was recorded before (a chat button, another device); nothing changed


async def record_outcome(
    session: AsyncSession,
    patient: Patient,
    session_id: int,
    *,
    status: Status,
    now: datetime,
    effort: str = "",
    pain: int | None = None,
) -> Outcome | None:
    """Record Done or Partly with its answers in one step (the Mini App's finish); the caller commits.

    The same state machine as the chat buttons: only a pending session of this
    patient changes, in one conditional UPDATE, so pressing Done in the chat
    and finishing in the Mini App records one outcome, whichever comes first;
    the second gets recorded=False and the first outcome. None: no such
    session of this patient, or it was skipped or missed.
    """
    assert patient.id is not None
    if status not in (Status.DONE, Status.PARTLY):
        raise ValueError(f"not an outcome of a finished session: {status}")
    if effort not in ("", *EFFORTS) or (pain is not None and not 0 <= pain <= PAIN_MAX):
        raise ValueError("effort or pain out of range")
    s = SESSIONS.c
    conn = await session.connection()
    result = await conn.execute(
        update(SESSIONS)
        .where(
            s.id == session_id,
            s.patient_id == patient.id,
            s.status == Status.PENDING.value,
            s.step.in_(list(OPEN_STEPS)),
        )
        .values(status=status.value, step=Step.CLOSED.value, answered_at=now, effort=effort, pain=pain)
    )
    es = await get(session, session_id)
    if es is None or es.patient_id != patient.id:
        return None
    if result.rowcount:
        return Outcome(es, True)
    return Outcome(es, False) if es.status in DONE_STATUSES else None


# --- a session said done in words -----------------------------------------------------------

# Typed words are no press: "done" after a reminder is shown the way to record its session, which a tap
# does (German "fertig" is also "exhausted", so nothing is recorded without one). A short message says a
# session is done when, its filler words left out, what remains is one of these.
SAID_DONE = frozenset(
    {
        "done", "finished", "completed", "complete", "did", "did that", "made it", "managed",
        "erledigt", "fertig", "geschafft", "gemacht", "absolviert", "durchgezogen", "durch", "trainiert",
    }
)  # fmt: skip
_DONE_FILLERS = frozenset(
    {
        # English
        "i", "im", "i'm", "ive", "i've", "have", "am", "all", "just", "now", "today", "already", "ok", "okay",
        "yes", "yeah", "yep", "my", "the", "this", "it", "them", "session", "sessions", "exercise", "exercises",
        "workout", "with", "for", "and", "again", "morning", "stretches", "stretching", "walk", "routine",
        "home", "programme", "program",
        # German
        "ich", "bin", "habe", "hab", "hab's", "habs", "es", "sie", "alles", "alle", "die", "meine", "mit", "den",
        "übung", "übungen", "einheit", "training", "heute", "jetzt", "schon", "gerade", "ja", "für", "und",
        "wieder", "heut", "früh", "morgens", "vorhin", "eben", "meinen", "dehnübungen", "programm",
    }
)  # fmt: skip
SAID_DONE_MAX_WORDS = 6


def says_done(text: str) -> bool:
    """True for a short typed message that says a session is done ("done", "all done!", "erledigt",
    "ich bin fertig", "did it ✅"); "not done yet", "noch nicht fertig" or a longer message are not."""
    plain = "".join(c if c.isalnum() or c == "'" else " " for c in text.casefold().replace("\u2019", "'"))
    words = plain.split()
    if not words or len(words) > SAID_DONE_MAX_WORDS:
        return False
    said = " ".join(w for w in words if w not in _DONE_FILLERS)
    return said in SAID_DONE or (len(said) >= 4 and any(one_slip(said, done) for done in SAID_DONE if len(done) >= 4))


async def awaiting_answer(session: AsyncSession, patient: Patient, now: datetime) -> ExerciseSession | None:
    """The session a patient who says they are done most likely means: today's latest one whose
    reminder went out and that still takes Done (snoozed or being played too); None if there is none."""
    return await _latest_today_at(
        session, patient, now, OPEN_STEPS, col(ExerciseSession.status) == Status.PENDING.value
    )


@dataclass(frozen=True)
class Ahead:
    """Today's next session whose reminder has not gone out yet (see :func:`ahead_today`)."""

    local_date: date
    slot: str
    phase_id: str


async def ahead_today(session: AsyncSession, content: Content, patient: Patient, now: datetime) -> Ahead | None:
    """The session a patient who says they are done means when none of today's waits for an answer: today's
    next one whose reminder has not gone out yet (they exercised before it). None if there is none: the
    patient is not active, today's sessions are all out, the phase has fewer sessions than rules, or a
    session of today was answered nearer to now than that one's time (a "done" just after recording one
    means it, not the next).

    Recording it (:func:`record_ahead`) opens its row as the reminder would and records Done; when the
    reminder comes due, :func:`open_for_deliveries` finds the session answered and it is not sent (its
    delivery is recorded failed, "nothing to send: superseded", as for a session answered meanwhile).
    """
    if patient.id is None or patient.status != PatientStatus.ACTIVE.value:
        return None
    today = local_date(patient, now)
    rules = (
        await session.exec(
            select_models(ReminderRule)
            .where(
                col(ReminderRule.patient_id) == patient.id,
                col(ReminderRule.kind) == Kind.SESSION.value,
                col(ReminderRule.active).is_(True),
                col(ReminderRule.once).is_(False),
                col(ReminderRule.next_local_date) == today,
                col(ReminderRule.next_due_at) > now,
            )
            .order_by(col(ReminderRule.next_due_at))
        )
    ).all()
    if not rules:
        return None
    today_sessions = await sessions_on(session, patient.id, today)
    taken = {es.slot for es in today_sessions}
    answered = [es.answered_at for es in today_sessions if es.answered_at is not None]
    own = await plan.own_programmes(session, content, [patient])
    phase = programme.phase_in(own.get(patient.id) or programme.programme_of(content, patient), patient, today)
    for rule in rules:
        if phase is not None and parse_payload(rule.payload).index >= phase.sessions_per_day:
            continue  # the phase has fewer sessions a day: this one is not sent
        at = parse_hhmm(rule.local_time)
        slot = f"{at.hour:02d}:{at.minute:02d}"  # the engine's slot label (schedule.Rule.slot)
        if slot in taken:
            continue
        if answered and rule.next_due_at is not None and now - max(answered) < rule.next_due_at - now:
            # A session was answered nearer to now than this one's time: "done" means that one.
            return None
        return Ahead(today, slot, phase.id if phase is not None else "")
    return None


async def record_ahead(
    session: AsyncSession, content: Content, patient: Patient, slot: str, now: datetime
) -> Applied | None:
    """Record today's session at ``slot`` Done before its reminder went out (the patient said so and tapped
    ✅ Done); its effort and pain questions follow as after the reminder's ✅. None when that is no longer
    today's next session ahead (its reminder went out meanwhile, or the day changed): the caller says the
    button is no longer active. The caller commits."""
    ahead = await ahead_today(session, content, patient, now)
    if ahead is None or ahead.slot != slot or patient.id is None:
        return None
    opening = Opening(patient.id, ahead.local_date, ahead.slot, ahead.phase_id, None)
    opened = (await open_sessions(session, [opening], now))[opening]
    return await apply_press(session, patient, Press(opened.id, Action.DONE), message_id=None, now=now)


async def _latest_today_at(
    session: AsyncSession, patient: Patient, now: datetime, steps: Sequence[str], *more: Any
) -> ExerciseSession | None:
    """Today's latest session whose message went out and that is at one of these steps (and meets more)."""
    result = await session.exec(
        select_models(ExerciseSession)
        .where(
            col(ExerciseSession.patient_id) == patient.id,
            col(ExerciseSession.local_date) == local_date(patient, now),
            col(ExerciseSession.step).in_(steps),
            col(ExerciseSession.message_id).is_not(None),
            *more,
        )
        .order_by(col(ExerciseSession.slot).desc())
    )
    return result.first()


# The questions after Done, Partly or Skip, answered with a tap on their message.
QUESTION_STEPS = (Step.EFFORT.value, Step.PAIN.value, Step.REASON.value)


async def question_waiting(session: AsyncSession, patient: Patient, now: datetime) -> ExerciseSession | None:
    """Today's session whose question after Done, Partly or Skip (effort, pain, why) waits for a tap in the
    chat: typed text is no answer to it, so the offer for that text says so (rehab_bot/bot/checkin.py)."""
    return await _latest_today_at(session, patient, now, QUESTION_STEPS)


# --- how long a session takes: rehab_bot/session_text.py (the reminder says it) -------------

estimated_minutes = session_text.estimated_minutes


async def session_index(session: AsyncSession, es: ExerciseSession) -> int:
    """Which session of the day a session is, from the payload of the rule that last sent it."""
    if es.delivery_id is None:
        return 0
    delivery = await session.get(Delivery, es.delivery_id)
    rule = await session.get(ReminderRule, delivery.rule_id) if delivery is not None and delivery.rule_id else None
    return parse_payload(rule.payload).index if rule is not None else 0


async def set_live_message(session: AsyncSession, session_id: int, message_id: int) -> None:
    """The session's buttons now live on this message (a follow-up question)."""
    conn = await session.connection()
    await conn.execute(update(SESSIONS).where(SESSIONS.c.id == session_id).values(message_id=message_id))


def snooze_fits(es: ExerciseSession, patient: Patient, until: datetime, quiet: QuietHours | None = None) -> bool:
    """True when a session snoozed until then is sent again on its own local day.

    The re-send is held by the patient's quiet hours like any reminder: one that
    falls inside them goes out when they end, which may be past the day (then the
    promised reminder would never come).
    """
    resend = (quiet.ends_after(until, patient.timezone) if quiet is not None else None) or until
    return resend < day_end(es.local_date, patient.timezone)


def snooze_options(es: ExerciseSession, patient: Patient, now: datetime, quiet: QuietHours | None = None) -> list[int]:
    """Snooze lengths that still re-send the session on its own local day (quiet hours counted)."""
    return [m for m in SNOOZE_MINUTES if snooze_fits(es, patient, now + timedelta(minutes=m), quiet)]


async def live_session_on_message(session: AsyncSession, patient_id: int, message_id: int) -> ExerciseSession | None:
    """The patient's session whose live buttons are on this message, if it still waits for a press."""
    result = await session.exec(
        select_models(ExerciseSession).where(
            col(ExerciseSession.patient_id) == patient_id,
            col(ExerciseSession.message_id) == message_id,
            col(ExerciseSession.step) != Step.CLOSED.value,
            col(ExerciseSession.step) != Step.SNOOZED.value,
            col(ExerciseSession.status) != Status.MISSED.value,
        )
    )
    return result.first()


# --- nudges and the end-of-day sweep ------------------------------------------------


async def nudge_target(
    session: AsyncSession, patient_id: int, session_id: int, now: datetime
) -> ExerciseSession | None:
    """The session a nudge is about, if it still waits for an answer (else the nudge is dropped)."""
    es = await get(session, session_id)
    if es is None or es.patient_id != patient_id or es.status != Status.PENDING:
        return None
    if es.step == Step.SNOOZED and es.snoozed_until is not None and es.snoozed_until > now:
        return None  # the snoozed re-send is still to come
    if es.message_id is None:
        return None  # the reminder itself never went out
    return es


@dataclass(frozen=True)
class Missed:
    """A session the sweep recorded as missed: its live message loses its buttons."""

    session_id: int
    patient_id: int
    chat_id: int | None
    message_id: int | None


async def sweep_missed(session: AsyncSession, now: datetime) -> list[Missed]:
    """Record every session still pending after its local day ended as missed; the caller commits.

    A pending session whose reminder never reached the patient (no message
    bound, and its delivery not recorded as sent) was never put to them: it
    is removed, not counted as missed. The delivery's record counts because
    a session is bound to its message only after its send window is
    recorded: a crash in between must not erase a session the patient saw.
    """
    s = SESSIONS.c
    d = DELIVERIES.c
    # No zone is more than 14 hours ahead of UTC: only rows before this date can have ended.
    horizon = (now + timedelta(hours=14)).date()
    conn = await session.connection()
    rows = (
        await conn.execute(
            select(
                s.id,
                s.patient_id,
                s.local_date,
                s.message_id,
                PATIENTS.c.timezone,
                PATIENTS.c.telegram_id,
                d.status.label("delivery_status"),
                d.message_id.label("delivered_as"),
            )
            .join(PATIENTS, PATIENTS.c.id == s.patient_id)
            .outerjoin(DELIVERIES, d.id == s.delivery_id)
            .where(s.status == Status.PENDING.value, s.local_date < horizon)
        )
    ).all()
    missed: list[Missed] = []
    never_sent: list[int] = []
    for row in rows:
        if now < day_end(row.local_date, row.timezone):
            continue
        message_id = row.message_id
        if message_id is None and row.delivery_status == DeliveryStatus.SENT.value:
            message_id = row.delivered_as
        if message_id is None:
            never_sent.append(row.id)
            continue
        result = await conn.execute(
            update(SESSIONS)
            .where(s.id == row.id, s.status == Status.PENDING.value)
            .values(status=Status.MISSED.value, step=Step.CLOSED.value)
        )
        if result.rowcount:
            missed.append(Missed(row.id, row.patient_id, row.telegram_id, message_id))
    if never_sent:
        await conn.execute(
            delete(SESSIONS).where(s.id.in_(never_sent), s.status == Status.PENDING.value, s.message_id.is_(None))
        )
    return missed


# --- statistics -----------------------------------------------------------------------


@dataclass(frozen=True)
class SessionStats:
    """What /progress, motivation and the therapist's list show about sessions."""

    streak_days: int = 0  # days with every session done or partly, up to today, grace days bridged (streak_run)
    adherence_7d: float | None = None  # share of planned sessions done/partly in the last 7 local days
    adherence_this_week: float | None = None  # Monday to today
    adherence_last_week: float | None = None
    done_total: int = 0  # sessions done or partly, ever
    last_done: date | None = None
    days_missed_in_a_row: int = 0  # consecutive local days, up to today, with sessions but none done
    planned_7d: int = 0  # resolved sessions in the last 7 local days (the adherence denominator)
    done_7d: int = 0
    streak_since: date | None = None  # the first day of the streak run (None without a streak)


# At most one grace day in any GRACE_EVERY_DAYS consecutive local days of a streak run.
GRACE_EVERY_DAYS = 7


def _share(rows: Sequence[tuple[date, str]], first: date, last: date) -> tuple[float | None, int, int]:
    resolved = [status for day, status in rows if first <= day <= last and status in RESOLVED_STATUSES]
    done = sum(1 for status in resolved if status in DONE_STATUSES)
    return (done / len(resolved) if resolved else None), len(resolved), done


def share_7d(rows: Sequence[tuple[date, str]], today: date) -> tuple[float | None, int, int]:
    """(adherence over the last 7 local days, sessions resolved, sessions done or partly) from (date, status)."""
    return _share(rows, today - timedelta(days=6), today)


def _day_kind(statuses: Sequence[str]) -> str:
    """A local day's sessions in one word: good, mixed, bad or neutral."""
    done = any(s in DONE_STATUSES for s in statuses)
    failed = any(s in (Status.SKIPPED, Status.MISSED) for s in statuses)
    if done:
        return "mixed" if failed else "good"  # sessions still open do not spoil a day yet
    return "bad" if failed else "neutral"  # neutral: no sessions, or only open ones


def _count_back(by_day: dict[date, list[str]], day: date, oldest: date, counted: str) -> int:
    """Days of kind `counted` in a row from day back to oldest; neutral days pass, any other kind ends the run."""
    n = 0
    while day >= oldest:
        k = _day_kind(by_day.get(day, []))
        if k == counted:
            n += 1
        elif k != "neutral":
            break
        day -= timedelta(days=1)
    return n


def streak_run(by_day: dict[date, list[str]], today: date, oldest: date) -> tuple[int, date | None]:
    """The streak on today: (days counted, the run's first day), by the grace-day rule (pure).

    The rule, the only one for every streak shown (chat /progress, the praise
    after a session, motivation's streak messages, the Mini App, the web
    patient page, the staff list):

    * A *good* day (every resolved session done or partly, at least one) counts 1.
    * A day without resolved sessions (a pause, no sessions planned, or only
      open ones: today not yet done) neither counts nor breaks the run.
    * A *missed* day (a session skipped or missed, whether or not another was
      done that day) is a *grace day* when a good day of the run comes before
      it (pause days in between do not matter) and the run has no other grace
      day within ``GRACE_EVERY_DAYS`` (7) days of it: the streak goes on, and
      the grace day itself does not count. So a streak survives yesterday's
      miss while today is not yet done, and today's own miss.
    * Two missed days with no good day between them (a pause between them
      changes nothing), or a second missed day within 7 days of a grace day,
      end the run: the streak is then the good days after that point (0 when
      there are none).

    Counted back from today to oldest (the stats window).
    """
    count = 0
    since: date | None = None
    last_grace: date | None = None  # the latest grace day of the run so far (counting back)
    miss: date | None = None  # a missed day seen, waiting for an earlier good day to bridge it
    day = today
    while day >= oldest:
        kind = _day_kind(by_day.get(day, []))
        if kind == "good":
            if miss is not None:
                last_grace, miss = miss, None
            count += 1
            since = day
        elif kind in ("bad", "mixed"):
            too_soon = last_grace is not None and (last_grace - day).days < GRACE_EVERY_DAYS
            if miss is not None or too_soon:
                break  # two missed days in a row, or a second grace day within the week
            miss = day
        day -= timedelta(days=1)
    return count, since


def compute_stats(
    rows: Sequence[tuple[date, str]], today: date, done_total: int, last_done: date | None
) -> SessionStats:
    """Streaks and adherence from (local date, status) pairs; pure, for tests and callers with rows."""
    by_day: dict[date, list[str]] = {}
    for day, status in rows:
        by_day.setdefault(day, []).append(status)

    missed_run = 0
    today_kind = _day_kind(by_day.get(today, []))
    if today_kind == "bad" and Status.PENDING not in by_day.get(today, []):
        missed_run = 1
    oldest = min(by_day) if by_day else today
    yesterday = today - timedelta(days=1)
    streak, streak_since = streak_run(by_day, today, oldest)
    if today_kind in ("bad", "neutral"):
        missed_run += _count_back(by_day, yesterday, oldest, "bad")
    monday = today - timedelta(days=today.weekday())
    adherence_7d, planned_7d, done_7d = share_7d(rows, today)
    this_week, _, _ = _share(rows, monday, today)
    last_week, _, _ = _share(rows, monday - timedelta(days=7), monday - timedelta(days=1))
    return SessionStats(
        streak_days=streak,
        adherence_7d=adherence_7d,
        adherence_this_week=this_week,
        adherence_last_week=last_week,
        done_total=done_total,
        last_done=last_done,
        days_missed_in_a_row=missed_run,
        planned_7d=planned_7d,
        done_7d=done_7d,
        streak_since=streak_since,
    )


async def stats(session: AsyncSession, patient: Patient, now: datetime) -> SessionStats:
    """Session statistics for a patient at now (in the patient's local dates)."""
    today = local_date(patient, now)
    s = SESSIONS.c
    conn = await session.connection()
    rows = (
        await conn.execute(
            select(s.local_date, s.status).where(
                s.patient_id == patient.id, s.local_date >= today - timedelta(days=STATS_WINDOW_DAYS)
            )
        )
    ).all()
    totals = (
        await conn.execute(
            select(func.count(), func.max(s.local_date)).where(s.patient_id == patient.id, s.status.in_(DONE_STATUSES))
        )
    ).one()
    last_done = totals[1]
    if isinstance(last_done, str):  # SQLite aggregates bypass the column type
        last_done = date.fromisoformat(last_done)
    return compute_stats([(r.local_date, r.status) for r in rows], today, int(totals[0] or 0), last_done)


async def sessions_on(session: AsyncSession, patient_id: int, local_date: date) -> list[ExerciseSession]:
    """The patient's sessions on a local date, by slot."""
    result = await session.exec(
        select_models(ExerciseSession)
        .where(col(ExerciseSession.patient_id) == patient_id, col(ExerciseSession.local_date) == local_date)
        .order_by(col(ExerciseSession.slot))
    )
    return list(result.all())


# --- the Mini App's player ------------------------------------------------------------------


@dataclass(frozen=True)
class Played:
    """A session as the Mini App's player shows it: the row and its exercises, in order."""

    session: ExerciseSession
    exercises: list[Exercise]


async def for_player(session: AsyncSession, patient: Patient, content: Content, session_id: int) -> Played | None:
    """The patient's own session and its exercises; None for another patient's session or none at all.

    The exercises are the ones the chat's Start sends: the session's phase on its
    local day in the programme the patient follows (their own plan's, with its dose),
    the plan of its place in the day (ids missing from the catalogue left out).
    """
    es = await get(session, session_id)
    if es is None or es.patient_id != patient.id:
        return None
    index = await session_index(session, es)
    return Played(es, await session_exercises(session, content, patient, es.local_date, index))
