"""The patients' Mini App: exercise player, check-in forms, result, progress, my data (thin: parse, core, render).

Every route is ``@allow("patient")``, the check-in forms and the result ``@allow("agreed")``
(a patient still enrolling who has agreed may answer the symptom check the chat offered them, and
start only a symptom check; web/auth.py): the patient signed in with Telegram's initData
(auth.miniapp_signin); a stranger opening an /app/ page gets the sign-in shell with
status 401 (app.error_middleware), whose script signs in and reloads the page; a form sent
after the session ended gets it too, and so its page again (signed in afresh).
Ids in the address are never trusted: the core functions return nothing for
another patient's session or check-in, and the handler answers 404.

- the player (miniapp.SESSION): one card per exercise; the finish form records Done or Partly,
  effort and pain with session.record_outcome, the function behind the chat's buttons,
  deduplicated with them; the chat message then loses its buttons through
  WebContext.on_outcome (the bot does the edit; this module imports no telegram).
- a check-in's form (miniapp.CHECKIN): its next question; answers go through checkin.answer
  (the same triage, red-flag replies and staff alerts as the chat buttons). An answer to a question
  another window answered first is not kept: the next page says so and shows the answer kept (a red
  flag sent there still alerts the clinic, checkin.answer, and leads to the result page with its reply).
- the result (miniapp.RESULT): the red-flag reply of the newest check-in (redflag.reply_text).
- ``/app/progress``: sessions, pain and mood (report.load_progress) for uPlot; streak; milestones.
- ``/app/mydata`` (patient.export, the /mydata file) and ``/app/delete`` (patient.erase, as /delete).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from wtforms import RadioField, StringField
from wtforms.validators import AnyOf, InputRequired, NumberRange, Optional

from rehab_bot import checkin as checkins
from rehab_bot import crisis, miniapp, motivation, redflag, report, schedule, session_text
from rehab_bot import patient as patient_core
from rehab_bot import session as sessions
from rehab_bot.config import photo_dir
from rehab_bot.content import Exercise, localize
from rehab_bot.content.checkins import Item
from rehab_bot.i18n import N_, t
from rehab_bot.models import Patient
from rehab_bot.typed import number
from rehab_bot.web.auth import allow, db, visitor
from rehab_bot.web.context import context
from rehab_bot.web.forms import Form, WholeNumberField, bind
from rehab_bot.web.outcome_charts import template_values as outcome_values
from rehab_bot.web.pages import MAX_ID, render, url_id

log = logging.getLogger(__name__)

EFFORT_LABELS = {"easy": N_("😌 Easy"), "ok": N_("🙂 OK"), "hard": N_("😓 Hard")}
MILESTONE_TITLES = {
    "first_full_week": N_("Your first full week"),
    "phase_change": N_("A new phase of your programme"),
    "pain_halved": N_("Your pain has halved"),
}
# A second window (another tab, or the chat's form opened twice) answered a question already answered.
ANSWERED_ELSEWHERE = N_(
    "This question of your check-in was already answered in another window: {answer}. "
    "That answer is kept; the one you sent here was not saved."
)
# A second window (or the chat) recorded the session first, with other answers than the ones sent here.
RECORDED_ELSEWHERE = N_(
    "This session was already recorded in the chat or in another window. "
    "That record is kept; what you sent here was not saved."
)
NOTICE = "app_notice"  # the session key of that notice, for the page the answer leads to
DELETE_WARNING = N_(
    "This deletes all your data: your sessions, answers, notes and settings. "
    "Your therapist is told that you deleted your data, but not what it was. "
    "All messages from this bot stop. This cannot be undone.\n\nDelete everything?"
)
SKIP = "s"


def _patient(request: web.Request) -> Patient:
    found = visitor(request).patient
    assert found is not None and found.id is not None
    return found


def _now(request: web.Request) -> datetime:
    return context(request).clock.now()


# --- the exercise player -------------------------------------------------------------------


class FinishForm(Form):
    outcome = RadioField(choices=[("done", "done"), ("partly", "partly")], validators=[InputRequired()])
    effort = StringField(validators=[Optional(), AnyOf(sessions.EFFORTS)])
    pain = WholeNumberField(validators=[Optional(), NumberRange(0, sessions.PAIN_MAX)])


def _card(lang: str, session_id: int, number: int, exercise: Exercise) -> dict[str, Any]:
    media = None
    if exercise.media is not None:
        local = not exercise.media.startswith(("http://", "https://"))
        # Files from the content folder are served here; an https address only as a link (the
        # Content-Security-Policy embeds this origin's media only).
        media = {
            "kind": exercise.media_kind or "photo",
            "url": miniapp.media_path(session_id, number) if local else exercise.media,
            "local": local,
        }
    return {
        "number": number,
        "name": localize(exercise.name, lang),
        "dose": session_text.dose(lang, exercise),
        "instructions": localize(exercise.instructions, lang).strip(),
        "safety": localize(exercise.safety_notes, lang).strip(),
        "sets": exercise.sets,
        "reps": exercise.reps or 0,
        "hold": exercise.hold_seconds or 0,
        "media": media,
    }


async def _played(request: web.Request) -> sessions.Played:
    ctx, patient = context(request), _patient(request)
    played = await sessions.for_player(db(request), patient, ctx.content, url_id(request))
    if played is None:
        raise web.HTTPNotFound()
    return played


@allow("patient")
async def player(request: web.Request) -> web.StreamResponse:
    """The session's exercises, one card each, and the finish form (or what was recorded)."""
    patient = _patient(request)
    played = await _played(request)
    es = played.session
    assert es.id is not None
    lang = patient.language
    cards = [_card(lang, es.id, n, ex) for n, ex in enumerate(played.exercises, 1)]
    finished = es.status in sessions.DONE_STATUSES
    streak = (await sessions.stats(db(request), patient, _now(request))).streak_days if finished else 0
    form = await bind(FinishForm, request)
    return await render(
        request,
        "app_session.html",
        {
            "es": es,
            "action": miniapp.session_path(es.id),
            "cards": cards,
            "form": form,
            "open": es.status == sessions.Status.PENDING.value and es.step in sessions.OPEN_STEPS,
            "finished": finished,
            "streak": streak,
            "efforts": [(key, t(lang, label)) for key, label in EFFORT_LABELS.items()],
            "notice": await _take_notice(request),
        },
    )


