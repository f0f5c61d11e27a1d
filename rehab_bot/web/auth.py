"""Who is asking, and may they: sessions, sign-in, and the access check on every request.

The session is an encrypted cookie (aiohttp-session's EncryptedCookieStorage:
HttpOnly, SameSite=Lax, Secure when public_url is https) holding only the kind
of visitor ("staff" or "patient"), their Telegram id, when they were last seen
and a random session id, whose SHA-256 the database keeps (rehab_bot.signin:
start_session, session_open, end_session). Nothing else is trusted from it: on
every request :func:`auth_middleware` checks that the session is still open on
the server (not signed out, not older than ``[web] session_hours``) and loads
the staff member (rehab_bot.staff.active_staff) or patient again, so a removed
or demoted member loses access at their next request, a session idle for more
than ``[web] idle_minutes`` is ended, and signing out ends every copy of the
cookie.

Each handler declares who may call it with :func:`allow` ("public", "anyone
signed in", "staff", "admin", "patient" or "agreed"); a handler that declares
nothing is staff-only. Strangers get 401, a signed-in visitor of the wrong kind 403.

"patient" is an enrolled patient. "agreed" is also a patient who has agreed and
not finished enrolling (rehab_bot.patient.agreed_enrolling): in privacy mode the
chat offers them the symptom check and "Write to my care team" in the Mini App
when they type a symptom at the time zone or times step, so those pages alone
(the check's form, its result with the red-flag answer, the messages page) let
them in; every other page answers them "Please finish setting up"
(:class:`FinishEnrolment`), at sign-in too. This module is the one place that
decides it (:func:`_patient_visitor`, :func:`_permitted`).

Sign-in:
- ``/signin?token=…``: the one-time link /dashboard hands out (rehab_bot.signin); the page
  asks for one click (a POST), so a link preview that fetches the URL cannot use the token up;
- ``/app``: the Mini App. Its page reads Telegram's ``tgWebAppData`` from the URL fragment
  and posts it to ``/app/signin``, which checks the signature (rehab_bot.web.initdata);
- ``/signin/telegram``: the Telegram Login Widget, only with ``[web] login_widget`` on
  (rehab_bot.web.login_widget): Telegram's fields arrive as a GET, one click posts them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp_session import Session, get_session, new_session
from sqlmodel.ext.asyncio.session import AsyncSession
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from rehab_bot import audit, signin
from rehab_bot import patient as patient_core
from rehab_bot import staff as staff_core
from rehab_bot.i18n import N_, SUPPORTED_LANGUAGES, pick_language, supported, t
from rehab_bot.models import Patient, Staff
from rehab_bot.web import login_widget
from rehab_bot.web.context import DB, VISITOR, Visitor, context
from rehab_bot.web.forms import Form, bind
from rehab_bot.web.initdata import InitDataError, verify
from rehab_bot.web.pages import page_handler, render

WHO = ("public", "signed_in", "staff", "admin", "patient", "agreed")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def allow(who: str) -> Callable[[H], H]:
    """Declare who may call a handler (see WHO); read by auth_middleware and the authorisation tests."""
    assert who in WHO, who

    def mark(handler: H) -> H:
        handler.who = who  # type: ignore[attr-defined]
        return handler

    return mark


def who_of(handler: Any) -> str:
    """Who may call a route's handler; staff when it does not say."""
    return str(getattr(handler, "who", "staff"))


def visitor(request: web.Request) -> Visitor:
    """Who is asking (set by auth_middleware)."""
    found = request[VISITOR]
    assert isinstance(found, Visitor)
    return found


def db(request: web.Request) -> AsyncSession:
    """The request's database session (opened by auth_middleware; handlers commit)."""
    session = request[DB]
    assert isinstance(session, AsyncSession)
    return session


def signed_in_staff(request: web.Request) -> Staff:
    """The staff member of a staff-only handler."""
    staff = visitor(request).staff
    assert staff is not None
    return staff


def _browser_language(request: web.Request, default: str) -> str:
    """The first language of the browser's Accept-Language that the bot speaks, by its q-value (then its
    order): "tr, de;q=0.8, en;q=0.5" is German, not the default because Turkish comes first."""
    return browser_language(request.headers.get("Accept-Language", ""), default)


