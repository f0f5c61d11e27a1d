"""Learned reminder times: when does this patient actually exercise, and should the reminder move there?

For each session of the day (its index), the bot looks at the local times at
which the patient logged the session as done or partly done (the Done press,
``ExerciseSession.answered_at``) on its last days:

* **Robust centre.** Of the last 7-14 completion times, the median of those
  within 45 minutes of the busiest hour: times off the habit are left out,
  so a late evening session after a hospital visit does not drag the
  reminder (:func:`robust_centre`).
* **Target.** The reminder should arrive a little before the patient starts:
  the centre minus ``LEAD_MINUTES`` (10), rounded to 5 minutes.
* **Several days.** A move is proposed only when the target computed on each
  of the last ``STAY_DAYS`` (3) days with a completion was more than
  ``THRESHOLD_MINUTES`` (30) from the reminder, on the same side.
* **Limits.** The new time never lies in the patient's quiet hours
  (:class:`schedule.QuietHours`) and keeps at least ``GAP_MINUTES`` (30) from
  the neighbouring sessions of the day, so a move never crosses another
  session; a target outside these limits is pulled back to the nearest
  allowed time, and dropped when that is within 15 minutes of the reminder.
* **Ask once.** The patient is asked once per reminder time and session
  ("You usually exercise around 10:40. Move this reminder to 10:30?"); a No is
  kept, and the question comes back only after the reminder time changed.
  A patient who set a window for automatic moves (:class:`TimingWindow`) gets
  moves inside that window without a question, and a notice.

A move changes ``Patient.session_times`` and re-plans the session rules
through :func:`programme.schedule_sessions`, so the therapist sees the new
time in the patient's schedule and the evening check-in still follows the
last session. Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import and_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import programme
from rehab_bot.content import Content
from rehab_bot.models import (
    Delivery,
    ExerciseSession,
    Kind,
    Patient,
    PatientStatus,
    ReminderRule,
    TimingProposal,
    TimingWindow,
)
from rehab_bot.schedule import (
    DAY_MINUTES,
    QuietHours,
    end_minutes,
    hhmm,
    local_date,
    local_to_utc,
    minutes_of_day,
    parse_hhmm,
    zone,
)

MIN_SAMPLES = 7
MAX_SAMPLES = 14
THRESHOLD_MINUTES = 30
STAY_DAYS = 3
LEAD_MINUTES = 10
ROUND_MINUTES = 5
GAP_MINUTES = 30
MIN_MOVE_MINUTES = 15
OUTLIER_FLOOR_MINUTES = 45
LOOKBACK_DAYS = 28


def robust_centre(minutes: Sequence[int]) -> int | None:
    """The usual time of the last MAX_SAMPLES completions, outliers ignored; None without enough of them.

    Mode-seeking, so that even a fortnight with half its days off the habit
    finds the habit: the hour holding the most completions (ties: the
    tightest), then the median of the completions within
    OUTLIER_FLOOR_MINUTES of that hour's median. None with fewer than
    MIN_SAMPLES completions, or when fewer than half of them agree (no habit).
    """
    recent = list(minutes)[-MAX_SAMPLES:]
    if len(recent) < MIN_SAMPLES:
        return None
    ordered = sorted(recent)
    best: list[int] = []
    for start in ordered:
        window = [m for m in ordered if start <= m <= start + 60]
        if len(window) > len(best) or (len(window) == len(best) and window[-1] - window[0] < best[-1] - best[0]):
            best = window
    first = statistics.median(best)
    kept = [m for m in recent if abs(m - first) <= OUTLIER_FLOOR_MINUTES]
    if 2 * len(kept) < len(recent):
        return None
    return round(statistics.median(kept))


def target_of(centre: int) -> int:
    """The reminder time for a centre: LEAD_MINUTES before it, rounded to ROUND_MINUTES."""
    value = ROUND_MINUTES * round((centre - LEAD_MINUTES) / ROUND_MINUTES)
    return min(max(value, 0), DAY_MINUTES - ROUND_MINUTES)


def fit(target: int, current: int, others: Sequence[int], quiet: QuietHours | None) -> int | None:
    """The allowed time nearest to target on the way back to current, or None if that is no real move.

    Allowed: outside quiet hours and at least GAP_MINUTES from every other
    session, and on the same side of each of them as the current time (never
    across another session).
    """
    below = [o for o in others if o < current]
    above = [o for o in others if o > current]
    low = max(below) + GAP_MINUTES if below else 0
    high = min(above) - GAP_MINUTES if above else DAY_MINUTES - ROUND_MINUTES
    step = ROUND_MINUTES if target < current else -ROUND_MINUTES
    value = target
    while (value - current) * -step > 0:
        inside_quiet = quiet is not None and quiet.contains(time(value // 60, value % 60))
        if low <= value <= high and not inside_quiet:
            break
        value += step
    if abs(value - current) < MIN_MOVE_MINUTES:
        return None
    return value


@dataclass(frozen=True)
class Decision:
    """Move the reminder from `current` to `to`: the patient usually exercises at `usual`."""

    current: int
    usual: int
    to: int


def decide(
    completions: Sequence[int], current: int, others: Sequence[int], quiet: QuietHours | None
) -> Decision | None:
    """Whether the reminder at `current` should move, from completion times oldest first (minutes of day)."""
    if len(completions) < MIN_SAMPLES + STAY_DAYS - 1:
        return None
    sides: set[bool] = set()
    centre = None
    for end in range(len(completions) - STAY_DAYS + 1, len(completions) + 1):
        centre = robust_centre(completions[:end])
        if centre is None or abs(target_of(centre) - current) <= THRESHOLD_MINUTES:
            return None
        sides.add(target_of(centre) > current)
    if centre is None or len(sides) != 1:
        return None
    to = fit(target_of(centre), current, others, quiet)
    return None if to is None else Decision(current, centre, to)


# --- the database side --------------------------------------------------------------------


class Status(enum.StrEnum):
    ASKED = "asked"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    AUTO = "auto"
    STALE = "stale"


@dataclass(frozen=True)
class Outcome:
    """What :func:`consider` did: asked (a question to send) or moved (a notice to send)."""

    proposal: TimingProposal
    moved: bool


async def _rules_by_index(session: AsyncSession, patient: Patient) -> dict[int, ReminderRule]:
    rules = await programme.session_rules(session, patient)
    return {programme.session_index(r): r for r in rules}


def _other_sessions(patient: Patient, rules: dict[int, ReminderRule], index: int) -> list[int]:
    """The other sessions of the day (minutes of day) a move must keep clear of and never cross.

    Every session time the patient keeps (``Patient.session_times``), not only the reminded ones:
    a tapered patient's sessions left out of the reminders come back when tapering ends, in order.
    """
    times = {minutes_of_day(r.local_time) for i, r in rules.items() if i != index}
    times.update(minutes_of_day(t) for i, t in enumerate(programme.parse_times(patient.session_times)) if i != index)
    return sorted(times)


async def completions(session: AsyncSession, patient: Patient, index: int, now: datetime) -> list[int]:
    """Local completion times (minutes of day) of the index-th session, oldest first, at most MAX_SAMPLES."""
    assert patient.id is not None
    rules = (
        await session.exec(
            select(ReminderRule).where(
                col(ReminderRule.patient_id) == patient.id,
                col(ReminderRule.kind) == Kind.SESSION.value,
                col(ReminderRule.once).is_(False),
            )
        )
    ).all()
    rule_ids = [r.id for r in rules if programme.session_index(r) == index]
    if not rule_ids:
        return []
    since = local_date(patient, now) - timedelta(days=LOOKBACK_DAYS)
    rows = (
        await session.exec(
            select(
                col(ExerciseSession.local_date),
                col(ExerciseSession.answered_at),
                col(Delivery.slot),
                col(Delivery.due_at),
            )
            .join(
                Delivery,
                and_(
                    col(Delivery.patient_id) == col(ExerciseSession.patient_id),
                    col(Delivery.local_date) == col(ExerciseSession.local_date),
                    col(Delivery.slot) == col(ExerciseSession.slot),
                ),
            )
            .where(
                col(ExerciseSession.patient_id) == patient.id,
                col(Delivery.rule_id).in_(rule_ids),
                col(ExerciseSession.status).in_(["done", "partly"]),
                col(ExerciseSession.answered_at).is_not(None),
                col(ExerciseSession.local_date) >= since,
            )
            .order_by(col(ExerciseSession.local_date).desc())
            .limit(MAX_SAMPLES)
        )
    ).all()
    tz = zone(patient.timezone)
    out: list[tuple[date, int]] = []
    for day, answered, slot, due_at in rows:
        assert answered is not None
        local = _wall_clock(answered, day, slot, due_at, tz)
        if local.date() == day:  # a session logged after midnight says little about the time of day
            out.append((day, local.hour * 60 + local.minute))
    return [m for _, m in sorted(out)]


def _wall_clock(at: datetime, day: date, slot: str, due_at: datetime, tz: ZoneInfo) -> datetime:
    """The patient's wall-clock time at `at`, in the zone they were in when that session was reminded.

    The reminder's own slot and instant say which offset the patient lived by then: after a change
    of timezone, a session done at 08:20 in Berlin stays 08:20, not 02:20 New York time.
    """
    due = due_at if due_at.tzinfo is not None else due_at.replace(tzinfo=UTC)
    if local_to_utc(day, parse_hhmm(slot), tz.key) == due:
        return at.astimezone(tz)  # the zone it was reminded in (DST included)
    offset = datetime.combine(day, parse_hhmm(slot)) - due.astimezone(UTC).replace(tzinfo=None)
    if abs(offset) >= timedelta(hours=24):  # not an offset any zone has: read it in today's zone
        return at.astimezone(tz)
    return at.astimezone(timezone(offset))


async def index_of(session: AsyncSession, es: ExerciseSession) -> int | None:
    """Which session of the day a session row is: the index of the recurring rule that first reminded it.

    Read from the delivery of that rule on the session's date and slot, so a
    snoozed or nudged session (whose live message came from a one-off rule)
    still counts for its own reminder.
    """
    found = await session.exec(
        select(ReminderRule)
        .join(Delivery, col(Delivery.rule_id) == col(ReminderRule.id))
        .where(
            col(Delivery.patient_id) == es.patient_id,
            col(Delivery.local_date) == es.local_date,
            col(Delivery.slot) == es.slot,
            col(ReminderRule.kind) == Kind.SESSION.value,
            col(ReminderRule.once).is_(False),
        )
    )
    rule = found.first()
    return programme.session_index(rule) if rule is not None else None


async def window_of(session: AsyncSession, patient_id: int) -> TimingWindow | None:
    """The patient's window for automatic moves, if they set one."""
    return await session.get(TimingWindow, patient_id)


