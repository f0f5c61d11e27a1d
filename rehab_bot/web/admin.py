"""Admin pages: staff (invitation link, open invitations and their withdrawal, role, removal), the audit log
with filters, content check results.

Admins only (``@allow("admin")``, rechecked on every request). Thin: rehab_bot.invite makes staff
invitations, rehab_bot.staff.add_staff changes a role and remove_staff takes access away (handing the
patients over and telling the new owner, as `rehab-bot staff remove` does), rehab_bot.audit.entries
reads the log, rehab_bot.content.load_content checks the clinic's content files as `rehab-bot
content check` does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NoReturn

from aiohttp import web
from aiohttp_session import get_session
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from rehab_bot import audit, invite
from rehab_bot import staff as staff_core
from rehab_bot.content import ContentError, load_content
from rehab_bot.i18n import LANGUAGE_NAMES, N_, t, tn
from rehab_bot.models import Role, Staff
from rehab_bot.typed import number
from rehab_bot.web.auth import allow, db, signed_in_staff
from rehab_bot.web.context import context
from rehab_bot.web.forms import NOT_DATES, Form, FormData, bind
from rehab_bot.web.pages import language, render, url_id
from rehab_bot.web.patients import changed, flash, staff_change, take_flash

ROLES = [(Role.THERAPIST.value, N_("therapist")), (Role.ADMIN.value, N_("admin"))]
AUDIT_LIMIT = 500
INVITE_REFUSED = N_("Give a name and a role for the invitation.")
INVITE_WITHDRAWN = N_("The invitation for {name} is withdrawn: its link no longer works.")
INVITE_GONE = N_("That invitation is no longer open: it has been used, withdrawn or has expired.")
INVITE_DRAFT = "invite_draft"  # a refused invitation's form, as typed, for the staff page to show again
MAX_DRAFT = 300  # characters of a refused name kept (the form's own limit is 100)
# Why an audit filter lists nothing: said above the table, the filter kept as typed.
AUDIT_NO_STAFF = N_("No staff member has this id.")
AUDIT_REVERSED = N_("'From' is after 'To': choose a start on or before the end.")


class InviteForm(Form):
    name = StringField(validators=[DataRequired(), Length(max=100)])
    role = SelectField(choices=[value for value, _ in ROLES])


class RoleForm(Form):
    role = SelectField(choices=[value for value, _ in ROLES])


class RemoveForm(Form):
    """Removing a staff member: who takes over their patients (an active colleague) and a ticked confirmation."""

    to = SelectField(choices=[], validate_choice=True)
    confirm = BooleanField(validators=[DataRequired()])


class AuditQuery(Form):
    """The audit page's filters (a GET form: no CSRF)."""

    class Meta:
        csrf = False

    staff = StringField(validators=[Optional(), Length(max=12)])
    patient = StringField(validators=[Optional(), Length(max=64)])
    since = DateField(validators=[Optional()])
    until = DateField(validators=[Optional()])


@allow("admin")
async def admin_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/admin/staff")


@allow("admin")
async def staff_page(request: web.Request) -> web.StreamResponse:
    session, admin, ctx = db(request), signed_in_staff(request), context(request)
    members = await staff_core.staff_members(session, include_inactive=True)
    now = ctx.clock.now()
    # Invitations not yet used: whom for, who made them, until when, and their link again (to resend or withdraw).
    open_invites = [
        {
            "id": found.id,
            "name": found.staff_name,
            "role": found.role,
            "by": maker.name if maker is not None else None,
            "expires_at": found.expires_at,
            "link": invite.deep_link(ctx.bot_username, found.code) if ctx.bot_username else found.code,
        }
        for found, maker in await invite.open_staff_invites(session, now)
    ]
    audit.record(session, action=audit.VIEW_STAFF, now=now, staff=admin)
    await session.commit()
    session_data = await _invite_link(request)
    draft = (await get_session(request)).pop(INVITE_DRAFT, None)
    return await render(
        request,
        "admin_staff.html",
        {
            "members": members,
            "open_invites": open_invites,
            "tz": admin.timezone,
            "roles": ROLES,
            "flash": await take_flash(request),
            "invite_link": session_data,
            "language_names": LANGUAGE_NAMES,
            "draft": {"name": "", "role": "", "problem": "", **(draft if isinstance(draft, dict) else {})},
        },
    )


async def _invite_link(request: web.Request) -> str:
    data = await get_session(request)
    return str(data.pop("invite_link", "")) if "invite_link" in data else ""


