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
  re-plans the rules when the number of sessions changes;
* a tapered patient (rehab_bot/tapering.py) has rules only for the sessions
  the phase keeps (``tapered_sessions_per_day``, on ``tapered_days``); each
  keeps its index, so its exercises and its rule stay the same;
* after the last phase, a ``[programme.maintenance]`` phase has one rule every
  ``every_n_days`` (7) days: the first session's rule, re-planned in place; a
  patient's own plan that ends goes on with their content programme's
  (rehab_bot/plan.py, ``with_maintenance``).

Plain Python over SQLModel: no telegram imports. The caller commits.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import audit, checkin, education, formats, library, plan, schedule, session_text
from rehab_bot.access import Access, Forbidden, StaffError, require
from rehab_bot.content import Content, Exercise, Phase, Programme, localize
from rehab_bot.db import lock_row
from rehab_bot.i18n import N_, Problem, t
from rehab_bot.models import (
    PRIORITY,
    Delivery,
    DeliveryStatus,
    Kind,
    Patient,
    PatientStatus,
    ProgrammePlan,
    ReminderRule,
    Role,
    Staff,
    table_of,
)
from rehab_bot.reminders import add_rule, reschedule_rule
from rehab_bot.schedule import (
    Occurrence,
    QuietHours,
    Rule,
    local_date,
    minutes_of_day,
    next_from_now,
    parse_days,
    parse_hhmm,
)

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


def exercises_of(phase: Phase | None, index: int, content: Content) -> list[Exercise]:
    """The exercises of the index-th session of the day with their dose (a patient's plan's, else the content's).

    A rule beyond the phase's count of sessions gets the last session's exercises.
    """
    if phase is None:
        return []
    return phase.exercises_in(min(max(index, 0), phase.sessions_per_day - 1), content.exercises)


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
    """The last local date on which session `index` exists, following on from `phase`.

    The first session goes on into a maintenance phase ([programme.maintenance]):
    its first reminder there moves the patient in (sync_phase) and re-plans it weekly.
    """
    assert patient.surgery_date is not None
    phases = programme.phases
    if phase not in phases:
        return None  # the maintenance phase: open-ended
    start = phases.index(phase)
    for later in phases[start:]:
        if later.sessions_per_day <= index:
            return patient.surgery_date + timedelta(days=later.from_day - 1)
        if later.to_day is None:
            return None
    if programme.maintenance is not None and index == 0:
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


def _by_index(rules: list[ReminderRule]) -> dict[int, ReminderRule]:
    """The first rule of each session index (rules sorted as session_rules returns them)."""
    out: dict[int, ReminderRule] = {}
    for rule in rules:
        out.setdefault(session_index(rule), rule)
    return out


@dataclass(frozen=True)
class PlannedRule:
    """One session rule as :func:`schedule_sessions` wants it."""

    index: int
    local_time: str
    start: date
    end: date | None
    days: str = ""  # weekday digits ("" = every day): a tapered phase's tapered_days
    every_n_days: int | None = None  # the maintenance phase: every 7 days from its first day


def full_times(phase: Phase, patient: Patient) -> list[str]:
    """The patient's session times in a phase at full frequency (what Patient.session_times keeps)."""
    return fit_times(parse_times(patient.session_times), phase.sessions_per_day, phase.default_times)


def tapered(phase: Phase, patient: Patient) -> bool:
    """Whether the patient gets the phase's tapered reminders: they kept up (tapering.sync) and the phase allows it."""
    return patient.tapered_since is not None and phase.tapers