def browser_language(header: str, default: str) -> str:
    """A supported language from an Accept-Language header (RFC 9110 12.5.4), else default."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate(header.split(",")):
        tag, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, order, tag))
    for _quality, _order, tag in sorted(ranked):
        if (found := supported(tag)) is not None:
            return found
    return pick_language(None, default)


class FinishEnrolment(web.HTTPForbidden):
    """A page refused to a patient who has not finished enrolling: the error page says to finish setting up."""


def _patient_visitor(standing: patient_core.Standing, patient: Patient | None) -> Visitor | None:
    """The patient as a visitor of the web app: enrolled, or agreed and still enrolling (only the "agreed"
    pages), else None (not agreed yet, or no patient)."""
    if patient is None:
        return None
    if standing == patient_core.Standing.PATIENT:
        return Visitor(None, patient, patient.language)
    if standing == patient_core.Standing.ENROLLING and patient_core.agreed_enrolling(patient):
        return Visitor(None, patient, patient.language, enrolling=True)
    return None


async def _identify(request: web.Request, session: Session, db_session: AsyncSession) -> Visitor:
    ctx = context(request)
    now = ctx.clock.now().timestamp()
    kind, tid, seen = session.get("kind"), session.get("tid"), session.get("seen")
    default_lang = _browser_language(request, ctx.config.clinic.language)
    if kind not in ("staff", "patient") or not isinstance(tid, int):
        return Visitor(None, None, default_lang)
    if (
        not isinstance(seen, int | float)
        or now - seen > ctx.config.web.idle_minutes * 60
        or not await signin.session_open(db_session, session.get("sid"), ctx.clock.now())
    ):
        session.invalidate()
        return Visitor(None, None, default_lang, ended=True)
    if kind == "staff":
        staff = await staff_core.active_staff(db_session, tid)
        if staff is not None:
            session["seen"] = now
            return Visitor(staff, None, staff.language)
    else:
        found = _patient_visitor(*await patient_core.standing(db_session, tid))
        if found is not None:
            session["seen"] = now
            return found
    session.invalidate()
    return Visitor(None, None, default_lang, ended=True)


def _permitted(who: str, found: Visitor) -> bool:
    if who == "public":
        return True
    if who == "signed_in":
        return found.staff is not None or found.patient is not None
    if who == "staff":
        return found.staff is not None
    if who == "admin":
        return found.is_admin
    if who == "agreed":
        return found.patient is not None
    return found.patient is not None and not found.enrolling  # "patient"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Identify the visitor afresh, open the request's database session, refuse what they may not open."""
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return await handler(request)  # static files
    if route.resource is None:  # 404/405 for what matches no route: in the visitor's language, with their menu
        async with context(request).db.session() as db_session:
            request[VISITOR] = await _identify(request, await get_session(request), db_session)
        return await handler(request)
    who = who_of(route.handler)
    audit.set_web_channel()  # this request's task: staff actions are recorded as web:<id>
    session = await get_session(request)
    async with context(request).db.session() as db_session:
        found = await _identify(request, session, db_session)
        request[VISITOR], request[DB] = found, db_session
        if not _permitted(who, found):
            if found.enrolling:
                raise FinishEnrolment()
            signed_in = found.staff is not None or found.patient is not None
            raise web.HTTPForbidden() if signed_in else web.HTTPUnauthorized()
        return await handler(request)


async def _start(request: web.Request, kind: str, telegram_id: int) -> None:
    ctx, db_session = context(request), db(request)
    now = ctx.clock.now()
    sid = await signin.start_session(db_session, now, ctx.config.web.session_hours)
    await db_session.commit()
    session = await new_session(request)  # a fresh session (and CSRF secret) at sign-in
    session["kind"], session["tid"], session["sid"] = kind, telegram_id, sid
    session["seen"] = now.timestamp()


# --- the one-time link ----------------------------------------------------------


class LinkForm(Form):
    token = HiddenField(validators=[DataRequired(), Length(max=signin.MAX_TOKEN_LENGTH)])


@allow("public")
async def signin_page(request: web.Request) -> web.StreamResponse:
    """The page a /dashboard link opens: one button that signs in (the token is used on POST only); a link
    already used, expired or unknown says so at once (400), not only after the button."""
    form = await bind(LinkForm, request)
    form.token.data = request.query.get("token", "")[: signin.MAX_TOKEN_LENGTH]
    visitor = request[VISITOR]
    holder = await signin.holder(db(request), str(form.token.data), context(request).clock.now())
    if holder is None:
        return await render(request, "signin.html", {"form": None, "failed": True}, status=400)
    if visitor.staff is None and visitor.patient is None:
        # The link's own staff member: the page in their language, not the browser's (a German therapist's
        # link opened in an English browser; the pages after signing in are in Staff.language too).
        request[VISITOR] = dataclasses.replace(visitor, lang=holder.language)
    return await render(request, "signin.html", {"form": form, "failed": False})


