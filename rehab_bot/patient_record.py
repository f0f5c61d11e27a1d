"""A patient's record over time, as the web app's patient page shows it.

- :func:`calendar`: each local day since the patient enrolled (at most the last 12 weeks) in one
  word (done, partly, skipped, missed, open, none), from the patient's exercise sessions;
- :func:`series`: the patient's answers to one kind of item (pain, mood) over time, for charts.

Plain Python over SQLModel: no telegram or web imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.models import Answer, ExerciseSession, Patient
from rehab_bot.schedule import local_date
from rehab_bot.session import Status

# A day's sessions in one word, and the order the legend shows them in.
DAY_KINDS = ("done", "partly", "skipped", "missed", "open", "none")


def day_kind(statuses: Sequence[str]) -> str:
    """done: every session done; partly: some done or partly; skipped: all skipped; missed: none done and
    at least one missed; open: sessions not answered yet; none: no sessions that day."""
    if not statuses:
        return "none"
    done = [s for s in statuses if s in (Status.DONE, Status.PARTLY)]
    if done:
        return "done" if all(s == Status.DONE for s in statuses) else "partly"
    if any(s == Status.MISSED for s in statuses):
        return "missed"
    if all(s == Status.SKIPPED for s in statuses):
        return "skipped"
    return "open"


@dataclass(frozen=True)
class Day:
    day: date
    kind: str
    sessions: int
    future: bool = False
    before: bool = False  # before the patient enrolled: not a day they could have exercised with the bot


async def calendar(session: AsyncSession, patient: Patient, now: datetime, *, weeks: int = 12) -> list[list[Day]]:
    """Whole weeks (Monday first) from the week the patient enrolled up to the patient's today, oldest
    first, at most ``weeks`` of them; days after today are future, days before enrolment are before.

    Enrolment is the consent (the record's creation before it); a session recorded earlier than that
    (the consent given again, to a new text) moves the start back to it, so no record is hidden.
    """
    today = local_date(patient, now)
    this_monday = today - timedelta(days=today.weekday())
    earliest = this_monday - timedelta(days=7 * (weeks - 1))
    rows: Any = (
        await session.exec(
            select(col(ExerciseSession.local_date), col(ExerciseSession.status)).where(
                col(ExerciseSession.patient_id) == patient.id, col(ExerciseSession.local_date) >= earliest
            )
        )
    ).all()
    by_day: dict[date, list[str]] = {}
    for day, status in rows:
        by_day.setdefault(day, []).append(status)
    start = min([local_date(patient, patient.consent_at or patient.created_at), *by_day, today])
    first = min(max(earliest, start - timedelta(days=start.weekday())), this_monday)
    result = []
    for week in range((this_monday - first).days // 7 + 1):
        monday = first + timedelta(days=7 * week)
        days = [monday + timedelta(days=i) for i in range(7)]
        result.append(
            [
                Day(d, day_kind(by_day.get(d, [])), len(by_day.get(d, [])), future=d > today, before=d < start)
                for d in days
            ]
        )
    return result


def since(weeks: list[list[Day]], *, most: int = 12) -> date | None:
    """The day the calendar starts from, when that is the patient's enrolment; None when it shows
    the last ``most`` whole weeks (the patient enrolled before them)."""
    if len(weeks) >= most and not weeks[0][0].before:
        return None
    return next(d.day for week in weeks for d in week if not d.before)


@dataclass(frozen=True)
class Point:
    at: datetime
    value: int


async def series(
    session: AsyncSession, patient: Patient, items: Sequence[str], *, since: datetime | None = None
) -> list[Point]:
    """The patient's numeric answers to these items, oldest first."""
    query = select(col(Answer.answered_at), col(Answer.value)).where(
        col(Answer.patient_id) == patient.id, col(Answer.item_id).in_(list(items)), col(Answer.value).is_not(None)
    )
    if since is not None:
        query = query.where(col(Answer.answered_at) >= since)
    rows: Any = (await session.exec(query.order_by(col(Answer.answered_at), col(Answer.id)))).all()
    return [Point(at, value) for at, value in rows if value is not None]
