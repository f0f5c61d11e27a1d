"""The caregiver seat in chat: thin handlers over rehab_bot.caregiver.

Patients: ``/caregiver`` lists their caregivers, invites one (a single-use
link), turns each permission on or off, removes one. Caregivers: open the
link, agree (or not) to what the bot keeps about them, answer a check-in on
the patient's behalf with ``/checkin``, see their own data with ``/mydata``
and delete their own link with ``/delete``. Text they type is not passed on:
they are told so, with the clinic's emergency text, and a symptom word in it
offers the symptom check for the patient at once (crisis words get the crisis
text first, as from anyone). A caregiver is nobody else: every other command
and press gets what a stranger gets.

Callback data (parsed as ints or fixed choices, checked against the buttons
on the pressed message, the presser rechecked in the database):

    cg:new                    patient: make an invitation
    cg:p:<link>               patient: the permissions of one caregiver
    cg:t:<link>:<n>           patient: turn permission n (PERMISSIONS) on/off
    cg:rm:<link> / cg:ry:<link>   patient: remove (ask / confirm)
    cg:ok:<link> / cg:no:<link>   caregiver: consent / decline
    cg:dy / cg:dn             caregiver: delete own link (yes / no)
    cp:<check-in>:<item>:<value>  caregiver: a proxy answer ("s" skips)
    cs:<questionnaire>        caregiver: start an on-demand check-in for the patient
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from rehab_bot import caregiver as core
from rehab_bot import checkin as checkins
from rehab_bot import crisis, formats, redflag
from rehab_bot import message as messages
from rehab_bot import patient as patients
from rehab_bot.bot import common
from rehab_bot.bot.checkin import done_text, parse_answer, step_buttons, step_text
from rehab_bot.bot.services import App, svc
from rehab_bot.content import localize
from rehab_bot.i18n import N_, t
from rehab_bot.invite import deep_link, is_caregiver_code
from rehab_bot.models import Caregiver, CheckIn, Patient
from rehab_bot.typed import number

log = logging.getLogger(__name__)

GROUP = -6  # before crisis watch and the staff tools: a caregiver's commands are answered here
TEXT_GROUP = 8  # after crisis watch (-5) and every feature, before the fallbacks (10)

LABELS = {
    "reminders": N_("a copy of each session reminder"),
    "missed": N_("a message when two sessions in a row are missed"),
    "emergencies": N_("urgent red flags (a symptom that needs urgent care)"),
    "weekly": N_("weekly progress (Sundays)"),
}
STALE = N_("This button is no longer active.")
TYPED = N_(
    "I cannot pass on typed messages. To tell the care team how the person you support is doing, "
    "answer a check-in for them: /checkin"
)
SYMPTOM_OFFER = N_(
    "If this is about a symptom, please answer the check for them with one tap: it asks the right questions, "
    "and the answers reach the care team."
)
PROXY_HEAD = N_("On behalf of the person you support:")
ALREADY_SAVED = N_("Already saved.")


def _markup(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup | None:
    rows = [row for row in rows if row]
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=d) for label, d in row] for row in rows])


def _when(lang: str, at: datetime, tz: str) -> str:
    return formats.soon(at, tz, lang)


def allowed_text(lang: str, link: Caregiver) -> str:
    """The permissions that are on, as a list (or "nothing yet")."""
    on = [t(lang, LABELS[p]) for p in core.PERMISSIONS if getattr(link, p)]
    return "\n".join(f"• {line}" for line in on) if on else t(lang, "nothing yet")


def _who(lang: str, link: Caregiver) -> str:
    """The caregiver's name in a list or on a button; a link nobody accepted yet is an invitation."""
    return link.name or t(lang, "Invitation (not used yet)")


def _said(lang: str, link: Caregiver, named: str, invited: str) -> str:
    """A sentence about a caregiver: with their name, or the one for an invitation not used yet
    (its label is no name: "What Invitation (not used yet) gets" is no sentence)."""
    return t(lang, named, name=link.name) if link.name else t(lang, invited)


# --- the patient's side ------------------------------------------------------------------


def overview(lang: str, links: list[Caregiver]) -> tuple[str, list[list[tuple[str, str]]]]:
    """The /caregiver menu: who is linked, and buttons to change or invite."""
    lines = [
        t(lang, "👥 Caregivers"),
        t(
            lang,
            "A caregiver (a relative or a friend) follows your rehab in their own Telegram chat and gets "
            "only what you allow. They can also answer a check-in for you.",
        ),
    ]
    lines += [f"• {_who(lang, link)}" for link in links]
    if not links:
        lines.append(t(lang, "You have no caregiver yet."))
    rows = [[(f"⚙️ {_who(lang, link)}", f"cg:p:{link.id}")] for link in links]
    if len(links) < core.MAX_CAREGIVERS:
        rows.append([(t(lang, "➕ Invite a caregiver"), "cg:new")])
    return "\n\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]), rows


