"""One patient's export from /patient: CSV files in a zip, or a FHIR R4 Bundle, sent as a document.

Callback data: ``st:ec:<patient id>`` (CSV), ``st:ef:<patient id>`` (FHIR).
"""

from __future__ import annotations

from rehab_bot import access, audit, export
from rehab_bot.bot.services import svc
from rehab_bot.bot.staff.press import Press, patient_arg


async def press_export(press: Press, fmt: str) -> None:
    """One patient's export as a document: CSV files in a zip, or a FHIR R4 Bundle."""
    patient = await patient_arg(press, access.Access.WRITE)
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
