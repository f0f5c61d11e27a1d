"""One patient's export from /patient: CSV files in a zip, or a FHIR R4 Bundle, sent as a document.

Callback data: ``st:ec:<patient id>`` (CSV), ``st:ef:<patient id>`` (FHIR).
"""

from __future__ import annotations

from rehab_bot import access, export
from rehab_bot.bot.services import svc
from rehab_bot.bot.staff.press import Press, patient_arg
from rehab_bot.i18n import translator


async def press_export(press: Press, fmt: str) -> None:
    """One patient's export as a document: CSV files in a zip, or a FHIR R4 Bundle."""
    patient = await patient_arg(press, access.Access.WRITE)
    _ = translator(press.staff.language)
    s = svc(press.context)
    if not s.config.privacy.health_data_in_chat:
        # Privacy mode: an export is health data; it is downloaded from the dashboard, not sent by Telegram.
        await press.answer(_("Privacy mode: download exports from the dashboard."), alert=True)
        return
    payload, filename = await export.for_staff(
        press.session,
        press.staff,
        patient,
        fmt,
        s.content,
        press.now,
        identifier_system=s.config.export.identifier_system,
    )
    await press.session.commit()
    await press.answer(_("Export on its way."))
    what = _("CSV files") if fmt == "csv" else _("FHIR R4 Bundle")
    await press.context.bot.send_document(
        press.staff.telegram_id,
        document=payload,
        filename=filename,
        caption=_("{alias}: {what} (pseudonymous; handle as health data).", alias=patient.alias, what=what),
    )
