"""Admin pages with the clinic's evaluation reports: outcomes (HTML and CSV) and experiments.

The same core functions and the same suppression as the command line:
``/admin/outcomes`` is ``rehab-bot report outcomes --from --to`` (rehab_bot.outcomes_report.build,
figures from fewer than 5 patients suppressed, no patient named; ``/admin/outcomes.csv`` is its
CSV), ``/admin/experiments`` is ``rehab-bot experiment report ID`` for every experiment in the
content (rehab_bot.experiment.report and report_lines). Admins only, rechecked on every request
(rehab_bot.access.is_admin through ``@allow("admin")``); every view is audited. The report rows
are the core's, in the admin's language (the CSV, like the command's files, is in English).
"""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web
from wtforms import DateField
from wtforms.validators import Optional

from rehab_bot import audit, experiment, outcomes_report
from rehab_bot.i18n import N_, translator
from rehab_bot.web.auth import allow, db, signed_in_staff
from rehab_bot.web.context import context
from rehab_bot.web.forms import NOT_DATES, Form, FormData
from rehab_bot.web.pages import language, render

DEFAULT_DAYS = 365  # without dates: patients enrolled in the last year
MAX_DAYS = 3 * 366
# Why a range gives no report: the page says so above its form, which keeps the dates as typed.
REVERSED = N_("'Enrolled from' is after 'Enrolled to': choose a start on or before the end.")
TOO_LONG = N_("A report covers at most 3 years of enrolments: choose a shorter range.")


class RangeRefused(Exception):
    """A date range the report cannot cover, with the msgid saying why."""

    def __init__(self, msgid: str) -> None:
        super().__init__(msgid)
        self.msgid = msgid


class RangeQuery(Form):
    """The outcomes page's date range (a GET form: no CSRF)."""

    class Meta:
        csrf = False

    start = DateField(validators=[Optional()])
    end = DateField(validators=[Optional()])


def _range(request: web.Request) -> tuple[date, date]:
    """The enrolment dates of the query (default: the last year to today); RangeRefused when they make no range."""
    query = RangeQuery(FormData({"start": request.query.get("from", ""), "end": request.query.get("to", "")}))
    if not query.validate():
        raise RangeRefused(NOT_DATES)
    today = context(request).clock.now().date()
    end = query.end.data or today
    default_start = end - timedelta(days=DEFAULT_DAYS) if end - date.min > timedelta(days=DEFAULT_DAYS) else date.min
    start = query.start.data or default_start
    if end < start:
        raise RangeRefused(REVERSED)
    if (end - start).days > MAX_DAYS:
        raise RangeRefused(TOO_LONG)
    return start, end


async def _build(request: web.Request) -> outcomes_report.Report:
    session, admin = db(request), signed_in_staff(request)
    ctx = context(request)
    start, end = _range(request)
    now = ctx.clock.now()
    report = await outcomes_report.build(session, ctx.content, start, end, now)
    kind = "csv" if request.path.endswith(".csv") else "page"
    audit.record(session, action=audit.VIEW_OUTCOMES, now=now, staff=admin, detail=f"{kind} from={start} to={end}")
    await session.commit()
    return report


@allow("admin")
async def outcomes_page(request: web.Request) -> web.StreamResponse:
    """The clinic outcomes report for patients enrolled in a date range; a range it cannot cover is
    explained above the form, which keeps the dates as typed (400)."""
    try:
        report = await _build(request)
    except RangeRefused as exc:
        typed = {"start": request.query.get("from", "")[:10], "end": request.query.get("to", "")[:10]}
        problem = translator(language(request))(exc.msgid)
        values = {"report": None, "typed": typed, "problem": problem}
        return await render(request, "admin_outcomes.html", values, status=400)
    typed = {"start": report.start.isoformat(), "end": report.end.isoformat()}
    csv_url = f"/admin/outcomes.csv?from={report.start}&to={report.end}"
    return await render(request, "admin_outcomes.html", {"report": report, "typed": typed, "csv_url": csv_url})


@allow("admin")
async def outcomes_csv(request: web.Request) -> web.StreamResponse:
    """The same report as CSV (outcomes_report.to_csv); 400 for a range it cannot cover (the page's link has none)."""
    try:
        report = await _build(request)
    except RangeRefused:
        raise web.HTTPBadRequest() from None
    name = f"outcomes-{report.start}-{report.end}.csv"
    return web.Response(
        text=outcomes_report.to_csv(report),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@allow("admin")
async def experiments_page(request: web.Request) -> web.StreamResponse:
    """Every experiment in the content: its state, decisions so far and estimate (outcomes due are recorded first)."""
    session, admin = db(request), signed_in_staff(request)
    ctx = context(request)
    now = ctx.clock.now()
    reports = [await experiment.report(session, ctx.content, eid, now) for eid in sorted(ctx.content.experiments)]
    audit.record(session, action=audit.VIEW_EXPERIMENTS, now=now, staff=admin, detail=f"shown={len(reports)}")
    await session.commit()
    return await render(
        request,
        "admin_experiments.html",
        {
            "reports": [(r, experiment.report_lines(r, language(request))) for r in reports],
            "min_patients": experiment.MIN_PATIENTS,
        },
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/outcomes", outcomes_page, name="admin_outcomes")
    app.router.add_get("/admin/outcomes.csv", outcomes_csv, name="admin_outcomes_csv")
    app.router.add_get("/admin/experiments", experiments_page, name="admin_experiments")
