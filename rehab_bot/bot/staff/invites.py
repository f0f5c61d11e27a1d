"""/invite (a patient: alias, surgery date and type, programme, therapist) and /staffinvite (admins).

Both are conversations kept in staff_draft; the core (rehab_bot.invite,
rehab_bot.staff) validates and creates. Callback data: ``st:ia``, ``st:is:<type>``,
``st:ip:<programme>``, ``st:it:<staff id>``, ``st:sr:<role>``.
"""

from __future__ import annotations

import secrets

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import (
    Update,
)
from telegram.ext import (
    ContextTypes,
)

from rehab_bot import access, audit, caseload, invite
from rehab_bot import alert as alert_core
from rehab_bot import staff as core
from rehab_bot.bot.services import svc
from rehab_bot.bot.staff.patients import surgery_in
from rehab_bot.bot.staff.press import ADMIN_ONLY, Press, begin, draft_for_press, prompt, retire_prompt, staff_command
from rehab_bot.content import Content
from rehab_bot.i18n import N_, t, translator
from rehab_bot.models import SURGERY_TYPES, Role, Staff, StaffDraft
from rehab_bot.schedule import local_date


def programme_choices(content: Content, surgery_type: str, lang: str = "en") -> list[tuple[str, str]]:
    """(id, name in lang) of the programmes for this surgery type; every programme for "other"."""
    fitting = [p for p in content.programmes.values() if surgery_type == "other" or surgery_type in p.surgery_types]
    return [(p.id, p.title(lang) + (t(lang, " (example)") if p.example else "")) for p in fitting]


async def _suggest_alias(session: AsyncSession) -> str:
    for _ in range(20):
        alias = f"P-{secrets.randbelow(90000) + 10000}"
        if not await invite.alias_taken(session, alias):
            return alias
    raise access.StaffError(N_("Could not find a free alias; please type one."))


STEP_TEXT = {
    "alias": N_(
        "New patient invitation, step 1 of 5.\nSend an alias for the patient: a pseudonym, not their name "
        "(3-24 letters A-Z without accents, digits, - or _, with at least one digit, e.g. LWS-0412), or use the "
        "suggestion."
    ),
    "date": N_("Step 2 of 5: the date of surgery, e.g. 03.06.2026, 3.6.26 or 2026-06-03 (day first)."),
    "type": N_("Step 3 of 5: the type of surgery."),
    "programme": N_("Step 4 of 5: the exercise programme."),
    "therapist": N_("Step 5 of 5: the responsible therapist."),
}
# The surgery type buttons (models.SURGERY_TYPES), as staff read them.
SURGERY_BUTTONS = {"lumbar": N_("Lumbar"), "cervical": N_("Cervical"), "other": N_("Other")}
# A staff member's role as staff read it (Staff.role holds the value).
ROLE_LABELS = {"therapist": N_("therapist"), "admin": N_("admin")}
CHOOSE_WITH_BUTTONS = N_("Please choose with the buttons above, or send /cancel.")


async def _ask(context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft) -> None:
    """Ask the question of the draft's current step."""
    _ = translator(staff.language)
    rows: list[list[tuple[str, str]]] = []
    text = _(STEP_TEXT[draft.step]) if draft.step in STEP_TEXT else ""
    if draft.step == "alias":
        rows = [[(_("Use {alias}", alias=draft.alias), "st:ia")]]
    elif draft.step == "type":
        rows = [[(_(SURGERY_BUTTONS.get(kind, kind)), f"st:is:{kind}") for kind in SURGERY_TYPES]]
    elif draft.step == "programme":
        choices = programme_choices(svc(context).content, draft.surgery_type, staff.language)
        rows = [[(name, f"st:ip:{pid}")] for pid, name in choices]
    elif draft.step == "therapist":
        members = [m for m in await core.staff_members(session) if m.id != staff.id]
        rows = [[(_("Me ({name})", name=staff.name), f"st:it:{staff.id}")]]
        rows += [[(m.name, f"st:it:{m.id}")] for m in members]
    await prompt(context, session, staff, draft, text, rows)


