"""Changes to a patient's care from /patient: programme, session times, pause, resume, discharge.

Each press rechecks the staff member's access (rehab_bot.access via
press.patient_arg) and calls the core (rehab_bot.caseload; pause and resume are
rehab_bot.patient's, the same as the patient's own), which audits the change.
Callback data: ``st:pp|pc|pt|pz|pd|pr|dc|dy:<patient id>[:<arg>]``, ``st:n`` (keep as is).
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram.ext import (
    ContextTypes,
)

from rehab_bot import access, caseload
from rehab_bot import patient as patient_core
from rehab_bot import staff as core
from rehab_bot.bot.services import svc
from rehab_bot.bot.staff.invites import programme_choices
from rehab_bot.bot.staff.press import Press, begin, keyboard, patient_arg, prompt, retire_prompt
from rehab_bot.i18n import N_, t, translator
from rehab_bot.models import Patient, Staff, StaffDraft

PAUSE_CHOICES = ((3, N_("3 days")), (7, N_("1 week")), (14, N_("2 weeks")), (0, N_("Until resumed")))
KEEP_AS_IS = N_("Keep as is")


async def press_programme_menu(press: Press) -> None:
    """ "Programme": offer the programmes that fit the patient's surgery."""
    patient = await patient_arg(press, access.Access.WRITE)
    lang = press.staff.language
    _ = translator(lang)
    content = svc(press.context).content
    choices = programme_choices(content, patient.surgery_type, lang)
    now = await caseload.programme_name_of(press.session, patient, content, lang)
    await press.answer()
    rows = [[(name, f"st:pc:{patient.id}:{pid}")] for pid, name in choices]
    await press.reply(
        _(
            "Programme for {alias} (now: {programme}). Choose the new one:",
            alias=patient.alias,
            programme=now or "–",
        ),
        keyboard([*rows, [(_(KEEP_AS_IS), "st:n")]]),
    )


async def press_programme_set(press: Press) -> None:
    """A programme chosen for a patient."""
    patient = await patient_arg(press, access.Access.WRITE)
    programme_id = press.args[1]
    content = svc(press.context).content
    lang = press.staff.language
    _ = translator(lang)
    if patient.programme_id == programme_id:
        await press.answer(_("No change: the patient is on this programme already."))
        name = caseload.programme_title(content, programme_id, lang)
        await press.edit(_("{alias} stays on {programme}.", alias=patient.alias, programme=name))
        return
    delivery = svc(press.context).config.delivery
    quiet = (delivery.quiet_hours_start, delivery.quiet_hours_end)
    await caseload.change_programme(
        press.session,
        press.staff,
        patient,
        programme_id,
        content,
        press.now,
        quiet=quiet,
        neutral=not svc(press.context).config.privacy.health_data_in_chat,
    )
    await press.session.commit()
    await press.answer(_("Programme changed."))
    name = caseload.programme_title(content, programme_id, lang)
    times = ", ".join(time for time in patient.session_times.split(",") if time) or "–"
    await press.edit(
        _("{alias} is now on {programme}. Session times: {times}.", alias=patient.alias, programme=name, times=times)
    )


async def press_times(press: Press) -> None:
    """ "Session times": ask for the new times (a conversation kept in staff_draft)."""
    patient = await patient_arg(press, access.Access.WRITE)
    await press.answer()
    _ = translator(press.staff.language)
    current = ", ".join(caseload.session_times_of(patient, svc(press.context).content, press.now)) or _("none")
    draft = await begin(press.context, press.session, press.staff, "times", "times", patient_id=patient.id)
    await prompt(
        press.context,
        press.session,
        press.staff,
        draft,
        _(
            "New session times for {alias} (now {times}): send them as HH:MM, e.g. 08:00 13:00 18:00. "
            "They are fitted to the number of sessions of the patient's current phase.",
            alias=patient.alias,
            times=current,
        ),
        [],
    )


