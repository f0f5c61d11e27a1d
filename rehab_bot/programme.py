"""A patient's exercise programme over time: phases, session rules, phase changes.

Programmes are content (``rehab_bot.content``): phases by days after surgery,
each with a number of sessions a day. This module turns that into the
patient's SESSION reminder rules and keeps them in step as the patient moves
from phase to phase:

* the *planning phase* is the phase the patient is in today (in their own
  timezone), or the first phase while the surgery is still ahead;
* there is one rule per session of the planning phase, at the patient's
  preferred times (``Patient.session_times``), with payload
  ``{"session": <0-based index>}``;
* a rule ends by itself (``end_date``) on the last day on which its session
  still exists (the programme ends, or later phases have fewer sessions), so
  no reminder goes out for a session that no longer exists even before
  :func:`sync_phase` has run;
* :func:`sync_phase` notices the move into a new phase, exactly once, and
  re-plans the rules when the number of sessions changes.

Plain Python over SQLModel: no telegram imports. The caller commits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import checkin, education, plan, schedule
from rehab_bot.content import Content, Phase, Programme, localize
from rehab_bot.models import Kind, Patient, PatientStatus, ReminderRule
from rehab_bot.reminders import add_rule, reschedule_rule
from rehab_bot.schedule import local_date, minutes_of_day

log = logging.getLogger(__name__)


class _Resolve:
    """The default of a programme argument: look up the patient's own plan or content programme."""


_RESOLVE = _Resolve()


def day_after_surgery(patient: Patient, local_date: date) -> int:
    """Days since surgery on the patient's local date: 0 on the day of surgery, -1 the day before."""
    if patient.surgery_date is None:
        raise ValueError(f"patient {patient.id} has no surgery date")
    return (local_date - patient.surgery_date).days


_warned: set[str] = set()


def programme_of(content: Content, patient: Patient) -> Programme | None:
    """The patient's programme, or None (no programme, or the clinic's content no longer has it)."""
    programme = content.programmes.get(patient.programme_id)
    if programme is None and patient.programme_id and patient.programme_id not in _warned:
        # Once per id: this runs for every reminder, and a flood of log lines
        # must not be the way a clinic learns it removed a programme in use.
        _warned.add(patient.programme_id)
        log.warning("programme %r is used by patients but not defined in the content", patient.programme_id)
    return programme


async def programme_for(session: AsyncSession, content: Content, patient: Patient) -> Programme | None:
    """The programme the patient follows: their own plan from the programme builder, else their content one."""
    assert patient.id is not None
    own = await plan.own_programmes(session, content, [patient])
    return own.get(patient.id) or programme_of(content, patient)


def current_phase(content: Content, patient: Patient, local_date: date) -> Phase | None:
    """The phase of the patient's content programme on local_date; None before surgery or after it.

    Ignores a patient's own plan: where that matters, resolve the programme
    with :func:`programme_for` and use :func:`phase_in`.
    """
    return phase_in(programme_of(content, patient), patient, local_date)


def phase_in(programme: Programme | None, patient: Patient, local_date: date) -> Phase | None:
    """The phase of this programme the patient is in on local_date; None before surgery or after it."""
    if programme is None or patient.surgery_date is None:
        return None
    return programme.phase_for(day_after_surgery(patient, local_date))


def planning_phase(content: Content, patient: Patient, local_date: date) -> Phase | None:
    """The phase to plan sessions for in the content programme (see :func:`planning_phase_in`)."""
    return planning_phase_in(programme_of(content, patient), patient, local_date)


def planning_phase_in(programme: Programme | None, patient: Patient, local_date: date) -> Phase | None:
    """The phase to plan sessions for: the current one, or the first while surgery is ahead."""
    if programme is None or patient.surgery_date is None or not programme.phases:
        return None
    day = day_after_surgery(patient, local_date)
    if day < 0:
        return programme.phases[0]
    return programme.phase_for(day)


def parse_times(text: str) -> list[str]:
    """The stored "08:00,13:00" as a list; malformed entries are dropped."""
    return schedule.parse_times(text, skip_bad=True)