def planned_rules(programme: Programme | None, patient: Patient, today: date) -> tuple[Phase | None, list[PlannedRule]]:
    """The planning phase and the session rules the patient should have from today (no writes).

    A tapered patient (see :func:`tapered`) gets the phase's ``tapered_sessions_per_day``
    of their times, spread over the day, on its ``tapered_days``; a maintenance phase
    one session every ``every_n_days`` days from its first day.
    """
    phase = planning_phase_in(programme, patient, today)
    if programme is None or phase is None:
        return None, []
    assert patient.surgery_date is not None
    times = full_times(phase, patient)
    indexed = list(enumerate(times))
    days = ""
    if tapered(phase, patient):
        # The sessions kept keep their place in the day (index): their exercises and learned times.
        count = min(phase.tapered_sessions_per_day or len(times), len(times))
        kept = set(fit_times(times, count, phase.default_times))
        indexed = [(index, local_time) for index, local_time in indexed if local_time in kept]
        days = phase.tapered_days
    start = max(today, patient.surgery_date)
    if phase.every_n_days is not None:
        start = patient.surgery_date + timedelta(days=phase.from_day)  # the cadence counts from the phase's first day
    return phase, [
        PlannedRule(index, local_time, start, _end_date(programme, patient, phase, index), days, phase.every_n_days)
        for index, local_time in indexed
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
    patient.session_times = ",".join(full_times(phase, patient))  # kept at full frequency while tapered
    session.add(patient)
    result: list[ReminderRule] = []
    by_index = _by_index(existing)
    for w in wanted:
        payload = json.dumps({"session": w.index})
        if w.index in by_index:
            rule = by_index.pop(w.index)
            rule.local_time = w.local_time
            rule.start_date = w.start
            rule.end_date = w.end
            rule.days = w.days
            rule.every_n_days = w.every_n_days
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
                days=w.days,
                every_n_days=w.every_n_days,
                payload=payload,
            )
        result.append(rule)
    kept = {id(rule) for rule in result}
    for rule in existing:
        if id(rule) not in kept:  # sessions no longer reminded (fewer in the phase, tapered), or a duplicate
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
    * A tapered patient has been brought up to date by rehab_bot.tapering
      just before (open_for_deliveries): moving into a phase that declares
      no tapering, they were returned to its full schedule and told there
      (``reminders_phase_full``); into one that tapers too, the rules are
      re-planned to its tapered reminders here, without a word of their own.
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
    replanned = (
        previous is None
        or previous.sessions_per_day != phase.sessions_per_day
        or previous.every_n_days != phase.every_n_days
        or (patient.tapered_since is not None and (previous.tapers or phase.tapers))
    )
    if replanned:
        rules = await schedule_sessions(session, patient, content, now, programme)
        replanned = [r.local_time for r in rules] != before
    log.info("patient %s moved into phase %s", patient.id, phase.id)
    return PhaseChange(previous_id, phase, replanned, parse_times(patient.session_times))


async def in_maintenance(session: AsyncSession, content: Content, patient: Patient, now: datetime) -> bool:
    """Whether the patient is past the end of the programme they follow (their own plan's too): its weekly phase."""
    phase = phase_in(await programme_for(session, content, patient), patient, local_date(patient, now))
    return phase is not None and phase.every_n_days is not None