@allow("patient")
async def finish(request: web.Request) -> web.StreamResponse:
    """Record Done or Partly with effort and pain: session.record_outcome, as the chat's buttons."""
    ctx, session, patient = context(request), db(request), _patient(request)
    session_id = url_id(request)
    form = await bind(FinishForm, request, await request.post())
    if not form.validate():
        raise web.HTTPBadRequest()
    status = sessions.Status.DONE if form.outcome.data == "done" else sessions.Status.PARTLY
    outcome = await sessions.record_outcome(
        session,
        patient,
        session_id,
        status=status,
        now=ctx.clock.now(),
        effort=str(form.effort.data or ""),
        pain=form.pain.data,
    )
    if outcome is None:
        await _played(request)  # another patient's session, or none: 404
        await session.rollback()
        # Their own, closed meanwhile (skipped in the chat, or missed when its day ended): the
        # page says so in their language, where an error page said there was no such page.
        raise web.HTTPSeeOther(miniapp.session_path(session_id))
    message_id = outcome.session.message_id
    kept = outcome.session
    sent = (status.value, str(form.effort.data or ""), form.pain.data)
    if not outcome.recorded and sent != (kept.status, kept.effort or "", kept.pain):
        # Not a double tap: other answers, lost to a record made first; the page says so, not only "Logged".
        (await get_session(request))[NOTICE] = {"text": t(patient.language, RECORDED_ELSEWHERE)}
    if outcome.recorded:  # pain at the pain rule's threshold: alerted, and what to do shown above the praise
        finding = await redflag.on_session_pain(session, patient, ctx.content, ctx.config.clinic, kept, ctx.clock.now())
        if finding is not None:
            advice = redflag.reply_text(finding, ctx.content, patient.language, ctx.config.clinic)
            (await get_session(request))[NOTICE] = {"advice": advice}
    await session.commit()
    chat_id = patient.telegram_id
    if outcome.recorded and message_id is not None and chat_id is not None and ctx.on_outcome is not None:
        ctx.on_outcome(chat_id, message_id)  # the chat's buttons go (done by the bot)
    log.info("session %d finished in the Mini App (recorded: %s)", session_id, outcome.recorded)
    raise web.HTTPSeeOther(miniapp.session_path(session_id) + "#finished")


