"""The exercise library: the content exercises plus the clinic's own, and their media.

The content exercises (``content/defaults/exercises.toml`` and the clinic's
content folder) are read-only here; the clinic adds and edits its own in the
web app. Those live in ``clinic_exercise`` and are named ``clinic-<n>`` in
plans, so they can never be mistaken for a content id that a clinic might
add later under the same name... unless it starts with ``clinic-``, which
the library refuses to look up in the content.

* Texts: a name and instructions in every patient language (en, de), and
  optional safety notes, checked by the content schema's rules (not blank,
  strict types) through :data:`ExerciseSchema`.
* Dose: sets, and optionally reps, hold time and duration in seconds, the same
  bounds as a plan (rehab_bot/plan.py).
* Media: a photo (JPEG, PNG), a GIF (sent as an animation) or an MP4 video.
  The type is read from the file's first bytes, not from its name, and a name
  whose extension says otherwise is refused; the size is capped per kind at
  Telegram's upload limits. A photo is re-encoded with its pixels only (its
  EXIF, such as a GPS position, is dropped). The file is stored in the media
  folder with mode 0600 under a random name, its absolute path kept on the row; the engine
  uploads it with the first reminder and sends it by file_id afterwards
  (models.MediaCache keyed by that path, as for content media).

Plain Python over SQLModel: no telegram, no web imports. The caller commits.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic_core import ErrorDetails
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import audit, files, formats, media, typed
from rehab_bot.access import StaffError
from rehab_bot.content import Content, Exercise, localize
from rehab_bot.content.schema import LANGUAGES
from rehab_bot.db import REPEAT_WINDOW, lock_row
from rehab_bot.i18n import N_, Problem, placeholders
from rehab_bot.models import ClinicExercise, Staff, table_of

CLINIC_PREFIX = "clinic-"
CLINIC_SOURCE = "clinic library"
MediaKind = Literal["photo", "animation", "video"]

# Telegram's upload limits for bots: photos 10 MB, other files 50 MB.
MAX_MEDIA_BYTES: dict[str, int] = {"photo": 10 * 1024 * 1024, "animation": 50 * 1024 * 1024, "video": 50 * 1024 * 1024}
MAX_NAME = 80
MAX_TEXT = 2000

# Dose bounds, shared with plans (rehab_bot/plan.py): one home.
MAX_SETS = 20
MAX_REPS = 200
MAX_HOLD_SECONDS = 600
MAX_DURATION_SECONDS = 4 * 3600


class LibraryError(StaffError):
    """Input the library refuses; the message is fit to show the staff member.

    ``fields``: what is wrong with each field at fault (:class:`Problem`, its ``where`` the field),
    when the refusal is about fields, so a form can mark them and say it in the reader's language.
    """

    def __init__(self, message: str = "", /, fields: Iterable[Problem] = (), **kwargs: object) -> None:
        super().__init__(message, **kwargs)
        self.fields = tuple(fields)


class LibraryConflict(LibraryError):
    """The exercise was changed by someone else after this form was opened (optimistic concurrency)."""


# --------------------------------------------------------------------------- dose and texts


def _typed(value: Any) -> Any:
    """A typed text as it is stored (typed.text: no NUL or other control characters, no surrounding
    spaces; only spaces or zero-width characters read as empty); anything else for strict mode to refuse."""
    return typed.text(value) if isinstance(value, str) else value


def _text(limit: int) -> Any:
    return Annotated[str, Field(min_length=1, max_length=limit, pattern=r"\S"), BeforeValidator(_typed)]


_STRICT = ConfigDict(extra="forbid", strict=True)


class Dose(BaseModel):
    """Sets, reps, hold and duration: the dose of an exercise in the library or in a plan."""

    model_config = _STRICT
    sets: int = Field(default=1, ge=1, le=MAX_SETS)
    reps: int | None = Field(default=None, ge=1, le=MAX_REPS)
    hold_seconds: int | None = Field(default=None, ge=1, le=MAX_HOLD_SECONDS)
    duration_seconds: int | None = Field(default=None, ge=1, le=MAX_DURATION_SECONDS)


def per_language(name: str, limit: int, *, required: bool = True) -> type[BaseModel]:
    """A model with one text per patient language (i18n.SUPPORTED_LANGUAGES), required and not blank, or optional."""
    optional = Annotated[str, Field(max_length=limit), BeforeValidator(_typed)]
    field: Any = (_text(limit), ...) if required else (optional, "")
    model: type[BaseModel] = create_model(name, __config__=_STRICT, **{lang: field for lang in LANGUAGES})
    return model


if TYPE_CHECKING:  # mypy sees the base class; pydantic the generated models
    _Texts = BaseModel
    _Names = BaseModel
    _OptionalTexts = BaseModel
else:
    _Texts = per_language("Texts", MAX_TEXT)
    _Names = per_language("Names", MAX_NAME)
    _OptionalTexts = per_language("OptionalTexts", MAX_TEXT, required=False)


class ExerciseSchema(Dose):
    """A clinic exercise as the web form sends it (every patient language required)."""

    name: _Names
    instructions: _Texts
    safety_notes: _OptionalTexts = Field(default_factory=_OptionalTexts)


IS_REQUIRED = N_("is required")
IS_EMPTY = N_("is empty")
NOT_VALID = N_("is not valid")
# Pydantic's refusals (its error types) in our own words; {placeholders} from the error's ctx.
_SAID: dict[str, str] = {
    "less_than_equal": N_("must be at most {le}"),
    "greater_than_equal": N_("must be at least {ge}"),
    "less_than": N_("must be less than {lt}"),
    "greater_than": N_("must be more than {gt}"),
    "string_too_long": N_("is too long (at most {max_length} characters)"),
    "string_too_short": N_("is too short (at least {min_length} characters)"),
    "string_pattern_mismatch": N_("is not in the expected form"),
    "too_long": N_("has too many entries (at most {max_length})"),
    "too_short": N_("needs at least {min_length} items"),
    "int_type": N_("is not a whole number"),
    "int_parsing": N_("is not a whole number"),
    "int_from_float": N_("is not a whole number"),
    "string_type": N_("is not a text"),
    "extra_forbidden": N_("is not a field of this form"),
}
NEEDS_ONE = N_("needs at least 1 item")


def problem(error: ErrorDetails) -> Problem:
    """One of pydantic's refusals as a Problem: pydantic's own messages are English only.

    The one home of these words, for every form checked by a schema here (the exercise form,
    the programme builder's plan): a range says its bound ("must be at most 20"), a blank
    field that it is required or empty, anything not foreseen that it is not valid.
    """
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    where = ".".join(str(part) for part in error["loc"])
    if kind == "missing" or (given is None and kind.endswith("_type")):
        return Problem(IS_REQUIRED, where=where)  # a number left blank arrives as None
    if kind in ("string_too_short", "string_pattern_mismatch") and isinstance(given, str) and not given.strip():
        return Problem(IS_EMPTY, where=where)
    msgid = NEEDS_ONE if kind == "too_short" and ctx.get("min_length") == 1 else _SAID.get(kind, NOT_VALID)
    wanted = placeholders(msgid)
    if not wanted <= ctx.keys():
        return Problem(NOT_VALID, where=where)
    return Problem(msgid, {key: ctx[key] for key in wanted}, where)


def field_problems(exc: ValidationError) -> list[Problem]:
    """Pydantic's errors as Problems, each with its field: ('name.de', 'is required')."""
    return [problem(error) for error in exc.errors()]


def check_exercise(raw: Mapping[str, Any]) -> ExerciseSchema:
    """The exercise as the form gave it, checked; LibraryError lists every problem."""
    try:
        return ExerciseSchema.model_validate(dict(raw))
    except ValidationError as exc:
        found = field_problems(exc)
        raise LibraryError("; ".join(map(str, found)), found) from exc


# --------------------------------------------------------------------------- media


@dataclass(frozen=True)
class Sniffed:
    kind: MediaKind
    suffix: str
    mime: str


_SUFFIXES: dict[str, tuple[str, ...]] = {
    ".jpg": (".jpg", ".jpeg"),
    ".png": (".png",),
    ".gif": (".gif",),
    ".mp4": (".mp4", ".m4v"),
}


def sniff(data: bytes) -> Sniffed | None:
    """The media type from the first bytes: JPEG, PNG, GIF or MP4; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return Sniffed("photo", ".jpg", "image/jpeg")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("photo", ".png", "image/png")
    if data.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed("animation", ".gif", "image/gif")
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return Sniffed("video", ".mp4", "video/mp4")
    return None


def check_media(data: bytes, filename: str) -> Sniffed:
    """What an upload is, or LibraryError: unknown type, a name that says otherwise, too large, empty."""
    if not data:
        raise LibraryError(N_("The file is empty."))
    found = sniff(data)
    if found is None:
        raise LibraryError(N_("Only photos (JPEG, PNG), GIFs and MP4 videos can be uploaded."))
    suffix = Path(filename).suffix.lower()
    if suffix and suffix not in _SUFFIXES[found.suffix]:
        raise LibraryError(
            N_(
                "The file's name ends in {suffix}, but its content is {mime}: rename it to end in {right}, "
                "or choose another file."
            ),
            suffix=suffix,
            mime=found.mime,
            right=found.suffix,
        )
    limit = MAX_MEDIA_BYTES[found.kind]
    if len(data) > limit:
        raise LibraryError(N_("The file is larger than {mb} MB."), mb=limit // (1024 * 1024))
    return found


# What each kind of upload loses before it is stored (rehab_bot/media.py), and what a file that cannot
# be read as its kind is told.
_CLEANERS: dict[MediaKind, Callable[[bytes], bytes | None]] = {
    "photo": media.photo,
    "animation": media.gif,
    "video": media.mp4,
}
_UNREADABLE: dict[MediaKind, str] = {
    "photo": N_("This photo could not be read. Please upload it again as a JPEG or PNG file."),
    "animation": N_("This GIF could not be read. Please upload it again, or as an MP4 video."),
    "video": N_("This video could not be read. Please upload it again as an MP4 file."),
}


def store_media(data: bytes, media_dir: Path, sniffed: Sniffed) -> Path:
    """Write an upload into the media folder (0700) as a 0600 file under a random name; its absolute path."""
    folder = files.private_dir(media_dir).resolve()
    path = folder / f"{secrets.token_hex(16)}{sniffed.suffix}"
    files.write_private_bytes(path, data)
    return path


def remove_media(path: Path) -> None:
    """Delete a media file stored for a save that was then refused or failed (never committed): no orphan
    file stays in the media folder. A file already gone is fine."""
    path.unlink(missing_ok=True)


def _holds(stored: str | None, data: bytes) -> bool:
    """The stored media file has exactly these bytes (a missing or unreadable file has not)."""
    if not stored:
        return False
    path = Path(stored)
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


# --------------------------------------------------------------------------- the library


def clinic_id(row: ClinicExercise) -> str:
    """The id of a clinic exercise in plans and forms."""
    return f"{CLINIC_PREFIX}{row.id}"


def row_id(exercise_id: str) -> int | None:
    """The clinic_exercise row of a ``clinic-<n>`` id, else None."""
    if not exercise_id.startswith(CLINIC_PREFIX):
        return None
    number = exercise_id[len(CLINIC_PREFIX) :]
    return typed.number(number, 9)


def _texts(value: str) -> dict[str, str]:
    try:
        data = json.loads(value or "{}")
    except ValueError:
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}
        if isinstance(data, dict)
        else {}
    )


def to_exercise(row: ClinicExercise) -> Exercise:
    """A clinic exercise as the engine and the renderers see every exercise."""
    kind = row.media_kind if row.media and row.media_kind else None
    return Exercise(
        id=clinic_id(row),
        name=_texts(row.name),
        instructions=_texts(row.instructions),
        sets=row.sets,
        reps=row.reps,
        hold_seconds=row.hold_seconds,
        media=row.media or None,
        media_kind=cast("MediaKind | None", kind),
        safety_notes=_texts(row.safety_notes),
        source=CLINIC_SOURCE,
        duration_seconds=row.duration_seconds,
    )


async def clinic_rows(session: AsyncSession) -> list[ClinicExercise]:
    """Every clinic exercise, oldest first."""
    return list((await session.exec(select(ClinicExercise).order_by(col(ClinicExercise.id)))).all())


async def catalogue(session: AsyncSession, content: Content, ids: Iterable[str] | None = None) -> dict[str, Exercise]:
    """Exercises by id: the content's and the clinic's (only the clinic ones named in ids, when given)."""
    result: dict[str, Exercise] = {k: v for k, v in content.exercises.items() if not k.startswith(CLINIC_PREFIX)}
    query = select(ClinicExercise)
    if ids is not None:
        wanted = {n for n in (row_id(i) for i in ids) if n is not None}
        if not wanted:
            return result
        query = query.where(col(ClinicExercise.id).in_(wanted))
    for row in (await session.exec(query)).all():
        result[clinic_id(row)] = to_exercise(row)
    return result


@dataclass(frozen=True)
class Entry:
    """One line of the library list."""

    exercise: Exercise
    editable: bool  # the clinic's own (content exercises are edited in the content files)

    def name(self, lang: str) -> str:
        return localize(self.exercise.name, lang)


async def entries(session: AsyncSession, content: Content, lang: str = "en") -> list[Entry]:
    """The whole library, sorted by name in lang: content exercises and the clinic's own."""
    everything = await catalogue(session, content)
    found = [Entry(ex, ex.source == CLINIC_SOURCE) for ex in everything.values()]
    return sorted(found, key=lambda e: (e.name(lang).casefold(), e.exercise.id))


async def get(session: AsyncSession, exercise_id: str) -> ClinicExercise | None:
    """A clinic exercise by its ``clinic-<n>`` id."""
    number = row_id(exercise_id)
    return None if number is None else await session.get(ClinicExercise, number)


def edit_token(row: ClinicExercise) -> str:
    """What an edit form carries to tell whether the exercise changed since it was opened."""
    return row.updated_at.isoformat()


def _texts_and_dose(row: ClinicExercise) -> tuple[Any, ...]:
    return (row.name, row.instructions, row.safety_notes, row.sets, row.reps, row.hold_seconds, row.duration_seconds)


def _fill(row: ClinicExercise, data: ExerciseSchema) -> None:
    row.name = json.dumps(data.name.model_dump(), ensure_ascii=False)
    row.instructions = json.dumps(data.instructions.model_dump(), ensure_ascii=False)
    row.safety_notes = json.dumps(
        {k: v for k, v in data.safety_notes.model_dump().items() if v.strip()}, ensure_ascii=False
    )
    row.sets, row.reps = data.sets, data.reps
    row.hold_seconds, row.duration_seconds = data.hold_seconds, data.duration_seconds


async def create(
    session: AsyncSession, staff: Staff, raw: Mapping[str, Any], now: datetime, *, actor: str | None = None
) -> ClinicExercise:
    """Add an exercise to the clinic's library (any active staff member); audited.

    The same form posted again (a double click, a reload, a retried request) adds nothing: the
    exercise this staff member added with the same texts and dose within REPEAT_WINDOW is returned.
    The staff member's row is locked first (db.lock_row), so a second post racing the first waits
    for it and then finds it.
    """
    _require_staff(staff)
    data = check_exercise(raw)
    row = ClinicExercise(name="", instructions="", created_by=staff.id, created_at=now, updated_at=now)
    _fill(row, data)
    assert staff.id is not None
    await lock_row(session, table_of(Staff), staff.id)
    earlier = await session.exec(
        select(ClinicExercise)
        .where(
            col(ClinicExercise.created_by) == staff.id,
            col(ClinicExercise.name) == row.name,
            col(ClinicExercise.created_at) >= now - REPEAT_WINDOW,
            col(ClinicExercise.created_at) <= now,
        )
        .order_by(col(ClinicExercise.id).desc())
    )
    for found in earlier.all():
        if _texts_and_dose(found) == _texts_and_dose(row):
            return found
    session.add(row)
    await session.flush()
    detail = f"exercise={clinic_id(row)}"
    audit.record(session, action=audit.LIBRARY_CREATE, now=now, staff=staff, actor=actor, detail=detail)
    return row


async def update(
    session: AsyncSession,
    staff: Staff,
    exercise_id: str,
    raw: Mapping[str, Any],
    now: datetime,
    *,
    actor: str | None = None,
    base: str | None = None,
) -> ClinicExercise:
    """Change a clinic exercise's texts and dose; audited. Content exercises cannot be changed here.

    base: the exercise's edit_token() when the form was opened. If it was changed since with
    other texts or dose, nothing is saved (LibraryError: a colleague's work is never overwritten
    unseen); the same form posted twice is no conflict. The row is locked first, so two saves
    racing each other are checked one after the other.
    """
    _require_staff(staff)
    number = row_id(exercise_id)
    if number is not None:
        await lock_row(session, table_of(ClinicExercise), number)
    row = None if number is None else await session.get(ClinicExercise, number, populate_existing=True)
    if row is None:
        raise LibraryError(N_("Only the clinic's own exercises can be edited here."))
    data = check_exercise(raw)
    wanted = ClinicExercise(name="", instructions="")
    _fill(wanted, data)
    if base is not None and base != edit_token(row) and _texts_and_dose(wanted) != _texts_and_dose(row):
        raise LibraryConflict(
            N_(
                "Someone changed this exercise at {when} (UTC), after you opened it. Your changes are below"
                " and not saved; save again to replace theirs with yours."
            ),
            when=formats.when(row.updated_at, "UTC", staff.language),
        )
    _fill(row, data)
    row.updated_at = now
    session.add(row)
    audit.record(
        session, action=audit.LIBRARY_EDIT, now=now, staff=staff, actor=actor, detail=f"exercise={exercise_id}"
    )
    return row


async def attach_media(
    session: AsyncSession,
    staff: Staff,
    exercise_id: str,
    data: bytes,
    filename: str,
    media_dir: Path,
    now: datetime,
    *,
    actor: str | None = None,
) -> ClinicExercise:
    """Check and store an uploaded photo, GIF or video as the exercise's media; audited.

    The previous file stays on disk until the new one is committed (a
    crash in between loses nothing), and is then no longer referenced.
    The same file as the exercise's media now (a form posted twice with its
    upload: a double click, a reload) stores nothing and changes nothing.
    A file stored here is the caller's to remove (remove_media) if the
    transaction is then not committed: the new ``row.media``.
    """
    _require_staff(staff)
    row = await get(session, exercise_id)
    if row is None:
        raise LibraryError(N_("Only the clinic's own exercises can get an upload here."))
    sniffed = check_media(data, filename)
    # A phone's photo or video carries where and when it was taken and the device, and the Mini App's
    # exercise player serves this file to patients as stored: all of that is removed first.
    cleaned = await asyncio.to_thread(_CLEANERS[sniffed.kind], data)
    if cleaned is None:
        raise LibraryError(_UNREADABLE[sniffed.kind])
    data = cleaned
    if await asyncio.to_thread(_holds, row.media, data):
        return row
    path = store_media(data, media_dir, sniffed)
    try:
        row.media, row.media_kind, row.updated_at = str(path), sniffed.kind, now
        session.add(row)
        detail = f"exercise={exercise_id} kind={sniffed.kind}"
        audit.record(session, action=audit.LIBRARY_MEDIA, now=now, staff=staff, actor=actor, detail=detail)
    except BaseException:
        remove_media(path)  # nothing refers to it: the caller does not commit a failed attach
        raise
    return row


def _require_staff(staff: Staff) -> None:
    if not staff.active:
        raise LibraryError(N_("You are not allowed to do this."))
