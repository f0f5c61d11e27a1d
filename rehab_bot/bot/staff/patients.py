"""/patients and /patient: the caseload list and one patient's detail (rehab_bot.caseload renders here).

Callback data: ``st:pl:<m|a>:<page>`` (a page of the list), ``st:po:<patient id>`` (open one).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.ext import (
    ContextTypes,
)

from rehab_bot import access, alert_detail, audit, caseload, education, invite, report
from rehab_bot import alert as alert_core
from rehab_bot import miniapp as addresses
from rehab_bot.bot import miniapp
from rehab_bot.bot.services import svc
from rehab_bot.bot.staff.press import Press, clip, fmt, keyboard, patient_arg, staff_command
from rehab_bot.content import Content
from rehab_bot.models import Patient, PatientStatus, Role, Staff

log = logging.getLogger(__name__)


def row_text(row: caseload.PatientRow, *, health: bool = True) -> str:
    """Two lines per patient in the list; one without health figures in privacy mode (health=False)."""
    day = f"day {row.days_since_surgery}" if row.days_since_surgery is not None else "no surgery date"
    alerts = f" · ⚠️ {row.open_alerts} open alert{'s' if row.open_alerts != 1 else ''}" if row.open_alerts else ""
    if not health:
        return f"{row.alias} · {row.status}{alerts}"
    gaps = f"\n   📚 gap in understanding: {', '.join(row.lesson_gaps)}" if row.lesson_gaps else ""
    return (
        f"{row.alias} · {row.status} · {day}\n"
        f"   adherence 7d {fmt(row.adherence_7d, '{:.0%}')} · last pain {fmt(row.last_pain)} · "
        f"last mood {fmt(row.last_mood)}{alerts}{gaps}"
    )


def page_view(
    staff: Staff, page: caseload.PatientPage, *, health: bool = True
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The /patients message and its buttons (health=False: privacy mode, the figures are on the dashboard)."""
    if page.scope == "mine":
        head = f"Your patients: {page.total}"
        note = "Showing your own patients. /patients all shows everyone's (colleagues' patients read-only)."
    else:
        head = f"All patients: {page.total}"
        note = (
            "Showing every patient."
            if staff.role == Role.ADMIN.value
            else "Showing every patient; you can view colleagues' patients but not change them."
        )
    lines = [f"{head} — page {page.page + 1} of {page.pages}", note, ""]
    if not page.rows:
        lines.append("No patients yet. /invite adds one.")
    if not health:
        lines.insert(2, "Privacy mode: each patient's figures are on the dashboard.")
    lines.extend(row_text(row, health=health) for row in page.rows)
    scope = "m" if page.scope == "mine" else "a"
    nav = []
    if page.page > 0:
        nav.append(("◀", f"st:pl:{scope}:{page.page - 1}"))
    if page.page + 1 < page.pages:
        nav.append(("▶", f"st:pl:{scope}:{page.page + 1}"))
    toggle = ("All patients", "st:pl:a:0") if page.scope == "mine" else ("My patients", "st:pl:m:0")
    open_row = [(row.alias, f"st:po:{row.id}") for row in page.rows]
    return "\n".join(lines), keyboard([open_row[:3], open_row[3:], nav, [toggle]])


