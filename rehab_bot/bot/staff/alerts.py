"""/alerts, the Acknowledge buttons, and whether alerts can reach anybody (rehab_bot.alert renders here).

Callback data: ``st:ak:<alert id>`` (from the /alerts list), ``st:aa:<alert id>``
(under an alert or escalation message, see :func:`alert_buttons`).
"""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    ContextTypes,
)

from rehab_bot import alert as alert_core
from rehab_bot import alert_detail, alert_review, audit
from rehab_bot import staff as staff_core
from rehab_bot.bot.services import Host, Services, svc
from rehab_bot.bot.staff.press import Press, clip, keyboard, staff_command
from rehab_bot.i18n import N_, t, translator
from rehab_bot.models import Alert, AlertReview, Kind, Patient, Role, Staff

log = logging.getLogger(__name__)


async def alert_reach(holder: Host) -> alert_core.Reach:
    """Who alerts can reach right now (start-up check and /healthz)."""
    s = svc(holder)
    async with s.db.session() as session:
        return await alert_core.reach(session, s.config.clinic)


async def check_alert_reach(holder: Host) -> bool:
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


def alert_line(staff: Staff, alert: Alert, patient: Patient) -> str:
    """One alert in the /alerts list, in the staff member's language."""
    lang = staff.language
    escalated = t(lang, " · escalated to the admins") if alert.escalated_at else ""
    return (
        f"⚠️ {alert_core.severity_in(alert.severity, lang).upper()} · {patient.alias} · "
        f"{alert_core.kind_word(alert.kind, lang)} · "
        f"{alert_core.local_time_text(alert.created_at, staff.timezone)}"
        + escalated
        # Every line of the detail under the numbered line, not only its first (a score's reasons are lines).
        + "".join(f"\n   {line}" for line in alert_core.shorten(alert_detail.text(alert, lang), 200).splitlines())
    )


def alerts_view(
    staff: Staff, alerts: list[tuple[Alert, Patient]], footer: str = ""
) -> tuple[str, InlineKeyboardMarkup | None]:
    """All open alerts in one message, one Acknowledge button each, in the staff member's language.

    One message, not one per alert: updates are handled one at a time and
    Telegram spaces messages to a chat by a second, so twenty messages would
    hold every patient's replies up for twenty seconds.
    """
    _ = translator(staff.language)
    admin = staff.role == Role.ADMIN.value
    if not alerts:
        text = _("No open alerts for all patients.") if admin else _("No open alerts for your patients.")
    else:
        count = len(alerts)
        lines = [
            _("Open alerts for all patients: {n}.", n=count)
            if admin
            else _("Open alerts for your patients: {n}.", n=count)
        ]
        lines += [f"{n}. {alert_line(staff, alert, patient)}" for n, (alert, patient) in enumerate(alerts, 1)]
        text = "\n".join(lines)
    if footer:
        text += "\n\n" + footer
    rows = [
        [(_("✅ Acknowledge {n}: {alias}", n=n, alias=patient.alias), f"st:ak:{alert.id}")]
        for n, (alert, patient) in enumerate(alerts, 1)
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


ACK_LABEL = N_("✅ Acknowledge")
ACKED = N_("✅ Acknowledged by {name}, {when}.")  # the line under every copy of an acknowledged alert


def alert_buttons(kind: str, payload: str) -> list[list[tuple[str, str]]]:
    """The Acknowledge button under an alert or escalation message (delivery payload {"ack": id, "lang": ...}),
    in the message's language."""
    if kind != Kind.ALERT.value:
        return []
    alert_id = alert_core.ack_alert_id(payload)
    label = t(staff_core.payload_language(payload), ACK_LABEL)
    return [[(label, f"st:aa:{alert_id}")]] if alert_id is not None else []


def _acknowledged(press: Press, result: alert_core.Acknowledged) -> str:
    """The answer to an Acknowledge press: done, or who did it earlier."""
    _ = translator(press.staff.language)
    return (
        _("Acknowledged.")
        if result.now
        else _("Already acknowledged by {name}.", name=alert_core.who(result.by, press.staff.language))
    )


async def press_acknowledge(press: Press) -> None:
    """Acknowledge one alert; a second press says who already did. The list shows what is still open."""
    result = await alert_core.acknowledge(press.session, press.staff, press.int_arg(0), press.now)
    await press.session.commit()
    when = alert_core.local_time_text(result.alert.acknowledged_at or press.now, press.staff.timezone)
    await press.answer(_acknowledged(press, result))
    remaining = await alert_core.open_alerts(press.session, press.staff)
    lang = press.staff.language
    footer = t(
        lang,
        "✅ {alias} ({kind}) acknowledged by {name}, {when}.",
        alias=result.patient.alias,
        kind=alert_core.kind_word(result.alert.kind, lang),
        name=alert_core.who(result.by, lang),
        when=when,
    )
    text, markup = alerts_view(press.staff, remaining, footer)
    await press.edit(text, markup)
    if result.now and result.alert.id is not None:
        await mark_copies(press.context.bot, svc(press.context), result.alert.id)


async def press_alert_ack(press: Press) -> None:
    """Acknowledge from the alert message itself: it keeps its text and says who acknowledged it, and when.

    The role is rechecked (on_button) and the access too (alert_core.acknowledge);
    the first acknowledgement is audited, a second press only says who did it.
    """
    result = await alert_core.acknowledge(press.session, press.staff, press.int_arg(0), press.now)
    await press.session.commit()
    _ = translator(press.staff.language)
    when = alert_core.local_time_text(result.alert.acknowledged_at or press.now, press.staff.timezone)
    await press.answer(_acknowledged(press, result))
    message = press.message
    original = (message.text or message.caption or "") if message is not None else ""
    # Alert accuracy: one optional tap on whether it needed action (alert_review), offered to whoever
    # acknowledged it until a verdict is given: a double tap's second press (acknowledged already, by the
    # same person) keeps the offer the first one put there instead of taking it away.
    offer = result.now or (
        result.alert.acknowledged_by == press.staff.id and await press.session.get(AlertReview, result.alert.id) is None
    )
    review = (
        InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(_("Needed action"), callback_data=f"st:rv:{result.alert.id}:1"),
                    InlineKeyboardButton(_("No action needed"), callback_data=f"st:rv:{result.alert.id}:0"),
                ]
            ]
        )
        if offer
        else None
    )
    await press.edit(
        f"{original}\n\n" + _(ACKED, name=alert_core.who(result.by, press.staff.language), when=when),
        review,
    )
    if result.now and result.alert.id is not None:
        pressed = (message.chat_id, message.message_id) if message is not None else None
        await mark_copies(press.context.bot, svc(press.context), result.alert.id, skip=pressed)