async def on_enrolled(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> list[ReminderRule]:
    """Enrolment is complete: activate the patient, plan sessions and check-ins; return the session rules.

    The phase the patient is in now is recorded as already told (the
    enrolment summary shows its note); a patient enrolled before surgery gets
    the first phase's note with their first reminder, via sync_phase.
    """
    patient.status = PatientStatus.ACTIVE.value
    followed = await programme_for(session, content, patient)
    phase = phase_in(followed, patient, local_date(patient, now))
    patient.phase_id = phase.id if phase is not None else ""
    session.add(patient)
    rules = await schedule_sessions(session, patient, content, now, followed)
    await checkin.schedule_for(session, patient, content, now)  # looks up the programme followed itself
    await education.schedule_for(session, patient, content, now)
    return rules


# --------------------------------------------------------------------------- changes by the care team
#
# One path for every change a therapist makes to a patient's programme: a
# content programme chosen in the chat, new session times, or a plan saved in
# the programme builder. Each re-plans the session rules from the next slot
# (rules are updated in place, so no slot is sent twice), records the phase
# the patient is in as told, queues ONE message to the patient saying what
# changed (in their language, after their quiet hours), and is audited.


@dataclass(frozen=True)
class Dosed:
    """An exercise of a phase as the patient reads it: name and dose."""

    exercise_id: str
    name: str
    dose: str


def _phase_summary(programme: Programme | None, patient: Patient, today: date, lang: str) -> dict[str, Dosed]:
    """The exercises of the phase to plan for, with their dose, in order of first appearance."""
    phase = planning_phase_in(programme, patient, today)
    out: dict[str, Dosed] = {}
    if phase is None:
        return out
    for index in range(phase.sessions_per_day):
        for ex in phase.exercises_in(index, {}):
            out.setdefault(ex.id, Dosed(ex.id, localize(ex.name, lang), session_text.dose(lang, ex)))
    return out


def _resolved(programme: Programme | None, content: Content) -> Programme | None:
    """A content programme with its exercises looked up, so summaries need no catalogue."""
    if programme is None or any(s.items for p in programme.phases for s in p.sessions):
        return programme

    def resolve(p: Phase) -> Phase:
        return replace(
            p,
            sessions=[
                replace(s, items=tuple(content.exercises[x] for x in s.exercises if x in content.exercises))
                for s in p.sessions
            ],
        )

    kept = programme.maintenance
    return replace(
        programme,
        phases=[resolve(p) for p in programme.phases],
        maintenance=resolve(kept) if kept is not None else None,
    )


def change_text(
    lang: str, before: dict[str, Dosed], after: dict[str, Dosed], times_before: str, times_after: str
) -> str | None:
    """What changed for the patient, in their language; None when nothing they would notice did."""
    new = [d for k, d in after.items() if k not in before]
    gone = [d for k, d in before.items() if k not in after]
    dosed = [d for k, d in after.items() if k in before and before[k].dose != d.dose]
    if not (new or gone or dosed) and times_before == times_after:
        return None

    def named(items: list[Dosed]) -> str:
        return "\n".join(f"• {d.name}" + (f" ({d.dose})" if d.dose else "") for d in items)

    parts = [t(lang, "🆕 Your care team has updated your exercise programme.")]
    if new:
        parts.append(t(lang, "New:") + "\n" + named(new))
    if dosed:
        parts.append(t(lang, "New amount:") + "\n" + named(dosed))
    if gone:
        parts.append(t(lang, "No longer in your programme:") + "\n" + "\n".join(f"• {d.name}" for d in gone))
    if times_after and times_after != times_before:
        parts.append(t(lang, "Your session times: {times}", times=times_after.replace(",", ", ")))
    parts.append(t(lang, "Your next reminder lists every exercise with its instructions."))
    return "\n\n".join(parts)


def maintenance_start(programme: Programme | None) -> tuple[int, int | None, tuple[str, ...]] | None:
    """What the weekly check follows: the maintenance phase's first day after surgery, cadence and questionnaires."""
    kept = programme.maintenance if programme is not None else None
    return (kept.from_day, kept.every_n_days, kept.questionnaires) if kept is not None else None


@dataclass(frozen=True)
class Applied:
    """A change made: the session rules from now on and the message queued to the patient (if any)."""

    rules: list[ReminderRule]
    notice: Delivery | None


async def apply_change(
    session: AsyncSession,
    staff: Staff,
    patient: Patient,
    content: Content,
    now: datetime,
    *,
    before: Programme | None,
    times_before: str,
    action: str,
    detail: str,
    quiet: tuple[time | None, time | None] | None,
    actor: str | None = None,
    neutral: bool = False,
) -> Applied:
    """Re-plan after the care team changed the programme, plan or times; tell the patient once; audit.

    The caller has made the change (patient.programme_id, the plan row or
    patient.session_times) and passes what the patient followed before.
    quiet: the clinic's quiet hours, which the message waits for (None: no
    message, for callers without a clinic configuration).
    """
    rules: list[ReminderRule] = []
    notice: Delivery | None = None
    if patient.status not in (PatientStatus.DISCHARGED.value, PatientStatus.STOPPED.value):
        followed = await programme_for(session, content, patient)
        rules = await schedule_sessions(session, patient, content, now, followed)
        if patient.status != PatientStatus.ENROLLING.value and maintenance_start(followed) != maintenance_start(before):
            # The programme now ends on another day (or no longer, or now does): the weekly check moves with it.
            await checkin.schedule_for(session, patient, content, now, followed)
        today = local_date(patient, now)
        phase = phase_in(followed, patient, today)
        if phase is not None:
            patient.phase_id = phase.id  # told now, in the one message: no phase note on top of it
            session.add(patient)
        lang = patient.language
        waiting = await _waiting_notice(session, patient)
        if waiting is not None:  # not sent yet: it will say what changed since the state it was written against
            baseline, old_times = _baseline_of(waiting)
        else:
            baseline = _phase_summary(_resolved(before, content), patient, today, lang)
            old_times = times_before
        text = change_text(
            lang,
            baseline,
            _phase_summary(_resolved(followed, content), patient, today, lang),
            old_times,
            patient.session_times,
        )
        if text is not None and neutral:
            text = t(lang, NEUTRAL_CHANGE)  # [privacy] health_data_in_chat = false: no exercise, dose or time
        if waiting is not None:
            if text is None:
                waiting.status, waiting.error = DeliveryStatus.SKIPPED.value, "changed back before it was sent"
            else:
                waiting.body = text
            session.add(waiting)
            notice = waiting if text is not None else None
        elif text is not None and quiet is not None and patient.telegram_id is not None:
            payload = json.dumps(
                {"change": True, "before": {k: [d.name, d.dose] for k, d in baseline.items()}, "times": old_times},
                ensure_ascii=False,
            )
            notice = queue_notice(session, patient, text, now, key_prefix=CHANGE_KEY, quiet=quiet, payload=payload)
    audit.record(session, action=action, now=now, staff=staff, actor=actor, patient_id=patient.id, detail=detail)
    await session.flush()
    return Applied(rules, notice)


def queue_notice(
    session: AsyncSession,
    patient: Patient,
    text: str,
    now: datetime,
    *,
    key_prefix: str,
    quiet: tuple[time | None, time | None] | None = None,
    payload: str = "",
) -> Delivery:
    """A message about the patient's plan as a delivery the engine sends like any other.

    With ``quiet`` (the clinic's default quiet hours) it waits for the end of the patient's quiet
    hours; without, it goes out now (a notice queued beside a reminder that is going out anyway).
    ``key_prefix`` names the kind of notice (CHANGE_KEY here; rehab_bot.tapering has its own).
    """
    assert patient.id is not None and patient.telegram_id is not None
    hours = QuietHours.for_patient(patient, *quiet) if quiet is not None else None
    not_before = (hours.ends_after(now, patient.timezone) if hours is not None else None) or now
    delivery = Delivery(
        key=f"{key_prefix}{patient.id}:{secrets.token_hex(8)}",
        kind=Kind.SESSION.value,
        priority=PRIORITY[Kind.SESSION],
        patient_id=patient.id,
        chat_id=patient.telegram_id,
        due_at=now,
        not_before=not_before,
        status=DeliveryStatus.QUEUED.value,
        body=text,
        payload=payload,
        created_at=now,
    )
    session.add(delivery)
    return delivery


CHANGE_KEY = "chg"
# The change message when the chat carries no health data ([privacy] health_data_in_chat = false).
NEUTRAL_CHANGE = N_("🆕 Your care team has updated your plan.")
CHANGE_PAYLOAD_PREFIX = '{"change": true'


async def _waiting_notice(session: AsyncSession, patient: Patient) -> Delivery | None:
    """A change message to the patient that has not gone out yet (changes made close together share it)."""
    rows = await session.exec(
        select(Delivery).where(
            col(Delivery.patient_id) == patient.id,
            col(Delivery.status) == DeliveryStatus.QUEUED.value,
            col(Delivery.payload).startswith(CHANGE_PAYLOAD_PREFIX),
        )
    )
    return rows.first()


def _baseline_of(notice: Delivery) -> tuple[dict[str, Dosed], str]:
    """What a waiting change message was written against: the exercises and times before the first change."""
    data = json.loads(notice.payload)
    before = {k: Dosed(k, v[0], v[1]) for k, v in data.get("before", {}).items()}
    return before, str(data.get("times", ""))


# --------------------------------------------------------------------------- the programme builder


class PlanConflict(StaffError):  # a StaffError: shown to the staff member, nothing saved
    """The patient's plan was saved by someone else after this draft was opened (optimistic concurrency)."""


@dataclass(frozen=True)
class Saved:
    """A plan saved as the patient's own: the row and what was applied."""

    plan: ProgrammePlan
    applied: Applied


async def save_own_plan(
    session: AsyncSession,
    staff: Staff,
    patient: Patient,
    raw: Mapping[str, Any],
    content: Content,
    now: datetime,
    *,
    quiet: tuple[time | None, time | None] | None,
    actor: str | None = None,
    neutral: bool = False,
    base_version: int | None = None,
) -> Saved:
    """Save a plan as the patient's own (the staff member must be allowed to change them); re-plan; tell; audit.

    base_version: the version of the patient's own plan when this draft was opened (0: none). If
    the plan was saved (or removed) since with another content, nothing is saved: PlanConflict
    says who and when, so a colleague's work is never overwritten unseen. The same plan posted
    twice (a double click) is no conflict. The patient's row is locked first, so two saves racing
    each other are checked one after the other.
    """
    require(staff, patient, Access.WRITE)
    assert patient.id is not None
    catalogue = await library.catalogue(session, content)
    checked = plan.check(raw, catalogue, draft=True)
    await lock_row(session, table_of(Patient), patient.id)  # two saves racing are checked one after the other
    before = await programme_for(session, content, patient)
    times_before = patient.session_times
    row = await plan.own_plan(session, patient.id)
    current = row.version if row is not None else 0
    if base_version is not None and base_version != current and (row is None or row.body != checked.body()):
        if row is None:
            raise PlanConflict(N_("This patient's own plan was removed after you opened the builder."))
        who = await session.get(Staff, row.updated_by) if row.updated_by is not None else None
        raise PlanConflict(
            N_("{name} saved this patient's plan at {when}, after you opened the builder."),
            name=who.name if who is not None else "?",
            when=formats.when(row.updated_at, staff.timezone, staff.language),
        )
    if row is None:
        row = ProgrammePlan(patient_id=patient.id, body="", created_by=staff.id, created_at=now)
    else:
        row.version += 1
    row.based_on, row.body, row.updated_by, row.updated_at = checked.schema.based_on, checked.body(), staff.id, now
    session.add(row)
    await session.flush()
    applied = await apply_change(
        session,
        staff,
        patient,
        content,
        now,
        before=before,
        times_before=times_before,
        action=audit.CHANGE_PLAN,
        detail=f"plan={row.id} version={row.version} from={checked.schema.based_on or 'empty'}",
        quiet=quiet,
        actor=actor,
        neutral=neutral,
    )
    return Saved(row, applied)


async def drop_own_plan(session: AsyncSession, patient: Patient) -> bool:
    """Remove the patient's own plan (a content programme was chosen instead); True if there was one."""
    assert patient.id is not None
    row = await plan.own_plan(session, patient.id)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


TEMPLATE_NAME = N_("needs 1-{most} characters")
TEMPLATE_GONE = N_("That template no longer exists.")
TEMPLATE_TAKEN = N_(
    "A template named '{name}' already exists with another plan: choose another name, or delete that one"
    " on the Templates page first."
)


async def save_template(
    session: AsyncSession,
    staff: Staff,
    name: str,
    raw: Mapping[str, Any],
    content: Content,
    now: datetime,
    *,
    template_id: int | None = None,
    actor: str | None = None,
) -> ProgrammePlan:
    """Save a plan as a clinic template under a name (new, or replacing template_id); audited.

    A new template's name is one no other template has (letter case aside), so the builder's list of
    starting points tells them apart: the same plan under it again (a second click) is the template
    saved already, another plan is refused (TEMPLATE_TAKEN)."""
    if not staff.active:
        raise plan.PlanError([N_("You are not allowed to do this.")])
    name = " ".join(name.split())
    if not 1 <= len(name) <= plan.MAX_TITLE:
        raise plan.PlanError([Problem(TEMPLATE_NAME, {"most": plan.MAX_TITLE}, where="name")])
    checked = plan.check(raw, await library.catalogue(session, content), draft=True)
    if template_id is None:
        named = [t for t in await plan.templates(session) if t.name.casefold() == name.casefold()]
        body = checked.body()
        same = next((t for t in named if t.body == body), None)
        if same is not None:
            return same
        if named:
            raise plan.PlanError([Problem(TEMPLATE_TAKEN, {"name": named[0].name}, where="name")])
    row: ProgrammePlan | None = None
    if template_id is not None:
        row = await session.get(ProgrammePlan, template_id)
        if row is None or row.patient_id is not None:
            raise plan.PlanError([TEMPLATE_GONE])
        row.version += 1
    else:
        row = ProgrammePlan(body="", created_by=staff.id, created_at=now)
    row.name, row.based_on, row.body = name, checked.schema.based_on, checked.body()
    row.updated_by, row.updated_at = staff.id, now
    session.add(row)
    await session.flush()
    audit.record(session, action=audit.TEMPLATE_SAVE, now=now, staff=staff, actor=actor, detail=f"template={row.id}")
    return row


def may_delete_template(staff: Staff, row: ProgrammePlan) -> bool:
    """A clinic template is deleted by whoever saved it first, or by an admin."""
    return staff.active and (staff.role == Role.ADMIN.value or row.created_by == staff.id)


async def delete_template(
    session: AsyncSession, staff: Staff, template_id: int, now: datetime, *, actor: str | None = None
) -> str:
    """Delete a clinic template (patients' own plans are copies: none changes); audited. Returns its name.

    Raises plan.PlanError when there is no such template, Forbidden when staff may not (may_delete_template).
    """
    row = await session.get(ProgrammePlan, template_id)
    if row is None or row.patient_id is not None:
        raise plan.PlanError([TEMPLATE_GONE])
    if not may_delete_template(staff, row):
        raise Forbidden("Only the template's author or an admin may delete it.")
    name = row.name
    await session.delete(row)
    await session.flush()
    audit.record(
        session, action=audit.TEMPLATE_DELETE, now=now, staff=staff, actor=actor, detail=f"template={template_id}"
    )
    return name


@dataclass(frozen=True)
class Preview:
    """The patient's next session reminder under a plan: when, what it says, and the exercises ▶ Start sends.

    text is the reminder as the engine writes it, except its closing line of
    encouragement, which the clinic's messages supply in turn by session (not
    known before the session opens); cards are the exercise messages, exactly.
    """

    local_date: date
    slot: str
    due_at: datetime
    text: str
    cards: list[str]
    lang: str


async def preview(
    session: AsyncSession,
    content: Content,
    patient: Patient,
    now: datetime,
    raw: Mapping[str, Any] | None = None,
) -> Preview | None:
    """What the patient's next session reminder would say with this plan saved (or as things are, without one).

    The same computation as a save (the rules :func:`schedule_sessions` would
    keep, never a slot already sent) and the same renderer as the engine
    (rehab_bot/session_text.py); nothing is written. None when no session lies ahead.
    """
    if raw is None:
        followed = await programme_for(session, content, patient)
    else:
        catalogue = await library.catalogue(session, content)
        followed = plan.to_programme(
            plan.check(raw, catalogue, draft=True),
            catalogue,
            programme_id=patient.programme_id or plan.PLAN_LABEL,
            name={},
            maintenance=plan.maintenance_for(content, patient),
        )
    today = local_date(patient, now)
    _, wanted = planned_rules(followed, patient, today)
    existing = _by_index(await session_rules(session, patient))
    best: tuple[Occurrence, PlannedRule] | None = None
    for w in wanted:
        last = existing[w.index].last_local_date if w.index in existing else None
        rule = Rule(
            local_time=parse_hhmm(w.local_time),
            tz=patient.timezone,
            start_date=w.start,
            end_date=w.end,
            days_of_week=parse_days(w.days),
            every_n_days=w.every_n_days,
        )
        occurrence = next_from_now(rule, now, last)
        if occurrence is not None and (best is None or occurrence.due_at < best[0].due_at):
            best = (occurrence, w)
    if best is None:
        return None
    occurrence, w = best
    told = phase_in(followed, patient, today) if raw is not None else None
    told_id = told.id if told is not None else patient.phase_id
    phase = phase_in(followed, patient, occurrence.local_date)
    change = None
    if phase is not None and phase.id != told_id:
        change = PhaseChange(told_id, phase, False, [x.local_time for x in wanted])
    exercises = exercises_of(phase, w.index, content)
    lang = patient.language
    text = session_text.reminder_text(
        lang,
        slot=occurrence.slot,
        late=False,
        exercises=exercises,
        change=change,
        session_name=localize(phase.title, lang) if phase is not None else "",
    )
    count = len(exercises)
    cards = [session_text.exercise_card(lang, n, count, ex) for n, ex in enumerate(exercises, start=1)]
    return Preview(occurrence.local_date, occurrence.slot, occurrence.due_at, text, cards, lang)
