"""Rendering a page: a template from rehab_bot/web/templates/ with what every page needs.

``await render(request, "x.html", {...})`` adds the base context: ``_`` (the visitor's
language, rehab_bot.i18n), ``lang``, ``visitor`` (auth: staff / patient / neither),
``csrf_token`` and ``csrf_field_name`` for forms, ``clinic_name`` and ``path``.
Jinja2 autoescapes everything; never mark patient text safe.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from rehab_bot.i18n import translator
from rehab_bot.web.context import VISITOR, Visitor, context
from rehab_bot.web.forms import CSRF_FIELD, CSRF_HEADER, csrf_token

# A database id in an address: the tables' keys are 32-bit integers on PostgreSQL.
MAX_ID = 2**31 - 1
_ID_RE = re.compile(r"^[0-9]{1,10}$")


def page_handler(app: web.Application, path: str) -> Any | None:
    """The handler of the page (GET) that answers this path of the site, from the router's public
    description of its resources; None if no page does (static files are never one)."""
    for resource in app.router.resources():
        info = resource.get_info()
        if "path" in info:
            matches = info["path"] == path
        elif "pattern" in info:
            matches = info["pattern"].fullmatch(path) is not None
        else:
            continue
        pages = [route.handler for route in resource if route.method == "GET"]
        if matches and pages:
            return pages[0]
    return None


def url_id(request: web.Request, key: str = "id") -> int:
    """A database id from the URL, never trusted beyond its shape: 404 unless 1..MAX_ID in ASCII digits."""
    raw = request.match_info.get(key, "")
    value = int(raw) if _ID_RE.match(raw) else 0
    if not 0 < value <= MAX_ID:
        raise web.HTTPNotFound()
    return value


def language(request: web.Request) -> str:
    """The visitor's language (the clinic's before the visitor is known)."""
    found = request.get(VISITOR)
    return found.lang if isinstance(found, Visitor) else context(request).config.clinic.language


async def base_context(request: web.Request) -> dict[str, Any]:
    lang = language(request)
    return {
        "_": translator(lang),
        "lang": lang,
        "visitor": request.get(VISITOR),
        "csrf_token": await csrf_token(request),
        "csrf_field_name": CSRF_FIELD,
        "csrf_header": CSRF_HEADER,
        "clinic_name": context(request).config.clinic.name,
        "path": request.path,
    }


async def render(request: web.Request, template: str, values: dict[str, Any], *, status: int = 200) -> web.Response:
    """The page, rendered with the base context and values.

    The rendering runs in a worker thread: it is pure Python (a caseload page of 100 rows, a
    patient's year of chart points), and the web app shares the bot's event loop. In a thread the
    loop gets the interpreter back every few milliseconds (sys.getswitchinterval) to answer
    patients, instead of after the whole page (bench/web.py, row w3).
    """
    page = aiohttp_jinja2.get_env(request.app).get_template(template)
    context = {**await base_context(request), **values}
    text = await asyncio.to_thread(page.render, context)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
