"""Check-ins: questionnaires as content, scoring, cadence, red-flag rules (core, no telegram)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.content import Content
from rehab_bot.models import Patient


async def schedule_for(session: AsyncSession, patient: Patient, content: Content, now: datetime) -> None:
    """Create the patient's check-in reminder rules (called when enrolment completes)."""
