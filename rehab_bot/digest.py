"""The weekly digest: each staff member's patients at risk, once a week in their own zone.

Due from [staff] digest_time on digest_weekday in the staff member's zone,
until that local day ends; one per staff member per ISO week (the delivery
key ``d<staff>:<year>-W<week>``), queued as a message to staff
(staff.staff_message) and sent by the reminder engine. Why a patient is at
risk is caseload.risk_for.

Its text is made when it is queued. A digest still queued when a patient's
data is erased (held back by Telegram, say) is taken back (drop_queued): the
next clinic tick queues it again, made from the data as it is then, while it
is still due, so an erased patient is never named in one sent afterwards.

Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.caseload import Risk, lesson_titles, risk_for
from rehab_bot.config import Config, StaffConfig
from rehab_bot.content import Content
from rehab_bot.formats import number, percent
from rehab_bot.i18n import translator
from rehab_bot.models import IN_CARE, Delivery, DeliveryStatus, Kind, Patient, Staff
from rehab_bot.schedule import ScheduleError, local_to_utc, zone
from rehab_bot.staff import queue_staff_messages, staff_members, staff_message

log = logging.getLogger(__name__)

MAX_DIGEST_LINES = 40


def digest_text(staff: Staff, week_of: date, risks: list[Risk], total: int, settings: StaffConfig) -> str:
    """The digest message for one staff member, in their language (risks' reasons already in it, risk_for)."""
    lang = staff.language
    _ = translator(lang)
    week = week_of.isoformat()
    if not risks:
        adherence = (
            percent(settings.digest_low_adherence, lang) if lang != "en" else f"{settings.digest_low_adherence:.0%}"
        )
        points = number(settings.digest_pain_rise, lang) if lang != "en" else f"{settings.digest_pain_rise:g}"
        return _(
            "📋 Weekly digest for the week of {week}: no patients at risk ({total} in your care: adherence at least "
            "{adherence}, no rise in pain of {points} points or more, everyone answering).",
            week=week,
            total=total,
            adherence=adherence,
            points=points,
        )
    lines = [
        _(
            "📋 Weekly digest for the week of {week}: {n} of the {total} patients in your care at risk.",
            week=week,
            n=len(risks),
            total=total,
        )
    ]
    for risk in risks[:MAX_DIGEST_LINES]:
        day = " " + _("(day {n})", n=risk.day) if risk.day is not None else ""
        lines.append(f"• {risk.alias}{day}: " + "; ".join(risk.reasons))
    if len(risks) > MAX_DIGEST_LINES:
        lines.append(_("… and {n} more.", n=len(risks) - MAX_DIGEST_LINES))
    lines.append(_("Open /patients or /patient ALIAS for details."))
    return "\n".join(lines)


def digest_due(staff: Staff, now: datetime, settings: StaffConfig) -> date | None:
    """The local digest date if staff's digest is due at now, else None.

    Due from digest_time on the digest weekday, in the staff member's own zone,
    until that local day ends. The instant comes from schedule.local_to_utc,
    so a digest_time inside a DST gap fires at the first valid minute after it.
    """
    try:
        tz = zone(staff.timezone)
    except ScheduleError:
        log.warning("staff %d has an unknown timezone; digest skipped", staff.id)
        return None
    today = now.astimezone(tz).date()
    if today.weekday() != settings.digest_weekday_index:
        return None
    if now < local_to_utc(today, settings.digest_time, staff.timezone):
        return None
    return today


_KEY = "d{staff}:{year}-W{week}"  # a digest's Delivery.key; below, with each field a LIKE wildcard
_EVERY_KEY = _KEY.format(staff="%", year="%", week="%")


def digest_key(staff: Staff, day: date) -> str:
    """One digest per staff member per ISO week."""
    year, week, _ = day.isocalendar()
    return _KEY.format(staff=staff.id, year=year, week=f"{week:02d}")


async def drop_queued(session: AsyncSession) -> None:
    """Take back every digest not yet sent (a patient's data was erased); queue_digests makes them again."""
    await session.exec(
        delete(Delivery).where(
            col(Delivery.kind) == Kind.ALERT.value,
            col(Delivery.key).like(_EVERY_KEY),
            col(Delivery.staff_id).is_not(None),
            col(Delivery.status) == DeliveryStatus.QUEUED.value,
        )
    )


async def queue_digests(session: AsyncSession, now: datetime, config: Config, content: Content | None = None) -> int:
    """Queue the weekly digest for every staff member whose digest is due; returns how many."""
    queued = 0
    for member in await staff_members(session):
        assert member.id is not None
        day = digest_due(member, now, config.staff)
        if day is None:
            continue
        key = digest_key(member, day)
        exists = (await session.exec(select(Delivery.id).where(col(Delivery.key) == key))).first()
        if exists is not None:
            continue
        patients = (
            await session.exec(
                select(Patient)
                .where(col(Patient.therapist_id) == member.id, col(Patient.status).in_(IN_CARE))
                .order_by(func.upper(col(Patient.alias)))
            )
        ).all()
        if not patients:
            continue
        titles = lesson_titles(content, member.language) if content is not None else None
        risks = [
            r
            for p in patients
            if (r := await risk_for(session, p, now, config.staff, member.language, titles)) is not None
        ]
        body = digest_text(member, day, risks, len(patients), config.staff)
        queued += await queue_staff_messages(
            session, [staff_message(key, member.telegram_id, member.id, body, now, local_date=day)]
        )
    return queued