@staff_command()
async def invite_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """Start a patient invitation: alias, surgery date and type, programme, therapist."""
    draft = await begin(context, session, staff, "invite", "alias", alias=await _suggest_alias(session))
    await _ask(context, session, staff, draft)


async def invite_text(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft, text: str
) -> str | None:
    """A typed answer in the /invite conversation; returns an error to show, or None."""
    now = svc(context).clock.now()
    if draft.step == "alias":
        alias = invite.validate_alias(text)
        if await invite.alias_taken(session, alias):
            return t(staff.language, "The alias {alias} is taken; please choose another.", alias=alias)
        draft.alias, draft.step = alias, "date"
    elif draft.step == "date":
        today = local_date(svc(context).config.clinic, now)
        draft.surgery_date, draft.step = invite.parse_surgery_date(text, today), "type"
    else:
        return t(staff.language, CHOOSE_WITH_BUTTONS)
    await _ask(context, session, staff, draft)
    return None


async def _finish_invite(press: Press, draft: StaffDraft, therapist_id: int | None) -> None:
    """All answers are in: create the patient and the invite, send link and QR code."""
    context, session, staff = press.context, press.session, press.staff
    lang = staff.language  # read now: a rollback expires the row
    _ = translator(lang)
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
        await press.answer(_("Not created."))
        await press.reply(
            _(
                "The invitation was not created: {problem}. Send /invite to start again.",
                problem=exc.text(lang),
            )
        )
        async with s.db.session() as fresh:
            if await core.end_draft(fresh, staff) is not None:
                await fresh.commit()
        return
    await core.end_draft(session, staff)
    await session.commit()
    link = invite.deep_link(context.bot.username, made.invite.code)
    therapist = await session.get(Staff, made.patient.therapist_id) if made.patient.therapist_id else None
    await press.answer(_("Invitation created."))
    await press.edit(
        _(
            "Invitation for {alias}: surgery {surgery} on {date}, programme {programme}, therapist {therapist}.",
            alias=made.patient.alias,
            surgery=surgery_in(draft.surgery_type, staff.language),
            date=draft.surgery_date.isoformat(),
            programme=made.programme.title(staff.language),
            therapist=therapist.name if therapist else "–",
        )
    )
    expires = alert_core.local_time_text(made.invite.expires_at, staff.timezone)
    # One message: the QR code to print, with the link to forward in its caption.
    await context.bot.send_photo(
        staff.telegram_id,
        photo=invite.qr_png(link),
        caption=_(
            "Invitation for {alias}: forward this link to the patient, or print the QR code. It works once, until "
            "{expires}.",
            alias=made.patient.alias,
            expires=expires,
        )
        + f"\n{link}",
    )


async def press_invite_alias(press: Press) -> None:
    """ "Use P-12345": take the suggested alias."""
    draft = await draft_for_press(press, "invite", "alias")
    if draft is None:
        return
    if await invite.alias_taken(press.session, draft.alias):
        draft.alias = await _suggest_alias(press.session)
        await press.answer(t(press.staff.language, "That alias was just taken; here is another."))
        await _ask(press.context, press.session, press.staff, draft)
        return
    await press.answer()
    await press.edit(t(press.staff.language, "Alias: {alias}", alias=draft.alias))
    draft.step, draft.message_id = "date", None
    await _ask(press.context, press.session, press.staff, draft)


async def press_invite_type(press: Press) -> None:
    """The surgery type."""
    draft = await draft_for_press(press, "invite", "type")
    if draft is None:
        return
    surgery_type = press.args[0]
    if surgery_type not in SURGERY_TYPES:
        raise ValueError("surgery type")
    if not programme_choices(svc(press.context).content, surgery_type):
        await press.answer(
            t(
                press.staff.language,
                "No programme is set up for {surgery} surgery; choose Other or ask an admin.",
                surgery=surgery_in(surgery_type, press.staff.language),
            ),
            alert=True,
        )
        return
    await press.answer()
    await press.edit(
        t(
            press.staff.language,
            "Surgery: {surgery}",
            surgery=surgery_in(surgery_type, press.staff.language),
        )
    )
    draft.surgery_type, draft.step, draft.message_id = surgery_type, "programme", None
    await _ask(press.context, press.session, press.staff, draft)