@allow("patient")
async def media(request: web.Request) -> web.StreamResponse:
    """An exercise's photo, GIF or video from the clinic's content, for the patient whose session it is in."""
    played = await _played(request)
    number = url_id(request, "n")
    if not 1 <= number <= len(played.exercises):
        raise web.HTTPNotFound()
    source = played.exercises[number - 1].media
    if source is None or source.startswith(("http://", "https://")):
        raise web.HTTPNotFound()
    response = web.FileResponse(source)  # a missing file: 404 (FileResponse checks when it is sent)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# --- check-ins -------------------------------------------------------------------------------


class AnswerForm(Form):
    checkin = WholeNumberField(validators=[InputRequired(), NumberRange(1, MAX_ID)])
    item = WholeNumberField(validators=[InputRequired(), NumberRange(0, 1000)])
    value = StringField(validators=[InputRequired()])


class StartForm(Form):
    questionnaire = StringField(validators=[InputRequired()])


def _label(item: Item, value: int | None, lang: str) -> str:
    """An answer as the patient saw it on its button ("Yes", "7", "Several days"); "skipped" for none."""
    option = item.option(value) if value is not None else None
    if option is None:
        return t(lang, "skipped")
    return (t(lang, "Yes") if option.value else t(lang, "No")) if item.yes_no else localize(option.label, lang)


async def _answered_elsewhere(
    request: web.Request, patient: Patient, checkin_id: int, item_index: int, sent: int | None, reply: str
) -> None:
    """The answer sent differs from the one another window recorded first: say so on the next page, with
    what was kept. ``reply``: what to do now after a red flag sent here that was not kept (the core
    alerted the clinic for it: checkin.answer), shown on the result page all the same."""
    ctx, lang = context(request), patient.language
    kept = await checkins.recorded_answer(db(request), patient, ctx.content, checkin_id, item_index)
    if kept is None or kept[1].value == sent:
        return  # the same answer again: a double tap, nothing to explain
    item, row = kept
    notice = {"text": t(lang, ANSWERED_ELSEWHERE, answer=_label(item, row.value, lang)), "reply": reply}
    (await get_session(request))[NOTICE] = notice


async def _take_notice(request: web.Request) -> dict[str, str]:
    found = (await get_session(request)).pop(NOTICE, None)
    return found if isinstance(found, dict) else {}


def _question(step: checkins.Step, lang: str) -> dict[str, Any]:
    item, questionnaire = step.item, step.questionnaire
    options = []
    for option in item.options:
        options.append({"value": option.value, "label": _label(item, option.value, lang)})
    if item.yes_no:
        options.reverse()
    return {
        "title": localize(questionnaire.title, lang),
        "intro": localize(questionnaire.intro, lang) if step.first_of_questionnaire and questionnaire.intro else "",
        "text": localize(item.text, lang).strip(),
        "options": options,
        "optional": item.optional,
        "scale": len(options) >= 5 and not item.yes_no,
        # The ends of the scale (the item's low and high in questionnaires.toml), shown under its buttons.
        "anchors": (localize(item.low, lang), localize(item.high, lang)) if item.low and item.high else None,
        "position": step.set_position,
        "size": step.set_size,
    }


@allow("agreed")  # also a patient still enrolling (web/auth.py)
async def checkin_form(request: web.Request) -> web.StreamResponse:
    """The next question of the patient's check-in (or that it is answered or closed)."""
    ctx, patient, checkin_id = context(request), _patient(request), url_id(request)
    found = await checkins.for_form(db(request), patient, ctx.content, checkin_id, ctx.clock.now())
    if found is None:
        raise web.HTTPNotFound()
    await db(request).commit()  # next_step closes check-ins that ran out of time
    step = found.step
    return await render(
        request,
        "app_checkin.html",
        {
            "action": miniapp.checkin_path(checkin_id),
            "step": step,
            "question": _question(step, patient.language) if step is not None else None,
            "expired": found.expired,
            "skip": SKIP,
            "notice": await _take_notice(request),
        },
    )


