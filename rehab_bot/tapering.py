"""Tapering: a patient who has kept up their sessions for weeks stops getting nudges.

``[delivery] taper_after_weeks`` (0 = never) and ``taper_adherence`` (a
share): when, in each of the last ``taper_after_weeks`` whole weeks before
today (7-day blocks counted back from yesterday), the patient did at least
``taper_adherence`` of their resolved sessions (done or partly, of done,
partly, skipped and missed), the nudge after an unanswered reminder is no
longer sent. The reminders themselves go on, and the nudges come back as
soon as a week falls below the threshold. A week without any resolved
session (a pause) does not count as kept up.

Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.models import ExerciseSession, Patient, table_of
from rehab_bot.schedule import local_date

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
