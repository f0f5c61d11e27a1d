"""The patient's messages to the care team in the Mini App (/app/messages): for privacy mode.

With ``[privacy] health_data_in_chat = false`` a patient writes to the team here and reads the
replies here; the chat only says that the team answered. Thin, over the same core as the chat:
crisis words first (rehab_bot.redflag.on_crisis: crisis text now, the clinic alerted), then
rehab_bot.message.send; a concern word asks the crisis question below the sent message (Yes is a
crisis, as in the chat: rehab_bot.crisis.asks_question); a symptom word offers its check
(rehab_bot.crisis.symptom_check_for).
A photo upload is checked for size and type (JPEG or PNG by its bytes, and readable by Pillow),
re-encoded without its metadata (EXIF: GPS position, time, camera) and stored 0600 by
rehab_bot.message.store_photo. One limit, [care] photo_max_bytes: the page's own script checks a
chosen photo against it before sending (static/miniapp.js, so the typed text stays in the box),
this handler checks it again, and the app's request limit is set from it (app.build_app); a body
over that limit gets the friendly 413 page (app.error_middleware). The patient sees only their
own thread. A patient who has agreed and is still enrolling may use this page too (``"agreed"``,
web/auth.py): the chat offers it when they type a symptom at enrolment's time zone or times step.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from wtforms import FileField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from rehab_bot import crisis, media, miniapp, redflag, typed
from rehab_bot import message as message_core
from rehab_bot.config import photo_dir
from rehab_bot.content import localize
from rehab_bot.i18n import N_, t
from rehab_bot.models import Patient
from rehab_bot.web.auth import allow, db, visitor
from rehab_bot.web.context import context
from rehab_bot.web.forms import Form, bind, line_breaks
from rehab_bot.web.pages import render

log = logging.getLogger(__name__)

PATH = miniapp.MESSAGES
SENT = N_("Sent to your care team. They read messages during working hours and answer here.")
EMPTY = N_("Write a message or add a photo.")
NOT_A_PHOTO = N_("This file is not a photo (JPEG or PNG). Please choose a photo.")
TOO_LONG = N_("This message is too long (at most {n} characters). Please shorten it.")
TOO_LARGE = N_("This photo is too large (at most {mb} MB). Please send a smaller one.")
THANKS = N_("Thank you for telling me. Your message has gone to your care team.")


def photo_mb(max_bytes: int) -> str:
    """The photo limit as shown to patients, in MB (10000000 -> "10")."""
    return f"{max_bytes / 1_000_000:g}"


class MessageForm(Form):
    text = TextAreaField(validators=[Optional(), Length(max=message_core.MAX_TEXT)], filters=[line_breaks])
    photo = FileField(validators=[Optional()])


def _patient(request: web.Request) -> Patient:
    found = visitor(request).patient
    assert found is not None and found.id is not None
    return found


async def _page(request: web.Request, patient: Patient, **extra: object) -> web.StreamResponse:
    thread = await message_core.own_thread(db(request), patient)
    shown: dict[str, object] = dict.fromkeys(
        ("urgent", "error", "notice", "reads_from", "emergency", "symptom", "text", "question")
    )
    photo_max = context(request).config.care.photo_max_bytes
    limits = {
        "text_max": message_core.MAX_TEXT,
        "photo_max": photo_max,
        "photo_too_large": t(patient.language, TOO_LARGE, mb=photo_mb(photo_max)),
    }
    return await render(
        request, "app_messages.html", {**shown, "thread": thread, "patient": patient, **limits, **extra}
    )


async def _crisis(
    request: web.Request, patient: Patient, text: str, *, answered_yes: bool = False
) -> web.StreamResponse:
    """A crisis in these words (or Yes to the crisis question about them): kept as a crisis note, the clinic
    alerted, the crisis text on the page."""
    ctx, lang = context(request), patient.language
    finding = await redflag.on_crisis(
        db(request), patient, ctx.content, ctx.config.clinic, text, ctx.clock.now(), answered_yes=answered_yes
    )
    await db(request).commit()
    return await _page(request, patient, urgent=redflag.reply_text(finding, ctx.content, lang, ctx.config.clinic))


@allow("agreed")  # also a patient still enrolling (web/auth.py)
async def messages(request: web.Request) -> web.StreamResponse:
    """The patient's own thread with the care team, and a form to write."""
    return await _page(request, _patient(request))


