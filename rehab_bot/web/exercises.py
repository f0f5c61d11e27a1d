"""The exercise library pages: the list, and create/edit of the clinic's own exercises with an upload.

Thin: WTForms parses the fields, rehab_bot.library checks and stores (texts per
language, dose bounds, media sniffed by content, kept 0600 under
[library] media_dir), this module renders and commits. Uploads come as
multipart from htmx (the CSRF token in the header, so the body is streamed
here with the library's own size cap) or, without scripts, as a plain form
(then within the app's 1 MiB request limit).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.web_request import FileField
from wtforms import Form as PlainForm
from wtforms import FormField, HiddenField, StringField, TextAreaField
from wtforms.validators import Optional

from rehab_bot import audit, library
from rehab_bot.content.schema import LANG_NAMES, LANGUAGES
from rehab_bot.i18n import LANGUAGE_NAMES, N_, Problem, translator
from rehab_bot.library import LibraryError
from rehab_bot.session_text import dose
from rehab_bot.web.auth import allow, db, signed_in_staff
from rehab_bot.web.context import context
from rehab_bot.web.forms import CSRF_HEADER, Form, WholeNumberField, bind, form_problems
from rehab_bot.web.pages import language, render

MAX_UPLOAD = max(library.MAX_MEDIA_BYTES.values())
MEDIA_LABELS = {"photo": N_("Photo"), "animation": N_("GIF"), "video": N_("Video")}
MAX_FIELD = 64 * 1024
# The form's fields by the names the library and WTForms give them, as the form labels them.
FIELD_LABELS = {
    "name": N_("Name"),
    "instructions": N_("Instructions"),
    "safety_notes": N_("Safety notes (optional)"),
    "sets": N_("Sets"),
    "reps": N_("Repetitions"),
    "hold_seconds": N_("Hold (seconds)"),
    "duration_seconds": N_("Duration (seconds)"),
}


def _texts(name: str, area: bool) -> type[PlainForm]:
    field = TextAreaField if area else StringField
    return type(name, (PlainForm,), {lang: field(LANG_NAMES.get(lang, lang)) for lang in LANGUAGES})


class ExerciseForm(Form):
    """An exercise's fields: texts per patient language, dose; the media file is read apart."""

    name = FormField(_texts("NameTexts", False))
    instructions = FormField(_texts("InstructionTexts", True))
    safety_notes = FormField(_texts("SafetyTexts", True))
    sets = WholeNumberField(validators=[Optional()], default=1)
    reps = WholeNumberField(validators=[Optional()])
    hold_seconds = WholeNumberField(validators=[Optional()])
    duration_seconds = WholeNumberField(validators=[Optional()])
    base = HiddenField()  # library.edit_token of the exercise when the form was opened


def exercise_data(form: ExerciseForm) -> dict[str, Any]:
    """The form as the library's schema reads it (blank numbers left out)."""
    data: dict[str, Any] = {
        "name": {k: v or "" for k, v in form.name.data.items()},
        "instructions": {k: v or "" for k, v in form.instructions.data.items()},
        "safety_notes": {k: v or "" for k, v in form.safety_notes.data.items()},
    }
    for key in ("sets", "reps", "hold_seconds", "duration_seconds"):
        value = getattr(form, key).data
        if value is not None:
            data[key] = value
    return data


def _form_values(row: Any) -> dict[str, Any]:
    ex = library.to_exercise(row)
    return {
        "name": ex.name,
        "instructions": ex.instructions,
        "safety_notes": ex.safety_notes,
        "sets": ex.sets,
        "reps": ex.reps,
        "hold_seconds": ex.hold_seconds,
        "duration_seconds": ex.duration_seconds,
        "base": library.edit_token(row),
    }


async def _read(request: web.Request) -> tuple[dict[str, str], tuple[bytes, str] | None]:
    """The posted fields and the upload (bytes, file name), if any; streamed when htmx sent the token in the header."""
    fields: dict[str, str] = {}
    upload: tuple[bytes, str] | None = None
    if request.content_type != "multipart/form-data" or not request.headers.get(CSRF_HEADER):
        posted = await request.post()
        for key, value in posted.items():
            if isinstance(value, str):
                fields[key] = value
            elif isinstance(value, FileField) and key == "media" and value.filename:
                upload = (value.file.read(MAX_UPLOAD + 1), value.filename)
        return fields, upload
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is not None:
            data = bytearray()
            while chunk := await part.read_chunk():
                data.extend(chunk)
                if len(data) > MAX_UPLOAD:
                    raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD, actual_size=len(data))
            if part.name == "media" and part.filename and data:
                upload = (bytes(data), part.filename)
        else:
            text = await part.text()
            if len(text) > MAX_FIELD:
                raise web.HTTPRequestEntityTooLarge(max_size=MAX_FIELD, actual_size=len(text))
            fields[part.name] = text
    return fields, upload


@allow("staff")
async def library_page(request: web.Request) -> web.StreamResponse:
    """Every exercise: the content's and the clinic's own, by name in the staff member's language."""
    ctx, session, staff = context(request), db(request), signed_in_staff(request)
    entries = await library.entries(session, ctx.content, staff.language)
    return await render(request, "exercises.html", {"entries": entries, "dose": dose, "media_labels": MEDIA_LABELS})


