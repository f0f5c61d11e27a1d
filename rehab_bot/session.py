"""Exercise sessions: outcomes, nudges, missed sessions, streaks and adherence (core, no telegram)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.models import Patient


@dataclass(frozen=True)
class SessionStats:
    """What /progress, motivation and the therapist's list show about sessions."""

    streak_days: int = 0  # consecutive local days, up to today, with every session done or partly
    adherence_7d: float | None = None  # share of planned sessions done/partly in the last 7 local days
    adherence_this_week: float | None = None  # Monday to today
    adherence_last_week: float | None = None
    done_total: int = 0
    last_done: date | None = None
    days_missed_in_a_row: int = 0


async def stats(session: AsyncSession, patient: Patient, now: datetime) -> SessionStats:
    """Session statistics for a patient at now (in the patient's local dates)."""
    return SessionStats()