@allow("agreed")  # also a patient still enrolling (web/auth.py)
async def write(request: web.Request) -> web.StreamResponse:
    """Send a message (text, optional photo) to the care team: triage first, as in the chat."""
    ctx, session, patient = context(request), db(request), _patient(request)
    lang, now = patient.language, ctx.clock.now()
    posted = await request.post()
    form = await bind(MessageForm, request, posted)
    if not form.validate():
        if form.text.errors:  # too long: the page again, with the reason and everything typed
            kept = str(form.text.data or "")
            return await _page(request, patient, error=t(lang, TOO_LONG, n=message_core.MAX_TEXT), text=kept)
        raise web.HTTPBadRequest()
    text = typed.text(str(form.text.data or ""))  # as the core stores it: nothing visible is empty
    upload = posted.get("photo")
    data = upload.file.read(ctx.config.care.photo_max_bytes + 1) if isinstance(upload, web.FileField) else b""
    if not text and not data:
        return await _page(request, patient, error=t(lang, EMPTY))
    if text and redflag.is_crisis(text, ctx.content):
        return await _crisis(request, patient, text)
    name = ""
    if data:
        if media.photo_kind(data) is None:
            return await _page(request, patient, error=t(lang, NOT_A_PHOTO), text=text)
        if len(data) <= ctx.config.care.photo_max_bytes:  # larger: refused below, never decoded
            # Its EXIF (GPS position, time, camera) is dropped; a file that only starts like a photo is refused.
            cleaned = await asyncio.to_thread(media.photo, data)
            if cleaned is None:
                return await _page(request, patient, error=t(lang, NOT_A_PHOTO), text=text)
            data = cleaned
        try:
            name = message_core.store_photo(photo_dir(ctx.config), data, ctx.config.care.photo_max_bytes)
        except message_core.PhotoTooLarge:
            mb = photo_mb(ctx.config.care.photo_max_bytes)
            return await _page(request, patient, error=t(lang, TOO_LARGE, mb=mb), text=text)
    sent = await message_core.send(
        session, patient, ctx.config.clinic, text=text, now=now, photo_path=name, photo_bytes=len(data)
    )
    await session.commit()
    if sent.repeated and name:  # the same message posted again: its photo is stored once
        message_core.delete_photos(photo_dir(ctx.config), [name])
    notice = t(lang, SENT) if sent.reads_from is None else ""
    check = crisis.symptom_check_for(text, ctx.content)
    symptom = (check, localize(ctx.content.questionnaires[check].title, lang)) if check else None
    question = None
    if text and crisis.asks_question(text, ctx.content):
        question = (sent.message.id, ctx.content.text(crisis.QUESTION, lang).strip())
        await redflag.asked_crisis_question(session, patient, text, now)  # unanswered, it alerts (redflag)
        await session.commit()
    return await _page(
        request,
        patient,
        notice=notice,
        reads_from=sent.reads_from,
        emergency=ctx.config.clinic.text("emergency_text", lang),
        symptom=symptom,
        question=question,
    )


class AnswerForm(Form):
    answer = StringField()
    message = StringField()


@allow("agreed")  # also a patient still enrolling (web/auth.py)
async def crisis_answer(request: web.Request) -> web.StreamResponse:
    """The crisis question's answer about one of the patient's own messages: Yes is a crisis (the
    crisis text now, a crisis note, an emergency alert), No changes nothing (the message was sent)."""
    session, patient = db(request), _patient(request)
    form = await bind(AnswerForm, request, await request.post())
    message_id = typed.number(str(form.message.data or ""), 9)
    if not form.validate() or form.answer.data not in ("yes", "no") or message_id is None:
        raise web.HTTPBadRequest()
    asked = await message_core.own_message(session, patient, message_id)
    if asked is None:
        raise web.HTTPNotFound()
    lang = patient.language
    await redflag.crisis_question_answered(session, patient, context(request).clock.now())
    if form.answer.data == "no":
        await session.commit()
        return await _page(request, patient, notice=t(lang, THANKS))
    return await _crisis(request, patient, asked.text, answered_yes=True)


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, messages)
    app.router.add_post(PATH, write)
    app.router.add_post(PATH + "/crisis", crisis_answer)