@allow("admin")
async def staff_invite(request: web.Request) -> web.StreamResponse:
    session, admin = db(request), signed_in_staff(request)
    ctx = context(request)
    form = await bind(InviteForm, request, await request.post())
    if not form.validate():
        await _refused(request, form)
    try:
        made = await invite.create_staff_invite(
            session,
            name=str(form.name.data),
            role=str(form.role.data),
            now=ctx.clock.now(),
            valid_days=ctx.config.clinic.invite_valid_days,
            created_by=admin.id,
            actor=audit.web_actor(admin.telegram_id),
        )
    except invite.InviteError:  # its message is English, for the command line: the form's own words
        await _refused(request, form)
    await session.commit()
    link = invite.deep_link(ctx.bot_username, made.code) if ctx.bot_username else made.code
    (await get_session(request))["invite_link"] = link
    raise web.HTTPSeeOther("/admin/staff")


@allow("admin")
async def staff_invite_withdraw(request: web.Request) -> web.StreamResponse:
    """An open staff invitation withdrawn: its link no longer works (it answers that the clinic withdrew it)."""
    session, admin = db(request), signed_in_staff(request)
    withdrawn = await invite.withdraw_staff_invite(
        session,
        url_id(request),
        now=context(request).clock.now(),
        by=admin,
        actor=audit.web_actor(admin.telegram_id),
    )
    if withdrawn is None:  # used, withdrawn or expired since the page was opened, or no such invitation
        await flash(request, INVITE_GONE)
        raise web.HTTPSeeOther("/admin/staff")
    await changed(request, session, "/admin/staff", INVITE_WITHDRAWN, name=withdrawn.staff_name)


async def _refused(request: web.Request, form: InviteForm) -> NoReturn:
    """Back to the staff page, which shows the invitation form as it was typed, the problem beside it."""
    (await get_session(request))[INVITE_DRAFT] = {
        "name": str(form.name.data or "")[:MAX_DRAFT],
        "role": str(form.role.data or "")[:MAX_DRAFT],
        "problem": t(language(request), INVITE_REFUSED),
    }
    raise web.HTTPSeeOther("/admin/staff")


@allow("admin")
async def staff_role(request: web.Request) -> web.StreamResponse:
    session, admin = db(request), signed_in_staff(request)
    form = await bind(RoleForm, request, await request.post())
    member = await session.get(Staff, url_id(request))
    if member is None or not form.validate():
        raise web.HTTPNotFound()
    await _still_active(request, member)
    if member.id == admin.id:
        await flash(request, N_("Ask another admin to change your own role."))
        raise web.HTTPSeeOther("/admin/staff")
    async with staff_change(request, session, "/admin/staff"):
        await staff_core.add_staff(
            session,
            telegram_id=member.telegram_id,
            role=str(form.role.data),
            name=member.name,
            now=context(request).clock.now(),
            actor=admin,
        )
    await changed(request, session, "/admin/staff", N_("The role is changed."))


async def _still_active(request: web.Request, member: Staff) -> None:
    """A member removed since the page was opened (by another admin, the command line, or this form sent
    twice): back to the staff page, which says so, rather than a 404."""
    if not member.active:
        await flash(request, staff_core.ALREADY_REMOVED, name=member.name)
        raise web.HTTPSeeOther("/admin/staff")


async def _leaving(request: web.Request) -> tuple[Staff, list[Staff]]:
    """The staff member the admin is removing, and the active colleagues who may take over their patients."""
    session, admin = db(request), signed_in_staff(request)
    member = await session.get(Staff, url_id(request))
    if member is None:
        raise web.HTTPNotFound()
    await _still_active(request, member)
    if member.id == admin.id:
        await flash(request, N_("Ask another admin to remove you."))
        raise web.HTTPSeeOther("/admin/staff")
    others = [s for s in await staff_core.staff_members(session) if s.id != member.id]
    # Admins first (where the chat's `rehab-bot staff remove` hands them by default), the one removing first of all.
    others.sort(key=lambda s: (s.id != admin.id, s.role != Role.ADMIN.value, s.name.casefold()))
    return member, others


@allow("admin")
async def staff_remove_page(request: web.Request) -> web.StreamResponse:
    """Before a removal: who is leaving, how many patients and open alerts go to whom (chosen here), a confirmation."""
    member, others = await _leaving(request)
    handover = await staff_core.handover_of(db(request), member)
    return await render(
        request,
        "admin_staff_remove.html",
        {"member": member, "others": others, "handover": handover, "flash": await take_flash(request)},
    )


