"""Alert accuracy: after acknowledging an alert, staff may mark it "needed action" or "no action needed".

One tap, optional, once per alert: the first verdict stands (a second press
says what was recorded). Only staff who may change the patient, or who
acknowledged it in their place (rehab_bot.alert.stands_in: a clinic without an
admin), can give it, and only for an acknowledged alert. The
outcomes report counts the share of reviewed alerts that needed action
(rehab_bot.outcomes_report). Plain Python over SQLModel: no telegram imports.

Two front ends call :func:`review`: the chat (rehab_bot.bot.staff.alerts) and the staff web app
(rehab_bot.web.alerts), which lists what there is to review with :func:`acknowledged_of` (the patient
page) and :func:`awaiting` (the alerts page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import audit
from rehab_bot.access import Access, StaffError, require
from rehab_bot.alert import stands_in
from rehab_bot.db import insert_ignore
from rehab_bot.i18n import N_
from rehab_bot.models import Alert, AlertReview, Patient, Staff, table_of

REVIEWS = table_of(AlertReview)


@dataclass(frozen=True)
class Reviewed:
    needed_action: bool
    now: bool  # False: an earlier verdict stands
    by: str = ""  # who gave the verdict that stands ("" when that staff record is gone)
    at: datetime | None = None  # when


@dataclass(frozen=True)
class Line:
    """An acknowledged alert as the web app shows it: who acknowledged it, and its verdict if any."""

    alert: Alert
    patient: Patient
    acknowledged_by: str
    verdict: Reviewed | None  # None: not reviewed yet


# The alerts page offers the verdict on what the staff member acknowledged this recently.
AWAITING_WINDOW = timedelta(days=7)
NOT_ACKNOWLEDGED = N_("Acknowledge the alert first.")


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
        raise StaffError(NOT_ACKNOWLEDGED)
    conn = await session.connection()
    result = await conn.execute(
        insert_ignore(conn.dialect.name, REVIEWS, keys=["alert_id"]),
        [{"alert_id": alert_id, "needed_action": needed_action, "staff_id": staff.id, "reviewed_at": now}],
    )
    if not result.rowcount:
        earlier = await session.get(AlertReview, alert_id, populate_existing=True)
        assert earlier is not None
        return _verdict(earlier, await _names(session, {earlier.staff_id}))
    audit.record(
        session,
        action=REVIEW,
        now=now,
        staff=staff,
        patient_id=patient.id,
        detail=f"alert={alert_id} needed_action={'yes' if needed_action else 'no'}",
    )
    return Reviewed(needed_action, now=True, by=staff.name, at=now)


async def _names(session: AsyncSession, ids: set[int | None]) -> dict[int | None, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await session.exec(select(Staff.id, Staff.name).where(col(Staff.id).in_(wanted)))
    return {staff_id: name for staff_id, name in rows.all()}


def _verdict(row: AlertReview, names: dict[int | None, str]) -> Reviewed:
    """A stored verdict, which stands, with its reviewer's name."""
    return Reviewed(row.needed_action, now=False, by=names.get(row.staff_id, ""), at=row.reviewed_at)


async def _lines(session: AsyncSession, rows: list[tuple[Alert, Patient, AlertReview | None]]) -> list[Line]:
    names = await _names(session, {a.acknowledged_by for a, _, _ in rows} | {r.staff_id for _, _, r in rows if r})
    return [
        Line(
            alert,
            patient,
            names.get(alert.acknowledged_by, ""),
            _verdict(r, names) if r else None,
        )
        for alert, patient, r in rows
    ]


def _acknowledged() -> Any:
    return (
        select(Alert, Patient, AlertReview)
        .join(Patient, col(Patient.id) == col(Alert.patient_id))
        .outerjoin(AlertReview, col(AlertReview.alert_id) == col(Alert.id))
        .where(col(Alert.acknowledged_at).is_not(None))
        .order_by(col(Alert.acknowledged_at).desc(), col(Alert.id).desc())
    )


async def acknowledged_of(session: AsyncSession, patient: Patient, *, limit: int = 5) -> list[Line]:
    """The patient's most recently acknowledged alerts, newest first, each with its verdict if it has one."""
    query = _acknowledged().where(col(Alert.patient_id) == patient.id).limit(limit)
    return await _lines(session, list((await session.exec(query)).all()))


async def awaiting(session: AsyncSession, staff: Staff, now: datetime, *, limit: int = 20) -> list[Line]:
    """Alerts this staff member acknowledged within AWAITING_WINDOW that have no verdict yet, newest first.

    Only their own acknowledgements: :func:`review` lets whoever acknowledged an alert give the verdict.
    """
    query = (
        _acknowledged()
        .where(
            col(Alert.acknowledged_by) == staff.id,
            col(Alert.acknowledged_at) >= now - AWAITING_WINDOW,
            col(AlertReview.alert_id).is_(None),
        )
        .limit(limit)
    )
    return await _lines(session, list((await session.exec(query)).all()))


REVIEW = "alert.review"
