"""The web app's factory (:func:`build_app`) and :class:`WebServer`, which the bot process starts.

Middlewares, outermost first: the session cookie (aiohttp-session), error pages,
who is asking (auth.auth_middleware: identity rechecked in the database, access
declared per handler), CSRF on every state-changing request (forms.csrf_middleware).
Every response gets the security headers of :func:`_headers`: a Content-Security-Policy
that allows this origin's own scripts and styles only (the vendored htmx, Pico,
uPlot under /static/), no referrer (a sign-in link never leaks), no caching of pages.

To add a page: a module with handlers marked ``@auth.allow(...)`` (staff-only when
unmarked) and a ``setup(app)`` that adds its routes, called from :func:`build_app`;
templates under rehab_bot/web/templates/ extend ``base.html``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
import markupsafe
from aiohttp import web
from aiohttp_session import session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from rehab_bot import alert as alert_core
from rehab_bot import alert_detail, caseload_overview, formats
from rehab_bot.i18n import N_, translator
from rehab_bot.web import (
    admin,
    alerts,
    app_messages,
    auth,
    builder,
    caseload,
    clinic_templates,
    exercises,
    patient_app,
    patients,
    reports,
    thread,
)
from rehab_bot.web.context import CONTEXT, VISITOR, Visitor, WebContext, context
from rehab_bot.web.forms import CSRF_EXPIRED, CSRF_TITLE, CsrfRefused, csrf_middleware
from rehab_bot.web.login_widget import FRAME_ORIGIN
from rehab_bot.web.pages import language, page_handler, render

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
COOKIE_NAME = "rehab_session"
MAX_BODY = 1024**2  # uploads set their own limit on their route
UPLOAD_OVERHEAD = 256 * 1024  # the form's other fields and multipart headers around a photo
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self' https://web.telegram.org"
)
WIDGET_CSP = f"; frame-src 'self' {FRAME_ORIGIN}"


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    widget = request.app[CONTEXT].config.web.login_widget  # Telegram's login frame on the signed-out page
    response.headers.setdefault("Content-Security-Policy", CSP + (WIDGET_CSP if widget else ""))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


# Web requests served at once. The web app shares the bot's event loop: a page's rendering and
# Python work run between awaits, so twenty staff clicking at once would queue twenty such chunks
# in front of every patient's message. Two at a time keep a patient's reply at most two chunks
# behind (bench/web.py, row w3); the other requests wait their turn.
CONCURRENT_REQUESTS = 2


def _limit_middleware() -> Any:
    gate = asyncio.Semaphore(CONCURRENT_REQUESTS)

    @web.middleware
    async def limit(request: web.Request, handler: Any) -> web.StreamResponse:
        async with gate:
            response: web.StreamResponse = await handler(request)
            return response

    return limit


ERRORS = {
    400: N_("The request could not be understood."),
    401: N_("Please sign in: send /dashboard to the clinic's bot in Telegram for a sign-in link."),
    403: N_("You are not allowed to open this page or to do this."),
    404: N_("There is no such page."),
    405: N_("There is no such page."),
    # Over the request body limit (client_max_size: [care] photo_max_bytes and room for the form).
    413: N_("What you sent is too large. Please go back and send a smaller photo or file."),
}

# Anything else that went wrong while answering (a bug): logged with its traceback; the visitor gets a page
# in their language with their menu, not aiohttp's bare English "500 Internal Server Error".
UNEXPECTED = N_(
    "Something went wrong on our side, and what you did may not have been saved. Please go back and try"
    " again; if it happens again, tell the clinic's administrator."
)

# A patient's Mini App address that shows them nothing (another patient's id, or gone): said kindly.
APP_NOT_FOUND_TITLE = N_("This page cannot be shown")
APP_NOT_FOUND = N_("Your own sessions and check-ins are on today's page.")


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Client errors, and any unexpected failure (500, logged), as a page in the visitor's language (htmx and
    scripts get the bare status and text)."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status not in ERRORS or request.path.startswith("/static/"):
            raise
        _ = translator(language(request))
        expired = isinstance(exc, CsrfRefused)  # a stale form, not a permission refusal: said so
        message = _(CSRF_EXPIRED) if expired else _(ERRORS[exc.status])
        if isinstance(exc, auth.FinishEnrolment):  # a patient still enrolling: as the Mini App's sign-in says
            message = _(auth.FINISH_ENROLMENT)
        if request.headers.get("HX-Request") or request.headers.get("Accept", "").startswith("application/json"):
            return web.Response(status=exc.status, text=message)
        if exc.status == 401 and request.path.startswith("/app/"):
            # A Mini App page opened from Telegram: the sign-in page signs in with initData, then opens the
            # page by its address. A form sent after the session ended ([web] idle_minutes: a check-in left
            # open meanwhile) gets it too, and so its page again, not the staff's "send /dashboard".
            return await render(request, "miniapp.html", {}, status=401)
        title = _(CSRF_TITLE) if expired else None
        back = page_of_form(request) if expired else None
        home = None
        visitor = request.get(VISITOR)
        enrolled = isinstance(visitor, Visitor) and visitor.patient is not None and not visitor.enrolling
        if exc.status == 404 and request.path.startswith("/app/") and enrolled:
            # Another patient's session or check-in, or one that is gone: nothing of it, and the way back
            # (a patient still enrolling gets the plain 404: today's page is not theirs yet).
            title, message, home = _(APP_NOT_FOUND_TITLE), _(APP_NOT_FOUND), "/app/home"
        if exc.status == 401 and builder.signed_out_save(request):  # the draft waits in the tab (builder.js)
            message, back = f"{message} {_(builder.SIGNED_OUT_DRAFT)}", page_of_form(request)
        if exc.status == 413:
            if request.path.startswith("/app/"):  # a patient's photo: say the limit, as the page's own check does
                mb = app_messages.photo_mb(context(request).config.care.photo_max_bytes)
                message = _(app_messages.TOO_LARGE, mb=mb)
            back = page_of_form(request)
        return await render(
            request,
            "error.html",
            {"status": exc.status, "title": title, "message": message, "back": back, "home": home},
            status=exc.status,
        )
    except Exception:
        log.exception("error answering %s %s", request.method, request.path)
        message = translator(language(request))(UNEXPECTED)
        if request.headers.get("HX-Request") or request.headers.get("Accept", "").startswith("application/json"):
            return web.Response(status=500, text=message)
        values = {"status": 500, "title": None, "message": message, "back": None, "home": None}
        return await render(request, "error.html", values, status=500)


_LOCAL_PATH = re.compile(r"/(?!/)[A-Za-z0-9/_.~-]*")


def page_of_form(request: web.Request) -> str | None:
    """The page a refused form was posted from, when the router can tell: the form's own address if it
    is also a page (GET), else its parent's (POST /patients/1/pause -> /patients/1). Only a path of this
    site, never a header's word (pages send no Referer: Referrer-Policy no-referrer)."""
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return None
    path = request.rel_url.raw_path
    for candidate in (path, path.rstrip("/").rpartition("/")[0] or "/"):
        if not _LOCAL_PATH.fullmatch(candidate):  # a plain local path: never //host or /\host
            continue
        if page_handler(request.app, candidate) is not None:  # a GET route answers it
            return candidate
    return None