@allow("admin")
async def staff_remove(request: web.Request) -> web.StreamResponse:
    session, admin = db(request), signed_in_staff(request)
    member, others = await _leaving(request)
    page = f"/admin/staff/{member.id}/remove"
    form = await bind(RemoveForm, request, await request.post())
    form.to.choices = [str(s.id) for s in others]
    if not form.validate():
        await flash(request, N_("Choose who takes over and tick the box to confirm the removal."))
        raise web.HTTPSeeOther(page)
    new_owner = next(s for s in others if str(s.id) == form.to.data)
    async with staff_change(request, session, page):
        await staff_core.remove_staff(
            session,
            telegram_id=member.telegram_id,
            now=context(request).clock.now(),
            reassign_to=str(new_owner.telegram_id),
            actor=admin,
        )
    await changed(
        request,
        session,
        "/admin/staff",
        N_("Access removed; their patients and open alerts now go to {name}."),
        name=new_owner.name,
    )


def _start_of(day: Any) -> datetime | None:
    return datetime.combine(day, time(0), tzinfo=UTC) if day is not None else None


def _end_of(day: Any) -> datetime | None:
    """The instant after a day (UTC): None, no end, for none or the calendar's last day (31.12.9999)."""
    return _start_of(day + timedelta(days=1)) if day is not None and day < date.max else None


@allow("admin")
async def audit_page(request: web.Request) -> web.StreamResponse:
    """The audit log, newest first, filtered by staff member, patient alias and dates (UTC days).

    A filter that cannot match (an alias longer than any, an unknown staff id, a date that is not
    one, a start after the end) lists nothing and says why above the table, the filter kept as
    typed (400 for a malformed one).
    """
    session, admin = db(request), signed_in_staff(request)
    query = AuditQuery(FormData(request.query))
    valid = query.validate()
    members = await staff_core.staff_members(session, include_inactive=True)
    staff_id = None if query.staff.errors else number(query.staff.data or "", 9)
    problem = None
    if query.since.errors or query.until.errors:
        problem = NOT_DATES
    elif query.since.data and query.until.data and query.since.data > query.until.data:
        problem = AUDIT_REVERSED
    elif query.staff.errors or (staff_id is not None and all(m.id != staff_id for m in members)):
        problem = AUDIT_NO_STAFF
    patient_id = None
    missing = bool(query.patient.errors)  # longer than any alias
    if query.patient.data and not missing:
        patient = await invite.patient_by_alias(session, str(query.patient.data))
        patient_id = patient.id if patient is not None else None
        missing = patient is None
    rows = (
        []
        if missing or problem
        else await audit.entries(
            session,
            since=_start_of(query.since.data),
            until=_end_of(query.until.data),
            staff_id=staff_id,
            patient_id=patient_id,
            limit=AUDIT_LIMIT,
            newest_first=True,
        )
    )
    audit.record(
        session,
        action=audit.VIEW_AUDIT,
        now=context(request).clock.now(),
        staff=admin,
        patient_id=patient_id,
        detail=f"shown={len(rows)}",
    )
    await session.commit()
    return await render(
        request,
        "admin_audit.html",
        {
            "rows": rows,
            "members": members,
            "query": query,
            "typed": {name: str(query[name]._value())[:MAX_DRAFT] for name in ("patient", "since", "until")},
            "staff_id": staff_id,
            "limit": AUDIT_LIMIT,
            "missing": missing,
            "problem": t(language(request), problem) if problem else "",
        },
        status=200 if valid else 400,
    )


@allow("admin")
async def content_page(request: web.Request) -> web.StreamResponse:
    """The clinic's content files checked now, as `rehab-bot content check` does."""
    directory = context(request).config.content.dir
    errors: list[str] = []
    counted, lang = "", language(request)
    try:
        counted = load_content(directory).counted(lang)
    except ContentError as exc:
        errors = list(exc.errors)
    found = tn(
        lang,
        "{n} problem found. The bot keeps the content it started with until it is fixed and it is restarted.",
        "{n} problems found. The bot keeps the content it started with until they are fixed and it is restarted.",
        len(errors),
    )
    values = {"errors": errors, "found": found, "counted": counted, "directory": str(directory or "")}
    return await render(request, "admin_content.html", values)


def setup(app: web.Application) -> None:
    app.router.add_get("/admin", admin_home)
    app.router.add_get("/admin/staff", staff_page, name="admin_staff")
    app.router.add_post("/admin/staff/invite", staff_invite)
    app.router.add_post(r"/admin/staff/invites/{id:\d+}/withdraw", staff_invite_withdraw)
    app.router.add_post(r"/admin/staff/{id:\d+}/role", staff_role)
    app.router.add_get(r"/admin/staff/{id:\d+}/remove", staff_remove_page)
    app.router.add_post(r"/admin/staff/{id:\d+}/remove", staff_remove)
    app.router.add_get("/admin/audit", audit_page, name="admin_audit")
    app.router.add_get("/admin/content", content_page, name="admin_content")
