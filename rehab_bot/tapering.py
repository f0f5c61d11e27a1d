"""Tapering: a patient who has kept up their sessions for weeks stops getting nudges.

``[delivery] taper_after_weeks`` (0 = never) and ``taper_adherence`` (a
share): when, in each of the last ``taper_after_weeks`` whole weeks before
today (7-day blocks counted back from yesterday), the patient did at least
``taper_adherence`` of their resolved sessions (done or partly, of done,
partly, skipped and missed), the nudge after an unanswered reminder is no
longer sent, and the nudges come back as soon as a week falls below the
threshold. A week without any resolved session (a pause) does not count as
kept up.

The reminders become less frequent as the programme's content allows: a
phase may declare ``tapered_sessions_per_day`` and/or ``tapered_days``
(programmes.toml). :func:`sync` (:func:`sync_many` for a window's patients,
one query), run before session reminders go out
(rehab_bot.session.open_for_deliveries), records the change of state on
``Patient.tapered_since`` exactly once (a conditional UPDATE), re-plans the
session rules from the next slot (programme.schedule_sessions: rules updated
in place, so no slot is sent twice), and queues one message from content
(texts ``reminders_tapered`` / ``reminders_full``) when the reminders changed.
Back at full frequency when a week falls short, with one message.

The clinic may switch tapering off later (``taper_after_weeks = 0``) or take
``tapered_sessions_per_day``/``tapered_days`` out of a phase: a patient
recorded as tapered is then returned to the phase's full schedule at the
same sync point, ``Patient.tapered_since`` is cleared, and they get one
neutral message (text ``reminders_plan_changed``: it does not say sessions
were missed). So the state is "kept up, and tapering allowed" (:func:`wanted`):
a patient who keeps up in a phase that declares no tapering (or their own
plan) is not recorded as tapered, though their nudges stop all the same.

A new phase is judged from its first day, at the same sync point, which runs
just before ``programme.sync_phase`` records the phase and announces it with
that reminder. A tapered patient moving into a phase that tapers too stays
tapered (sync_phase re-plans to the new phase's tapered reminders; the phase
announcement is all they hear). Moving into a phase that declares no
tapering, they are returned to its full schedule here, ``tapered_since`` is
cleared, and one message follows the reminder that announces the phase (text
``reminders_phase_full``: the reminders follow the new phase's full schedule;
no word of missed sessions, and not ``reminders_plan_changed``, whose "the
exercises stay the same" a new phase may not keep; the same text when the
clinic switched tapering off and the change falls on a new phase's first
day). When the reminders stay the same (the new phase's full schedule is
what the patient had), nothing is said beyond the phase announcement.

No daily job: the state only changes which session reminders go out, and
every plan for a tapered patient keeps at least one reminder a week
(``tapered_sessions_per_day`` >= 1; ``tapered_days`` names weekdays, none = every day), so the
check before each reminder is never more than a week late; nudges read the
sessions when they are due (:func:`nudges_stopped`).

Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import programme as programmes
from rehab_bot.content import Content, Programme
from rehab_bot.models import Delivery, ExerciseSession, Patient, table_of
from rehab_bot.schedule import local_date

log = logging.getLogger(__name__)

SESSIONS = table_of(ExerciseSession)
DONE = ("done", "partly")
RESOLVED = ("done", "partly", "skipped", "missed")


def kept_up(rows: Sequence[tuple[date, str]], today: date, weeks: int, threshold: float) -> bool:
    """True when each of the last `weeks` 7-day blocks before today reached the threshold (pure)."""
    if weeks <= 0:
        return False
    for week in range(weeks):
        last = today - timedelta(days=1 + 7 * week)
        first = last - timedelta(days=6)
        statuses = [status for day, status in rows if first <= day <= last and status in RESOLVED]
        if not statuses or sum(s in DONE for s in statuses) / len(statuses) < threshold:
            return False
    return True


async def nudges_stopped(session: AsyncSession, patient: Patient, now: datetime, weeks: int, threshold: float) -> bool:
    """Whether the patient's nudges have tapered off at now."""
    if weeks <= 0:
        return False
    today = local_date(patient, now)
    s = SESSIONS.c
    conn = await session.connection()
    rows = (
        await conn.execute(
            select(s.local_date, s.status).where(
                s.patient_id == patient.id, s.local_date >= today - timedelta(days=7 * weeks), s.local_date < today
            )
        )
    ).all()
    return kept_up([(r.local_date, r.status) for r in rows], today, weeks, threshold)


TAPERED_TEXT = "reminders_tapered"
FULL_TEXT = "reminders_full"
CHANGED_TEXT = "reminders_plan_changed"
PHASE_TEXT = "reminders_phase_full"
NOTICE_KEY = "tpr"


