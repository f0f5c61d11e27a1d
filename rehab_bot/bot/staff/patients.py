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

from rehab_bot import access, alert_detail, audit, caseload, education, formats, invite, report
from rehab_bot import alert as alert_core
from rehab_bot import miniapp as addresses
from rehab_bot.bot import miniapp
from rehab_bot.bot.services import svc
from rehab_bot.bot.staff.press import Press, clip, fmt, keyboard, patient_arg, staff_command
from rehab_bot.content import Content
from rehab_bot.i18n import N_, t, tn, translator
from rehab_bot.models import Patient, PatientStatus, Role, Staff
from rehab_bot.patient import STATUS_LABELS
from rehab_bot.schedule import local_date, zone

log = logging.getLogger(__name__)


# A surgery type as staff read it (Patient.surgery_type holds one of models.SURGERY_TYPES).
SURGERY_LABELS = {"lumbar": N_("lumbar"), "cervical": N_("cervical"), "other": N_("other")}


def status_in(status: str, lang: str) -> str:
    """A patient's status as a word of lang ("pausiert"); an unknown one as stored."""
    return t(lang, STATUS_LABELS[status]) if status in STATUS_LABELS else status


def surgery_in(surgery_type: str, lang: str) -> str:
    """A surgery type as a word of lang ("lumbal"); an unknown one as stored."""
    return t(lang, SURGERY_LABELS[surgery_type]) if surgery_type in SURGERY_LABELS else surgery_type


def _day(days_since_surgery: int | None, lang: str) -> str:
    if days_since_surgery is None:
        return t(lang, "no surgery date")
    return t(lang, "day {n}", n=days_since_surgery)


def row_text(row: caseload.PatientRow, *, health: bool = True, lang: str = "en") -> str:
    """Two lines per patient in the list; one without health figures in privacy mode (health=False)."""
    status = status_in(row.status, lang)
    alerts = " · ⚠️ " + tn(lang, "{n} open alert", "{n} open alerts", row.open_alerts) if row.open_alerts else ""
    if not health:
        return f"{row.alias} · {status}{alerts}"
    gaps = (
        "\n   📚 " + t(lang, "gap in understanding: {lessons}", lessons=", ".join(row.lesson_gaps))
        if row.lesson_gaps
        else ""
    )
    figures = t(
        lang,
        "adherence 7d {adherence} · last pain {pain} · last mood {mood}",
        adherence=fmt(row.adherence_7d, "{:.0%}"),
        pain=fmt(row.last_pain),
        mood=fmt(row.last_mood),
    )
    return f"{row.alias} · {status} · {_day(row.days_since_surgery, lang)}\n   {figures}{alerts}{gaps}"


