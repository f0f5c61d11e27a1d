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
from rehab_bot.models import Patient, Staff, StaffDraft

PAUSE_CHOICES = ((3, "3 days"), (7, "1 week"), (14, "2 weeks"), (0, "Until resumed"))


async def press_programme_menu(press: Press) -> None:
    """ "Programme": offer the programmes that fit the patient's surgery."""
    patient = await patient_arg(press, access.Access.WRITE)
    choices = programme_choices(svc(press.context).content, patient.surgery_type)
    await press.answer()
    rows = [[(name, f"st:pc:{patient.id}:{pid}")] for pid, name in choices]
    await press.reply(
        f"Programme for {patient.alias} (now: {patient.programme_id or '–'}). Choose the new one:",
        keyboard([*rows, [("Keep as is", "st:n")]]),
    )


async def press_programme_set(press: Press) -> None:
    """A programme chosen for a patient."""
    patient = await patient_arg(press, access.Access.WRITE)
    programme_id = press.args[1]
    content = svc(press.context).content
    if patient.programme_id == programme_id:
        await press.answer("No change: the patient is on this programme already.")
        await press.edit(f"{patient.alias} stays on {programme_id}.")
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
    await press.answer("Programme changed.")
    name = content.programmes[programme_id].name.get("en", programme_id)
    times = ", ".join(t for t in patient.session_times.split(",") if t) or "–"
    await press.edit(f"{patient.alias} is now on {name}. Session times: {times}.")


async def press_times(press: Press) -> None:
    """ "Session times": ask for the new times (a conversation kept in staff_draft)."""
    patient = await patient_arg(press, access.Access.WRITE)
    await press.answer()
    current = ", ".join(caseload.session_times_of(patient, svc(press.context).content, press.now)) or "none"
    draft = await begin(press.context, press.session, press.staff, "times", "times", patient_id=patient.id)
    await prompt(
        press.context,
        press.session,
        press.staff,
        draft,
        f"New session times for {patient.alias} (now {current}): send them as HH:MM, e.g. 08:00 13:00 18:00. "
        "They are fitted to the number of sessions of the patient's current phase.",
        [],
    )


async def times_text(
    context: ContextTypes.DEFAULT_TYPE, session: AsyncSession, staff: Staff, draft: StaffDraft, text: str
) -> str | None:
    patient = await session.get(Patient, draft.patient_id) if draft.patient_id is not None else None
    if patient is None:
        await core.end_draft(session, staff)
        await session.commit()
        return "This patient no longer exists."
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
        refused = str(exc)
    await core.end_draft(session, staff)
    await session.commit()
    await retire_prompt(context, staff, prompt)
    if refused is not None:
        return refused
    result = ", ".join(t for t in patient.session_times.split(",") if t)
    await context.bot.send_message(
        staff.telegram_id, f"Session times for {patient.alias}: {result}. They apply from the next session."
    )
    return None


async def press_pause_menu(press: Press) -> None:
    """ "Pause": how long."""
    patient = await patient_arg(press, access.Access.WRITE)
    await press.answer()
    rows = [[(label, f"st:pd:{patient.id}:{days}") for days, label in PAUSE_CHOICES[:2]]]
    rows.append([(label, f"st:pd:{patient.id}:{days}") for days, label in PAUSE_CHOICES[2:]])
    await press.reply(f"Pause reminders for {patient.alias}:", keyboard([*rows, [("Keep as is", "st:n")]]))


async def press_pause(press: Press) -> None:
    """A pause length chosen."""
    patient = await patient_arg(press, access.Access.WRITE)
    days = press.int_arg(1)
    if days not in {d for d, _ in PAUSE_CHOICES}:
        raise ValueError("pause length")
    until = patient_core.pause_for(patient, days, press.now)
    await patient_core.pause(press.session, patient, until, press.now, staff=press.staff)
    await press.session.commit()
    await press.answer("Paused.")
    when = f"until {until.isoformat()} (inclusive)" if until else "until you resume them"
    await press.edit(f"Reminders for {patient.alias} are paused {when}.")


async def press_resume(press: Press) -> None:
    """ "Resume" on a paused patient."""
    patient = await patient_arg(press, access.Access.WRITE)
    await patient_core.resume(
        press.session, patient, content=svc(press.context).content, now=press.now, staff=press.staff
    )
    await press.session.commit()
    await press.answer("Resumed.")
    await press.reply(f"Reminders for {patient.alias} are on again.")


async def press_discharge_ask(press: Press) -> None:
    """ "Discharge": ask to confirm."""
    patient = await patient_arg(press, access.Access.WRITE)
    await press.answer()
    await press.reply(
        f"Discharge {patient.alias}? Reminders and check-ins stop for good; the data stays for export.",
        keyboard([[("Discharge", f"st:dy:{patient.id}"), ("Keep", "st:n")]]),
    )


async def press_discharge(press: Press) -> None:
    """Discharge confirmed."""
    patient = await patient_arg(press, access.Access.WRITE)
    changed = await caseload.discharge(press.session, press.staff, patient, press.now)
    await press.session.commit()
    await press.answer("Discharged." if changed else "Already discharged.")
    await press.edit(f"{patient.alias} is discharged.")


async def press_dismiss(press: Press) -> None:
    """ "Keep as is": take the choices away."""
    await press.answer("No change.")
    await press.edit("No change.")
