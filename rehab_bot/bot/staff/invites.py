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

from rehab_bot import access, audit, invite
from rehab_bot import alert as alert_core
from rehab_bot import staff as core
from rehab_bot.bot.services import svc
from rehab_bot.bot.staff.press import ADMIN_ONLY, Press, begin, draft_for_press, prompt, retire_prompt, staff_command
from rehab_bot.content import Content
from rehab_bot.models import SURGERY_TYPES, Role, Staff, StaffDraft
from rehab_bot.schedule import local_date


def programme_choices(content: Content, surgery_type: str) -> list[tuple[str, str]]:
    """(id, name) of the programmes for this surgery type; every programme for "other"."""
    fitting = [p for p in content.programmes.values() if surgery_type == "other" or surgery_type in p.surgery_types]
    return [(p.id, p.name.get("en", p.id) + (" (example)" if p.example else "")) for p in fitting]


async def _suggest_alias(session: AsyncSession) -> str:
    for _ in range(20):
        alias = f"P-{secrets.randbelow(90000) + 10000}"
        if not await invite.alias_taken(session, alias):
            return alias
    raise access.StaffError("Could not find a free alias; please type one.")


STEP_TEXT = {
    "alias": (
        "New patient invitation, step 1 of 5.\nSend an alias for the patient: a pseudonym, not their name "
        "(3-24 letters, digits, - or _, with at least one digit, e.g. LWS-0412), or use the suggestion."
    ),
    "date": "Step 2 of 5: the date of surgery, e.g. 03.06.2026, 3.6.26 or 2026-06-03 (day first).",
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
            return f"The alias {alias} is taken; please choose another."
        draft.alias, draft.step = alias, "date"
    elif draft.step == "date":
        today = local_date(svc(context).config.clinic, now)
        draft.surgery_date, draft.step = invite.parse_surgery_date(text, today), "type"
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
            if await core.end_draft(fresh, staff) is not None:
                await fresh.commit()
        return
    await core.end_draft(session, staff)
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


async def press_invite_alias(press: Press) -> None:
    """ "Use P-12345": take the suggested alias."""
    draft = await draft_for_press(press, "invite", "alias")
    if draft is None:
        return
    if await invite.alias_taken(press.session, draft.alias):
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
    draft = await draft_for_press(press, "invite", "type")
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
    draft = await draft_for_press(press, "invite", "programme")
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
    draft = await draft_for_press(press, "invite", "therapist")
    if draft is None:
        return
    therapist = await press.session.get(Staff, press.int_arg(0))
    if therapist is None or not therapist.active:
        await press.answer("That staff member is no longer active.", alert=True)
        return
    await _finish_invite(press, draft, therapist.id)


@staff_command(admin_only=True)
async def staffinvite_command(
    update: Update, context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff
) -> None:
    """Start a one-time staff invitation (admins only): role, then name."""
    draft = await begin(context, session, staff, "staff_invite", "role")
    await prompt(
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
    draft = await draft_for_press(press, "staff_invite", "role")
    if draft is None:
        return
    role = press.args[0]
    if role not in (Role.THERAPIST.value, Role.ADMIN.value):
        raise ValueError("role")
    await press.answer()
    await press.edit(f"Role: {role}")
    draft.role, draft.step, draft.message_id = role, "name", None
    await prompt(
        press.context, press.session, press.staff, draft, "The new staff member's name (as colleagues see it):", []
    )


async def staff_invite_text(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft, text: str
) -> str | None:
    """The name, the last answer of /staffinvite."""
    if draft.step != "name":
        return "Please choose with the buttons above, or send /cancel."
    if not access.is_admin(staff):
        await core.end_draft(session, staff)
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
        return f"The name was refused: {exc}. Please send the name again."
    prompt = draft.message_id
    await core.end_draft(session, staff)
    await session.commit()
    await retire_prompt(context, staff, prompt)
    link = invite.deep_link(context.bot.username, made.code)
    expires = alert_core.local_time_text(made.expires_at, staff.timezone)
    await context.bot.send_photo(
        staff.telegram_id,
        photo=invite.qr_png(link),
        caption=f"Staff invitation for {name} ({draft.role}). Send this link to them only; it works once, "
        f"until {expires}.\n{link}",
    )
    return None