def fit_times(preferred: list[str], count: int, defaults: list[str]) -> list[str]:
    """Exactly `count` distinct session times, ascending, as close to the patient's choice as possible.

    With the same number, the patient's times are kept. With fewer sessions,
    times are picked evenly across the patient's day (3 -> 2 keeps the first
    and the last). With more, the phase's default times farthest from the
    patient's are added. With no preference, the phase's defaults are used.
    """
    chosen = sorted(set(preferred), key=minutes_of_day)
    if not chosen:
        chosen = sorted(set(defaults), key=minutes_of_day)
    if len(chosen) > count:
        if count == 1:
            return [chosen[0]]
        last = len(chosen) - 1
        picks = sorted({round(i * last / (count - 1)) for i in range(count)})
        return [chosen[i] for i in picks]
    extra = [d for d in defaults if d not in chosen]
    while len(chosen) < count and extra:
        best = max(extra, key=lambda d: min(abs(minutes_of_day(d) - minutes_of_day(c)) for c in chosen))
        extra.remove(best)
        chosen.append(best)
    hour = 8
    while len(chosen) < count:  # defaults exhausted (they always have `count` entries; belt and braces)
        candidate = f"{hour:02d}:00"
        if candidate not in chosen:
            chosen.append(candidate)
        hour += 1
    return sorted(chosen, key=minutes_of_day)


def session_index(rule: ReminderRule) -> int:
    """The session index stored in a session rule's payload (0 if missing)."""
    try:
        value = json.loads(rule.payload or "{}").get("session", 0)
    except (ValueError, AttributeError):
        return 0
    return value if isinstance(value, int) else 0


def _end_date(programme: Programme, patient: Patient, phase: Phase, index: int) -> date | None:
    """The last local date on which session `index` exists, following on from `phase`."""
    assert patient.surgery_date is not None
    phases = programme.phases
    start = phases.index(phase)
    for later in phases[start:]:
        if later.sessions_per_day <= index:
            return patient.surgery_date + timedelta(days=later.from_day - 1)
        if later.to_day is None:
            return None
    last = phases[-1]
    assert last.to_day is not None
    return patient.surgery_date + timedelta(days=last.to_day)


async def session_rules(session: AsyncSession, patient: Patient) -> list[ReminderRule]:
    """The patient's active recurring session rules, by session index."""
    rules = (
        await session.exec(
            select(ReminderRule).where(
                col(ReminderRule.patient_id) == patient.id,
                col(ReminderRule.kind) == Kind.SESSION.value,
                col(ReminderRule.active).is_(True),
                col(ReminderRule.once).is_(False),
            )
        )
    ).all()
    return sorted(rules, key=lambda r: (session_index(r), r.id or 0))


def _retire(rule: ReminderRule, now: datetime) -> None:
    rule.active = False
    rule.next_due_at = None
    rule.next_local_date = None
    rule.updated_at = now


@dataclass(frozen=True)
class PlannedRule:
    """One session rule as :func:`schedule_sessions` wants it."""

    index: int
    local_time: str
    start: date
    end: date | None


def planned_rules(programme: Programme | None, patient: Patient, today: date) -> tuple[Phase | None, list[PlannedRule]]:
    """The planning phase and the session rules the patient should have from today (no writes)."""
    phase = planning_phase_in(programme, patient, today)
    if programme is None or phase is None:
        return None, []
    assert patient.surgery_date is not None
    times = fit_times(parse_times(patient.session_times), phase.sessions_per_day, phase.default_times)
    start = max(today, patient.surgery_date)
    return phase, [
        PlannedRule(index, local_time, start, _end_date(programme, patient, phase, index))
        for index, local_time in enumerate(times)
    ]


async def schedule_sessions(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    now: datetime,
    programme: Programme | _Resolve | None = _RESOLVE,
) -> list[ReminderRule]:
    """Create or refresh the patient's session rules for their planning phase; return them.

    Idempotent: call it again after the patient changes their times or
    timezone, or the clinic changes the surgery date. Existing rules are
    updated in place, so a session already reminded today is not reminded
    again at its new time. Sets ``patient.session_times`` to the times used,
    and moves the evening check-in to follow the last of them.
    """
    assert patient.id is not None
    today = local_date(patient, now)
    existing = await session_rules(session, patient)
    if isinstance(programme, _Resolve):
        programme = await programme_for(session, content, patient)
    phase, wanted = planned_rules(programme, patient, today)
    if phase is None:
        for rule in existing:
            _retire(rule, now)
            session.add(rule)
        await checkin.retime(session, patient, content, now)
        await education.retime(session, patient, content, now)
        return []
    patient.session_times = ",".join(w.local_time for w in wanted)
    session.add(patient)
    result: list[ReminderRule] = []
    for w in wanted:
        payload = json.dumps({"session": w.index})
        if w.index < len(existing):
            rule = existing[w.index]
            rule.local_time = w.local_time
            rule.start_date = w.start
            rule.end_date = w.end
            rule.payload = payload
            reschedule_rule(session, rule, patient.timezone, now)
            rule.active = rule.next_due_at is not None
        else:
            rule = add_rule(
                session,
                patient,
                kind=Kind.SESSION,
                local_time=w.local_time,
                now=now,
                start_date=w.start,
                end_date=w.end,
                payload=payload,
            )
        result.append(rule)
    for rule in existing[len(wanted) :]:
        _retire(rule, now)
        session.add(rule)
    await checkin.retime(session, patient, content, now)  # the evening check-in follows the last session
    await education.retime(session, patient, content, now)  # lessons come with the first session
    await session.flush()
    return result