async def press_invite_programme(press: Press) -> None:
    """The programme."""
    draft = await draft_for_press(press, "invite", "programme")
    if draft is None:
        return
    programme_id = press.args[0]
    if programme_id not in dict(programme_choices(svc(press.context).content, draft.surgery_type)):
        await press.answer(t(press.staff.language, "That programme is not available."), alert=True)
        return
    if [m.id for m in await core.staff_members(press.session)] == [press.staff.id]:
        # The clinic's only staff member is the responsible therapist by default; the summary names them.
        draft.programme_id = programme_id
        await _finish_invite(press, draft, press.staff.id)
        return
    await press.answer()
    name = caseload.programme_title(svc(press.context).content, programme_id, press.staff.language)
    await press.edit(t(press.staff.language, "Programme: {name}", name=name))
    draft.programme_id, draft.step, draft.message_id = programme_id, "therapist", None
    await _ask(press.context, press.session, press.staff, draft)


async def press_invite_therapist(press: Press) -> None:
    """The responsible therapist: the last answer, so the invitation is made."""
    draft = await draft_for_press(press, "invite", "therapist")
    if draft is None:
        return
    therapist = await press.session.get(Staff, press.int_arg(0))
    if therapist is None or not therapist.active:
        await press.answer(t(press.staff.language, "That staff member is no longer active."), alert=True)
        return
    await _finish_invite(press, draft, therapist.id)


@staff_command(admin_only=True)
async def staffinvite_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """Start a one-time staff invitation (admins only): role, then name."""
    draft = await begin(context, session, staff, "staff_invite", "role")
    _ = translator(staff.language)
    await prompt(
        context,
        session,
        staff,
        draft,
        _("New staff invitation: which role?"),
        [[(_("Therapist"), "st:sr:therapist"), (_("Admin"), "st:sr:admin")]],
    )


async def press_staff_role(press: Press) -> None:
    """The new staff member's role (admins only)."""
    if not access.is_admin(press.staff):
        await press.answer(t(press.staff.language, ADMIN_ONLY), alert=True)
        return
    draft = await draft_for_press(press, "staff_invite", "role")
    if draft is None:
        return
    role = press.args[0]
    if role not in (Role.THERAPIST.value, Role.ADMIN.value):
        raise ValueError("role")
    _ = translator(press.staff.language)
    await press.answer()
    await press.edit(_("Role: {role}", role=_(ROLE_LABELS[role])))
    draft.role, draft.step, draft.message_id = role, "name", None
    await prompt(
        press.context, press.session, press.staff, draft, _("The new staff member's name (as colleagues see it):"), []
    )


async def staff_invite_text(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft, text: str
) -> str | None:
    """The name, the last answer of /staffinvite."""
    _ = translator(staff.language)
    if draft.step != "name":
        return _(CHOOSE_WITH_BUTTONS)
    if not access.is_admin(staff):
        await core.end_draft(session, staff)
        await session.commit()
        return _(ADMIN_ONLY)
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
        return _("The name was refused: {problem}. Please send the name again.", problem=exc.text(staff.language))
    prompt = draft.message_id
    await core.end_draft(session, staff)
    await session.commit()
    await retire_prompt(context, staff, prompt)
    link = invite.deep_link(context.bot.username, made.code)
    expires = alert_core.local_time_text(made.expires_at, staff.timezone)
    await context.bot.send_photo(
        staff.telegram_id,
        photo=invite.qr_png(link),
        caption=_(
            "Staff invitation for {name} ({role}). Send this link to them only; it works once, until {expires}.",
            name=name,
            role=_(ROLE_LABELS.get(draft.role, draft.role)),
            expires=expires,
        )
        + f"\n{link}",
    )
    return None