def in_window(window: TimingWindow, minutes: int) -> bool:
    """True when a local time (minutes of day) is inside the window, its ends included; an end of 00:00
    (typed "24:00") is the end of the day (schedule.end_minutes)."""
    return minutes_of_day(window.start) <= minutes <= end_minutes(window.end)


async def set_window(session: AsyncSession, patient: Patient, start: str, end: str, now: datetime) -> None:
    """Allow automatic moves between two local times (start before end; an end of 00:00, typed "24:00",
    is midnight at the end of the day); the caller commits."""
    assert patient.id is not None
    if minutes_of_day(start) >= end_minutes(end):
        raise ValueError("the window must start before it ends")
    row = await session.get(TimingWindow, patient.id)
    if row is None:
        row = TimingWindow(patient_id=patient.id, start=start, end=end, updated_at=now)
    else:
        row.start, row.end, row.updated_at = start, end, now
    session.add(row)


async def clear_window(session: AsyncSession, patient: Patient) -> bool:
    """Stop automatic moves; True if there was a window."""
    row = await session.get(TimingWindow, patient.id)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


async def consider(
    session: AsyncSession, patient: Patient, index: int, content: Content, now: datetime, quiet: QuietHours | None
) -> Outcome | None:
    """After a logged session: ask about a move, or make it within the patient's window; the caller commits."""
    assert patient.id is not None
    if patient.status != PatientStatus.ACTIVE.value:
        return None
    rules = await _rules_by_index(session, patient)
    rule = rules.get(index)
    if rule is None:
        return None
    current = minutes_of_day(rule.local_time)
    asked = await session.exec(
        select(TimingProposal.id).where(
            col(TimingProposal.patient_id) == patient.id,
            col(TimingProposal.session_index) == index,
            col(TimingProposal.from_time) == rule.local_time,
        )
    )
    if asked.first() is not None:
        return None  # asked once about this reminder time
    others = _other_sessions(patient, rules, index)
    decision = decide(await completions(session, patient, index, now), current, others, quiet)
    if decision is None:
        return None
    proposal = TimingProposal(
        patient_id=patient.id,
        session_index=index,
        from_time=rule.local_time,
        to_time=hhmm(decision.to),
        usual_time=hhmm(decision.usual),
        status=Status.ASKED.value,
        created_at=now,
    )
    window = await window_of(session, patient.id)
    auto = window is not None and in_window(window, decision.to)
    if auto:
        await move(session, patient, index, proposal.to_time, content, now)
        proposal.status, proposal.answered_at = Status.AUTO.value, now
    session.add(proposal)
    await session.flush()
    return Outcome(proposal, auto)


