"""The clinic's programme templates (saved from the programme builder): the list, and Delete.

Delete is a page of its own that asks first (works without scripts): the list's Delete opens
``GET /templates/<id>/delete``, whose button posts with ``confirm=y``; a POST without it only
leads to that page again, so no single click deletes a template.

Thin: rehab_bot.plan lists them, rehab_bot.programme.delete_template decides who may
delete one (its author or an admin) and audits it; this module renders and commits.
A patient's own plan is a copy, so deleting a template changes no patient's plan.
The list holds no patient data (like the exercise library, a view is not audited).
"""

from __future__ import annotations

from aiohttp import web

from rehab_bot import audit, plan, programme
from rehab_bot import staff as members
from rehab_bot.access import Forbidden
from rehab_bot.i18n import N_
from rehab_bot.models import ProgrammePlan
from rehab_bot.web.auth import allow, db, signed_in_staff
from rehab_bot.web.context import context
from rehab_bot.web.pages import render, url_id
from rehab_bot.web.patients import flash, take_flash

PAGE = "/templates"


@allow("staff")
async def templates_page(request: web.Request) -> web.StreamResponse:
    """Every clinic template, with Delete where the staff member may."""
    session, staff = db(request), signed_in_staff(request)
    rows = await plan.templates(session)
    names = {s.id: s.name for s in await members.staff_members(session, include_inactive=True)}
    return await render(
        request,
        "clinic_templates.html",
        {
            "rows": rows,
            "authors": names,
            "deletable": {row.id for row in rows if programme.may_delete_template(staff, row)},
            "programmes": {pid: p.title(staff.language) for pid, p in context(request).content.programmes.items()},
            "tz": staff.timezone,
            "flash": await take_flash(request),
        },
    )


async def _gone(request: web.Request) -> web.HTTPSeeOther:
    """Deleted meanwhile (a colleague, or a second click): said on the list, not a 404."""
    await flash(request, N_("That template no longer exists."))
    return web.HTTPSeeOther(PAGE)


async def _deletable(request: web.Request) -> ProgrammePlan:
    """The template of the URL, if the staff member may delete it (its author or an admin: else 403)."""
    row = await db(request).get(ProgrammePlan, url_id(request))
    if row is None or row.patient_id is not None:
        raise await _gone(request)
    if not programme.may_delete_template(signed_in_staff(request), row):
        raise web.HTTPForbidden()
    return row


@allow("staff")
async def delete_page(request: web.Request) -> web.StreamResponse:
    """Ask before deleting a template (its author or an admin: else 403)."""
    return await render(request, "clinic_template_delete.html", {"row": await _deletable(request)})


@allow("staff")
async def delete_template(request: web.Request) -> web.StreamResponse:
    """Delete one template once confirmed on its Delete page (its author or an admin: else 403); back to the list."""
    session, staff = db(request), signed_in_staff(request)
    value = url_id(request)
    if (await request.post()).get("confirm") != "y":  # not from the page that asks: ask there (rights first)
        await _deletable(request)
        raise web.HTTPSeeOther(f"/templates/{value}/delete")
    try:
        await programme.delete_template(
            session, staff, value, context(request).clock.now(), actor=audit.web_actor(staff.telegram_id)
        )
    except Forbidden as exc:
        raise web.HTTPForbidden() from exc
    except plan.PlanError:
        raise await _gone(request) from None
    await session.commit()
    await flash(request, N_("The template is deleted."))
    raise web.HTTPSeeOther(PAGE)


def setup(app: web.Application) -> None:
    app.router.add_get(PAGE, templates_page, name="templates")
    app.router.add_get(r"/templates/{id:\d+}/delete", delete_page)
    app.router.add_post(r"/templates/{id:\d+}/delete", delete_template)