def page_view(
    staff: Staff, page: caseload.PatientPage, *, health: bool = True
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The /patients message and its buttons (health=False: privacy mode, the figures are on the dashboard)."""
    lang = staff.language
    _ = translator(lang)
    if page.scope == "mine":
        head = _("Your patients: {n}", n=page.total)
        note = _("Showing your own patients. /patients all shows everyone's (colleagues' patients read-only).")
    else:
        head = _("All patients: {n}", n=page.total)
        note = (
            _("Showing every patient.")
            if staff.role == Role.ADMIN.value
            else _("Showing every patient; you can view colleagues' patients but not change them.")
        )
    lines = [_("{head} — page {page} of {pages}", head=head, page=page.page + 1, pages=page.pages), note, ""]
    if not page.rows:
        lines.append(_("No patients yet. /invite adds one."))
    if not health:
        lines.insert(2, _("Privacy mode: each patient's figures are on the dashboard."))
    lines.extend(row_text(row, health=health, lang=lang) for row in page.rows)
    scope = "m" if page.scope == "mine" else "a"
    nav = []
    if page.page > 0:
        nav.append(("◀", f"st:pl:{scope}:{page.page - 1}"))
    if page.page + 1 < page.pages:
        nav.append(("▶", f"st:pl:{scope}:{page.page + 1}"))
    toggle = (_("All patients"), "st:pl:a:0") if page.scope == "mine" else (_("My patients"), "st:pl:m:0")
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
        await message.reply_text(t(staff.language, "Usage: /patients (your own) or /patients all (everyone's)."))
        return
    scope = args[0] if args else caseload.default_scope(staff)
    text, markup = await _patient_page(session, context, staff, scope, 0)
    await message.reply_text(text, reply_markup=miniapp.with_open_button(markup, context, staff.language))


async def press_page(press: Press) -> None:
    """◀ ▶ and the scope toggle on /patients."""
    scope = {"m": "mine", "a": "all"}[press.args[0]]
    text, markup = await _patient_page(press.session, press.context, press.staff, scope, press.int_arg(1))
    await press.answer()
    await press.edit(text, miniapp.with_open_button(markup, press.context, press.staff.language))


def _when(staff: Staff, value: datetime) -> str:
    """An instant in the staff member's zone and language, its zone named: "3. Dezember, 14:30 CET"."""
    local = value.astimezone(zone(staff.timezone))
    return f"{formats.soon(value, staff.timezone, staff.language)} {local.tzname() or staff.timezone}"


def lesson_lines(lessons: education.Summary | None, lang: str = "en") -> list[str]:
    """The recovery course in the patient detail: delivered, read, understood, gaps."""
    if lessons is None or not lessons.lines:
        return []
    _ = translator(lang)
    lines = [
        _(
            "Lessons: {delivered} delivered, {offered} offered as missed, {read} read, "
            "{understood} of {questions} questions understood",
            delivered=lessons.delivered,
            offered=lessons.offered,
            read=lessons.read,
            understood=lessons.understood,
            questions=lessons.questions,
        )
    ]
    if lessons.gaps:
        lines.append(
            _("⚠️ Gap in understanding (2+ wrong answers on safety lessons): {lessons}", lessons=", ".join(lessons.gaps))
        )
    if lessons.unanswered_safety:
        lines.append(_("Safety lessons unanswered: {lessons}", lessons=", ".join(lessons.unanswered_safety)))
    lines.extend(f"  {line}" for line in lessons.lines[-8:])
    return lines


# Weekday abbreviations, Monday first (the same msgids as the web's patient page).
_WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def _slot(slot: caseload.ReminderSlot, lang: str = "en") -> str:
    """One reminder rule in the staff chat's words: "09:00", "09:00 (Mon, Fri)", "09:00 (every 7 days)"."""
    if slot.every_n_days is not None and slot.every_n_days > 1:
        return f"{slot.local_time} ({t(lang, 'every {n} days', n=slot.every_n_days)})"
    if slot.days:
        return f"{slot.local_time} ({', '.join(t(lang, _WEEKDAYS[d]) for d in slot.days)})"
    return slot.local_time


def detail_text(staff: Staff, detail: caseload.PatientDetail, content: Content | None = None) -> str:
    """The /patient message, in the staff member's language (aliases, names and the patient's words as they are)."""
    lang = staff.language
    _ = translator(lang)
    p, row, stats = detail.patient, detail.row, detail.stats
    lines = [f"{p.alias} — {status_in(p.status, lang)}"]
    if detail.access == access.Access.READ:
        lines.append(_("Read-only: patient of {name}.", name=detail.therapist_name or _("no therapist")))
    day = _day(row.days_since_surgery, lang)
    surgery_type = surgery_in(p.surgery_type, lang)
    surgery = (
        _("{type} surgery {date}", type=surgery_type, date=formats.day(p.surgery_date, lang))
        if p.surgery_date
        else surgery_type
    )
    lines.append(
        _("{surgery} ({day}) · therapist: {name}", surgery=surgery, day=day, name=detail.therapist_name or "–")
    )
    # The patient's own clock, named: the alert times around it are in the reader's zone.
    times = "{} ({})".format(", ".join(detail.session_times), p.timezone) if detail.session_times else "–"
    lines.append(_("Programme: {name} · session times: {times}", name=detail.programme_name or "–", times=times))
    if p.status == PatientStatus.PAUSED.value:
        lines.append(
            _("Paused until {day}.", day=formats.day(p.paused_until, lang))
            if p.paused_until
            else _("Paused until resumed.")
        )
    if detail.reminders:
        lines.append(_("Session reminders: {slots}", slots="; ".join(_slot(r, lang) for r in detail.reminders)))
    if p.tapered_since is not None:
        since = formats.day(local_date(p, p.tapered_since), lang)
        lines.append(_("Fewer reminders since {day} (kept up; no nudges).", day=since))
    if detail.maintenance:
        lines.append(_("Maintenance: programme ended; weekly session and check-in."))
    lines.append(
        _(
            "Adherence: 7 days {week7} · this week {this_week} · last week {last_week} · streak {streak} d"
            " · sessions done {done}",
            week7=fmt(stats.adherence_7d, "{:.0%}"),
            this_week=fmt(stats.adherence_this_week, "{:.0%}"),
            last_week=fmt(stats.adherence_last_week, "{:.0%}"),
            streak=stats.streak_days,
            done=stats.done_total,
        )
    )
    lines.append(
        _(
            "Last pain {pain} · last mood {mood} · open alerts {n}",
            pain=fmt(row.last_pain),
            mood=fmt(row.last_mood),
            n=row.open_alerts,
        )
    )
    for alert in detail.alerts:
        lines.append(
            f"⚠️ {alert_core.severity_in(alert.severity, lang)} {alert_core.kind_word(alert.kind, lang)} "
            f"({_when(staff, alert.created_at)}): "
            f"{alert_core.shorten(alert_detail.text(alert, lang), 200)}"
        )
    lines.extend(lesson_lines(detail.lessons, lang))
    lines.append("")
    lines.append(_("Recent answers:") if detail.answers else _("No answers yet."))
    for a in detail.answers:
        lines.append(f"  {_when(staff, a.answered_at)} {caseload.answer_text(content, a, lang)}")
    lines.append(_("Recent notes:") if detail.notes else _("No notes."))
    for note in detail.notes:
        flag = "🆘 " if note.crisis else ""
        lines.append(f"  {_when(staff, note.created_at)} {flag}{alert_core.shorten(note.text, 300)}")
    return clip("\n".join(lines))


def detail_buttons(detail: caseload.PatientDetail, lang: str = "en") -> InlineKeyboardMarkup | None:
    """Change buttons for those who may change; none for colleagues."""
    if detail.access < access.Access.WRITE:
        return None
    _ = translator(lang)
    p = detail.patient
    pid = p.id
    exports = [(_("Export CSV"), f"st:ec:{pid}"), (_("Export FHIR"), f"st:ef:{pid}")]
    if p.status == PatientStatus.DISCHARGED.value:
        return keyboard([exports])
    pause = (_("Resume"), f"st:pr:{pid}") if p.status == PatientStatus.PAUSED.value else (_("Pause"), f"st:pz:{pid}")
    return keyboard(
        [
            [(_("Programme"), f"st:pp:{pid}"), (_("Session times"), f"st:pt:{pid}")],
            [pause, (_("Discharge"), f"st:dc:{pid}")],
            exports,
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
    _ = translator(staff.language)
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
            _(
                "🔒 {alias}: privacy mode keeps health data out of Telegram. "
                "Their answers, chart, notes and alerts are on the dashboard.",
                alias=patient.alias,
            ),
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(_("Open on the dashboard"), url=url)]]),
        )
        return
    detail = await caseload.patient_detail(session, staff, patient, now, svc(context).content, lang=staff.language)
    chart = await progress_chart(session, patient, now)
    audit.record(session, action=audit.VIEW_PATIENT, now=now, staff=staff, patient_id=patient.id)
    await session.commit()
    if chart:
        await context.bot.send_photo(
            staff.telegram_id, photo=chart, caption=_("{alias}: progress", alias=patient.alias)
        )
    await context.bot.send_message(
        staff.telegram_id,
        detail_text(staff, detail, svc(context).content),
        reply_markup=detail_buttons(detail, staff.language),
    )


@staff_command()
async def patient_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """Show one patient: chart, figures, recent answers and notes, change buttons."""
    message = update.effective_message
    assert message is not None
    if not context.args:
        await message.reply_text(
            t(staff.language, "Usage: /patient ALIAS, e.g. /patient LWS-0412. /patients lists them.")
        )
        return
    alias = " ".join(context.args)
    patient = await invite.patient_by_alias(session, alias)
    if patient is None:
        await message.reply_text(
            t(staff.language, "No patient has the alias {alias}. /patients lists them.", alias=repr(alias[:40]))
        )
        return
    await show_patient(context, session, staff, patient)


async def press_open(press: Press) -> None:
    """A patient's button on /patients."""
    patient = await patient_arg(press, access.Access.READ)
    await press.answer()
    await show_patient(press.context, press.session, press.staff, patient)