def field_problems(request: web.Request, problems: Iterable[Problem]) -> tuple[str, dict[str, str]]:
    """The problems with named fields in the reader's language ('Name (German): is empty'), and what
    is wrong by the id of each input at fault ('name-de': 'is empty'), which the form marks invalid
    and shows beside it."""
    lang = language(request)
    _ = translator(lang)
    lines: list[str] = []
    beside: dict[str, str] = {}
    for found in problems:
        field, _dot, code = found.where.partition(".")
        label = _(FIELD_LABELS[field]) if field in FIELD_LABELS else field
        if field in FIELD_LABELS and code in LANGUAGE_NAMES:
            label, input_id = f"{label} ({_(LANGUAGE_NAMES[code])})", f"{field}-{code}"
        else:
            input_id = field
        said = found.said(lang)
        if field in FIELD_LABELS:
            beside[input_id] = f"{beside[input_id]}; {said}" if input_id in beside else said
        lines.append(f"{label}: {said}" if label else said)
    return "; ".join(lines), beside


async def _editor(
    request: web.Request,
    form: ExerciseForm,
    *,
    exercise_id: str | None,
    problem: str = "",
    invalid: Iterable[str] = (),
    beside: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.StreamResponse:
    media = None
    if exercise_id is not None:
        row = await library.get(db(request), exercise_id)
        media = row.media_kind if row is not None and row.media else None
    values = {
        "form": form,
        "exercise_id": exercise_id,
        "problem": problem,
        "invalid": {*invalid, *(beside or {})},  # the inputs at fault
        "beside": beside or {},  # what is wrong with each, shown beside it
        "media": media,
        "languages": LANGUAGES,
        "language_names": LANGUAGE_NAMES,
        "media_labels": MEDIA_LABELS,
        "saved": request.query.get("saved") == "1" and not problem,
    }
    if request.headers.get("HX-Request") == "true":
        status = 200  # htmx swaps only 2xx answers: the problem is shown in the form
    return await render(request, "exercise_edit.html", values, status=status)


@allow("staff")
async def new_page(request: web.Request) -> web.StreamResponse:
    return await _editor(request, await bind(ExerciseForm, request), exercise_id=None)


@allow("staff")
async def edit_page(request: web.Request) -> web.StreamResponse:
    exercise_id = request.match_info["id"]
    row = await library.get(db(request), exercise_id)
    if row is None:
        raise web.HTTPNotFound()
    form = await bind(ExerciseForm, request)
    form.process(data=_form_values(row))
    return await _editor(request, form, exercise_id=exercise_id)


async def _save(request: web.Request, exercise_id: str | None) -> web.StreamResponse:
    ctx, session, staff = context(request), db(request), signed_in_staff(request)
    fields, upload = await _read(request)
    form = await bind(ExerciseForm, request, fields)
    now, actor = ctx.clock.now(), audit.web_actor(staff.telegram_id)
    existing = exercise_id
    if not form.validate():
        problem, beside = field_problems(request, form_problems(form))
        return await _editor(request, form, exercise_id=exercise_id, problem=problem, beside=beside, status=422)
    # Everything is checked before anything is written, so a refusal leaves nothing to undo.
    try:
        library.check_exercise(exercise_data(form))
    except LibraryError as exc:
        problem, beside = field_problems(request, exc.fields) if exc.fields else (exc.text(language(request)), {})
        return await _editor(request, form, exercise_id=existing, problem=problem, beside=beside, status=422)
    try:
        if upload is not None:
            library.check_media(*upload)
    except LibraryError as exc:
        return await _editor(
            request, form, exercise_id=existing, problem=exc.text(language(request)), invalid={"media"}, status=422
        )
    stored: Path | None = None  # a file written for this save: removed unless the save is committed
    try:
        if exercise_id is None:
            row = await library.create(session, staff, exercise_data(form), now, actor=actor)
            await session.flush()
            exercise_id = library.clinic_id(row)
        else:
            base = form.base.data or None
            row = await library.update(session, staff, exercise_id, exercise_data(form), now, actor=actor, base=base)
        if upload is not None:
            data, filename = upload
            media_dir, before = ctx.config.library.media_dir, row.media
            row = await library.attach_media(session, staff, exercise_id, data, filename, media_dir, now, actor=actor)
            stored = Path(row.media) if row.media and row.media != before else None
        await session.commit()
        stored = None
    except LibraryError as exc:
        if isinstance(exc, library.LibraryConflict) and existing is not None:
            # A colleague saved first: saving this form again replaces theirs, knowingly.
            current = await library.get(session, existing)
            if current is not None:
                form.base.data = library.edit_token(current)
        return await _editor(request, form, exercise_id=existing, problem=exc.text(language(request)), status=422)
    finally:
        if stored is not None:  # refused or failed after the file was written: no orphan file stays
            library.remove_media(stored)
    location = f"/exercises/{exercise_id}?saved=1"
    if request.headers.get("HX-Request"):
        return web.Response(status=204, headers={"HX-Redirect": location})
    raise web.HTTPSeeOther(location)


@allow("staff")
async def create(request: web.Request) -> web.StreamResponse:
    return await _save(request, None)


@allow("staff")
async def update(request: web.Request) -> web.StreamResponse:
    exercise_id = request.match_info["id"]
    if library.row_id(exercise_id) is None:
        raise web.HTTPNotFound()
    return await _save(request, exercise_id)


def setup(app: web.Application) -> None:
    app.router.add_get("/exercises", library_page, name="exercises")
    app.router.add_get("/exercises/new", new_page)
    app.router.add_post("/exercises/new", create)
    app.router.add_get("/exercises/{id}", edit_page)
    app.router.add_post("/exercises/{id}", update)