@allow("public")
async def signin_post(request: web.Request) -> web.StreamResponse:
    """Redeem the one-time token; refused (400) when unknown, used or expired."""
    form = await bind(LinkForm, request, await request.post())
    ctx, session = context(request), db(request)
    staff = await signin.redeem(session, str(form.token.data or ""), ctx.clock.now()) if form.validate() else None
    if staff is None:
        await session.commit()
        return await render(request, "signin.html", {"form": None, "failed": True}, status=400)
    await _sign_in_staff(request, session, staff, "link")
    raise web.HTTPSeeOther("/caseload")


async def _sign_in_staff(request: web.Request, session: AsyncSession, staff: Staff, how: str) -> None:
    """Start a staff member's web session, audited (``how``: "link" or "miniapp")."""
    audit.record(
        session,
        action=audit.WEB_SIGNIN,
        now=context(request).clock.now(),
        staff=staff,
        actor=audit.web_actor(staff.telegram_id),
        detail=how,
    )
    await session.commit()
    await _start(request, "staff", staff.telegram_id)


# --- the Mini App ---------------------------------------------------------------


class InitDataForm(Form):
    init_data = StringField(validators=[DataRequired(), Length(max=8192)])
    next = StringField(validators=[Length(max=200)])


# Where a patient may be sent after signing in: a Mini App page of this site, nothing else.
_NEXT = re.compile(r"^/app/[a-z]+(/[0-9]{1,18})?$")
PATIENT_HOME = "/app/home"


def patient_next(raw: str) -> str:
    """The Mini App page a patient asked for (the address Telegram opened), else the Mini App's home."""
    return raw if _NEXT.match(raw) else PATIENT_HOME


NOT_FOR_YOU = N_(
    "This app is for the clinic's patients and staff. To join, ask the clinic for your invitation link "
    "and open it in Telegram."
)
FINISH_ENROLMENT = N_("Please finish setting up in the chat with the clinic's bot first, then open this app again.")
# The sign-in page's words in every language: its script shows them in the user's Telegram language
# (initData's language_code), which the server learns only from the signed data it has not yet seen.
SHELL = {
    "title": N_("Opening the clinic's app"),
    "checking": N_("Checking who you are with Telegram…"),
    "failed": N_(
        "This app could not check who you are. Close it and open it again from the chat with the clinic's bot."
    ),
}


def miniapp_texts() -> str:
    """SHELL in each supported language, as JSON for the sign-in page (miniapp.html)."""
    return json.dumps({lang: {key: t(lang, msgid) for key, msgid in SHELL.items()} for lang in SUPPORTED_LANGUAGES})


@allow("public")
async def miniapp_page(request: web.Request) -> web.StreamResponse:
    """The Mini App's entry: its script posts Telegram's initData to /app/signin."""
    return await render(request, "miniapp.html", {})


def _may_open(app: web.Application, path: str, found: Visitor) -> bool:
    """Whether the visitor may open the page (GET) at this path of the site: auth_middleware's rule, asked
    before the page is opened."""
    handler = page_handler(app, path)
    return handler is not None and _permitted(who_of(handler), found)


