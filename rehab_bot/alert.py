"""Alerts for the clinic: red flags, unreachable patients, missed check-ins.

An alert is a row, and telling the clinic about it is a delivery of kind
``alert`` (priority 1, never deferred by quiet hours) to the patient's
therapist and to the clinic's alert chat, through the same engine as every
reminder. A dedupe key keeps one open alert per cause, so a patient who has
blocked the bot produces one alert, not one per reminder.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.config import ClinicConfig
from rehab_bot.models import PRIORITY, Alert, Delivery, DeliveryStatus, Kind, Patient, Staff

TITLES = {
    "unreachable": "Patient unreachable: Telegram refuses messages ({detail}). Reminders are paused.",
    # Check-ins and red flags (rehab_bot/redflag.py); detail names the answers.
    "red_flag": "Red flag in a check-in.\n{detail}",
    "checkin": "Check-in answers need attention.\n{detail}",
    "crisis": "Possible crisis.\n{detail}",
    "inactive": "No response.\n{detail}",
    "data_deleted": "The patient deleted their data with /delete. All messages to them have stopped.",
}


def alert_text(alert: Alert, patient: Patient) -> str:
    """The clinician-facing text: alias, what happened, when (UTC)."""
    template = TITLES.get(alert.kind, "{kind}: {detail}")
    what = template.format(kind=alert.kind, detail=alert.detail)
    when = alert.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"⚠️ {alert.severity.upper()} alert for {patient.alias}\n{what}\nRaised {when}. Open /alerts to acknowledge."


async def raise_alert(
    session: AsyncSession,
    patient: Patient,
    *,
    kind: str,
    severity: str,
    detail: str,
    now: datetime,
    clinic: ClinicConfig,
    key: str | None = None,
) -> Alert | None:
    """Record an alert and queue its messages; None if an open one has this key."""
    assert patient.id is not None
    if key is not None:
        existing = (await session.exec(select(Alert).where(Alert.key == key))).first()
        if existing is not None:
            return None
    alert = Alert(key=key, patient_id=patient.id, severity=severity, kind=kind, detail=detail, created_at=now)
    session.add(alert)
    await session.flush()
    assert alert.id is not None
    text = alert_text(alert, patient)
    recipients: list[tuple[int | None, int]] = []
    if patient.therapist_id is not None:
        staff = await session.get(Staff, patient.therapist_id)
        if staff is not None and staff.active:
            recipients.append((staff.id, staff.telegram_id))
    if clinic.alert_chat_id is not None:
        recipients.append((None, clinic.alert_chat_id))
    for staff_id, chat_id in recipients:
        session.add(
            Delivery(
                key=f"a{alert.id}:{chat_id}",
                kind=Kind.ALERT.value,
                priority=PRIORITY[Kind.ALERT],
                patient_id=patient.id,
                staff_id=staff_id,
                chat_id=chat_id,
                due_at=now,
                not_before=now,
                status=DeliveryStatus.QUEUED.value,
                body=text,
                created_at=now,
            )
        )
    return alert