def permissions_view(lang: str, link: Caregiver) -> tuple[str, list[list[tuple[str, str]]]]:
    """One caregiver's permissions, each a button that turns it on or off."""
    text = _said(
        lang,
        link,
        N_("What {name} gets (tap to turn on or off):"),
        N_("What the person you invite will get (tap to turn on or off):"),
    )
    rows = [
        [(("✅ " if getattr(link, p) else "⬜ ") + t(lang, LABELS[p]), f"cg:t:{link.id}:{n}")]
        for n, p in enumerate(core.PERMISSIONS)
    ]
    remove = N_("🗑 Remove this caregiver") if link.name else N_("🗑 Withdraw the invitation")
    rows.append([(t(lang, remove), f"cg:rm:{link.id}")])
    return text, rows


async def caregiver_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/caregiver: the patient's caregivers and what they get."""
    from rehab_bot.bot.patient import patient_for

    patient = await patient_for(update, context)
    message = update.effective_message
    if patient is not None and message is not None:
        async with svc(context).db.session() as db:
            links = await core.caregivers_of(db, patient)
        text, rows = overview(patient.language, links)
        await message.reply_text(text, reply_markup=_markup(rows))
    raise ApplicationHandlerStop


async def _edit(message: Message | None, text: str, rows: list[list[tuple[str, str]]] | None = None) -> None:
    if message is None:
        return
    try:
        await message.edit_text(text, reply_markup=_markup(rows or []))
    except TelegramError as exc:
        log.info("could not edit a caregiver message: %s", type(exc).__name__)


async def _patient_press(update: Update, context: ContextTypes.DEFAULT_TYPE, parts: list[str]) -> None:
    query = update.callback_query
    assert query is not None
    s = svc(context)
    now = s.clock.now()
    message = common.message_of(query)
    async with s.db.session() as db:
        patient = await _enrolled_patient(db, query.from_user.id)
        if patient is None:
            await common.unknown_button(update, context)
            return
        lang = patient.language
        what = parts[1]
        ids = [n for p in parts[2:] if (n := number(p, 9)) is not None]
        try:
            if what == "new" and len(parts) == 2:
                link = await core.invite(db, patient, now, hours=s.config.care.caregiver_invite_hours)
                await db.commit()
                await query.answer()
                url = deep_link(context.bot.username, link.code)
                text = "\n\n".join(
                    [
                        t(
                            lang,
                            "Send this link to the one person you want as your caregiver. It works once, until {when}:",
                            when=_when(lang, link.expires_at, patient.timezone),
                        ),
                        url,
                        t(lang, "They will get:") + "\n" + allowed_text(lang, link),
                    ]
                )
                view_text, rows = permissions_view(lang, link)
                await _edit(message, text + "\n\n" + view_text, rows)
                return
            if what == "p" and len(ids) == 1 and len(parts) == 3:
                link = await core._own_link(db, patient, ids[0])
                await query.answer()
                view_text, rows = permissions_view(lang, link)
                await _edit(message, view_text, rows)
                return
            if what == "t" and len(ids) == 2 and len(parts) == 4 and ids[1] < len(core.PERMISSIONS):
                permission = core.PERMISSIONS[ids[1]]
                current = await core._own_link(db, patient, ids[0])
                link = await core.set_permission(db, patient, ids[0], permission, not getattr(current, permission), now)
                await db.commit()
                await query.answer(t(lang, "✅ Saved."))
                view_text, rows = permissions_view(lang, link)
                await _edit(message, view_text, rows)
                return
            if what == "rm" and len(ids) == 1 and len(parts) == 3:
                link = await core._own_link(db, patient, ids[0])
                await query.answer()
                await _edit(
                    message,
                    _said(
                        lang,
                        link,
                        N_("Remove {name}? From now on they get nothing from this bot."),
                        N_("Withdraw the invitation? The link will no longer work."),
                    ),
                    [[(t(lang, "🗑 Yes, remove"), f"cg:ry:{link.id}"), (t(lang, "No"), f"cg:p:{link.id}")]],
                )
                return
            if what == "ry" and len(ids) == 1 and len(parts) == 3:
                link = await core.remove(db, patient, ids[0], now)
                await db.commit()
                await query.answer()
                gone = _said(
                    lang,
                    link,
                    N_("{name} is no longer your caregiver."),
                    N_("The invitation is withdrawn: the link no longer works."),
                )
                await _edit(message, gone)
                return
        except core.CaregiverError as exc:
            await db.rollback()
            notice = N_("You have as many caregivers as possible.") if str(exc) == "too_many" else STALE
            await query.answer(t(lang, notice))
            return
    await query.answer(t(lang, STALE))