async def times_text(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft, text: str
) -> str | None:
    patient = await session.get(Patient, draft.patient_id) if draft.patient_id is not None else None
    if patient is None:
        await core.end_draft(session, staff)
        await session.commit()
        return t(staff.language, "This patient no longer exists.")
    times = core.parse_times(text)
    delivery = svc(context).config.delivery
    quiet = (delivery.quiet_hours_start, delivery.quiet_hours_end)
    prompt = draft.message_id
    refused = None
    try:
        await caseload.change_session_times(
            session,
            staff,
            patient,
            times,
            svc(context).content,
            svc(context).clock.now(),
            quiet=quiet,
            neutral=not svc(context).config.privacy.health_data_in_chat,
        )
    except caseload.Discharged as exc:  # nothing was changed, and nothing to retype: the conversation ends
        refused = exc.text(staff.language)
    await core.end_draft(session, staff)
    await session.commit()
    await retire_prompt(context, staff, prompt)
    if refused is not None:
        return refused
    result = ", ".join(time for time in patient.session_times.split(",") if time)
    await context.bot.send_message(
        staff.telegram_id,
        t(
            staff.language,
            "Session times for {alias}: {times}. They apply from the next session.",
            alias=patient.alias,
            times=result,
        ),
    )
    return None


async def press_pause_menu(press: Press) -> None:
    """ "Pause": how long."""
    patient = await patient_arg(press, access.Access.WRITE)
    await press.answer()
    _ = translator(press.staff.language)
    rows = [[(_(label), f"st:pd:{patient.id}:{days}") for days, label in PAUSE_CHOICES[:2]]]
    rows.append([(_(label), f"st:pd:{patient.id}:{days}") for days, label in PAUSE_CHOICES[2:]])
    await press.reply(
        _("Pause reminders for {alias}:", alias=patient.alias), keyboard([*rows, [(_(KEEP_AS_IS), "st:n")]])
    )


async def press_pause(press: Press) -> None:
    """A pause length chosen."""
    patient = await patient_arg(press, access.Access.WRITE)
    days = press.int_arg(1)
    if days not in {d for d, _ in PAUSE_CHOICES}:
        raise ValueError("pause length")
    until = patient_core.pause_for(patient, days, press.now)
    await patient_core.pause(press.session, patient, until, press.now, staff=press.staff)
    await press.session.commit()
    _ = translator(press.staff.language)
    await press.answer(_("Paused."))
    if until:
        text = _(
            "Reminders for {alias} are paused until {day} (inclusive).", alias=patient.alias, day=until.isoformat()
        )
    else:
        text = _("Reminders for {alias} are paused until you resume them.", alias=patient.alias)
    await press.edit(text)


async def press_resume(press: Press) -> None:
    """ "Resume" on a paused patient."""
    patient = await patient_arg(press, access.Access.WRITE)
    await patient_core.resume(
        press.session, patient, content=svc(press.context).content, now=press.now, staff=press.staff
    )
    await press.session.commit()
    _ = translator(press.staff.language)
    await press.answer(_("Resumed."))
    await press.reply(_("Reminders for {alias} are on again.", alias=patient.alias))


async def press_discharge_ask(press: Press) -> None:
    """ "Discharge": ask to confirm."""
    patient = await patient_arg(press, access.Access.WRITE)
    await press.answer()
    _ = translator(press.staff.language)
    await press.reply(
        _(
            "Discharge {alias}? Reminders and check-ins stop for good; the data stays for export.",
            alias=patient.alias,
        ),
        keyboard([[(_("Discharge"), f"st:dy:{patient.id}"), (_("Keep"), "st:n")]]),
    )


async def press_discharge(press: Press) -> None:
    """Discharge confirmed."""
    patient = await patient_arg(press, access.Access.WRITE)
    changed = await caseload.discharge(press.session, press.staff, patient, press.now)
    await press.session.commit()
    _ = translator(press.staff.language)
    await press.answer(_("Discharged.") if changed else _("Already discharged."))
    await press.edit(_("{alias} is discharged.", alias=patient.alias))


async def press_dismiss(press: Press) -> None:
    """ "Keep as is": take the choices away."""
    await press.answer(t(press.staff.language, "No change."))
    await press.edit(t(press.staff.language, "No change."))