# The templates' filters for dates, times and numbers, in the page's language (rehab_bot.formats):
# {{ at|when(tz) }}, {{ at|when("UTC", seconds=True) }}, {{ day|day }}, {{ share|percent }}, {{ score|number }}.


@jinja2.pass_context
def _when(page: jinja2.runtime.Context, value: datetime, tz: str, seconds: bool = False) -> str:
    return formats.when(value, tz, page["lang"], seconds=seconds)


@jinja2.pass_context
def _day(page: jinja2.runtime.Context, value: date) -> str:
    return formats.day(value, page["lang"])


@jinja2.pass_context
def _percent(page: jinja2.runtime.Context, value: float) -> str:
    return formats.percent(value, page["lang"])


@jinja2.pass_context
def _number(page: jinja2.runtime.Context, value: float) -> str:
    return formats.number(value, page["lang"])


# {{ alert|alert_detail }}: an alert's detail in the page's language (rehab_bot.alert_detail; the stored
# detail for an alert raised before its detail had parts).
@jinja2.pass_context
def _alert_detail(page: jinja2.runtime.Context, alert: alert_detail.HasDetail) -> str:
    return alert_detail.text(alert, page["lang"])


# {{ text|phones }}: a clinic text that tells the patient whom to call (the emergency text, a red-flag reply, a
# safety note) with each phone number in it a tel: link, the number as written its visible text, so one tap
# calls. A number is a run of at least 3 digits, with single spaces or dashes between groups and an optional
# leading + or (area code); not one that is part of a word, a time (08:00), a decimal (38,5), a short range
# (0-10, 8-16) or a date (2026-11-01). Its href keeps only the digits and +; the rest of the text is escaped.
_PHONE = re.compile(r"(?<![\w+.,:/-])\+?(?:\(\d{1,5}\)[ -]?)?\d(?:[ -]?\d)*+(?!\w|[.,:/-]\d)")
_RANGE = re.compile(r"\d{1,2}-\d{1,2}|\d{4}-\d{1,2}-\d{1,2}")