async def set_question_message(session: AsyncSession, proposal_id: int, message_id: int) -> None:
    """The question about this proposal is on this message (its buttons are the live ones)."""
    proposal = await session.get(TimingProposal, proposal_id)
    if proposal is not None:
        proposal.message_id = message_id
        session.add(proposal)


async def move(
    session: AsyncSession, patient: Patient, index: int, to_time: str, content: Content, now: datetime
) -> None:
    """Set the index-th session time and re-plan the patient's rules (the evening check-in follows)."""
    times = programme.parse_times(patient.session_times)
    if index >= len(times):
        return
    times[index] = to_time
    patient.session_times = ",".join(times)
    session.add(patient)
    await programme.schedule_sessions(session, patient, content, now)


async def answer(
    session: AsyncSession,
    patient: Patient,
    proposal_id: int,
    accept: bool,
    content: Content,
    now: datetime,
    quiet: QuietHours | None,
) -> TimingProposal | None:
    """The patient's Yes or No; None when the question is not theirs or no longer open. The caller commits.

    A Yes is checked again: the reminder must still be at the time asked about,
    and the new time still allowed (quiet hours, other sessions); otherwise the
    question is recorded as stale and nothing moves.
    """
    proposal = await session.get(TimingProposal, proposal_id)
    if proposal is None or proposal.patient_id != patient.id or proposal.status != Status.ASKED:
        return None
    proposal.answered_at = now
    if not accept:
        proposal.status = Status.DECLINED.value
        session.add(proposal)
        return proposal
    rules = await _rules_by_index(session, patient)
    rule = rules.get(proposal.session_index)
    others = _other_sessions(patient, rules, proposal.session_index)
    to = minutes_of_day(proposal.to_time)
    still = (
        rule is not None
        and rule.local_time == proposal.from_time
        and patient.status == PatientStatus.ACTIVE.value
        and fit(to, minutes_of_day(rule.local_time), others, quiet) == to
    )
    if not still:
        proposal.status = Status.STALE.value
        session.add(proposal)
        return proposal
    await move(session, patient, proposal.session_index, proposal.to_time, content, now)
    proposal.status = Status.ACCEPTED.value
    session.add(proposal)
    return proposal