@allow("agreed")  # also a patient still enrolling (web/auth.py)
async def checkin_answer(request: web.Request) -> web.StreamResponse:
    """One answer through checkin.answer: the same triage, reply and staff alert as a chat button."""
    ctx, session, patient = context(request), db(request), _patient(request)
    anchor = url_id(request)
    form = await bind(AnswerForm, request, await request.post())
    raw = str(form.value.data or "")
    value = None if raw == SKIP else number(raw, 3)
    if not form.validate() or (raw != SKIP and value is None):
        raise web.HTTPBadRequest()
    assert form.checkin.data is not None and form.item.data is not None
    result = await checkins.answer(
        session, patient, ctx.content, ctx.config.clinic, form.checkin.data, form.item.data, value, ctx.clock.now()
    )
    if result.status == "invalid":
        await session.rollback()
        raise web.HTTPNotFound()
    await session.commit()
    findings = result.findings
    if result.status == "duplicate":
        # Another window answered it first, differently: the patient is told, and a red flag sent here (the
        # core alerted for it: result.findings) leads to the result page with its reply.
        replies = [
            r for f in findings if (r := redflag.reply_text(f, ctx.content, patient.language, ctx.config.clinic))
        ]
        await _answered_elsewhere(request, patient, form.checkin.data, form.item.data, value, "\n\n".join(replies))
        # Or the same answer again (a double tap on the MainButton): the browser shows this response, not the
        # first one, so it leads where the first did; what to do now must not be lost to a second tap.
        findings = findings + await checkins.findings_of_answer(
            session, patient, ctx.content, ctx.config.clinic, form.checkin.data, form.item.data, ctx.clock.now()
        )
    if any(redflag.reply_text(f, ctx.content, patient.language, ctx.config.clinic) for f in findings):
        if result.status == "recorded" and ctx.on_red_flag is not None and patient.telegram_id is not None:
            ctx.on_red_flag(patient.telegram_id, patient.language)  # a neutral line in the chat, by the bot
        raise web.HTTPSeeOther(miniapp.RESULT)
    raise web.HTTPSeeOther(miniapp.checkin_path(anchor))


@allow("agreed")  # also a patient still enrolling (web/auth.py)
async def checkin_start(request: web.Request) -> web.StreamResponse:
    """Start one of the patient's on-demand questionnaires (as /checkin does) and open its form."""
    ctx, session, patient = context(request), db(request), _patient(request)
    form = await bind(StartForm, request, await request.post())
    allowed = {q.id for q in checkins.on_demand_for(patient, ctx.content)}
    if visitor(request).enrolling:  # still enrolling: only a check a symptom word offers (auth, "agreed")
        allowed &= crisis.symptom_checks(ctx.content)
    if not form.validate() or form.questionnaire.data not in allowed:
        raise web.HTTPBadRequest()
    opened = await checkins.start(session, patient, ctx.content, [str(form.questionnaire.data)], ctx.clock.now())
    await session.commit()
    assert opened[0].id is not None
    raise web.HTTPSeeOther(miniapp.checkin_path(opened[0].id))


@allow("agreed")  # also a patient still enrolling (web/auth.py)
async def result(request: web.Request) -> web.StreamResponse:
    """What to do now after a red-flag answer: the clinic's reply, in the patient's language."""
    ctx, patient = context(request), _patient(request)
    findings = await checkins.latest_findings(db(request), patient, ctx.content, ctx.config.clinic, ctx.clock.now())
    findings.sort(key=lambda f: redflag.SEVERITY_RANK[f.severity], reverse=True)
    notice = await _take_notice(request)
    replies = [notice["reply"]] if notice.get("reply") else []
    replies += [
        r for r in (redflag.reply_text(f, ctx.content, patient.language, ctx.config.clinic) for f in findings) if r
    ]
    return await render(request, "app_result.html", {"replies": replies, "notice": notice})


# --- home, progress, my data ---------------------------------------------------------------------