def _json(status: int, body: dict[str, str]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


@allow("public")
async def miniapp_signin(request: web.Request) -> web.StreamResponse:
    """Check Telegram's signature on initData; sign in the staff member or patient it names."""
    ctx, session = context(request), db(request)
    form = await bind(InitDataForm, request, await request.post())
    if not form.validate():
        return _json(400, {"error": "no initData"})
    try:
        user = verify(
            str(form.init_data.data),
            ctx.config.telegram.token,
            ctx.clock.now(),
            ctx.config.web.initdata_max_age_seconds,
        )
    except InitDataError:  # forged, stale or malformed: not signed in
        return _json(401, {"error": "Telegram's signature could not be checked; open the app from Telegram again."})
    staff = await staff_core.active_staff(session, user.id)
    if staff is not None:
        await _sign_in_staff(request, session, staff, "miniapp")
        return _json(200, {"next": "/caseload"})
    standing, patient = await patient_core.standing(session, user.id)
    found = _patient_visitor(standing, patient)
    target = patient_next(str(form.next.data or ""))
    # A patient still enrolling is signed in only for a page they may open (the symptom check, its result,
    # the messages page); any other page answers as before, in their Telegram language.
    if found is not None and (not found.enrolling or _may_open(request.app, target, found)):
        await _start(request, "patient", user.id)
        return _json(200, {"next": target})
    # Someone Telegram vouches for but the clinic does not know (yet): say who the app is for and how to
    # join, in their Telegram language.
    lang = pick_language(user.language_code, ctx.config.clinic.language)
    msgid = FINISH_ENROLMENT if standing == patient_core.Standing.ENROLLING else NOT_FOR_YOU
    return _json(403, {"error": t(lang, msgid)})


# --- the Telegram Login Widget ([web] login_widget) ----------------------------------


class WidgetForm(Form):
    """What Telegram sends back (login_widget.FIELDS); only the fields it sent are signed."""

    id = HiddenField(validators=[Length(max=login_widget.MAX_FIELD)])
    first_name = HiddenField(validators=[Length(max=login_widget.MAX_FIELD)])
    last_name = HiddenField(validators=[Length(max=login_widget.MAX_FIELD)])
    username = HiddenField(validators=[Length(max=login_widget.MAX_FIELD)])
    photo_url = HiddenField(validators=[Length(max=login_widget.MAX_FIELD)])
    auth_date = HiddenField(validators=[Length(max=login_widget.MAX_FIELD)])
    hash = HiddenField(validators=[Length(max=login_widget.MAX_FIELD)])


def _widget_on(request: web.Request) -> None:
    if not context(request).config.web.login_widget:
        raise web.HTTPNotFound()


@allow("public")
async def widget_page(request: web.Request) -> web.StreamResponse:
    """Where Telegram sends the browser after the widget: one button signs in (a POST, as for the link)."""
    _widget_on(request)
    form = await bind(WidgetForm, request)
    sent = [name for name in login_widget.FIELDS if name in request.query]
    for name in sent:
        getattr(form, name).data = request.query[name]
    return await render(request, "signin_widget.html", {"form": form, "sent": sent, "failed": False})


@allow("public")
async def widget_signin(request: web.Request) -> web.StreamResponse:
    """Check Telegram's hash on the widget's fields; sign in the active staff member they name."""
    _widget_on(request)
    ctx, session = context(request), db(request)
    posted = await request.post()
    form = await bind(WidgetForm, request, posted)
    fields = {name: str(getattr(form, name).data or "") for name in login_widget.FIELDS if name in posted}
    try:
        if not form.validate():
            raise login_widget.LoginError("malformed")
        user = login_widget.verify(
            fields, ctx.config.telegram.token, ctx.clock.now(), ctx.config.web.initdata_max_age_seconds
        )
    except login_widget.LoginError:
        return await render(request, "signin_widget.html", {"form": None, "sent": [], "failed": True}, status=401)
    staff = await staff_core.active_staff(session, user.id)
    if staff is None:  # the dashboard is for staff; patients use the Mini App
        raise web.HTTPForbidden()
    audit.record(
        session,
        action=audit.WEB_SIGNIN,
        now=ctx.clock.now(),
        staff=staff,
        actor=audit.web_actor(staff.telegram_id),
        detail="widget",
    )
    await session.commit()
    await _start(request, "staff", staff.telegram_id)
    raise web.HTTPSeeOther("/caseload")


# --- the rest ----------------------------------------------------------------------


@allow("signed_in")
async def signout(request: web.Request) -> web.StreamResponse:
    """End the session, on the server too: a copy of the cookie stops working."""
    session = await get_session(request)
    await signin.end_session(db(request), session.get("sid"), context(request).clock.now())
    await db(request).commit()
    session.invalidate()
    raise web.HTTPSeeOther("/signed-out")


@allow("public")
async def signed_out(request: web.Request) -> web.StreamResponse:
    """How to sign in (with Telegram's login frame when [web] login_widget is on)."""
    ctx = context(request)
    frame = ""
    if ctx.config.web.login_widget and ctx.bot_username:
        frame = login_widget.frame_url(ctx.bot_username, ctx.config.web.public_url)
    return await render(request, "signed_out.html", {"widget_frame": frame})


@allow("public")
async def home(request: web.Request) -> web.StreamResponse:
    """Where / leads: the caseload for staff, the patient's page, else how to sign in."""
    found = visitor(request)
    if found.staff is not None:
        raise web.HTTPSeeOther("/caseload")
    if found.patient is not None:
        raise web.HTTPSeeOther(PATIENT_HOME)
    raise web.HTTPSeeOther("/signed-out")


@allow("patient")
async def patient_home(request: web.Request) -> web.StreamResponse:
    """A signed-in patient's landing page (the patient Mini App builds on it)."""
    return await render(request, "me.html", {"patient": visitor(request).patient})


def setup(app: web.Application) -> None:
    """Add the sign-in routes."""
    app.router.add_get("/", home)
    app.router.add_get("/signin", signin_page)
    app.router.add_post("/signin", signin_post)
    app.router.add_get("/signin/telegram", widget_page)
    app.router.add_post("/signin/telegram", widget_signin)
    app.router.add_get("/app", miniapp_page)
    app.router.add_post("/app/signin", miniapp_signin)
    app.router.add_post("/signout", signout)
    app.router.add_get("/signed-out", signed_out)
    app.router.add_get("/me", patient_home)
