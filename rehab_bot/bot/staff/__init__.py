"""Clinician tools in Telegram: /invite, /patients, /patient, /alerts, /staffinvite.

One module per staff feature: patients (/patients, /patient), care (programme,
times, pause, discharge), exports, alerts (/alerts, Acknowledge), invites
(/invite, /staffinvite); press holds the plumbing. This module keeps the
staff menus, the clinic tick (escalations, digests), the routing of every
``st:`` button and typed answer, and register().

Every staff command and every staff button looks the sender up in the
database again (rehab_bot.staff.active_staff), so a member removed or
demoted loses access at once. Anyone else gets exactly what an unknown
command or a stale button gets (common.unknown_message / unknown_button):
nothing hints that staff commands exist.

Conversations (/invite, /staffinvite, new session times) keep their answers
in the staff_draft table, so a restart in the middle loses nothing. These
handlers sit in group -3, ahead of the patient features, and stop the update
once they have handled it.

Staff-facing text is in the staff member's language (Staff.language; see README,
"Clinician tools"), times in their timezone with its abbreviation.
Callback data: ``st:<action>[:<args>]``; see ACTIONS below. Arguments are
parsed as ints or checked against fixed choices, never trusted: a forged or
stale press gets "This button is no longer active.".
"""

from __future__ import annotations

import logging

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
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

from rehab_bot import access, digest
from rehab_bot import alert as alert_core
from rehab_bot import staff as core
from rehab_bot.bot import common, miniapp
from rehab_bot.bot.services import App, Host, svc
from rehab_bot.bot.staff.alerts import (
    alert_buttons,
    alert_reach,
    alerts_command,
    check_alert_reach,
    press_acknowledge,
    press_alert_ack,
    press_review,
)
from rehab_bot.bot.staff.care import (
    press_discharge,
    press_discharge_ask,
    press_dismiss,
    press_pause,
    press_pause_menu,
    press_programme_menu,
    press_programme_set,
    press_resume,
    press_times,
    times_text,
)
from rehab_bot.bot.staff.exports import press_export
from rehab_bot.bot.staff.invites import (
    invite_command,
    invite_text,
    press_invite_alias,
    press_invite_programme,
    press_invite_therapist,
    press_invite_type,
    press_staff_role,
    staff_invite_text,
    staffinvite_command,
)
from rehab_bot.bot.staff.patients import patient_command, patients_command, press_open, press_page
from rehab_bot.bot.staff.press import Press, Route, retire_prompt
from rehab_bot.i18n import N_, t, translator
from rehab_bot.models import Role, Staff, StaffDraft

log = logging.getLogger(__name__)

# Our own handler group, ahead of the patient features (patient input -2, enrolment -1, the rest 0):
# only one handler per group sees an update, so sharing a group would hide our typed answers.
GROUP = -3


# The staff command menu: (command, description msgid), described in the staff member's language.
STAFF_COMMANDS: list[tuple[str, str]] = [
    ("patients", N_("Your patients: adherence, pain, mood, alerts")),
    ("patient", N_("One patient: chart, answers, notes, changes")),
    ("alerts", N_("Open alerts to acknowledge")),
    ("invite", N_("Invite a new patient (link and QR code)")),
    ("dashboard", N_("A sign-in link to the web dashboard")),
    ("cancel", N_("Cancel the invitation or change in progress")),
    ("help", N_("How this bot works")),
]


ADMIN_COMMANDS: list[tuple[str, str]] = [("staffinvite", N_("Invite a staff member (admins only)"))]


def staff_commands(staff: Staff) -> list[BotCommand]:
    """The command menu of a staff member's chat, in their language."""
    entries = STAFF_COMMANDS + (ADMIN_COMMANDS if staff.role == Role.ADMIN.value else [])
    return [BotCommand(cmd, t(staff.language, desc)) for cmd, desc in entries]


def staff_help(staff: Staff) -> str:
    """/help for an active staff member, in their language: what the bot is for them, and their commands."""
    _ = translator(staff.language)
    entries = STAFF_COMMANDS + (ADMIN_COMMANDS if staff.role == Role.ADMIN.value else [])
    return "\n\n".join(
        [
            _(
                "You use this bot as a member of the clinic's staff: alerts about your patients, their progress, "
                "changes to their care and invitations. Patients never see these commands."
            ),
            "\n".join([_("Commands:")] + [f"/{command} – {_(description)}" for command, description in entries]),
        ]
    )


def _menu_state(staff: Staff) -> str:
    """What a staff chat's menu depends on (sync_staff_menus sets it again when this changes): "" if removed."""
    return f"{staff.role}:{staff.language}" if staff.active else ""


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


async def sync_staff_menus(holder: Host, *, everyone: bool = False) -> int:
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
        want = _menu_state(member)
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


async def clinic_tick(holder: Host) -> None:
    """Escalate overdue emergency alerts, queue due digests, keep staff menus in step.

    Runs in the engine's repeating job before each dispatcher tick, with the
    injected clock, so what it queues goes out in the same tick.
    """
    s = svc(holder)
    now = s.clock.now()
    async with s.db.session() as session:
        escalated = await alert_core.escalate_overdue(session, now, s.config)
        digests = await digest.queue_digests(session, now, s.config, s.content)
        await session.commit()
    if escalated or digests:
        log.info("clinic tick: %d escalation(s), %d digest(s) queued", len(escalated), digests)
    if s.receive_updates:
        await sync_staff_menus(holder)


DRAFT_TEXT = {"invite": invite_text, "staff_invite": staff_invite_text, "times": times_text}


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
            problem = exc.text(staff.language)
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
        draft = await core.end_draft(session, staff)
        if draft is not None:
            await session.commit()
            await retire_prompt(context, staff, draft.message_id)
    _ = translator(staff.language)
    await message.reply_text(_("Cancelled; nothing was saved.") if draft is not None else _("Nothing to cancel."))
    raise ApplicationHandlerStop


async def press_cancel(press: Press) -> None:
    """The Cancel button of a conversation."""
    draft = await press.session.get(StaffDraft, press.staff.id)
    _ = translator(press.staff.language)
    message = press.message
    if draft is not None and message is not None and draft.message_id == message.message_id:
        await core.end_draft(press.session, press.staff)
        await press.session.commit()
        await press.answer(_("Cancelled."))
        await press.edit(_("Cancelled; nothing was saved."))
        return
    await press.answer(_("Nothing to cancel."))
    await press.strip_buttons()


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
    "rv": press_review,
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
            lang = staff.language  # read now: a rollback expires the row
            try:
                await route(press)
            except access.StaffError as exc:
                await session.rollback()
                await press.answer(exc.text(lang), alert=True)
            except (ValueError, IndexError, KeyError):
                await session.rollback()
                await press.answer(t(lang, "This button is no longer active."))
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


__all__ = [
    "ACTIONS",
    "alert_buttons",
    "alert_reach",
    "check_alert_reach",
    "clinic_tick",
    "register",
    "set_staff_menu",
    "staff_help",
    "startup_menus",
    "sync_staff_menus",
]