async def mark_copies(bot: Bot, s: Services, alert_id: int, skip: tuple[int, int] | None = None) -> None:
    """Every sent copy of an acknowledged alert but ``skip`` (chat id, message id: the one pressed) says who
    acknowledged it and when, in its reader's language and time zone, and loses its Acknowledge button:
    staff who did not press it see it is in hand, whoever acknowledged it where (a button, /alerts, the web).

    A copy that was deleted or is too old to edit stays as it was; its button then only says who did it.
    In privacy mode the copies named no symptom (render._neutral_alert) and still name none."""
    async with s.db.session() as db:
        alert = await db.get(Alert, alert_id)
        patient = await db.get(Patient, alert.patient_id) if alert is not None else None
        if alert is None or patient is None or alert.acknowledged_at is None:
            return
        by = await db.get(Staff, alert.acknowledged_by) if alert.acknowledged_by else None
        copies = [c for c in await alert_core.sent_copies(db, alert_id) if (c.chat_id, c.message_id) != skip]
        zones = {c.id: (await db.get(Staff, c.staff_id)) if c.staff_id else None for c in copies}
    for copy in copies:
        lang = staff_core.payload_language(copy.payload)
        reader = zones[copy.id]
        tz = reader.timezone if reader is not None else s.config.clinic.timezone
        shown = (
            copy.body
            if s.config.privacy.health_data_in_chat
            else alert_core.neutral_text(alert.severity, patient.alias, lang)
        )
        line = t(
            lang,
            ACKED,
            name=alert_core.who(by.name if by else "", lang),
            when=alert_core.local_time_text(alert.acknowledged_at, tz),
        )
        assert copy.message_id is not None
        try:
            await bot.edit_message_text(clip(f"{shown}\n\n{line}"), chat_id=copy.chat_id, message_id=copy.message_id)
        except TelegramError as exc:  # deleted, too old to edit, or not changed: the acknowledgement stands
            log.info("could not mark a copy of alert %d acknowledged: %s", alert_id, type(exc).__name__)


async def press_review(press: Press) -> None:
    """The optional verdict after acknowledging: needed action or not (the first one stands)."""
    needed = press.args[1] == "1" if len(press.args) > 1 and press.args[1] in ("0", "1") else None
    if needed is None:
        raise ValueError("not a verdict")
    verdict = await alert_review.review(press.session, press.staff, press.int_arg(0), needed, press.now)
    await press.session.commit()
    _ = translator(press.staff.language)
    if verdict.needed_action:
        answer = _("Recorded: needed action.") if verdict.now else _("Already recorded: needed action.")
    else:
        answer = _("Recorded: no action needed.") if verdict.now else _("Already recorded: no action needed.")
    await press.answer(answer)
    message = press.message
    original = (message.text or message.caption or "") if message is not None else ""
    await press.edit(f"{original}\n" + (_("Needed action.") if verdict.needed_action else _("No action needed.")))