def wanted(patient: Patient, followed: Programme | None, today: date, weeks: int, kept: bool) -> tuple[bool, str]:
    """Whether the patient should be tapered, and the text that tells them a change to that (pure).

    Tapered = kept up, tapering is on (weeks > 0) and the phase of today
    allows it (``Phase.tapers``). Falling back to full frequency is announced
    with ``reminders_full`` only when the patient fell short; when the clinic
    switched tapering off (or took it out of the phase), with the neutral
    ``reminders_plan_changed``; but on the day a new phase starts (not yet
    recorded on ``Patient.phase_id``: sync_phase announces it right after),
    with ``reminders_phase_full``, which speaks of the new phase's full
    schedule (its exercises may change too).
    """
    phase = programmes.phase_in(followed, patient, today)
    if weeks > 0 and (phase is None or phase.tapers):
        return kept, TAPERED_TEXT if kept else FULL_TEXT
    starts = phase is not None and phase.id != patient.phase_id
    return False, PHASE_TEXT if starts else CHANGED_TEXT


async def sync(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    now: datetime,
    weeks: int,
    threshold: float,
    followed: Programme | None,
) -> Delivery | None:
    """Record a change of the tapering state, re-plan the reminders, queue one message; the caller commits.

    Returns the message queued (None: nothing changed, someone else recorded
    the change first, the phase keeps its reminders, or the clinic's content
    has no text for it). followed: the programme the patient follows.
    weeks <= 0 (tapering off): a tapered patient is returned to full frequency.
    """
    assert patient.id is not None
    queued = await sync_many(session, [patient], content, now, weeks, threshold, {patient.id: followed})
    return queued[0] if queued else None


async def sync_many(
    session: AsyncSession,
    patients: Sequence[Patient],
    content: Content,
    now: datetime,
    weeks: int,
    threshold: float,
    followed: Mapping[int, Programme | None],
) -> list[Delivery]:
    """:func:`sync` for a window's patients: their sessions in one query; returns the messages queued.

    With tapering off (weeks <= 0) only the patients still recorded as tapered
    are looked at, and no sessions are read.
    """
    if weeks <= 0:
        patients = [p for p in patients if p.tapered_since is not None]
    todays = {p.id: local_date(p, now) for p in patients if p.id is not None}
    if not todays:
        return []
    by_patient: dict[int, list[tuple[date, str]]] = {}
    if weeks > 0:
        s = SESSIONS.c
        conn = await session.connection()
        rows = (
            await conn.execute(
                select(s.patient_id, s.local_date, s.status).where(
                    s.patient_id.in_(list(todays)),
                    s.local_date >= min(todays.values()) - timedelta(days=7 * weeks),
                    s.local_date < max(todays.values()),
                )
            )
        ).all()
        for row in rows:
            by_patient.setdefault(row.patient_id, []).append((row.local_date, row.status))
    queued = []
    for patient in patients:
        if patient.id is None:
            continue
        today = todays[patient.id]
        kept = kept_up(by_patient.get(patient.id, []), today, weeks, threshold)
        state, text_id = wanted(patient, followed.get(patient.id), today, weeks, kept)
        notice = await _record(session, patient, content, now, state, text_id, weeks, followed.get(patient.id))
        if notice is not None:
            queued.append(notice)
    return queued


async def _record(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    now: datetime,
    kept: bool,
    text_id: str,
    weeks: int,
    followed: Programme | None,
) -> Delivery | None:
    """Store a changed state once, re-plan, queue the message text_id (see :func:`sync`); kept: the state wanted."""
    assert patient.id is not None
    if kept == (patient.tapered_since is not None):
        return None
    since = now if kept else None
    was = col(Patient.tapered_since).is_(None) if kept else col(Patient.tapered_since).is_not(None)
    result = await session.exec(
        update(Patient)
        .where(col(Patient.id) == patient.id, was)
        .values(tapered_since=since)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return None  # another renderer recorded it first
    set_committed_value(patient, "tapered_since", since)
    before = [(r.local_time, r.days) for r in await programmes.session_rules(session, patient)]
    rules = await programmes.schedule_sessions(session, patient, content, now, followed)
    log.info("patient %s: reminders %s", patient.id, "tapered" if kept else "back to full frequency")
    if [(r.local_time, r.days) for r in rules] == before or patient.telegram_id is None:
        return None
    if text_id not in content.texts:
        return None
    text = content.text(text_id, patient.language, weeks=weeks)
    # Queued now, beside the session reminder that is going out (so outside quiet hours).
    delivery = programmes.queue_notice(session, patient, text, now, key_prefix=NOTICE_KEY)
    return delivery
