"""Clinician tools in Telegram: /invite, /patients, /patient, /alerts, /staffinvite.

Every staff command and every staff button looks the sender up in the
database again (rehab_bot.staff.active_staff), so a member removed or
demoted loses access at once. Anyone else gets exactly what an unknown
command or a stale button gets (common.unknown_message / unknown_button):
nothing hints that staff commands exist.

Conversations (/invite, /staffinvite, new session times) keep their answers
in the staff_draft table, so a restart in the middle loses nothing. These
handlers sit in group -3, ahead of the patient features, and stop the update
once they have handled it.

Staff-facing text is English only (see README, "Clinician tools"); times are
in the reader's timezone with its abbreviation.
Callback data: ``st:<action>[:<args>]``; see ACTIONS below. Arguments are
parsed as ints or checked against fixed choices, never trusted: a forged or
stale press gets "This button is no longer active.".
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from rehab_bot import access, audit, caseload, digest, export, invite, report
from rehab_bot import alert as alert_core
from rehab_bot import staff as core
from rehab_bot.bot import common, miniapp
from rehab_bot.bot.services import App, svc
from rehab_bot.content import Content
from rehab_bot.models import SURGERY_TYPES, Kind, Patient, PatientStatus, Role, Staff, StaffDraft
from rehab_bot.schedule import local_date

log = logging.getLogger(__name__)

# Our own handler group, ahead of the patient features (patient input -2, enrolment -1, the rest 0):
# only one handler per group sees an update, so sharing a group would hide our typed answers.
GROUP = -3
MAX_TEXT = 4096

STAFF_COMMANDS: list[tuple[str, str]] = [
    ("patients", "Your patients: adherence, pain, mood, alerts"),
    ("patient", "One patient: chart, answers, notes, changes"),
    ("alerts", "Open alerts to acknowledge"),
    ("invite", "Invite a new patient (link and QR code)"),
    ("dashboard", "A sign-in link to the web dashboard"),
    ("cancel", "Cancel the invitation or change in progress"),
    ("help", "How this bot works"),
]
ADMIN_COMMANDS: list[tuple[str, str]] = [("staffinvite", "Invite a staff member (admins only)")]
PAUSE_CHOICES = ((3, "3 days"), (7, "1 week"), (14, "2 weeks"), (0, "Until resumed"))
ADMIN_ONLY = "Only an admin can do this."


# --- menus -------------------------------------------------------------------------


def staff_commands(staff: Staff) -> list[BotCommand]:
    """The command menu of a staff member's chat."""
    entries = STAFF_COMMANDS + (ADMIN_COMMANDS if staff.role == Role.ADMIN.value else [])
    return [BotCommand(cmd, desc) for cmd, desc in entries]


async def set_staff_menu(bot: Bot, staff: Staff, miniapp_url: str | None = None) -> None:
    """Show the staff command menu in this staff member's private chat (setMyCommands, chat scope).

    With the web app's Mini App address, the chat's menu button opens it (removed staff get the default).
    """
    scope = BotCommandScopeChat(chat_id=staff.telegram_id)
    if staff.active:
        await bot.set_my_commands(staff_commands(staff), scope=scope)
    else:
        await bot.delete_my_commands(scope=scope)
    if miniapp_url is not None:
        await miniapp.set_menu_button(bot, staff, miniapp_url)


async def sync_staff_menus(holder: Any, *, everyone: bool = False) -> int:
    """Give each active staff chat its menu and take it from removed staff; returns API calls made.

    Called at startup (everyone=True) and from the engine's job, so a member
    added with `rehab-bot staff add` while the bot runs gets the menu too.
    """
    s = svc(holder)
    menus = s.staff_menus
    async with s.db.session() as session:
        members = await core.staff_members(session, include_inactive=True)
    calls = 0
    for member in members:
        want = member.role if member.active else ""
        if not everyone and menus.get(member.telegram_id, "") == want:
            continue
        try:
            await set_staff_menu(holder.bot, member, miniapp.miniapp_url(holder))
        except TelegramError as exc:
            log.warning("could not set the menu of staff %s: %s", member.id, type(exc).__name__)
            continue
        calls += 1
        menus[member.telegram_id] = want
    return calls


async def startup_menus(app: App) -> None:
    """Register the staff menus of every staff member (startup)."""
    await sync_staff_menus(app, everyone=True)


async def clinic_tick(holder: Any) -> None:
    """Escalate overdue emergency alerts, queue due digests, keep staff menus in step.

    Runs in the engine's repeating job before each dispatcher tick, with the
    injected clock, so what it queues goes out in the same tick.
    """
    s = svc(holder)
    now = s.clock.now()
    async with s.db.session() as session:
        escalated = await alert_core.escalate_overdue(session, now, s.config)
        digests = await digest.queue_digests(session, now, s.config)
        await session.commit()
    if escalated or digests:
        log.info("clinic tick: %d escalation(s), %d digest(s) queued", len(escalated), digests)
    if s.receive_updates:
        await sync_staff_menus(holder)