@dataclass(frozen=True)
class PhaseChange:
    """The patient has moved into a new phase; tell them what changed."""

    previous_id: str  # "" when this is the patient's first phase (surgery was ahead at enrolment)
    phase: Phase
    replanned: bool  # the session rules changed (sessions_per_day differs)
    session_times: list[str]  # the patient's session times from now on

    def note(self, lang: str) -> str:
        """The phase's clinic-written change note in lang (English fallback)."""
        return localize(self.phase.change_note, lang)

    def title(self, lang: str) -> str:
        """The phase's title in lang."""
        return localize(self.phase.title, lang)


async def sync_phase(
    session: AsyncSession,
    patient: Patient,
    content: Content,
    now: datetime,
    programme: Programme | _Resolve | None = _RESOLVE,
) -> PhaseChange | None:
    """Move the patient into the phase of today, if it changed; return the change once.

    Contract for the session reminder renderer (its only caller besides tests):

    * Call it with the delivery's patient, inside the renderer's own database
      session, before building the reminder; commit afterwards.
    * It returns None when nothing changed (also before surgery and after the
      programme has ended), and a :class:`PhaseChange` exactly once per
      transition: the switch is a conditional UPDATE on ``patient.phase_id``,
      so two renderers, even in two processes, cannot both see it.
    * On a change the reminder should start with ``change.title(lang)`` and
      ``change.note(lang)`` ("what changed"), then list the new phase's
      exercises (``change.phase.exercises_for(index)``).
    * When ``change.replanned`` the rules were rebuilt: the rendered
      delivery's session index may no longer exist (``index >=
      change.phase.sessions_per_day``); then render the note without a
      session, or nothing if the note was already sent.
    """
    assert patient.id is not None
    if isinstance(programme, _Resolve):
        programme = await programme_for(session, content, patient)
    phase = phase_in(programme, patient, local_date(patient, now))
    if phase is None or phase.id == patient.phase_id:
        return None
    previous_id = patient.phase_id
    result = await session.exec(
        update(Patient)
        .where(col(Patient.id) == patient.id, col(Patient.phase_id) == previous_id)
        .values(phase_id=phase.id)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return None  # someone else recorded this change first
    set_committed_value(patient, "phase_id", phase.id)
    previous = next((p for p in programme.phases if p.id == previous_id), None) if programme else None
    before = [r.local_time for r in await session_rules(session, patient)]
    replanned = previous is None or previous.sessions_per_day != phase.sessions_per_day
    if replanned:
        rules = await schedule_sessions(session, patient, content, now, programme)
        replanned = [r.local_time for r in rules] != before
    log.info("patient %s moved into phase %s", patient.id, phase.id)
    return PhaseChange(previous_id, phase, replanned, parse_times(patient.session_times))


async def on_enrolled(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> list[ReminderRule]:
    """Enrolment is complete: activate the patient, plan sessions and check-ins; return the session rules.

    The phase the patient is in now is recorded as already told (the
    enrolment summary shows its note); a patient enrolled before surgery gets
    the first phase's note with their first reminder, via sync_phase.
    """
    patient.status = PatientStatus.ACTIVE.value
    phase = phase_in(await programme_for(session, content, patient), patient, local_date(patient, now))
    patient.phase_id = phase.id if phase is not None else ""
    session.add(patient)
    rules = await schedule_sessions(session, patient, content, now)
    await checkin.schedule_for(session, patient, content, now)
    await education.schedule_for(session, patient, content, now)
    return rules
