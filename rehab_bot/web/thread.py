"""The patient page's message thread and caregivers: reply, mark read, see a photo, remove a caregiver.

Thin: the same core calls as the chat's Reply / Mark read buttons (rehab_bot.message.reply,
mark_read, photo_for_staff) and, for caregivers, rehab_bot.caregiver.remove_by_staff. The core
checks the staff member's right to see (READ) or change (WRITE) the patient on every call and
writes the audit row; this module parses the URL and the form, maps Forbidden to 403 and
StaffError to a one-line flash on the patient page.
"""

from __future__ import annotations

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession
from wtforms import TextAreaField
from wtforms.validators import DataRequired

from rehab_bot import caregiver as caregiver_core
from rehab_bot import media
from rehab_bot import message as message_core
from rehab_bot.access import Access, Forbidden, StaffError
from rehab_bot.config import photo_dir
from rehab_bot.i18n import N_
from rehab_bot.models import Caregiver, CareMessage, Staff
from rehab_bot.web.auth import allow
from rehab_bot.web.context import context
from rehab_bot.web.forms import Form, bind, line_breaks
from rehab_bot.web.pages import url_id
from rehab_bot.web.patients import REPLY_DRAFT, changed, flash, load, patient_page, staff_change


class ReplyForm(Form):
    text = TextAreaField(validators=[DataRequired()], filters=[line_breaks])


async def _message(request: web.Request, needed: Access) -> tuple[AsyncSession, Staff, str, int]:
    """(db session, staff, patient page, care message id) of the URL: 404 unless the message is the
    patient's; 403 for a staff member without the access (the core checks again)."""
    session, staff, patient = await load(request, needed)
    message = await session.get(CareMessage, url_id(request, "mid"))
    if message is None or message.patient_id != patient.id or message.id is None:
        raise web.HTTPNotFound()
    return session, staff, f"/patients/{patient.id}", message.id


@allow("staff")
async def reply(request: web.Request) -> web.StreamResponse:
    """Reply to a patient's message: queued to the patient's chat as a Telegram reply, labelled."""
    session, staff, page, message_id = await _message(request, Access.WRITE)
    ctx = context(request)
    form = await bind(ReplyForm, request, await request.post())
    if not form.validate():
        await flash(request, N_("Write a reply first."))
        raise web.HTTPSeeOther(page)
    text = str(form.text.data)
    try:
        async with staff_change(request, session, page):
            await message_core.reply(
                session,
                staff,
                message_id,
                text,
                ctx.clock.now(),
                ctx.config.clinic,
                neutral=not ctx.config.privacy.health_data_in_chat,
            )
    except web.HTTPSeeOther:
        # Refused (the patient can no longer be reached, the reply is too long): the patient page is
        # rendered here, the reason on top and the reply as typed in its message's box, opened, to send
        # again. Not a redirect: the text would have to wait in the cookie session, which a long reply
        # overflows (the browser then drops the cookie, and the reason with it).
        request[REPLY_DRAFT] = {"message": message_id, "text": text}
        await session.refresh(staff)  # the refusal's rollback expired the signed-in staff member's row
        return await patient_page(request)
    await changed(request, session, page, N_("Your reply is on its way to the patient."))


@allow("staff")
async def mark_read(request: web.Request) -> web.StreamResponse:
    """Mark a patient's message read (it needs no answer)."""
    session, staff, page, message_id = await _message(request, Access.WRITE)
    async with staff_change(request, session, page):
        marked = await message_core.mark_read(session, staff, message_id, context(request).clock.now())
    await changed(request, session, page, N_("Marked read.") if marked.now else N_("It was read before."))


@allow("staff")
async def photo(request: web.Request) -> web.StreamResponse:
    """A patient's photo, for a staff member who may see the patient; every view audited."""
    session, staff, _page, message_id = await _message(request, Access.READ)
    ctx = context(request)
    try:
        data = await message_core.photo_for_staff(session, staff, message_id, photo_dir(ctx.config), ctx.clock.now())
    except Forbidden as exc:
        raise web.HTTPForbidden() from exc
    except StaffError as exc:
        raise web.HTTPNotFound() from exc
    if data is None:
        raise web.HTTPNotFound()
    await session.commit()
    return web.Response(
        body=data,
        content_type="image/png" if media.photo_kind(data) == "png" else "image/jpeg",
        headers={"Cache-Control": "no-store, private", "X-Content-Type-Options": "nosniff"},
    )


@allow("staff")
async def remove_caregiver(request: web.Request) -> web.StreamResponse:
    """Remove a patient's caregiver (owner therapist or admin): nothing more reaches them, at once."""
    session, staff, patient = await load(request, Access.WRITE)
    page = f"/patients/{patient.id}"
    caregiver_id = url_id(request, "cid")
    link = await session.get(Caregiver, caregiver_id)
    if link is not None and link.patient_id != patient.id:
        raise web.HTTPNotFound()  # another patient's caregiver under this patient's address
    # A caregiver gone since the page was drawn (removed, or deleted by themselves) is said so by the core.
    async with staff_change(request, session, page):
        await caregiver_core.remove_by_staff(session, staff, caregiver_id, context(request).clock.now())
    await changed(request, session, page, N_("The caregiver is removed: nothing more reaches them."))


def setup(app: web.Application) -> None:
    app.router.add_post(r"/patients/{id:\d+}/messages/{mid:\d+}/reply", reply)
    app.router.add_post(r"/patients/{id:\d+}/messages/{mid:\d+}/read", mark_read)
    app.router.add_get(r"/patients/{id:\d+}/messages/{mid:\d+}/photo", photo)
    app.router.add_post(r"/patients/{id:\d+}/caregivers/{cid:\d+}/remove", remove_caregiver)
