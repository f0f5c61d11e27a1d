"""Alert accuracy: after acknowledging an alert, staff may mark it "needed action" or "no action needed".

One tap, optional, once per alert: the first verdict stands (a second press
says what was recorded). Only staff who may change the patient, or who
acknowledged it in their place (rehab_bot.alert.stands_in: a clinic without an
admin), can give it, and only for an acknowledged alert. The
outcomes report counts the share of reviewed alerts that needed action
(rehab_bot.outcomes_report). Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import audit
from rehab_bot.access import Access, StaffError, require
from rehab_bot.alert import stands_in
from rehab_bot.db import insert_ignore
from rehab_bot.models import Alert, AlertReview, Patient, Staff, table_of

REVIEWS = table_of(AlertReview)


@dataclass(frozen=True)
class Reviewed:
    needed_action: bool
    now: bool  # False: an earlier verdict stands


async def review(session: AsyncSession, staff: Staff, alert_id: int, needed_action: bool, now: datetime) -> Reviewed:
    """Record the verdict on an acknowledged alert once; the caller commits."""
    alert = await session.get(Alert, alert_id)
    patient = await session.get(Patient, alert.patient_id) if alert is not None else None
    if alert is None or patient is None:
        raise StaffError("This alert no longer exists.")
    # Whoever acknowledged it was offered the verdict and knows the answer: a colleague who stood in
    # for the responsible therapist (no admin, see alert.acknowledge) is refused neither.
    if not (staff.active and (alert.acknowledged_by == staff.id or await stands_in(session, alert, patient))):
        require(staff, patient, Access.WRITE)
    if alert.acknowledged_at is None:
        raise StaffError("Acknowledge the alert first.")
    conn = await session.connection()
    result = await conn.execute(
        insert_ignore(conn.dialect.name, REVIEWS, keys=["alert_id"]),
        [{"alert_id": alert_id, "needed_action": needed_action, "staff_id": staff.id, "reviewed_at": now}],
    )
    if not result.rowcount:
        earlier = await session.get(AlertReview, alert_id, populate_existing=True)
        assert earlier is not None
        return Reviewed(earlier.needed_action, now=False)
    audit.record(
        session,
        action=REVIEW,
        now=now,
        staff=staff,
        patient_id=patient.id,
        detail=f"alert={alert_id} needed_action={'yes' if needed_action else 'no'}",
    )
    return Reviewed(needed_action, now=True)


REVIEW = "alert.review"