async def _enrolled_patient(db: Any, telegram_id: int) -> Patient | None:
    from rehab_bot import patient as patients

    standing, patient = await patients.standing(db, telegram_id)
    return patient if standing == patients.Standing.PATIENT else None


# --- the caregiver's side ----------------------------------------------------------------


REFUSALS = {
    core.Outcome.UNKNOWN: N_("This link is not valid. Please ask for a new one."),
    core.Outcome.USED: N_("This link has already been used. Please ask for a new one."),
    core.Outcome.EXPIRED: N_("This link has expired. Please ask for a new one."),
    core.Outcome.IS_PATIENT: N_("You use this bot as a patient, so you cannot also be a caregiver here."),
    core.Outcome.IS_STAFF: N_("You are clinic staff, so you cannot also be a caregiver here."),
    core.Outcome.OTHER: N_("You are already a caregiver for someone. One account can support one person."),
    core.Outcome.LINKED: N_("You are already linked as a caregiver. Send /checkin to answer a check-in for them."),
}


def consent_text(lang: str, clinic: str) -> str:
    return t(
        lang,
        "{clinic}: you have been invited as a caregiver, to follow the rehab of the person who sent you this link.\n\n"
        "To do that, this bot keeps your Telegram account id and your first name until you or they end the link. "
        "You get only what they allow, and you can delete your link at any time with /delete.\n\n"
        "Do you agree?",
        clinic=clinic,
    )