@allow("patient")
async def home(request: web.Request) -> web.StreamResponse:
    """Today's sessions, the check-ins the patient may start, and the other pages."""
    ctx, session, patient = context(request), db(request), _patient(request)
    now = ctx.clock.now()
    assert patient.id is not None
    today = await sessions.sessions_on(session, patient.id, schedule.local_date(patient, now))
    on_demand = [(q.id, localize(q.title, patient.language)) for q in checkins.on_demand_for(patient, ctx.content)]
    links = [(es, miniapp.session_path(es.id)) for es in today if es.id is not None]
    return await render(
        request,
        "app_home.html",
        {"patient": patient, "today": links, "on_demand": on_demand, "start_checkin": miniapp.CHECKINS},
    )


@allow("patient")
async def progress(request: web.Request) -> web.StreamResponse:
    """Charts of sessions, pain and mood (uPlot, days from the first day), streak and milestones."""
    ctx, session, patient = context(request), db(request), _patient(request)
    now = ctx.clock.now()
    facts = await patient_core.progress(session, patient, now)
    series = await report.load_progress(session, patient, now)
    first = series.first_day
    chart: dict[str, list[Any]] = {"day": [], "pain": [], "mood": [], "sessions": []}
    if first is not None:
        for offset in range((series.today - first).days + 1):
            day = first.fromordinal(first.toordinal() + offset)
            share = series.adherence(day)
            chart["day"].append(offset)
            chart["pain"].append(series.pain.get(day))
            chart["mood"].append(series.mood.get(day))
            chart["sessions"].append(None if share is None else round(share * 100))
    reached = [
        (sent.local_date, MILESTONE_TITLES[ctx.content.messages[sent.message_id].trigger])
        for sent in await motivation.history(session, patient)
        if sent.message_id in ctx.content.messages and ctx.content.messages[sent.message_id].trigger in MILESTONE_TITLES
    ]
    return await render(
        request,
        "app_progress.html",
        {
            "facts": facts,
            "chart": json.dumps(chart),
            "has_chart": first is not None,
            "summary": report.summary_text(series, patient.language),
            "milestones": sorted(reached, reverse=True),
            **await outcome_values(session, patient, ctx.content, patient.language),
        },
    )


@allow("patient")
async def mydata(request: web.Request) -> web.StreamResponse:
    """Everything the bot stores about the patient, as the /mydata file."""
    ctx, patient = context(request), _patient(request)
    data = await patient_core.export(db(request), patient, ctx.clock.now())
    log.info("patient %s exported their data in the Mini App", patient.id)
    return web.Response(
        body=json.dumps(data, ensure_ascii=False, indent=2).encode(),
        content_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-data.json"'},
    )


class DeleteForm(Form):
    confirm = StringField(validators=[InputRequired(), AnyOf(["yes"])])


@allow("patient")
async def delete_page(request: web.Request) -> web.StreamResponse:
    """What deleting means, and the one button that does it."""
    warning = t(_patient(request).language, DELETE_WARNING).split("\n\n")
    return await render(request, "app_delete.html", {"warning": warning})


@allow("patient")
async def delete(request: web.Request) -> web.StreamResponse:
    """Delete all the patient's data (patient.erase, as /delete's confirmation); the session ends."""
    ctx, session, patient = context(request), db(request), _patient(request)
    form = await bind(DeleteForm, request, await request.post())
    if not form.validate():
        raise web.HTTPBadRequest()
    lang = patient.language
    await patient_core.erase(
        session, patient, now=ctx.clock.now(), clinic=ctx.config.clinic, photo_dir=photo_dir(ctx.config)
    )
    await session.commit()
    log.info("patient %s deleted their data in the Mini App", patient.id)
    (await get_session(request)).invalidate()
    return await render(request, "app_deleted.html", {"lang_after": lang})


def setup(app: web.Application) -> None:
    """Add the Mini App's patient routes."""
    app.router.add_get("/app/home", home)
    app.router.add_get(miniapp.SESSION, player)
    app.router.add_post(miniapp.SESSION, finish)
    app.router.add_get(miniapp.SESSION_MEDIA, media)
    app.router.add_post(miniapp.CHECKINS, checkin_start)
    app.router.add_get(miniapp.CHECKIN, checkin_form)
    app.router.add_post(miniapp.CHECKIN, checkin_answer)
    app.router.add_get(miniapp.RESULT, result)
    app.router.add_get("/app/progress", progress)
    app.router.add_get(miniapp.MYDATA, mydata)
    app.router.add_get("/app/delete", delete_page)
    app.router.add_post("/app/delete", delete)