def phone_links(text: str) -> markupsafe.Markup:
    """The text, escaped, with its phone numbers as tel: links (see _PHONE)."""
    parts: list[str] = []
    last = 0
    for found in _PHONE.finditer(text):
        number = found.group()
        dialled = re.sub(r"[^0-9+]", "", number)
        if sum(c.isdigit() for c in dialled) < 3 or _RANGE.fullmatch(number):
            continue
        parts += [markupsafe.escape(text[last : found.start()]), _LINK.format(dialled, number)]
        last = found.end()
    parts.append(markupsafe.escape(text[last:]))
    return markupsafe.Markup("").join(parts)


_LINK = markupsafe.Markup('<a href="tel:{}">{}</a>')

FILTERS: dict[str, Callable[..., str]] = {
    "when": _when,
    "day": _day,
    "percent": _percent,
    "number": _number,
    "phones": phone_links,
    "alert_detail": _alert_detail,
}


def build_app(ctx: WebContext) -> web.Application:
    """The web application: sessions, pages, static files."""
    storage = EncryptedCookieStorage(
        ctx.key("session"),
        cookie_name=COOKIE_NAME,
        httponly=True,
        samesite="Lax",
        secure=ctx.config.web.https,
        max_age=None,  # a browser session; idle time is checked on every request
    )
    app = web.Application(
        middlewares=[
            _limit_middleware(),
            session_middleware(storage),
            error_middleware,
            auth.auth_middleware,
            csrf_middleware,
        ],
        # A patient's photo to the care team (the Mini App's messages page) may be up to [care] photo_max_bytes.
        client_max_size=max(MAX_BODY, ctx.config.care.photo_max_bytes + UPLOAD_OVERHEAD),
    )
    app[CONTEXT] = ctx
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        default_helpers=True,
        filters=FILTERS,
    )
    aiohttp_jinja2.get_env(app).globals.update(
        severity_labels=alert_core.SEVERITY_LABELS, kind_labels=alert_core.KIND_LABELS, miniapp_texts=auth.miniapp_texts
    )
    app.on_response_prepare.append(_headers)
    app.router.add_static("/static/", STATIC, name="static", append_version=True)
    auth.setup(app)
    caseload.setup(app)
    patients.setup(app)
    thread.setup(app)
    alerts.setup(app)
    admin.setup(app)
    reports.setup(app)
    exercises.setup(app)
    builder.setup(app)
    clinic_templates.setup(app)
    patient_app.setup(app)
    app_messages.setup(app)
    return app


# How often the stored caseload figures are brought up to date in the background, and how many
# patients at a time (rehab_bot.caseload_overview.refresh_stale; about 25 ms of CPU per 100).
REFRESH_SECONDS = 60.0
REFRESH_BATCH = 200


class WebServer:
    """The web app on its own port, in the bot's event loop ([web] listen)."""

    def __init__(self, ctx: WebContext, host: str, port: int) -> None:
        self.ctx = ctx
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def _keep_figures_current(self) -> None:
        """Recompute lapsed caseload figures (a local midnight, a changed patient) before a page needs them."""
        while True:
            try:
                while True:
                    async with self.ctx.db.session() as session:
                        done = await caseload_overview.refresh_stale(
                            session, self.ctx.clock.now(), self.ctx.config.staff, limit=REFRESH_BATCH
                        )
                        await session.commit()
                    if done < REFRESH_BATCH:
                        break
                    await asyncio.sleep(0.5)  # the bot's own work comes first
            except Exception:  # a database hiccup: the pages recompute what they need anyway
                log.warning("could not refresh the caseload figures", exc_info=True)
            await asyncio.sleep(REFRESH_SECONDS)

    @property
    def base_url(self) -> str:
        return self.ctx.base_url

    @property
    def app(self) -> web.Application:
        """The running application (its router lists every route)."""
        assert self._runner is not None
        return self._runner.app

    async def start(self) -> None:
        """Bind and serve; base_url is then public_url or http://host:port."""
        self._runner = web.AppRunner(build_app(self.ctx), access_log=None)  # URLs may hold sign-in tokens
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.ctx.base_url = (self.ctx.config.web.public_url or f"http://{host}:{self.port}").rstrip("/")
        self._refresher = asyncio.get_running_loop().create_task(self._keep_figures_current())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
