"""The patient page and its actions: record, charts, answers, notes, alerts, programme, pause/resume/discharge, exports.

Thin: every change goes through the same core functions as the chat's buttons (rehab_bot.staff:
pause, resume, discharge, acknowledge; rehab_bot.export.for_staff), which check the staff member's
right to change this patient (rehab_bot.access) and write the audit row. A colleague's patient is
shown read-only, and a forged POST for one is refused (403) by the core.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn

from aiohttp import web
from aiohttp_session import get_session
from sqlmodel.ext.asyncio.session import AsyncSession
from wtforms import BooleanField, SelectField
from wtforms.validators import DataRequired

from rehab_bot import alert_review, audit, export, patient_record
from rehab_bot import caregiver as caregiver_core
from rehab_bot import caseload as caseload_core
from rehab_bot import message as message_core
from rehab_bot import patient as patient_core
from rehab_bot.access import Access, Forbidden, StaffError, access
from rehab_bot.i18n import N_, t
from rehab_bot.models import Patient, Staff
from rehab_bot.patient import STATUS_LABELS
from rehab_bot.web.auth import allow, db, signed_in_staff
from rehab_bot.web.context import context
from rehab_bot.web.forms import Form, bind
from rehab_bot.web.outcome_charts import template_values as outcome_values
from rehab_bot.web.pages import language, render, url_id

FLASH = "flash"
# A reply the server refused, as typed ({"message": id, "text": ...}), for the page rendered in answer
# to it (web/thread.reply): a request key, not the cookie session, which a long reply would overflow.
REPLY_DRAFT = "reply_draft"
PAUSE_CHOICES = [("3", N_("3 days")), ("7", N_("1 week")), ("14", N_("2 weeks")), ("0", N_("Until resumed"))]
CAREGIVER_ITEMS = [
    ("reminders", N_("session reminders")),
    ("missed", N_("two missed sessions in a row")),
    ("emergencies", N_("emergency red flags")),
    ("weekly", N_("weekly progress")),
]
DAY_LABELS = {
    "done": N_("done"),
    "partly": N_("partly"),
    "skipped": N_("skipped"),
    "missed": N_("missed"),
    "open": N_("not answered yet"),
    "none": N_("no sessions"),
}


class PauseForm(Form):
    days = SelectField(choices=[value for value, _ in PAUSE_CHOICES], validators=[DataRequired()])


class ConfirmForm(Form):
    confirm = BooleanField(validators=[DataRequired()])


class ActionForm(Form):
    """A button that changes something: the CSRF token is all it carries."""


async def load(request: web.Request, needed: Access) -> tuple[AsyncSession, Staff, Patient]:
    """The patient of the URL if the staff member may see (READ) or change (WRITE) them; else 404/403."""
    session, staff = db(request), signed_in_staff(request)
    patient = await session.get(Patient, url_id(request))
    if patient is None or patient.status == "stopped":
        raise web.HTTPNotFound()
    if access(staff, patient) < needed:
        raise web.HTTPForbidden()
    return session, staff, patient


async def flash(request: web.Request, msgid: str, /, **kwargs: object) -> None:
    """A one-line message shown on the next page, in the visitor's language (placeholders filled in)."""
    (await get_session(request))[FLASH] = t(language(request), msgid, **kwargs)[:300]


@asynccontextmanager
async def staff_change(request: web.Request, session: AsyncSession, page: str) -> AsyncIterator[None]:
    """Around a change a staff member asked for: Forbidden is a 403; any other refusal (a
    StaffError) is rolled back and shown as a flash on ``page``."""
    try:
        yield
    except Forbidden as exc:
        raise web.HTTPForbidden() from exc
    except StaffError as exc:
        await session.rollback()
        await flash(request, exc.msgid, **exc.kwargs)
        raise web.HTTPSeeOther(page) from exc


async def changed(request: web.Request, session: AsyncSession, page: str, message: str, **kwargs: object) -> NoReturn:
    """A change went through: commit it and go back to ``page``, which says so (placeholders filled in)."""
    await session.commit()
    await flash(request, message, **kwargs)
    raise web.HTTPSeeOther(page)


async def take_flash(request: web.Request) -> str:
    session = await get_session(request)
    return str(session.pop(FLASH, "")) if FLASH in session else ""


def _chart(points: list[patient_record.Point]) -> dict[str, list[Any]]:
    return {"x": [int(p.at.timestamp()) for p in points], "y": [p.value for p in points]}