async def alert_reach(holder: Any) -> alert_core.Reach:
    """Who alerts can reach right now (start-up check and /healthz)."""
    s = svc(holder)
    async with s.db.session() as session:
        return await alert_core.reach(session, s.config.clinic)


async def check_alert_reach(holder: Any) -> bool:
    """At start: ERROR when alerts can reach nobody, WARNING when there is no admin; True if anyone."""
    reach = await alert_reach(holder)
    if not reach.anyone:
        log.error(
            "alerts cannot reach anyone: no active staff member and no alert chat. Patients still get their "
            "red-flag replies. Add an admin: rehab-bot staff add --telegram-id N --role admin --name NAME"
        )
    elif reach.admins == 0:
        log.warning(
            "no active admin: alerts about patients without a therapist go to every staff member, and "
            "escalations have no admin to go to. Add one: rehab-bot staff add --role admin ..."
        )
    return reach.anyone


# --- plumbing ----------------------------------------------------------------------


def keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup | None:
    """Inline keyboard from (label, callback data) rows; None without buttons."""
    rows = [row for row in rows if row]
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


CANCEL_ROW = [("✖ Cancel", "st:x")]


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Telegram refuses longer messages; cut at a word boundary, never mid-word."""
    return text if len(text) <= limit else alert_core.shorten(text, limit)


def _fmt(value: float | int | None, pattern: str = "{}") -> str:
    return "–" if value is None else pattern.format(value)


StaffCommand = Callable[[Update, ContextTypes.DEFAULT_TYPE, AsyncSession, Staff], Awaitable[None]]


def staff_command(*, admin_only: bool = False) -> Callable[[StaffCommand], Any]:
    """Run a command only for active staff (admins if admin_only), rechecked in the database.

    Anybody else gets the unknown-command answer, word for word. The update
    stops here either way, so no patient feature sees a staff command.
    """

    def wrap(fn: StaffCommand) -> Any:
        @functools.wraps(fn)
        async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            user = update.effective_user
            message = update.effective_message
            refused = ""
            async with svc(context).db.session() as session:
                staff = await core.active_staff(session, user.id) if user is not None else None
                if staff is None:
                    refused = "unknown"
                elif admin_only and not access.is_admin(staff):
                    refused = "admin"
                else:
                    await fn(update, context, session, staff)
            if refused == "unknown":
                await common.unknown_message(update, context)
            elif refused == "admin" and message is not None:
                await message.reply_text(ADMIN_ONLY)
            raise ApplicationHandlerStop

        return handler

    return wrap


@dataclass
class Press:
    """A staff member's button press, with the open database session."""

    update: Update
    context: ContextTypes.DEFAULT_TYPE
    session: AsyncSession
    staff: Staff
    args: list[str]
    answered: bool = False

    @property
    def message(self) -> Message | None:
        query = self.update.callback_query
        assert query is not None
        message = query.message
        return message if isinstance(message, Message) else None

    @property
    def now(self) -> Any:
        return svc(self.context).clock.now()

    async def answer(self, text: str | None = None, *, alert: bool = False) -> None:
        """Answer the callback query (once)."""
        if self.answered:
            return
        self.answered = True
        query = self.update.callback_query
        assert query is not None
        await query.answer(text, show_alert=alert)

    async def edit(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Replace the pressed message's text (and so its buttons)."""
        message = self.message
        if message is None:
            return
        try:
            if message.photo or message.document:
                await message.edit_caption(clip(text, 1024), reply_markup=markup)
            else:
                await message.edit_text(clip(text), reply_markup=markup)
        except TelegramError as exc:  # deleted, too old, or not modified: the action itself stands
            log.info("could not edit a staff message: %s", type(exc).__name__)

    async def strip_buttons(self) -> None:
        """Take the buttons off the pressed message, keeping its text."""
        message = self.message
        if message is None or not message.reply_markup:
            return
        try:
            await message.edit_reply_markup(reply_markup=None)
        except TelegramError as exc:
            log.info("could not take buttons off a staff message: %s", type(exc).__name__)

    async def reply(self, text: str, markup: InlineKeyboardMarkup | None = None) -> Message:
        """A new message in the staff member's chat."""
        return await self.context.bot.send_message(self.staff.telegram_id, clip(text), reply_markup=markup)

    def int_arg(self, index: int) -> int:
        """A numeric argument: a database id or a count; anything else is a stale or forged button."""
        value = int(self.args[index])
        if not 0 <= value < 2**31:
            raise ValueError("out of range")
        return value


Route = Callable[[Press], Awaitable[None]]


# --- /patients ---------------------------------------------------------------------


def row_text(row: caseload.PatientRow) -> str:
    """Two lines per patient in the list."""
    day = f"day {row.days_since_surgery}" if row.days_since_surgery is not None else "no surgery date"
    alerts = f" · ⚠️ {row.open_alerts} open alert{'s' if row.open_alerts != 1 else ''}" if row.open_alerts else ""
    gaps = f"\n   📚 gap in understanding: {', '.join(row.lesson_gaps)}" if row.lesson_gaps else ""
    return (
        f"{row.alias} · {row.status} · {day}\n"
        f"   adherence 7d {_fmt(row.adherence_7d, '{:.0%}')} · last pain {_fmt(row.last_pain)} · "
        f"last mood {_fmt(row.last_mood)}{alerts}{gaps}"
    )


def page_view(staff: Staff, page: caseload.PatientPage) -> tuple[str, InlineKeyboardMarkup | None]:
    """The /patients message and its buttons."""
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
    lines.extend(row_text(row) for row in page.rows)
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
    return page_view(staff, result)


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


# --- /patient ----------------------------------------------------------------------


def _when(staff: Staff, value: Any) -> str:
    return alert_core.local_time_text(value, staff.timezone)[5:]  # MM-DD HH:MM


def lesson_lines(lessons: Any) -> list[str]:
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
    lines.append(
        f"Adherence: 7 days {_fmt(stats.adherence_7d, '{:.0%}')}"
        f" · this week {_fmt(stats.adherence_this_week, '{:.0%}')}"
        f" · last week {_fmt(stats.adherence_last_week, '{:.0%}')} · streak {stats.streak_days} d"
        f" · sessions done {stats.done_total}"
    )
    lines.append(f"Last pain {_fmt(row.last_pain)} · last mood {_fmt(row.last_mood)} · open alerts {row.open_alerts}")
    for alert in detail.alerts:
        lines.append(
            f"⚠️ {alert.severity} {alert.kind} ({_when(staff, alert.created_at)}): "
            f"{alert_core.shorten(alert.detail, 200)}"
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


async def progress_chart(session: AsyncSession, patient: Patient, now: Any) -> bytes | None:
    """The check-in feature's chart (pain, mood, sessions done per day), as PNG."""
    try:
        png = await report.progress_chart(session, patient, now)
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
    patient = await core.patient_by_alias(session, alias)
    if patient is None:
        await message.reply_text(f"No patient has the alias {alias[:40]!r}. /patients lists them.")
        return
    await show_patient(context, session, staff, patient)


async def _patient_arg(press: Press, needed: access.Access) -> Patient:
    patient = await press.session.get(Patient, press.int_arg(0))
    if patient is None:
        raise access.StaffError("This patient no longer exists.")
    access.require(press.staff, patient, needed)
    return patient


async def press_open(press: Press) -> None:
    """A patient's button on /patients."""
    patient = await _patient_arg(press, access.Access.READ)
    await press.answer()
    await show_patient(press.context, press.session, press.staff, patient)


async def press_programme_menu(press: Press) -> None:
    """ "Programme": offer the programmes that fit the patient's surgery."""
    patient = await _patient_arg(press, access.Access.WRITE)
    choices = programme_choices(svc(press.context).content, patient.surgery_type)
    await press.answer()
    rows = [[(name, f"st:pc:{patient.id}:{pid}")] for pid, name in choices]
    await press.reply(
        f"Programme for {patient.alias} (now: {patient.programme_id or '–'}). Choose the new one:",
        keyboard([*rows, [("Keep as is", "st:n")]]),
    )


async def press_programme_set(press: Press) -> None:
    """A programme chosen for a patient."""
    patient = await _patient_arg(press, access.Access.WRITE)
    programme_id = press.args[1]
    content = svc(press.context).content
    if patient.programme_id == programme_id:
        await press.answer("No change: the patient is on this programme already.")
        await press.edit(f"{patient.alias} stays on {programme_id}.")
        return
    delivery = svc(press.context).config.delivery
    quiet = (delivery.quiet_hours_start, delivery.quiet_hours_end)
    await caseload.change_programme(press.session, press.staff, patient, programme_id, content, press.now, quiet=quiet)
    await press.session.commit()
    await press.answer("Programme changed.")
    name = content.programmes[programme_id].name.get("en", programme_id)
    times = ", ".join(t for t in patient.session_times.split(",") if t) or "–"
    await press.edit(f"{patient.alias} is now on {name}. Session times: {times}.")


async def press_times(press: Press) -> None:
    """ "Session times": ask for the new times (a conversation kept in staff_draft)."""
    patient = await _patient_arg(press, access.Access.WRITE)
    await press.answer()
    current = ", ".join(caseload.session_times_of(patient, svc(press.context).content, press.now)) or "none"
    draft = await _begin(press.context, press.session, press.staff, "times", "times", patient_id=patient.id)
    await _prompt(
        press.context,
        press.session,
        press.staff,
        draft,
        f"New session times for {patient.alias} (now {current}): send them as HH:MM, e.g. 08:00 13:00 18:00. "
        "They are fitted to the number of sessions of the patient's current phase.",
        [],
    )


async def press_pause_menu(press: Press) -> None:
    """ "Pause": how long."""
    patient = await _patient_arg(press, access.Access.WRITE)
    await press.answer()
    rows = [[(label, f"st:pd:{patient.id}:{days}") for days, label in PAUSE_CHOICES[:2]]]
    rows.append([(label, f"st:pd:{patient.id}:{days}") for days, label in PAUSE_CHOICES[2:]])
    await press.reply(f"Pause reminders for {patient.alias}:", keyboard([*rows, [("Keep as is", "st:n")]]))


async def press_pause(press: Press) -> None:
    """A pause length chosen."""
    patient = await _patient_arg(press, access.Access.WRITE)
    days = press.int_arg(1)
    if days not in {d for d, _ in PAUSE_CHOICES}:
        raise ValueError("pause length")
    until = await caseload.pause(press.session, press.staff, patient, days or None, press.now)
    await press.session.commit()
    await press.answer("Paused.")
    when = f"until {until.isoformat()} (inclusive)" if until else "until you resume them"
    await press.edit(f"Reminders for {patient.alias} are paused {when}.")


async def press_resume(press: Press) -> None:
    """ "Resume" on a paused patient."""
    patient = await _patient_arg(press, access.Access.WRITE)
    if patient.status != PatientStatus.PAUSED.value:
        await press.answer(f"{patient.alias} is {patient.status}, not paused.")
        return
    await caseload.resume(press.session, press.staff, patient, press.now)
    await press.session.commit()
    await press.answer("Resumed.")
    await press.reply(f"Reminders for {patient.alias} are on again.")


async def press_discharge_ask(press: Press) -> None:
    """ "Discharge": ask to confirm."""
    patient = await _patient_arg(press, access.Access.WRITE)
    await press.answer()
    await press.reply(
        f"Discharge {patient.alias}? Reminders and check-ins stop for good; the data stays for export.",
        keyboard([[("Discharge", f"st:dy:{patient.id}"), ("Keep", "st:n")]]),
    )


async def press_discharge(press: Press) -> None:
    """Discharge confirmed."""
    patient = await _patient_arg(press, access.Access.WRITE)
    changed = await caseload.discharge(press.session, press.staff, patient, press.now)
    await press.session.commit()
    await press.answer("Discharged." if changed else "Already discharged.")
    await press.edit(f"{patient.alias} is discharged.")


async def press_export(press: Press, fmt: str) -> None:
    """One patient's export as a document: CSV files in a zip, or a FHIR R4 Bundle."""
    patient = await _patient_arg(press, access.Access.WRITE)
    now = press.now
    data = await export.collect(
        press.session,
        now,
        patient=patient,
        identifier_system=svc(press.context).config.export.identifier_system,
        content=svc(press.context).content,
    )
    stamp = now.strftime("%Y%m%d")
    if fmt == "csv":
        payload, filename = export.csv_zip(data), f"{patient.alias}-{stamp}-csv.zip"
    else:
        bundle = export.fhir_bundle(data, svc(press.context).content, now)
        payload, filename = export.fhir_json(bundle).encode(), f"{patient.alias}-{stamp}-fhir.json"
    audit.record(press.session, action=audit.EXPORT, now=now, staff=press.staff, patient_id=patient.id, detail=fmt)
    await press.session.commit()
    await press.answer("Export on its way.")
    what = "CSV files" if fmt == "csv" else "FHIR R4 Bundle"
    await press.context.bot.send_document(
        press.staff.telegram_id,
        document=payload,
        filename=filename,
        caption=f"{patient.alias}: {what} (pseudonymous; handle as health data).",
    )


async def press_dismiss(press: Press) -> None:
    """ "Keep as is": take the choices away."""
    await press.answer("No change.")
    await press.edit("No change.")


# --- /alerts -----------------------------------------------------------------------


def alert_line(staff: Staff, alert: Any, patient: Patient) -> str:
    """One alert in the /alerts list."""
    return (
        f"⚠️ {alert.severity.upper()} · {patient.alias} · {alert.kind} · "
        f"{alert_core.local_time_text(alert.created_at, staff.timezone)}"
        + (" · escalated to the admins" if alert.escalated_at else "")
        + f"\n   {alert_core.shorten(alert.detail, 200)}"
    )


def alerts_view(
    staff: Staff, alerts: list[tuple[Any, Patient]], footer: str = ""
) -> tuple[str, InlineKeyboardMarkup | None]:
    """All open alerts in one message, one Acknowledge button each.

    One message, not one per alert: updates are handled one at a time and
    Telegram spaces messages to a chat by a second, so twenty messages would
    hold every patient's replies up for twenty seconds.
    """
    whose = "all patients" if staff.role == Role.ADMIN.value else "your patients"
    if not alerts:
        text = f"No open alerts for {whose}."
    else:
        lines = [f"Open alerts for {whose}: {len(alerts)}."]
        lines += [f"{n}. {alert_line(staff, alert, patient)}" for n, (alert, patient) in enumerate(alerts, 1)]
        text = "\n".join(lines)
    if footer:
        text += "\n\n" + footer
    rows = [
        [(f"✅ Acknowledge {n}: {patient.alias}", f"st:ak:{alert.id}")] for n, (alert, patient) in enumerate(alerts, 1)
    ]
    return clip(text), keyboard(rows)


@staff_command()
async def alerts_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """List open alerts, each with an Acknowledge button."""
    message = update.effective_message
    assert message is not None
    now = svc(context).clock.now()
    alerts = await alert_core.open_alerts(session, staff)
    audit.record(
        session,
        action=audit.VIEW_ALERTS,
        now=now,
        staff=staff,
        detail=f"shown={','.join(str(a.id) for a, _ in alerts)}",
    )
    await session.commit()
    text, markup = alerts_view(staff, alerts)
    await message.reply_text(text, reply_markup=markup)


async def press_acknowledge(press: Press) -> None:
    """Acknowledge one alert; a second press says who already did. The list shows what is still open."""
    result = await alert_core.acknowledge(press.session, press.staff, press.int_arg(0), press.now)
    await press.session.commit()
    when = alert_core.local_time_text(result.alert.acknowledged_at or press.now, press.staff.timezone)
    await press.answer("Acknowledged." if result.now else f"Already acknowledged by {result.by}.")
    remaining = await alert_core.open_alerts(press.session, press.staff)
    footer = f"✅ {result.patient.alias} ({result.alert.kind}) acknowledged by {result.by}, {when}."
    text, markup = alerts_view(press.staff, remaining, footer)
    await press.edit(text, markup)


ACK_LABEL = "✅ Acknowledge"


def alert_buttons(kind: str, payload: str) -> list[list[tuple[str, str]]]:
    """The Acknowledge button under an alert or escalation message (delivery payload {"ack": id})."""
    if kind != Kind.ALERT.value:
        return []
    alert_id = alert_core.ack_alert_id(payload)
    return [[(ACK_LABEL, f"st:aa:{alert_id}")]] if alert_id is not None else []


async def press_alert_ack(press: Press) -> None:
    """Acknowledge from the alert message itself: it keeps its text and says who acknowledged it, and when.

    The role is rechecked (on_button) and the access too (alert_core.acknowledge);
    the first acknowledgement is audited, a second press only says who did it.
    """
    result = await alert_core.acknowledge(press.session, press.staff, press.int_arg(0), press.now)
    await press.session.commit()
    when = alert_core.local_time_text(result.alert.acknowledged_at or press.now, press.staff.timezone)
    await press.answer("Acknowledged." if result.now else f"Already acknowledged by {result.by}.")
    message = press.message
    original = (message.text or message.caption or "") if message is not None else ""
    await press.edit(f"{original}\n\n✅ Acknowledged by {result.by}, {when}.")


# --- /invite -----------------------------------------------------------------------


def programme_choices(content: Content, surgery_type: str) -> list[tuple[str, str]]:
    """(id, name) of the programmes for this surgery type; every programme for "other"."""
    fitting = [p for p in content.programmes.values() if surgery_type == "other" or surgery_type in p.surgery_types]
    return [(p.id, p.name.get("en", p.id) + (" (example)" if p.example else "")) for p in fitting]


async def _suggest_alias(session: AsyncSession) -> str:
    for _ in range(20):
        alias = f"P-{secrets.randbelow(90000) + 10000}"
        if not await core.alias_taken(session, alias):
            return alias
    raise access.StaffError("Could not find a free alias; please type one.")


async def _prompt(
    context: ContextTypes.DEFAULT_TYPE,
    session: AsyncSession,
    staff: Staff,
    draft: StaffDraft,
    text: str,
    rows: list[list[tuple[str, str]]],
) -> None:
    """Ask the next question and remember which message carries the live buttons.

    The answers so far are committed before anything goes to Telegram, so no
    write transaction stays open across a (paced) request.
    """
    old_prompt = draft.message_id
    draft.message_id = None
    draft.updated_at = svc(context).clock.now()
    session.add(draft)
    await session.commit()
    await _retire_prompt(context, staff, old_prompt)
    sent = await context.bot.send_message(staff.telegram_id, text, reply_markup=keyboard([*rows, CANCEL_ROW]))
    draft.message_id = sent.message_id
    session.add(draft)
    await session.commit()


async def _begin(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, kind: str, step: str, **values: Any
) -> StaffDraft:
    """Start a conversation (committed); the buttons of one it replaces go."""
    old = await session.get(StaffDraft, staff.id)
    old_prompt = old.message_id if old is not None else None
    draft = await core.start_draft(session, staff, kind, step, svc(context).clock.now(), **values)
    await session.commit()
    await _retire_prompt(context, staff, old_prompt)
    return draft


async def _retire_prompt(context: ContextTypes.DEFAULT_TYPE, staff: Staff, message_id: int | None) -> None:
    """Take the buttons off a conversation's earlier prompt."""
    if message_id is None:
        return
    try:
        await context.bot.edit_message_reply_markup(staff.telegram_id, message_id, reply_markup=None)
    except TelegramError:  # already gone or unchanged: nothing to take away
        pass


STEP_TEXT = {
    "alias": (
        "New patient invitation, step 1 of 5.\nSend an alias for the patient: a pseudonym, not their name "
        "(3-24 letters, digits, - or _, with at least one digit, e.g. LWS-0412), or use the suggestion."
    ),
    "date": "Step 2 of 5: the date of surgery, as YYYY-MM-DD or DD.MM.YYYY.",
    "type": "Step 3 of 5: the type of surgery.",
    "programme": "Step 4 of 5: the exercise programme.",
    "therapist": "Step 5 of 5: the responsible therapist.",
}


async def _ask(context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft) -> None:
    """Ask the question of the draft's current step."""
    rows: list[list[tuple[str, str]]] = []
    text = STEP_TEXT.get(draft.step, "")
    if draft.step == "alias":
        rows = [[(f"Use {draft.alias}", "st:ia")]]
    elif draft.step == "type":
        rows = [[(t.capitalize(), f"st:is:{t}") for t in SURGERY_TYPES]]
    elif draft.step == "programme":
        choices = programme_choices(svc(context).content, draft.surgery_type)
        rows = [[(name, f"st:ip:{pid}")] for pid, name in choices]
    elif draft.step == "therapist":
        members = [m for m in await core.staff_members(session) if m.id != staff.id]
        rows = [[(f"Me ({staff.name})", f"st:it:{staff.id}")]]
        rows += [[(m.name, f"st:it:{m.id}")] for m in members]
    await _prompt(context, session, staff, draft, text, rows)


@staff_command()
async def invite_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """Start a patient invitation: alias, surgery date and type, programme, therapist."""
    draft = await _begin(context, session, staff, "invite", "alias", alias=await _suggest_alias(session))
    await _ask(context, session, staff, draft)


async def _invite_text(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft, text: str
) -> str | None:
    """A typed answer in the /invite conversation; returns an error to show, or None."""
    now = svc(context).clock.now()
    if draft.step == "alias":
        alias = core.validate_alias(text)
        if await core.alias_taken(session, alias):
            return f"The alias {alias} is taken; please choose another."
        draft.alias, draft.step = alias, "date"
    elif draft.step == "date":
        today = local_date(svc(context).config.clinic, now)
        draft.surgery_date, draft.step = core.parse_surgery_date(text, today), "type"
    else:
        return "Please choose with the buttons above, or send /cancel."
    await _ask(context, session, staff, draft)
    return None


async def _finish_invite(press: Press, draft: StaffDraft, therapist_id: int | None) -> None:
    """All answers are in: create the patient and the invite, send link and QR code."""
    context, session, staff = press.context, press.session, press.staff
    s = svc(context)
    assert draft.surgery_date is not None
    try:
        made = await invite.create_patient_invite(
            session,
            svc(context).content,
            alias=draft.alias,
            surgery_date=draft.surgery_date,
            programme_id=draft.programme_id,
            surgery_type=draft.surgery_type,
            therapist_id=therapist_id,
            now=press.now,
            valid_days=s.config.clinic.invite_valid_days,
            timezone=s.config.clinic.timezone,
            language=s.config.clinic.language,
            created_by=staff.id,
            actor=audit.telegram_actor(staff.telegram_id),
        )
    except invite.InviteError as exc:
        await session.rollback()
        await press.answer("Not created.")
        await press.reply(f"The invitation was not created: {exc}. Send /invite to start again.")
        async with s.db.session() as fresh:
            stale = await fresh.get(StaffDraft, staff.id)
            if stale is not None:
                await fresh.delete(stale)
                await fresh.commit()
        return
    await session.delete(draft)
    await session.commit()
    link = invite.deep_link(context.bot.username, made.invite.code)
    therapist = await session.get(Staff, made.patient.therapist_id) if made.patient.therapist_id else None
    await press.answer("Invitation created.")
    await press.edit(
        f"Invitation for {made.patient.alias}: surgery {draft.surgery_type} on {draft.surgery_date.isoformat()}, "
        f"programme {made.programme.name.get('en', made.programme.id)}, "
        f"therapist {therapist.name if therapist else '–'}."
    )
    expires = alert_core.local_time_text(made.invite.expires_at, staff.timezone)
    # One message: the QR code to print, with the link to forward in its caption.
    await context.bot.send_photo(
        staff.telegram_id,
        photo=invite.qr_png(link),
        caption=f"Invitation for {made.patient.alias}: forward this link to the patient, or print the QR code. "
        f"It works once, until {expires}.\n{link}",
    )


async def _draft_for_press(press: Press, kind: str, step: str) -> StaffDraft | None:
    """The draft a conversation button belongs to, if the press is current; answers stale presses."""
    draft = await core.draft_for(press.session, press.staff, press.now)
    message = press.message
    if draft is None or draft.kind != kind or message is None or draft.message_id != message.message_id:
        await press.answer("This step is no longer active.")
        await press.strip_buttons()
        return None
    if draft.step != step:
        await press.answer("This step is done already.")
        return None
    return draft


async def press_invite_alias(press: Press) -> None:
    """ "Use P-12345": take the suggested alias."""
    draft = await _draft_for_press(press, "invite", "alias")
    if draft is None:
        return
    if await core.alias_taken(press.session, draft.alias):
        draft.alias = await _suggest_alias(press.session)
        await press.answer("That alias was just taken; here is another.")
        await _ask(press.context, press.session, press.staff, draft)
        return
    await press.answer()
    await press.edit(f"Alias: {draft.alias}")
    draft.step, draft.message_id = "date", None
    await _ask(press.context, press.session, press.staff, draft)


async def press_invite_type(press: Press) -> None:
    """The surgery type."""
    draft = await _draft_for_press(press, "invite", "type")
    if draft is None:
        return
    surgery_type = press.args[0]
    if surgery_type not in SURGERY_TYPES:
        raise ValueError("surgery type")
    if not programme_choices(svc(press.context).content, surgery_type):
        await press.answer(
            f"No programme is set up for {surgery_type} surgery; choose Other or ask an admin.", alert=True
        )
        return
    await press.answer()
    await press.edit(f"Surgery: {surgery_type}")
    draft.surgery_type, draft.step, draft.message_id = surgery_type, "programme", None
    await _ask(press.context, press.session, press.staff, draft)


async def press_invite_programme(press: Press) -> None:
    """The programme."""
    draft = await _draft_for_press(press, "invite", "programme")
    if draft is None:
        return
    programme_id = press.args[0]
    if programme_id not in dict(programme_choices(svc(press.context).content, draft.surgery_type)):
        await press.answer("That programme is not available.", alert=True)
        return
    if [m.id for m in await core.staff_members(press.session)] == [press.staff.id]:
        # The clinic's only staff member is the responsible therapist by default; the summary names them.
        draft.programme_id = programme_id
        await _finish_invite(press, draft, press.staff.id)
        return
    await press.answer()
    await press.edit(f"Programme: {programme_id}")
    draft.programme_id, draft.step, draft.message_id = programme_id, "therapist", None
    await _ask(press.context, press.session, press.staff, draft)


async def press_invite_therapist(press: Press) -> None:
    """The responsible therapist: the last answer, so the invitation is made."""
    draft = await _draft_for_press(press, "invite", "therapist")
    if draft is None:
        return
    therapist = await press.session.get(Staff, press.int_arg(0))
    if therapist is None or not therapist.active:
        await press.answer("That staff member is no longer active.", alert=True)
        return
    await _finish_invite(press, draft, therapist.id)


# --- /staffinvite ------------------------------------------------------------------


@staff_command(admin_only=True)
async def staffinvite_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """Start a one-time staff invitation (admins only): role, then name."""
    draft = await _begin(context, session, staff, "staff_invite", "role")
    await _prompt(
        context,
        session,
        staff,
        draft,
        "New staff invitation: which role?",
        [[("Therapist", "st:sr:therapist"), ("Admin", "st:sr:admin")]],
    )


async def press_staff_role(press: Press) -> None:
    """The new staff member's role (admins only)."""
    if not access.is_admin(press.staff):
        await press.answer(ADMIN_ONLY, alert=True)
        return
    draft = await _draft_for_press(press, "staff_invite", "role")
    if draft is None:
        return
    role = press.args[0]
    if role not in (Role.THERAPIST.value, Role.ADMIN.value):
        raise ValueError("role")
    await press.answer()
    await press.edit(f"Role: {role}")
    draft.role, draft.step, draft.message_id = role, "name", None
    await _prompt(
        press.context, press.session, press.staff, draft, "The new staff member's name (as colleagues see it):", []
    )


async def _staff_invite_text(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft, text: str
) -> str | None:
    """The name, the last answer of /staffinvite."""
    if draft.step != "name":
        return "Please choose with the buttons above, or send /cancel."
    if not access.is_admin(staff):
        await session.delete(draft)
        await session.commit()
        return ADMIN_ONLY
    s = svc(context)
    name = core.validate_name(text)
    try:
        made = await invite.create_staff_invite(
            session,
            name=name,
            role=draft.role,
            now=s.clock.now(),
            valid_days=s.config.clinic.invite_valid_days,
            created_by=staff.id,
            actor=audit.telegram_actor(staff.telegram_id),
        )
    except invite.InviteError as exc:
        return f"{exc}. Please send the name again."
    prompt = draft.message_id
    await session.delete(draft)
    await session.commit()
    await _retire_prompt(context, staff, prompt)
    link = invite.deep_link(context.bot.username, made.code)
    expires = alert_core.local_time_text(made.expires_at, staff.timezone)
    await context.bot.send_photo(
        staff.telegram_id,
        photo=invite.qr_png(link),
        caption=f"Staff invitation for {name} ({draft.role}). Send this link to them only; it works once, "
        f"until {expires}.\n{link}",
    )
    return None


# --- typed answers and /cancel ------------------------------------------------------


async def _times_text(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft, text: str
) -> str | None:
    patient = await session.get(Patient, draft.patient_id) if draft.patient_id is not None else None
    if patient is None:
        await session.delete(draft)
        await session.commit()
        return "This patient no longer exists."
    times = core.parse_times(text)
    delivery = svc(context).config.delivery
    quiet = (delivery.quiet_hours_start, delivery.quiet_hours_end)
    await caseload.change_session_times(
        session, staff, patient, times, svc(context).content, svc(context).clock.now(), quiet=quiet
    )
    prompt = draft.message_id
    await session.delete(draft)
    await session.commit()
    await _retire_prompt(context, staff, prompt)
    result = ", ".join(t for t in patient.session_times.split(",") if t)
    await context.bot.send_message(
        staff.telegram_id, f"Session times for {patient.alias}: {result}. They apply from the next session."
    )
    return None


DRAFT_TEXT = {"invite": _invite_text, "staff_invite": _staff_invite_text, "times": _times_text}


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed answer in a staff conversation; anything else passes on to the other features."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None or message.text is None:
        return
    async with svc(context).db.session() as session:
        staff = await core.active_staff(session, user.id)
        if staff is None:
            return
        draft = await core.draft_for(session, staff, svc(context).clock.now())
        if draft is None:
            await session.commit()  # a stale draft was dropped
            return
        handler = DRAFT_TEXT.get(draft.kind)
        if handler is None:
            return
        try:
            problem = await handler(context, session, staff, draft, message.text)
        except access.StaffError as exc:
            problem = str(exc)
        if problem:
            await message.reply_text(problem)
    raise ApplicationHandlerStop


async def cancel_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel from staff ends their conversation; from anyone else it is not ours."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return
    async with svc(context).db.session() as session:
        staff = await core.active_staff(session, user.id)
        if staff is None:
            return
        draft = await session.get(StaffDraft, staff.id)
        if draft is not None:
            await session.delete(draft)
            await session.commit()
            await _retire_prompt(context, staff, draft.message_id)
    await message.reply_text("Cancelled; nothing was saved." if draft is not None else "Nothing to cancel.")
    raise ApplicationHandlerStop


async def press_cancel(press: Press) -> None:
    """The Cancel button of a conversation."""
    draft = await press.session.get(StaffDraft, press.staff.id)
    message = press.message
    if draft is not None and message is not None and draft.message_id == message.message_id:
        await press.session.delete(draft)
        await press.session.commit()
        await press.answer("Cancelled.")
        await press.edit("Cancelled; nothing was saved.")
        return
    await press.answer("Nothing to cancel.")
    await press.strip_buttons()


# --- buttons -----------------------------------------------------------------------

ACTIONS: dict[str, Route] = {
    "x": press_cancel,
    "n": press_dismiss,
    "ia": press_invite_alias,
    "is": press_invite_type,
    "ip": press_invite_programme,
    "it": press_invite_therapist,
    "sr": press_staff_role,
    "pl": press_page,
    "po": press_open,
    "pp": press_programme_menu,
    "pc": press_programme_set,
    "pt": press_times,
    "pz": press_pause_menu,
    "pd": press_pause,
    "pr": press_resume,
    "dc": press_discharge_ask,
    "dy": press_discharge,
    "ec": lambda press: press_export(press, "csv"),
    "ef": lambda press: press_export(press, "fhir"),
    "ak": press_acknowledge,
    "aa": press_alert_ack,
}


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every st: button: recheck the role in the database, then route; always answer."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None
    parts = (query.data or "").split(":")
    route = ACTIONS.get(parts[1]) if len(parts) >= 2 else None
    press: Press | None = None
    async with svc(context).db.session() as session:
        staff = await core.active_staff(session, user.id) if user is not None else None
        if staff is not None and route is not None:
            press = Press(update, context, session, staff, parts[2:])
            try:
                await route(press)
            except access.StaffError as exc:
                await session.rollback()
                await press.answer(str(exc), alert=True)
            except (ValueError, IndexError, KeyError):
                await session.rollback()
                await press.answer("This button is no longer active.")
            if not press.answered:
                await press.answer()
    if press is None:
        await common.unknown_button(update, context)
    raise ApplicationHandlerStop


def register(app: App) -> None:
    """Add the staff handlers (group -3: ahead of the patient features)."""
    # New messages only: an edited "/patients" is not a second request.
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(CommandHandler("patients", patients_command, filters=private), group=GROUP)
    app.add_handler(CommandHandler("patient", patient_command, filters=private), group=GROUP)
    app.add_handler(CommandHandler("alerts", alerts_command, filters=private), group=GROUP)
    app.add_handler(CommandHandler("invite", invite_command, filters=private), group=GROUP)
    app.add_handler(CommandHandler("staffinvite", staffinvite_command, filters=private), group=GROUP)
    app.add_handler(CommandHandler("cancel", cancel_command, filters=private), group=GROUP)
    app.add_handler(CallbackQueryHandler(on_button, pattern=r"^st:"), group=GROUP)
    app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, on_text), group=GROUP)
