"""The caseload page: every patient the staff member may see, filtered and sorted (htmx swaps the table).

Thin: the query string is parsed by a WTForms form, rehab_bot.caseload_overview does
the work (visibility, figures, risk, filters, sort), this module renders and audits.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from wtforms import BooleanField, Form, SelectField
from wtforms.validators import NumberRange, Optional

from rehab_bot import audit
from rehab_bot import caseload as caseload_core
from rehab_bot import caseload_overview as overview
from rehab_bot.i18n import N_
from rehab_bot.patient import STATUS_LABELS
from rehab_bot.web.auth import allow, db, signed_in_staff
from rehab_bot.web.context import context
from rehab_bot.web.forms import FormData, WholeNumberField
from rehab_bot.web.pages import render

# Rows per page: the figures of the page's patients only, unless a filter or a figure's sort needs all.
PAGE_SIZE = 100
# Column headers, in order: (sort key, label).
# What a therapist triages by first, right after the name: on a tablet they are on screen, the rest wrap.
COLUMNS = (
    ("alias", N_("Patient")),
    ("risk", N_("Risk")),
    ("alerts", N_("Open alerts")),
    ("adherence", N_("Adherence 7 days")),
    ("pain", N_("Last pain")),
    ("mood", N_("Last mood")),
    ("day", N_("Day after surgery")),
    ("status", N_("Status")),
)


class CaseloadQuery(Form):
    """The page's query string (a GET form: no CSRF, nothing changes)."""

    scope = SelectField(choices=list(overview.SCOPES))
    risk = BooleanField()
    alerts = BooleanField()
    sort = SelectField(choices=list(overview.SORTS), default="alias")
    desc = BooleanField()
    page = WholeNumberField(default=1, validators=[Optional(), NumberRange(min=1, max=10_000)])


@allow("staff")
async def caseload_page(request: web.Request) -> web.StreamResponse:
    """The caseload; an htmx request for the table gets the table only."""
    ctx, session, staff = context(request), db(request), signed_in_staff(request)
    default_scope = caseload_core.default_scope(staff)
    query = CaseloadQuery(FormData(request.query), scope=default_scope)
    if not query.validate():
        # A stale bookmark or an edited address ("?sort=bogus"): each part that is no choice falls back to
        # its default, as if it were left out, rather than a bare 400.
        if query.scope.errors:
            query.scope.data = default_scope
        if query.sort.errors:
            query.sort.data = "alias"
        if query.page.errors:
            query.page.data = 1
    now = ctx.clock.now()
    result = await overview.caseload(
        session,
        staff,
        now,
        ctx.config.staff,
        scope=query.scope.data,
        at_risk=bool(query.risk.data),
        open_alerts=bool(query.alerts.data),
        sort=query.sort.data or "alias",
        descending=bool(query.desc.data),
        page=query.page.data or 1,
        page_size=PAGE_SIZE,
    )
    audit.record(
        session,
        action=audit.VIEW_PATIENTS,
        now=now,
        staff=staff,
        actor=audit.web_actor(staff.telegram_id),
        detail=(
            f"web scope={result.scope} risk={int(result.at_risk)} alerts={int(result.open_alerts)} shown={result.shown}"
        ),
    )
    await session.commit()
    pages = max(1, -(-result.shown // PAGE_SIZE))
    page = result.page
    shown = result.entries
    partial = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "caseload-table"
    values: dict[str, Any] = {
        "caseload": result,
        "shown": shown,
        "page": page,
        "pages": pages,
        "columns": COLUMNS,
        "status_labels": STATUS_LABELS,
        "lesson_titles": caseload_core.lesson_titles(context(request).content, staff.language),
    }
    return await render(request, "_caseload_table.html" if partial else "caseload.html", values)


def setup(app: web.Application) -> None:
    app.router.add_get("/caseload", caseload_page, name="caseload")