@allow("staff")
async def patient_page(request: web.Request) -> web.StreamResponse:
    """Everything about one patient the staff member may see."""
    session, staff, patient = await load(request, Access.READ)
    ctx = context(request)
    now = ctx.clock.now()
    detail = await caseload_core.patient_detail(
        session, staff, patient, now, ctx.content, recent=20, lang=language(request)
    )
    calendar = await patient_record.calendar(session, patient, now)
    pain = await patient_record.series(session, patient, caseload_core.PAIN_ITEMS)
    mood = await patient_record.series(session, patient, caseload_core.MOOD_ITEMS)
    caregivers = await caregiver_core.caregivers_of(session, patient)
    acknowledged = await alert_review.acknowledged_of(session, patient)  # alert accuracy: verdict or buttons
    outcome_charts = await outcome_values(session, patient, ctx.content, language(request))
    # The reads first: on SQLite the first write (this audit row, flushed by the next query) takes
    # the database's write lock until the commit, and the bot's own writes wait for it.
    audit.record(
        session,
        action=audit.VIEW_PATIENT,
        now=now,
        staff=staff,
        actor=audit.web_actor(staff.telegram_id),
        patient_id=patient.id,
        detail="web",
    )
    messages = await message_core.thread(session, staff, patient, now)  # READ checked and audited by the core
    authors = await message_core.staff_names(session, messages)
    await session.commit()
    lang = language(request)
    answers = [(line, caseload_core.answer_text(ctx.content, line, lang)) for line in detail.answers]
    charts = {"pain": _chart(pain), "mood": _chart(mood)}
    return await render(
        request,
        "patient.html",
        {
            "detail": detail,
            "p": patient,
            "can_change": detail.access == Access.WRITE,
            "acknowledged": acknowledged,
            "me": staff.id,
            "calendar": calendar,
            "calendar_since": patient_record.since(calendar),
            "day_labels": DAY_LABELS,
            "answers": answers,
            "pain": pain,
            "mood": mood,
            "charts": charts,
            "pause_choices": PAUSE_CHOICES,
            "flash": await take_flash(request),
            "tz": staff.timezone,
            "status_labels": STATUS_LABELS,
            "messages": messages,
            "authors": authors,
            "caregivers": caregivers,
            "receives": {c.id: [label for key, label in CAREGIVER_ITEMS if getattr(c, key)] for c in caregivers},
            "reply_max": message_core.MAX_TEXT,
            "reply_draft": request.get(REPLY_DRAFT, {}),
            **outcome_charts,
        },
    )


async def _change(request: web.Request, action: str) -> web.StreamResponse:
    session, staff, patient = await load(request, Access.READ)
    ctx = context(request)
    now = ctx.clock.now()
    page = f"/patients/{patient.id}"  # read before a rollback expires the row
    async with staff_change(request, session, page):
        if action == "pause":
            form = await bind(PauseForm, request, await request.post())
            if not form.validate():
                raise web.HTTPBadRequest()
            until = patient_core.pause_for(patient, int(form.days.data), now)
            await patient_core.pause(session, patient, until, now, staff=staff)
            message = N_("Reminders are paused.")
        elif action == "resume":
            await patient_core.resume(session, patient, content=ctx.content, now=now, staff=staff)
            message = N_("Reminders are on again.")
        else:
            form = await bind(ConfirmForm, request, await request.post())
            if not form.validate():
                await flash(request, N_("Tick the box to confirm the discharge."))
                raise web.HTTPSeeOther(page)
            await caseload_core.discharge(session, staff, patient, now)
            message = N_("The patient is discharged: no more reminders.")
    await changed(request, session, page, message)


@allow("staff")
async def pause(request: web.Request) -> web.StreamResponse:
    return await _change(request, "pause")


@allow("staff")
async def resume(request: web.Request) -> web.StreamResponse:
    return await _change(request, "resume")


@allow("staff")
async def discharge(request: web.Request) -> web.StreamResponse:
    return await _change(request, "discharge")


@allow("staff")
async def download(request: web.Request) -> web.StreamResponse:
    """CSV (zip) or FHIR R4 (JSON) of one patient, for staff who may change them."""
    session, staff, patient = await load(request, Access.READ)
    ctx = context(request)
    fmt = request.match_info["fmt"]
    try:
        payload, filename = await export.for_staff(
            session,
            staff,
            patient,
            fmt,
            ctx.content,
            ctx.clock.now(),
            identifier_system=ctx.config.export.identifier_system,
            actor=audit.web_actor(staff.telegram_id),
        )
    except Forbidden as exc:
        raise web.HTTPForbidden() from exc
    except export.ExportError as exc:
        raise web.HTTPNotFound() from exc
    await session.commit()
    kind = "application/zip" if fmt == "csv" else "application/fhir+json"
    return web.Response(
        body=payload,
        content_type=kind,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def setup(app: web.Application) -> None:
    app.router.add_get(r"/patients/{id:\d+}", patient_page, name="patient")
    app.router.add_post(r"/patients/{id:\d+}/pause", pause)
    app.router.add_post(r"/patients/{id:\d+}/resume", resume)
    app.router.add_post(r"/patients/{id:\d+}/discharge", discharge)
    app.router.add_get(r"/patients/{id:\d+}/export/{fmt:csv|fhir}", download)
