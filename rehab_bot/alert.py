"""Alerts for the clinic: red flags, unreachable patients, missed check-ins.

An alert is a row, and telling the clinic about it is a delivery of kind
``alert`` (priority 1, never deferred by quiet hours), through the same engine
as every reminder. A dedupe key keeps one open alert per cause, so a patient
who has blocked the bot produces one alert, not one per reminder.

Routing (:func:`route`), so that no alert goes nowhere:

* the patient's responsible therapist (an active staff member), and the
  clinic's alert chat ([clinic] alert_chat_id) when there is one;
* without an active responsible therapist (none assigned, or removed): every
  active admin at once, and the alert chat; the message says why ("no
  responsible therapist");
* with no admin either: every active staff member;
* with nobody at all: the alert is still recorded and the patient still gets
  their red-flag reply, and the log says at ERROR that it reached nobody.

Every alert message carries an Acknowledge button (callback ``st:aa:<alert
id>``, see rehab_bot/bot/staff.py); times are shown in each reader's own
timezone with its abbreviation (the alert chat: the clinic's).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.config import ClinicConfig
from rehab_bot.models import PRIORITY, Alert, Delivery, DeliveryStatus, Kind, Patient, Role, Staff
from rehab_bot.schedule import zone

log = logging.getLogger(__name__)

TITLES = {
    "unreachable": "Patient unreachable: Telegram refuses messages ({detail}). Reminders are paused.",
    # Check-ins and red flags (rehab_bot/redflag.py); detail names the answers.
    "red_flag": "Red flag in a check-in.\n{detail}",
    "checkin": "Check-in answers need attention.\n{detail}",
    "crisis": "Possible crisis.\n{detail}",
    "inactive": "No response.\n{detail}",
    "data_deleted": "The patient deleted their data with /delete. All messages to them have stopped.",
}
NO_THERAPIST = "no responsible therapist"
THERAPIST_REMOVED = "no responsible therapist (theirs was removed)"
NO_ADMIN = "no admin either, so every staff member gets it"
NOBODY = "no staff member and no alert chat"


def local_time_text(when: datetime, tz: str) -> str:
    """An instant as the reader's wall-clock time with the zone's abbreviation: "2026-06-10 07:21 CEST"."""
    local = when.astimezone(zone(tz))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or tz}"


def shorten(text: str, limit: int) -> str:
    """At most limit characters, cut at a word boundary with "…" (never mid-word)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-\n") + "…"


def ack_payload(alert_id: int) -> str:
    """The delivery payload that puts an Acknowledge button under a staff message."""
    return json.dumps({"ack": alert_id})


def ack_alert_id(payload: str) -> int | None:
    """The alert a staff message's Acknowledge button is for, if any."""
    try:
        value = json.loads(payload).get("ack") if payload else None
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Recipient:
    """Who an alert goes to: a staff member's private chat, or the clinic's alert chat (staff_id None)."""

    staff_id: int | None
    chat_id: int
    timezone: str


@dataclass(frozen=True)
class Route:
    """An alert's recipients, and why they are not (only) the responsible therapist."""

    recipients: tuple[Recipient, ...]
    reason: str = ""  # "" when the responsible therapist gets it

    @property
    def reaches_someone(self) -> bool:
        return bool(self.recipients)


async def responsible_therapist(session: AsyncSession, patient: Patient) -> Staff | None:
    """The patient's responsible staff member, if assigned and still active."""
    if patient.therapist_id is None:
        return None
    staff = await session.get(Staff, patient.therapist_id)
    return staff if staff is not None and staff.active else None


async def _active(session: AsyncSession, *, admins_only: bool) -> list[Staff]:
    query = select(Staff).where(col(Staff.active).is_(True)).order_by(col(Staff.id))
    if admins_only:
        query = query.where(col(Staff.role) == Role.ADMIN.value)
    return list((await session.exec(query)).all())


async def route(session: AsyncSession, patient: Patient, clinic: ClinicConfig) -> Route:
    """Who an alert about this patient goes to (see the module docstring)."""
    people: list[Staff] = []
    reason = ""
    therapist = await responsible_therapist(session, patient)
    if therapist is not None:
        people.append(therapist)
    else:
        reason = NO_THERAPIST if patient.therapist_id is None else THERAPIST_REMOVED
        people = await _active(session, admins_only=True)
        if not people:
            people = await _active(session, admins_only=False)
            if people:
                reason = f"{reason}; {NO_ADMIN}"
    recipients = [Recipient(s.id, s.telegram_id, s.timezone) for s in people]
    if clinic.alert_chat_id is not None:
        recipients.append(Recipient(None, clinic.alert_chat_id, clinic.timezone))
    unique = {r.chat_id: r for r in reversed(recipients)}  # one message per chat; a person before the group
    ordered = tuple(r for r in recipients if unique.get(r.chat_id) is r)
    return Route(ordered, reason if ordered else NOBODY)


@dataclass(frozen=True)
class Reach:
    """Whether alerts can reach anybody at all (start-up, /healthz, check-config)."""

    staff: int  # active staff members
    admins: int  # of whom admins
    alert_chat: bool

    @property
    def anyone(self) -> bool:
        return self.staff > 0 or self.alert_chat


async def reach(session: AsyncSession, clinic: ClinicConfig) -> Reach:
    """Count who alerts can go to."""
    rows = (
        await session.exec(select(Staff.role, func.count()).where(col(Staff.active).is_(True)).group_by(Staff.role))
    ).all()
    counts = {role: int(n) for role, n in rows}
    return Reach(sum(counts.values()), counts.get(Role.ADMIN.value, 0), clinic.alert_chat_id is not None)


def alert_text(alert: Alert, patient: Patient, tz: str = "UTC", reason: str = "") -> str:
    """The clinician-facing text: alias, why this reader gets it, what happened, when (reader's time)."""
    template = TITLES.get(alert.kind, "{kind}: {detail}")
    what = template.format(kind=alert.kind, detail=alert.detail)
    why = f"Why you get this: {reason}.\n" if reason else ""
    return (
        f"⚠️ {alert.severity.upper()} alert for {patient.alias}\n{why}{what}\n"
        f"Raised {local_time_text(alert.created_at, tz)}."
    )


def neutral_text(severity: str, alias: str) -> str:
    """A staff alert that names no symptom, for clinics that keep health data out of Telegram ([privacy])."""
    return f"⚠️ {severity.upper()} alert for {alias}. Open the dashboard to see it."


NEUTRAL_STAFF_MESSAGE = "There is a new message for you on the dashboard."


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
    routing = await route(session, patient, clinic)
    if not routing.reaches_someone:
        log.error(
            "alert %d (%s, %s) for patient %s reaches nobody: %s; add staff with `rehab-bot staff add`",
            alert.id,
            kind,
            severity,
            patient.id,
            NOBODY,
        )
    for recipient in routing.recipients:
        session.add(
            Delivery(
                key=f"a{alert.id}:{recipient.chat_id}",
                kind=Kind.ALERT.value,
                priority=PRIORITY[Kind.ALERT],
                patient_id=patient.id,
                staff_id=recipient.staff_id,
                chat_id=recipient.chat_id,
                due_at=now,
                not_before=now,
                status=DeliveryStatus.QUEUED.value,
                body=alert_text(alert, patient, recipient.timezone, routing.reason),
                payload=ack_payload(alert.id),
                created_at=now,
            )
        )
    return alert