async def start_with_code(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start <code> with a caregiver code; any other code is the enrolment's."""
    user, message = update.effective_user, update.effective_message
    code = context.args[0] if context.args and len(context.args) == 1 else ""
    if user is None or message is None or not is_caregiver_code(code):
        return
    s = svc(context)
    lang = await common.language_for(update, context)  # a patient or staff member: their own setting
    async with s.db.session() as db:
        opened = await core.open_link(db, code, user.id, lang, s.clock.now())
        await db.commit()
    log.info("caregiver link opened: %s", opened.outcome.value)
    if opened.outcome == core.Outcome.ASK_CONSENT and opened.caregiver is not None:
        link = opened.caregiver
        rows = [[(t(lang, "✅ I agree"), f"cg:ok:{link.id}"), (t(lang, "No, thanks"), f"cg:no:{link.id}")]]
        await message.reply_text(consent_text(lang, s.config.clinic.name), reply_markup=_markup(rows))
    else:
        await message.reply_text(t(lang, REFUSALS.get(opened.outcome, REFUSALS[core.Outcome.UNKNOWN])))
    raise ApplicationHandlerStop


async def _caregiver_press(update: Update, context: ContextTypes.DEFAULT_TYPE, parts: list[str]) -> bool:
    """Consent, decline and /delete presses of a caregiver; False if the presser is none."""
    query = update.callback_query
    assert query is not None
    s = svc(context)
    now = s.clock.now()
    message = common.message_of(query)
    patient: Patient | None = None
    async with s.db.session() as db:
        link = await core.link_of(db, query.from_user.id)
        if link is None:
            return False
        lang = link.language
        what = parts[1]
        if what in ("ok", "no") and len(parts) == 3 and parts[2] == str(link.id) and link.consent_at is None:
            if what == "ok":
                await core.consent(db, link, query.from_user.first_name or "", now)
                patient = await db.get(Patient, link.patient_id)
                text = "\n\n".join(
                    [
                        t(lang, "✅ You are now a caregiver. You will get:") + "\n" + allowed_text(lang, link),
                        t(lang, "To answer a check-in for them, send /checkin. To end your link, send /delete."),
                    ]
                )
            else:
                await core.decline(db, link)
                text = t(lang, "OK. Nothing about you was kept.")
            await db.commit()
            await query.answer()
            await _edit(message, text)
            if patient is not None and patient.telegram_id is not None:
                try:
                    await context.bot.send_message(
                        patient.telegram_id,
                        t(
                            patient.language,
                            "👥 {name} accepted your invitation and is now your caregiver. "
                            "Change what they get with /caregiver.",
                            name=link.name or "?",
                        ),
                    )
                except TelegramError as exc:
                    log.info("could not tell the patient about their caregiver: %s", type(exc).__name__)
            return True
        if what in ("dy", "dn") and len(parts) == 2 and core.is_active(link):
            await query.answer()
            if what == "dy":
                await core.delete_own(db, link, now)
                await db.commit()
                await _edit(message, t(lang, "🗑 Your link and what this bot kept about you have been deleted."))
            else:
                await _edit(message, t(lang, "Nothing was deleted."))
            return True
    return False


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every cg: press: only buttons really on the pressed message; the presser rechecked."""
    query = update.callback_query
    assert query is not None
    data = query.data or ""
    parts = data.split(":")
    message = common.message_of(query)
    if len(data.encode()) > 64 or len(parts) < 2 or data not in common.buttons_on(message):
        await common.unknown_button(update, context)
        raise ApplicationHandlerStop
    if parts[1] in ("ok", "no", "dy", "dn"):
        if not await _caregiver_press(update, context, parts):
            await common.unknown_button(update, context)
    else:
        await _patient_press(update, context, parts)
    raise ApplicationHandlerStop


async def _active(update: Update, context: ContextTypes.DEFAULT_TYPE) -> tuple[Caregiver, Patient] | None:
    user = update.effective_user
    if user is None:
        return None
    async with svc(context).db.session() as db:
        return await core.active_link(db, user.id)


async def _is_caregiver(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Caregiver | None:
    user = update.effective_user
    if user is None:
        return None
    async with svc(context).db.session() as db:
        link = await core.link_of(db, user.id)
    return link if core.is_active(link) else None


def _proxy_rows(step: checkins.Step, lang: str) -> list[list[tuple[str, str]]]:
    return [[(label, "cp:" + data[3:]) for label, data in row] for row in step_buttons(step, lang)]


def _proxy_text(step: checkins.Step, lang: str) -> str:
    return t(lang, PROXY_HEAD) + "\n\n" + step_text(step, lang)


async def checkin_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/checkin from a caregiver: the patient's open check-in, or one to start, answered on their behalf."""
    linked = await _active(update, context)
    message = update.effective_message
    if linked is None or message is None:
        return  # not an active caregiver: the patient's /checkin answers
    link, patient = linked
    s = svc(context)
    lang = link.language
    now = s.clock.now()
    async with s.db.session() as db:
        step = await checkins.waiting_step(db, patient, s.content, now)
        await db.commit()
    if step is not None:
        await message.reply_text(_proxy_text(step, lang), reply_markup=_markup(_proxy_rows(step, lang)))
        raise ApplicationHandlerStop
    rows = [[(localize(q.title, lang), f"cs:{q.id}")] for q in checkins.on_demand_for(patient, s.content)]
    await message.reply_text(
        t(lang, "No check-in is waiting. Which would you like to fill in for them now?"), reply_markup=_markup(rows)
    )
    raise ApplicationHandlerStop


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text from an active caregiver (crisis words were answered before): no note and no message,
    so say so, point to /checkin with the clinic's emergency text, and offer the symptom check
    for the patient at once when the text names a symptom (crisis.toml's symptom words)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.text is None:
        return
    s = svc(context)
    async with s.db.session() as db:
        if await patients.find_in_care(db, user.id) is not None:
            return  # a patient's own text: their free-text offer answers it
        linked = await core.active_link(db, user.id)
    if linked is None:
        return
    link, patient = linked
    lang = link.language
    text = t(lang, TYPED) + "\n\n" + s.config.clinic.text("emergency_text", lang)
    rows: list[list[tuple[str, str]]] = []
    check = crisis.symptom_check_for(message.text, s.content)
    if check is not None and check in {q.id for q in checkins.on_demand_for(patient, s.content)}:
        text = t(lang, SYMPTOM_OFFER) + "\n\n" + text
        rows.append([(f"🩺 {localize(s.content.questionnaires[check].title, lang)}", f"cs:{check}")])
    await message.reply_text(text, reply_markup=_markup(rows), do_quote=True)
    raise ApplicationHandlerStop


async def on_proxy_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """cs:<questionnaire>: start an on-demand check-in for the patient, answered by the caregiver."""
    query = update.callback_query
    assert query is not None
    message = common.message_of(query)
    linked = await _active(update, context)
    questionnaire_id = (query.data or "").partition(":")[2]
    if linked is None or message is None or query.data not in common.buttons_on(message):
        await common.unknown_button(update, context)
        raise ApplicationHandlerStop
    link, patient = linked
    s = svc(context)
    now = s.clock.now()
    allowed = [q.id for q in checkins.on_demand_for(patient, s.content)]
    if questionnaire_id not in allowed:
        await query.answer(t(link.language, STALE))
        raise ApplicationHandlerStop
    async with s.db.session() as db:
        step = (await checkins.begin(db, patient, s.content, [questionnaire_id], now)).step
        await db.commit()
    await query.answer()
    if step is not None:
        await _edit(message, _proxy_text(step, link.language), _proxy_rows(step, link.language))
    raise ApplicationHandlerStop


async def on_proxy_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """cp:<check-in>:<item>:<value>: a proxy answer; red-flag replies go to the caregiver, the clinic is alerted."""
    query = update.callback_query
    assert query is not None
    message = common.message_of(query)
    parsed = parse_answer(query.data or "", "cp")
    linked = await _active(update, context)
    if linked is None or parsed is None or message is None or query.data not in common.buttons_on(message):
        await common.unknown_button(update, context)
        raise ApplicationHandlerStop
    link, patient = linked
    s = svc(context)
    now = s.clock.now()
    lang = link.language
    async with s.db.session() as db:
        checkin = await core.checkin_for(db, parsed[0], patient)
        if checkin is None:
            await query.answer(t(lang, STALE))
            raise ApplicationHandlerStop
        fresh = await db.get(Patient, patient.id)
        assert fresh is not None
        result = await core.proxy_answer(db, link, fresh, s.content, s.config.clinic, *parsed, now=now)
        chain: list[CheckIn] = []
        step = None
        if result.checkin is not None:
            chain = await checkins.the_set(db, result.checkin)
            if not result.stopped:
                step = await checkins.next_step(db, s.content, chain, now)
        await db.commit()
    if result.status != "recorded":
        notice = STALE if result.status == "invalid" else ALREADY_SAVED
        await query.answer(t(lang, notice))
        raise ApplicationHandlerStop
    await query.answer(t(lang, "Saved."))
    for finding in sorted(result.findings, key=lambda f: redflag.SEVERITY_RANK[f.severity], reverse=True):
        advice = redflag.reply_text(finding, s.content, lang, s.config.clinic)
        if advice:
            await context.bot.send_message(query.from_user.id, advice)
    if step is not None:
        await _edit(message, _proxy_text(step, lang), _proxy_rows(step, lang))
    else:
        await _edit(message, t(lang, PROXY_HEAD) + "\n\n" + done_text(chain, s.content, lang, stopped=result.stopped))
    raise ApplicationHandlerStop


async def mydata_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/mydata from a caregiver: what the bot keeps about them (nothing of the patient's)."""
    link = await _is_caregiver(update, context)
    message = update.effective_message
    if link is None or message is None:
        return
    body = json.dumps(core.own_data(link), ensure_ascii=False, indent=2).encode()
    await message.reply_document(
        InputFile(io.BytesIO(body), filename="my-data.json"),
        caption=t(link.language, "All the data this bot keeps about you as a caregiver."),
    )
    raise ApplicationHandlerStop


async def delete_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/delete from a caregiver: delete only their own link (asked first)."""
    link = await _is_caregiver(update, context)
    message = update.effective_message
    if link is None or message is None:
        return
    lang = link.language
    rows = [[(t(lang, "🗑 Yes, delete my link"), "cg:dy"), (t(lang, "No, keep it"), "cg:dn")]]
    await message.reply_text(
        t(lang, "This ends your link as a caregiver and deletes what this bot keeps about you. Delete?"),
        reply_markup=_markup(rows),
    )
    raise ApplicationHandlerStop


async def care_tick(holder: Any) -> None:
    """Unanswered care messages to the admins, and the caregivers' copies; queued for this tick."""
    s = svc(holder)
    now = s.clock.now()
    async with s.db.session() as db:
        escalated = await messages.escalate_unanswered(db, now, s.config)
        copies = await core.tick(db, now, s.config)
        await db.commit()
    if escalated or copies:
        log.info("care tick: %d message escalation(s), %d caregiver message(s)", len(escalated), copies)


def register(app: App) -> None:
    """Add /caregiver, the caregiver's link, commands and presses."""
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(CommandHandler("start", start_with_code, filters=private, has_args=True), group=GROUP)
    app.add_handler(CommandHandler("checkin", checkin_command, filters=private), group=GROUP)
    app.add_handler(CommandHandler("mydata", mydata_command, filters=private), group=GROUP)
    app.add_handler(CommandHandler("delete", delete_command, filters=private), group=GROUP)
    app.add_handler(CommandHandler("caregiver", caregiver_command, filters=private))
    app.add_handler(CallbackQueryHandler(on_button, pattern=r"^cg:"))
    app.add_handler(CallbackQueryHandler(on_proxy_answer, pattern=r"^cp:"))
    app.add_handler(CallbackQueryHandler(on_proxy_start, pattern=r"^cs:"))
    app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, on_text), group=TEXT_GROUP)
