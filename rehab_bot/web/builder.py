"""The programme builder: a patient's plan by phase, session and exercise, a preview, save as plan or template.

Thin: WTForms parses the nested rows (phases-0-sessions-1-items-2-sets, ...),
htmx posts the whole form for each row added or removed and swaps the
builder back in, and rehab_bot.plan / rehab_bot.programme do everything else:
the starting points, every check (the content's programme rules and the dose
bounds), the save (re-planned from the next slot, one message to the patient,
audited) and the preview (the engine's own renderer). The staff member's
right to change the patient is checked by the core on save, on every request.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from aiohttp import web
from wtforms import FieldList, FormField, HiddenField, StringField, TextAreaField
from wtforms import Form as PlainForm
from wtforms.validators import Optional

from rehab_bot import audit, library, plan, programme
from rehab_bot.access import Access, Forbidden, access
from rehab_bot.content.schema import LANGUAGES
from rehab_bot.i18n import LANGUAGE_NAMES, N_, t
from rehab_bot.models import Patient
from rehab_bot.plan import PlanError
from rehab_bot.typed import number
from rehab_bot.web.auth import allow, db, signed_in_staff
from rehab_bot.web.context import context
from rehab_bot.web.forms import Form, WholeNumberField, bind, form_problems
from rehab_bot.web.pages import language, render
from rehab_bot.web.patients import load

# Above the problems of a refused save: the patient's plan, or a clinic template.
PLAN_NOT_SAVED = N_("The plan was not saved:")
TEMPLATE_NOT_SAVED = N_("The template was not saved:")
CONFLICT_NEXT = N_(
    "Your changes are below and not saved. Open the builder in a new tab to see the saved plan;"
    " save again to replace it with yours."
)

# The answer to a save that arrived after the session had ended (401): builder.js kept the draft in the tab.
SIGNED_OUT_DRAFT = N_(
    "The plan was not saved: you had been signed out. Your changes are kept in this browser tab."
    " Sign in again, then come back to this tab and press 'Back to the page': they are filled in again,"
    " not saved, for you to check and save."
)
_SAVE = re.compile(r"/patients/[0-9]+/programme/save")


def signed_out_save(request: web.Request) -> bool:
    """A builder save refused because nobody is signed in any more (its draft is kept in the page's tab)."""
    return request.method == "POST" and _SAVE.fullmatch(request.path) is not None


def _texts(name: str, area: bool = False) -> type[PlainForm]:
    field = TextAreaField if area else StringField
    return type(name, (PlainForm,), {lang: field() for lang in LANGUAGES})


class ItemForm(PlainForm):
    exercise = StringField()
    sets = WholeNumberField(validators=[Optional()])
    reps = WholeNumberField(validators=[Optional()])
    hold_seconds = WholeNumberField(validators=[Optional()])
    duration_seconds = WholeNumberField(validators=[Optional()])
    note = FormField(_texts("ItemNote"))


class SessionForm(PlainForm):
    items = FieldList(FormField(ItemForm))


class PhaseForm(PlainForm):
    id = StringField()
    from_day = WholeNumberField(validators=[Optional()])
    to_day = WholeNumberField(validators=[Optional()])
    title = FormField(_texts("PhaseTitle"))
    change_note = FormField(_texts("PhaseNote", area=True))
    sessions_per_day = WholeNumberField(validators=[Optional()])
    default_times = StringField()
    sessions = FieldList(FormField(SessionForm))


class PlanForm(Form):
    based_on = HiddenField()
    version = HiddenField()  # the patient's own plan's version when the builder was opened (0: none)
    phases = FieldList(FormField(PhaseForm))
    template_name = StringField()


def plan_data(form: PlanForm) -> dict[str, Any]:
    """The posted rows as the plan schema reads them (times split; blank numbers are None)."""
    phases = []
    for phase in form.phases.entries:
        p = phase.form
        phases.append(
            {
                "id": (p.id.data or "").strip(),
                "from_day": p.from_day.data,
                "to_day": p.to_day.data,
                "title": {k: v or "" for k, v in p.title.data.items()},
                "change_note": {k: v or "" for k, v in p.change_note.data.items()},
                "sessions_per_day": p.sessions_per_day.data,
                "default_times": [t.strip() for t in (p.default_times.data or "").split(",") if t.strip()],
                "sessions": [
                    {
                        "items": [
                            {
                                "exercise": (i.form.exercise.data or "").strip(),
                                "sets": i.form.sets.data if i.form.sets.data is not None else 1,
                                "reps": i.form.reps.data,
                                "hold_seconds": i.form.hold_seconds.data,
                                "duration_seconds": i.form.duration_seconds.data,
                                "note": {k: v or "" for k, v in i.form.note.data.items()},
                            }
                            for i in s.form.items.entries
                        ]
                    }
                    for s in p.sessions.entries
                ],
            }
        )
    return {"based_on": form.based_on.data or "", "phases": phases}


def _version(form: PlanForm) -> int | None:
    """The plan version the draft was opened at; None when the form does not say (no check)."""
    return number((form.version.data or "").strip(), 9)


def _form_values(raw: dict[str, Any]) -> dict[str, Any]:
    """A draft as the form's data (times joined)."""
    values = copy.deepcopy(raw)
    for phase in values["phases"]:
        phase["default_times"] = ", ".join(phase.get("default_times") or [])
    return values


def edit(raw: dict[str, Any], action: str) -> dict[str, Any]:
    """Add or remove a phase, session or exercise row of the draft, or move an exercise one place up or down
    in its session (what the row buttons post)."""
    raw = copy.deepcopy(raw)
    verb, *where = action.split(":")
    try:
        at = [int(x) for x in where]
    except ValueError:
        return raw
    phases = raw["phases"]
    try:
        if verb == "add-phase":
            last = phases[-1] if phases else None
            start = (last["to_day"] + 1) if last and last.get("to_day") is not None else 0
            phases.append(
                {
                    "id": f"phase-{len(phases) + 1}",
                    "from_day": start,
                    "to_day": None,
                    "title": dict(last["title"]) if last else {k: "" for k in LANGUAGES},
                    "change_note": {k: "" for k in LANGUAGES},
                    "sessions_per_day": 1,
                    "default_times": ["09:00"],
                    "sessions": [{"items": []}],
                }
            )
        elif verb == "remove-phase" and len(phases) > 1:
            del phases[at[0]]
        elif verb == "add-session":
            phases[at[0]]["sessions"].append({"items": []})
        elif verb == "remove-session" and len(phases[at[0]]["sessions"]) > 1:
            del phases[at[0]]["sessions"][at[1]]
        elif verb == "add-item":
            phases[at[0]]["sessions"][at[1]]["items"].append({"exercise": "", "sets": 1, "note": {}})
        elif verb == "remove-item":
            del phases[at[0]]["sessions"][at[1]]["items"][at[2]]
        elif verb in ("item-up", "item-down"):  # one place earlier or later in its session
            items = phases[at[0]]["sessions"][at[1]]["items"]
            here = at[2]
            there = here - 1 if verb == "item-up" else here + 1
            if 0 <= here < len(items) and 0 <= there < len(items):
                items[here], items[there] = items[there], items[here]
    except (IndexError, KeyError, TypeError):
        pass  # a stale row button: the draft stays as it is
    return raw


async def _patient(request: web.Request, needed: Access) -> Patient:
    """The patient of the URL, if the staff member may at least see (or change) them (as the patient page)."""
    _session, _staff, patient = await load(request, needed)
    return patient


async def _page(
    request: web.Request,
    patient: Patient,
    form: PlanForm,
    *,
    problems: list[str] | None = None,
    status: int = 200,
    notice: str = "",
    partial: bool = False,
    problems_heading: str = PLAN_NOT_SAVED,
) -> web.StreamResponse:
    ctx, session, staff = context(request), db(request), signed_in_staff(request)
    entries = await library.entries(session, ctx.content, staff.language)
    exercises = [(e.exercise.id, e.name(staff.language)) for e in entries]
    values = {
        "patient": patient,
        "form": form,
        "exercises": exercises,
        "exercise_names": dict(exercises),
        "programmes": [(p.id, p.title(staff.language)) for p in ctx.content.programmes.values()],
        "templates": await plan.templates(session),
        "problems": problems or [],
        "problems_heading": problems_heading,
        "notice": notice,
        "may_change": access(staff, patient) >= Access.WRITE,
        "languages": LANGUAGES,
        "language_names": LANGUAGE_NAMES,
        "labels": plan.FIELD_LABELS,
        # A posted draft shown again (an edit, a refused save, a template) is not the patient's saved plan:
        # the page warns before it is left (builder.js). The draft's key in the tab's sessionStorage names
        # the staff member and the patient: another member signing in in this tab never gets it filled in.
        "unsaved": request.method == "POST",
        "draft_key": f"{staff.id}:{patient.id}",
    }
    if request.headers.get("HX-Request") == "true":
        status = 200  # htmx swaps only 2xx answers: the problems are shown in the builder
    return await render(request, "_builder.html" if partial else "builder.html", values, status=status)


@allow("staff")
async def builder_page(request: web.Request) -> web.StreamResponse:
    """The builder for a patient, starting from ?start= (their current plan by default)."""
    ctx, session, staff = context(request), db(request), signed_in_staff(request)
    patient = await _patient(request, Access.READ)
    try:
        draft = await plan.starting_point(session, ctx.content, request.query.get("start", "current"), patient)
    except PlanError:
        raise web.HTTPNotFound() from None
    form = await bind(PlanForm, request)
    own = await plan.own_plan(session, patient.id) if patient.id is not None else None
    form.process(data={**_form_values(draft), "version": str(own.version if own is not None else 0)})
    audit.record(
        session,
        action=audit.VIEW_PATIENT,
        now=ctx.clock.now(),
        staff=staff,
        actor=audit.web_actor(staff.telegram_id),
        patient_id=patient.id,
        detail="web programme builder",
    )
    await session.commit()
    saved = request.query.get("saved") == "1"
    return await _page(request, patient, form, notice="saved" if saved else "")


async def _posted(request: web.Request) -> PlanForm:
    form: PlanForm = await bind(PlanForm, request, await request.post())
    return form


@allow("staff")
async def builder_edit(request: web.Request) -> web.StreamResponse:
    """A row added or removed: the builder again (htmx swaps it in)."""
    patient = await _patient(request, Access.READ)
    form = await _posted(request)
    if not form.validate():
        partial = request.headers.get("HX-Request") == "true"
        return await _page(
            request, patient, form, problems=await _form_problems(request, form), partial=partial, status=422
        )
    raw = edit(plan_data(form), str((await request.post()).get("action", "")))
    fresh = await bind(PlanForm, request)
    fresh.process(data={**_form_values(raw), "version": form.version.data or ""})
    return await _page(request, patient, fresh, partial=request.headers.get("HX-Request") == "true")


async def _form_problems(request: web.Request, form: PlanForm) -> list[str]:
    """What WTForms found wrong with the posted rows, one line each in the staff member's language,
    each with its place in the plan as the core says it for its own problems (plan.line)."""
    catalogue = await library.catalogue(db(request), context(request).content)
    draft, lang = plan_data(form), language(request)
    return [plan.line(found, draft, catalogue, lang) for found in form_problems(form)]


@allow("staff")
async def builder_preview(request: web.Request) -> web.StreamResponse:
    """What the patient's next reminder would say with this plan, in their language."""
    ctx, session = context(request), db(request)
    patient = await _patient(request, Access.READ)
    form = await _posted(request)
    problems = await _form_problems(request, form) if not form.validate() else []
    shown = None
    if not problems:
        try:
            shown = await programme.preview(session, ctx.content, patient, ctx.clock.now(), plan_data(form))
        except PlanError as exc:
            problems = exc.lines(language(request))
    values = {"preview": shown, "problems": problems, "patient": patient}
    return await render(request, "_preview.html", values)  # problems are shown in the preview (htmx swaps 2xx)


@allow("staff")
async def builder_save(request: web.Request) -> web.StreamResponse:
    """Save as the patient's own plan: re-planned from the next slot, one message to the patient, audited."""
    ctx, session, staff = context(request), db(request), signed_in_staff(request)
    patient = await _patient(request, Access.READ)
    form = await _posted(request)
    if not form.validate():
        return await _page(request, patient, form, problems=await _form_problems(request, form), status=422)
    delivery = ctx.config.delivery
    try:
        await programme.save_own_plan(
            session,
            staff,
            patient,
            plan_data(form),
            ctx.content,
            ctx.clock.now(),
            quiet=(delivery.quiet_hours_start, delivery.quiet_hours_end),
            actor=audit.web_actor(staff.telegram_id),
            neutral=not ctx.config.privacy.health_data_in_chat,
            base_version=_version(form),
        )
    except Forbidden:  # the core refuses before it writes anything; nothing is committed
        raise web.HTTPForbidden() from None
    except programme.PlanConflict as exc:  # a colleague saved first: their plan stays, the draft is shown again
        own = await plan.own_plan(session, patient.id) if patient.id is not None else None
        form.version.data = str(own.version if own is not None else 0)  # saving again replaces theirs, knowingly
        problems = [exc.text(staff.language), t(staff.language, CONFLICT_NEXT)]
        return await _page(request, patient, form, problems=problems, status=409)
    except PlanError as exc:
        return await _page(request, patient, form, problems=exc.lines(language(request)), status=422)
    await session.commit()
    raise web.HTTPSeeOther(f"/patients/{patient.id}/programme?saved=1")


@allow("staff")
async def builder_template(request: web.Request) -> web.StreamResponse:
    """Save the draft as a clinic template under a name."""
    ctx, session, staff = context(request), db(request), signed_in_staff(request)
    patient = await _patient(request, Access.READ)
    form = await _posted(request)
    if not form.validate():
        problems = await _form_problems(request, form)
        return await _page(request, patient, form, problems=problems, status=422, problems_heading=TEMPLATE_NOT_SAVED)
    try:
        await programme.save_template(
            session,
            staff,
            form.template_name.data or "",
            plan_data(form),
            ctx.content,
            ctx.clock.now(),
            actor=audit.web_actor(staff.telegram_id),
        )
    except PlanError as exc:
        partial = request.headers.get("HX-Request") == "true"
        problems = exc.lines(language(request))
        return await _page(
            request, patient, form, problems=problems, status=422, partial=partial, problems_heading=TEMPLATE_NOT_SAVED
        )
    await session.commit()
    return await _page(request, patient, form, notice="template", partial=request.headers.get("HX-Request") == "true")


def setup(app: web.Application) -> None:
    app.router.add_get("/patients/{id}/programme", builder_page, name="builder")
    app.router.add_post("/patients/{id}/programme/edit", builder_edit)
    app.router.add_post("/patients/{id}/programme/preview", builder_preview)
    app.router.add_post("/patients/{id}/programme/save", builder_save)
    app.router.add_post("/patients/{id}/programme/template", builder_template)
