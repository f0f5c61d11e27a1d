"""The alerts inbox: open alerts of your patients (every patient's for admins), acknowledged in one click.

Thin: rehab_bot.staff.open_alerts lists them, rehab_bot.staff.acknowledge records who and when
(once, checked against the staff member's right to change the patient) and writes the audit row.
An htmx click replaces the alert's row; without scripts the form posts and the page reloads.

Alert accuracy: on an acknowledged alert, "Needed action" / "No action needed" post to
/alerts/{id}/review; rehab_bot.alert_review.review decides who may and records the first verdict only
(a second post says what was recorded). The alerts page lists what the staff member acknowledged and
has not reviewed yet (alert_review.awaiting), the patient page the patient's last acknowledged alerts.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from rehab_bot import alert as alert_core
from rehab_bot import alert_review, audit
from rehab_bot.access import Forbidden, StaffError
from rehab_bot.i18n import N_, t
from rehab_bot.web.auth import allow, db, signed_in_staff
from rehab_bot.web.context import context
from rehab_bot.web.pages import language, render, url_id
from rehab_bot.web.patients import flash, take_flash

MAX_SHOWN = 500


@allow("staff")
async def inbox(request: web.Request) -> web.StreamResponse:
    session, staff = db(request), signed_in_staff(request)
    now = context(request).clock.now()
    rows = await alert_core.open_alerts(session, staff, limit=MAX_SHOWN)
    awaiting = await alert_review.awaiting(session, staff, now)
    audit.record(session, action=audit.VIEW_ALERTS, now=now, staff=staff, detail=f"web shown={len(rows)}")
    await session.commit()
    return await render(
        request,
        "alerts.html",
        {
            "rows": rows,
            "awaiting": awaiting,
            "flash": await take_flash(request),
            "tz": staff.timezone,
            "all": staff.role == "admin",
        },
    )


def _back(request: web.Request, default: str) -> str:
    """Where to go after a click: a local path the form names, else default (never another site)."""
    raw = request.query.get("next", "")
    try:
        # Checked as the Location header will carry it: yarl drops tabs and line breaks, so
        # "/<tab>/evil.example" would become "//evil.example", another site.
        target = str(URL(raw))
    except ValueError:
        return default
    local = raw.startswith("/") and target.startswith("/") and not target.startswith(("//", "/\\"))
    return target if local else default


@allow("staff")
async def acknowledge(request: web.Request) -> web.StreamResponse:
    session, staff = db(request), signed_in_staff(request)
    value = url_id(request)
    try:
        done = await alert_core.acknowledge(session, staff, value, context(request).clock.now())
    except Forbidden as exc:
        raise web.HTTPForbidden() from exc
    except StaffError as exc:
        raise web.HTTPNotFound() from exc
    await session.commit()
    on_acknowledged = context(request).on_acknowledged
    if done.now and on_acknowledged is not None and done.alert.id is not None:
        on_acknowledged(done.alert.id)  # the copies in Telegram say so too
    if request.headers.get("HX-Request") == "true":
        return await render(request, "_alert_done.html", {"done": done, "back": _back(request, "/alerts")})
    if done.now:
        await flash(request, N_("Acknowledged."))
    else:  # a colleague was first (the page was open from before): who, not a claim of our own
        await flash(request, N_("Already acknowledged by {name}."), name=alert_core.who(done.by, language(request)))
    raise web.HTTPSeeOther(_back(request, "/alerts"))


VERDICTS = {"yes": True, "no": False}
RECORDED = {True: N_("Recorded: needed action."), False: N_("Recorded: no action needed.")}
ALREADY = {
    (True, True): N_("Already recorded by {name}: needed action. Nothing was changed."),
    (False, True): N_("Already recorded by {name}: no action needed. Nothing was changed."),
    (True, False): N_("Already recorded: needed action. Nothing was changed."),
    (False, False): N_("Already recorded: no action needed. Nothing was changed."),
}


@allow("staff")
async def review(request: web.Request) -> web.StreamResponse:
    """Alert accuracy from the web: the verdict on an acknowledged alert (rules: alert_review.review)."""
    session, staff = db(request), signed_in_staff(request)
    value = url_id(request)
    needed = VERDICTS.get(str((await request.post()).get("needed", "")))
    if needed is None:
        raise web.HTTPBadRequest()
    back = _back(request, "/alerts")
    htmx = request.headers.get("HX-Request") == "true"
    try:
        verdict = await alert_review.review(session, staff, value, needed, context(request).clock.now())
    except Forbidden as exc:
        raise web.HTTPForbidden() from exc
    except StaffError as exc:  # nothing was written
        if exc.msgid != alert_review.NOT_ACKNOWLEDGED:
            raise web.HTTPNotFound() from exc
        if htmx:
            return await render(request, "_alert_verdict.html", {"alert_id": value, "message": exc.msgid})
        await flash(request, exc.msgid)
        raise web.HTTPSeeOther(back) from exc
    await session.commit()
    # Another tab, a double click, a colleague first: what stands, and that nothing changed.
    said = RECORDED[verdict.needed_action] if verdict.now else ALREADY[verdict.needed_action, bool(verdict.by)]
    if htmx:
        note = t(language(request), said, name=verdict.by)
        values = {"alert_id": value, "verdict": verdict, "note": note, "tz": staff.timezone}
        return await render(request, "_alert_verdict.html", values)
    await flash(request, said, name=verdict.by)
    raise web.HTTPSeeOther(back)


def setup(app: web.Application) -> None:
    app.router.add_get("/alerts", inbox, name="alerts")
    app.router.add_post(r"/alerts/{id:\d+}/ack", acknowledge)
    app.router.add_post(r"/alerts/{id:\d+}/review", review)