async def _patient_page(
    session: AsyncSession, context: ContextTypes.DEFAULT_TYPE, staff: Staff, scope: str, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    now = svc(context).clock.now()
    result = await caseload.patient_page(session, staff, now, scope=scope, page=page)
    audit.record(
        session,
        action=audit.VIEW_PATIENTS,
        now=now,
        staff=staff,
        detail=f"scope={result.scope} page={result.page + 1} shown={','.join(str(r.id) for r in result.rows)}",
    )
    await session.commit()
    return page_view(staff, result, health=svc(context).config.privacy.health_data_in_chat)


@staff_command()
async def patients_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """List the staff member's patients (or everyone's with `all`), a page at a time."""
    message = update.effective_message
    assert message is not None
    args = [a.lower() for a in (context.args or [])]
    if args and args[0] not in ("all", "mine"):
        await message.reply_text("Usage: /patients (your own) or /patients all (everyone's).")
        return
    scope = args[0] if args else caseload.default_scope(staff)
    text, markup = await _patient_page(session, context, staff, scope, 0)
    await message.reply_text(text, reply_markup=miniapp.with_open_button(markup, context))


async def press_page(press: Press) -> None:
    """◀ ▶ and the scope toggle on /patients."""
    scope = {"m": "mine", "a": "all"}[press.args[0]]
    text, markup = await _patient_page(press.session, press.context, press.staff, scope, press.int_arg(1))
    await press.answer()
    await press.edit(text, miniapp.with_open_button(markup, press.context))


def _when(staff: Staff, value: datetime) -> str:
    return alert_core.local_time_text(value, staff.timezone)[5:]  # MM-DD HH:MM


def lesson_lines(lessons: education.Summary | None) -> list[str]:
    """The recovery course in the patient detail: delivered, read, understood, gaps."""
    if lessons is None or not lessons.lines:
        return []
    lines = [
        f"Lessons: {lessons.delivered} delivered, {lessons.offered} offered as missed, {lessons.read} read, "
        f"{lessons.understood} of {lessons.questions} questions understood"
    ]
    if lessons.gaps:
        lines.append(f"⚠️ Gap in understanding (2+ wrong answers on safety lessons): {', '.join(lessons.gaps)}")
    if lessons.unanswered_safety:
        lines.append(f"Safety lessons unanswered: {', '.join(lessons.unanswered_safety)}")
    lines.extend(f"  {line}" for line in lessons.lines[-8:])
    return lines


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _slot(slot: caseload.ReminderSlot) -> str:
    """One reminder rule in the staff chat's words: "09:00", "09:00 (Mon, Fri)", "09:00 (every 7 days)"."""
    if slot.every_n_days is not None and slot.every_n_days > 1:
        return f"{slot.local_time} (every {slot.every_n_days} days)"
    if slot.days:
        return f"{slot.local_time} ({', '.join(_WEEKDAYS[d] for d in slot.days)})"
    return slot.local_time


def detail_text(staff: Staff, detail: caseload.PatientDetail, content: Content | None = None) -> str:
    """The /patient message."""
    p, row, stats = detail.patient, detail.row, detail.stats
    lines = [f"{p.alias} — {p.status}"]
    if detail.access == access.Access.READ:
        lines.append(f"Read-only: patient of {detail.therapist_name or 'no therapist'}.")
    day = f"day {row.days_since_surgery}" if row.days_since_surgery is not None else "no surgery date"
    surgery = f"{p.surgery_type} surgery {p.surgery_date.isoformat()}" if p.surgery_date else p.surgery_type
    lines.append(f"{surgery} ({day}) · therapist: {detail.therapist_name or '–'}")
    lines.append(f"Programme: {detail.programme_name or '–'} · session times: {', '.join(detail.session_times) or '–'}")
    if p.status == PatientStatus.PAUSED.value:
        lines.append(f"Paused until {p.paused_until.isoformat() if p.paused_until else 'resumed'}.")
    if detail.reminders:
        lines.append("Session reminders: " + "; ".join(_slot(r) for r in detail.reminders))
    if p.tapered_since is not None:
        lines.append(f"Fewer reminders since {p.tapered_since.date().isoformat()} (kept up; no nudges).")
    if detail.maintenance:
        lines.append("Maintenance: programme ended; weekly session and check-in.")
    lines.append(
        f"Adherence: 7 days {fmt(stats.adherence_7d, '{:.0%}')}"
        f" · this week {fmt(stats.adherence_this_week, '{:.0%}')}"
        f" · last week {fmt(stats.adherence_last_week, '{:.0%}')} · streak {stats.streak_days} d"
        f" · sessions done {stats.done_total}"
    )
    lines.append(f"Last pain {fmt(row.last_pain)} · last mood {fmt(row.last_mood)} · open alerts {row.open_alerts}")
    for alert in detail.alerts:
        lines.append(
            f"⚠️ {alert.severity} {alert.kind} ({_when(staff, alert.created_at)}): "
            f"{alert_core.shorten(alert_detail.text(alert, staff.language), 200)}"
        )
    lines.extend(lesson_lines(detail.lessons))
    lines.append("")
    lines.append("Recent answers:" if detail.answers else "No answers yet.")
    for a in detail.answers:
        lines.append(f"  {_when(staff, a.answered_at)} {caseload.answer_text(content, a)}")
    lines.append("Recent notes:" if detail.notes else "No notes.")
    for note in detail.notes:
        flag = "🆘 " if note.crisis else ""
        lines.append(f"  {_when(staff, note.created_at)} {flag}{alert_core.shorten(note.text, 300)}")
    return clip("\n".join(lines))


def detail_buttons(detail: caseload.PatientDetail) -> InlineKeyboardMarkup | None:
    """Change buttons for those who may change; none for colleagues."""
    if detail.access < access.Access.WRITE:
        return None
    p = detail.patient
    pid = p.id
    if p.status == PatientStatus.DISCHARGED.value:
        return keyboard([[("Export CSV", f"st:ec:{pid}"), ("Export FHIR", f"st:ef:{pid}")]])
    pause = ("Resume", f"st:pr:{pid}") if p.status == PatientStatus.PAUSED.value else ("Pause", f"st:pz:{pid}")
    return keyboard(
        [
            [("Programme", f"st:pp:{pid}"), ("Session times", f"st:pt:{pid}")],
            [pause, ("Discharge", f"st:dc:{pid}")],
            [("Export CSV", f"st:ec:{pid}"), ("Export FHIR", f"st:ef:{pid}")],
        ]
    )


async def progress_chart(session: AsyncSession, patient: Patient, now: datetime) -> bytes | None:
    """The check-in feature's chart (pain, mood, sessions done per day), as PNG."""
    try:
        png = await report.progress_chart(session, patient, now, title=patient.alias)
    except Exception:  # a broken chart must not hide the rest of the detail
        log.exception("progress chart failed for patient %s", patient.id)
        return None
    return png or None


async def show_patient(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, patient: Patient
) -> None:
    """Send the chart and the detail of a patient to a staff member, and audit the view."""
    access.require(staff, patient, access.Access.READ)
    now = svc(context).clock.now()
    config = svc(context).config
    if not config.privacy.health_data_in_chat:
        # Privacy mode: no answers, chart, notes or alert details through Telegram; the dashboard has them.
        assert patient.id is not None
        audit.record(session, action=audit.VIEW_PATIENT, now=now, staff=staff, patient_id=patient.id)
        await session.commit()
        url = addresses.staff_patient_url(config.web.public_url, patient.id)
        await context.bot.send_message(
            staff.telegram_id,
            f"🔒 {patient.alias}: privacy mode keeps health data out of Telegram. "
            "Their answers, chart, notes and alerts are on the dashboard.",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Open on the dashboard", url=url)]]),
        )
        return
    detail = await caseload.patient_detail(session, staff, patient, now, svc(context).content)
    chart = await progress_chart(session, patient, now)
    audit.record(session, action=audit.VIEW_PATIENT, now=now, staff=staff, patient_id=patient.id)
    await session.commit()
    if chart:
        await context.bot.send_photo(staff.telegram_id, photo=chart, caption=f"{patient.alias}: progress")
    await context.bot.send_message(
        staff.telegram_id, detail_text(staff, detail, svc(context).content), reply_markup=detail_buttons(detail)
    )


@staff_command()
async def patient_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """Show one patient: chart, figures, recent answers and notes, change buttons."""
    message = update.effective_message
    assert message is not None
    if not context.args:
        await message.reply_text("Usage: /patient ALIAS, e.g. /patient LWS-0412. /patients lists them.")
        return
    alias = " ".join(context.args)
    patient = await invite.patient_by_alias(session, alias)
    if patient is None:
        await message.reply_text(f"No patient has the alias {alias[:40]!r}. /patients lists them.")
        return
    await show_patient(context, session, staff, patient)


async def press_open(press: Press) -> None:
    """A patient's button on /patients."""
    patient = await patient_arg(press, access.Access.READ)
    await press.answer()
    await show_patient(press.context, press.session, press.staff, patient)
