"""Plans from the programme builder: a patient's own programme, or a clinic template.

A plan has the shape of a content programme (phases by days after surgery,
sessions per day, default times, a title and a change note per phase) and
adds what the therapist sets per exercise in each session: sets, reps, hold
time or duration, and a note for the patient in each language. It is stored
as JSON in ``programme_plan`` and checked in two steps, like the content:

1. the shape, by the pydantic models here (:class:`PlanSchema`, the dose
   bounds of :class:`rehab_bot.library.Dose`);
2. the phases, by the content's own programme rules
   (:func:`rehab_bot.content.check_phases`: ids, HH:MM times, sessions per
   day, phases from day 0 without gaps or overlaps, known exercises).

A checked plan becomes a :class:`rehab_bot.content.Programme` whose sessions
carry their exercises with the plan's dose (``SessionPlan.items``), so the
engine plans reminders and renders them from a patient's own plan exactly as
from a content programme (rehab_bot/programme.py, rehab_bot/session.py).

A plan declares no maintenance phase of its own. A patient's own plan whose
last phase ends (``to_day``) goes on, from the next day, with the
``[programme.maintenance]`` of the patient's content programme
(``Patient.programme_id``: the same programme whose cadences and weekly
check the check-ins follow), moved to start after the plan's end
(:func:`with_maintenance`); without one, the plan ends there.

Plain Python over SQLModel: no telegram, no web imports. The caller commits.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import library
from rehab_bot.content import (
    MAINTENANCE,
    MAX_SESSIONS_PER_DAY,
    Content,
    Exercise,
    Phase,
    Programme,
    SessionPlan,
    check_phases,
)
from rehab_bot.content.schema import ID_RE, LANGUAGES, localize
from rehab_bot.i18n import FALLBACK_LANGUAGE, LANGUAGE_NAMES, N_, Problem, t
from rehab_bot.library import Dose, LibraryError
from rehab_bot.models import Patient, ProgrammePlan
from rehab_bot.typed import number

log = logging.getLogger(__name__)

MAX_PHASES = 20
MAX_EXERCISES_PER_SESSION = 20
MAX_NOTE = 500
MAX_TITLE = 120
MAX_CHANGE_NOTE = 2000
PLAN_LABEL = "plan"

_STRICT = ConfigDict(extra="forbid", strict=True)


class PlanError(LibraryError):
    """A plan the builder refuses; ``problems`` lists every reason (a text given is a Problem without a field).

    draft and exercises: the plan refused and the exercises it may name, so that each line says
    where the problem is in the therapist's words (:func:`line`); ``str()`` is the English lines.
    """

    def __init__(
        self,
        problems: Sequence[str | Problem],
        draft: Mapping[str, Any] | None = None,
        exercises: Mapping[str, Exercise] | None = None,
    ) -> None:
        self.problems = [found if isinstance(found, Problem) else Problem(found) for found in problems]
        self.draft: Mapping[str, Any] = draft or {}
        self.exercises: Mapping[str, Exercise] = exercises or {}
        super().__init__("; ".join(self.lines(FALLBACK_LANGUAGE)))

    def lines(self, lang: str) -> list[str]:
        """Every reason as a line in lang, with its place in the plan."""
        return [line(found, self.draft, self.exercises, lang) for found in self.problems]


# --------------------------------------------------------------------------- where a problem is

# The plan's fields as the builder labels them (web/templates/_builder.html shows these words).
FIELD_LABELS: dict[str, str] = {
    "phases": N_("Phases"),
    "id": N_("Phase id"),
    "from_day": N_("From day after surgery"),
    "to_day": N_("To day (empty: open-ended)"),
    "sessions_per_day": N_("Sessions per day"),
    "default_times": N_("Default times (HH:MM, one per session)"),
    "title": N_("Title ({language})"),
    "change_note": N_("What changes, for the patient ({language})"),
    "sessions": N_("Sessions"),
    "items": N_("Exercises"),
    "exercise": N_("Exercise"),
    "sets": N_("Sets"),
    "reps": N_("Repetitions"),
    "hold_seconds": N_("Hold (seconds)"),
    "duration_seconds": N_("Duration (seconds)"),
    "note": N_("Note for the patient ({language})"),
    "name": N_("Template name"),
}
PHASE = N_("Phase {n}")
PHASE_NAMED = N_("Phase {n} «{name}»")
SESSION = N_("Session {n}")
EXERCISE = N_("Exercise {n}")
EXERCISE_NAMED = N_("Exercise {n} ({name})")
STEP = " › "


def _index(part: str) -> int | None:
    return int(part) if part.isascii() and part.isdigit() else None


def _child(node: Any, key: str, index: int) -> Any:
    """The draft's row at key[index], or None where the draft has none (an index out of range)."""
    rows = node.get(key) if isinstance(node, Mapping) else None
    return rows[index] if isinstance(rows, list) and 0 <= index < len(rows) else None


def _text_in(texts: Any, lang: str) -> str:
    """A text of the draft (a title per language) in lang, else in English, else ""."""
    if not isinstance(texts, Mapping):
        return ""
    found = texts.get(lang) or texts.get(FALLBACK_LANGUAGE) or ""
    return " ".join(found.split()) if isinstance(found, str) else ""


def _step(key: str, index: int, row: Any, exercises: Mapping[str, Exercise], lang: str) -> str:
    """One step of a place: "Phase 1 «Early»", "Session 2", "Exercise 3 (Bridging)"."""
    n = index + 1
    if key == "phases":
        name = _text_in(row.get("title") if isinstance(row, Mapping) else None, lang)
        return t(lang, PHASE_NAMED, n=n, name=name) if name else t(lang, PHASE, n=n)
    if key == "items":
        exercise = exercises.get(row.get("exercise") or "") if isinstance(row, Mapping) else None
        name = localize(exercise.name, lang) if exercise is not None else ""
        return t(lang, EXERCISE_NAMED, n=n, name=name) if name else t(lang, EXERCISE, n=n)
    return t(lang, SESSION, n=n)


def _field(parts: Sequence[str], lang: str) -> str:
    """The field at the end of a place as the builder labels it ("Title (German)"); a field without a
    label as it is named; a number after it counted from 1."""
    if not parts:
        return ""
    head, rest = parts[0], list(parts[1:])
    label = FIELD_LABELS.get(head)
    if label is None:
        return ".".join(parts)
    if "{language}" in label:  # a text per language: the one at fault, else all of them
        codes = [rest.pop(0)] if rest and rest[0] in LANGUAGE_NAMES else list(LANGUAGE_NAMES)
        said = t(lang, label, language=", ".join(t(lang, LANGUAGE_NAMES[code]) for code in codes))
    else:
        said = t(lang, label)
    more = [str(n + 1) if (n := _index(part)) is not None else part for part in rest]
    return STEP.join([said, *more])


def place(where: str, draft: Mapping[str, Any], exercises: Mapping[str, Exercise], lang: str) -> str:
    """Where in a plan a problem is, in the therapist's words and language:
    "Phase 1 «Early» › Session 2 › Exercise 3 (Bridging): Sets".

    where: the dotted path of the plan's fields ("phases.0.sessions.1.items.2.sets"), as pydantic,
    the programme's rules and the builder's form name it; draft: the plan it is in, for the phase's
    title and the exercise's name (from exercises) in lang. Phases, sessions and exercises are counted
    from 1; an index the draft does not have is counted all the same, without a name.
    """
    parts = where.split(".") if where else []
    steps: list[str] = []
    node: Any = draft
    while len(parts) >= 2 and parts[0] in ("phases", "sessions", "items") and (n := _index(parts[1])) is not None:
        node = _child(node, parts[0], n)
        steps.append(_step(parts[0], n, node, exercises, lang))
        parts = parts[2:]
    return ": ".join(found for found in (STEP.join(steps), _field(parts, lang)) if found)


def line(problem: Problem, draft: Mapping[str, Any], exercises: Mapping[str, Exercise], lang: str) -> str:
    """A problem with a plan as one line in lang: its place (:func:`place`), then what is wrong."""
    where = place(problem.where, draft, exercises, lang)
    said = problem.said(lang)
    return f"{where}: {said}" if where else said


if TYPE_CHECKING:  # mypy sees the base class; pydantic the generated models
    Note = BaseModel
    _Title = BaseModel
    _ChangeNote = BaseModel
else:
    Note = library.per_language("Note", MAX_NOTE, required=False)
    _Title = library.per_language("Title", MAX_TITLE)
    _ChangeNote = library.per_language("ChangeNote", MAX_CHANGE_NOTE)


class Item(Dose):
    """One exercise of a session with its dose and a note for the patient."""

    exercise: Annotated[str, Field(pattern=ID_RE.pattern)]
    note: Note = Field(default_factory=Note)


class SessionSchema(BaseModel):
    model_config = _STRICT
    items: Annotated[list[Item], Field(min_length=1, max_length=MAX_EXERCISES_PER_SESSION)]


class PhaseSchema(BaseModel):
    model_config = _STRICT
    id: Annotated[str, Field(min_length=1)]  # its form: the content's rules (PHASE_ID_FORM)
    from_day: Annotated[int, Field(ge=0)]  # days after surgery, as the content's rules have them
    to_day: Annotated[int, Field(ge=0)] | None = None
    title: _Title
    change_note: _ChangeNote
    sessions_per_day: Annotated[int, Field(ge=1, le=MAX_SESSIONS_PER_DAY)]
    default_times: Annotated[list[str], Field(min_length=1)]
    sessions: Annotated[list[SessionSchema], Field(min_length=1, max_length=MAX_SESSIONS_PER_DAY)]


class PlanSchema(BaseModel):
    """A plan as the builder sends it and as it is stored."""

    model_config = _STRICT
    based_on: str = ""
    phases: Annotated[list[PhaseSchema], Field(min_length=1, max_length=MAX_PHASES)]


@dataclasses.dataclass(frozen=True)
class Checked:
    """A plan that passed both steps: its schema form and the phases the engine uses."""

    schema: PlanSchema
    phases: list[Phase]

    def body(self) -> str:
        """The JSON stored in programme_plan.body."""
        return self.schema.model_dump_json(exclude_none=False)


def _content_phase(phase: PhaseSchema) -> dict[str, Any]:
    """A plan phase as a [[programme.phase]] table of programmes.toml, for the content's rules."""
    raw: dict[str, Any] = {
        "id": phase.id,
        "from_day": phase.from_day,
        "title": phase.title.model_dump(),
        "change_note": phase.change_note.model_dump(),
        "sessions_per_day": phase.sessions_per_day,
        "default_times": list(phase.default_times),
        "session": [{"exercises": [i.exercise for i in s.items]} for s in phase.sessions],
    }
    if phase.to_day is not None:
        raw["to_day"] = phase.to_day
    return raw


# The content's names for a plan's rows (_content_phase):
# "phase.0.session.1.exercises.2" is "phases.0.sessions.1.items.2".
_PLAN_NAMES = {"phase": "phases", "session": "sessions", "exercises": "items"}


def _plan_where(where: str) -> str:
    """A place in the phases the content's rules checked (_content_phase) as the place in the plan."""
    return ".".join(_PLAN_NAMES.get(part, part) for part in where.split(".")) if where else ""


def _draft(raw: Mapping[str, Any] | str) -> Mapping[str, Any]:
    """A plan given as a dict or its JSON, as a dict (empty when the JSON is not one): to say where its problems are."""
    if not isinstance(raw, str):
        return raw
    try:
        found = json.loads(raw)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


# A note for the patient written in one language and not another: the patient reading the other one would
# get it in a language not theirs (the reminder falls back to English), like any clinic text (hazard H4).
NOTE_MISSING = N_("is empty, while this exercise's note is written in another language: write it in each, or in none")


def _notes_in_every_language(schema: PlanSchema) -> list[Problem]:
    """Each exercise note written in some languages but not all, at the empty language's field."""
    found: list[Problem] = []
    for pi, phase in enumerate(schema.phases):
        for si, session in enumerate(phase.sessions):
            for ii, item in enumerate(session.items):
                texts = {code: str(getattr(item.note, code, "") or "").strip() for code in LANGUAGES}
                if any(texts.values()):
                    where = f"phases.{pi}.sessions.{si}.items.{ii}.note"
                    found += [Problem(NOTE_MISSING, where=f"{where}.{c}") for c, text in texts.items() if not text]
    return found


def check(raw: Mapping[str, Any] | str, catalogue: Mapping[str, Exercise], *, draft: bool = False) -> Checked:
    """A plan (a dict or its JSON), checked; PlanError lists every problem.

    draft: a plan the builder is saving or previewing now, also held to the rules for what staff write
    (each note in every language or none). A stored plan is checked without them, so a plan saved before
    a rule came is still followed (own_programmes) until it is saved again.
    """
    given = _draft(raw)
    try:
        schema = PlanSchema.model_validate_json(raw) if isinstance(raw, str) else PlanSchema.model_validate(dict(raw))
    except ValidationError as exc:
        raise PlanError(library.field_problems(exc), given, catalogue) from exc
    phases, problems = check_phases([_content_phase(p) for p in schema.phases], set(catalogue), PLAN_LABEL)
    found = [dataclasses.replace(p, where=_plan_where(p.where)) for p in problems]
    if draft:
        found += _notes_in_every_language(schema)
    if found:
        raise PlanError(found, given, catalogue)
    return Checked(schema, phases)


def _with_dose(exercise: Exercise, item: Item) -> Exercise:
    note = {k: v.strip() for k, v in item.note.model_dump().items() if v.strip()}
    return dataclasses.replace(
        exercise,
        sets=item.sets,
        reps=item.reps,
        hold_seconds=item.hold_seconds,
        duration_seconds=item.duration_seconds,
        note=note,
    )


def with_maintenance(programme: Programme, kept: Phase | None) -> Programme:
    """The plan followed, after its last phase's end, by a maintenance phase (a content programme's), moved there.

    Unchanged when there is none, when the plan's last phase is open-ended (it never
    ends), or when a plan phase already uses the id ``maintenance``.
    """
    last = programme.phases[-1] if programme.phases else None
    if kept is None or last is None or last.to_day is None or any(p.id == MAINTENANCE for p in programme.phases):
        return programme
    moved = dataclasses.replace(kept, from_day=last.to_day + 1, default_times=list(last.default_times[:1]))
    return dataclasses.replace(programme, maintenance=moved)


def to_programme(
    checked: Checked,
    catalogue: Mapping[str, Exercise],
    *,
    programme_id: str,
    name: Mapping[str, str],
    maintenance: Phase | None = None,
) -> Programme:
    """A checked plan as a Programme whose sessions carry their exercises with the plan's dose.

    maintenance: the phase that follows the plan's end (:func:`with_maintenance`).
    """
    by_id = {p.id: p for p in checked.schema.phases}
    phases = []
    for phase in checked.phases:
        source = by_id[phase.id]
        sessions = [
            SessionPlan(
                exercises=[i.exercise for i in s.items],
                items=tuple(_with_dose(catalogue[i.exercise], i) for i in s.items),
            )
            for s in source.sessions
        ]
        phases.append(dataclasses.replace(phase, sessions=sessions))
    programme = Programme(
        id=programme_id,
        name=dict(name),
        surgery_types=[],
        example=False,
        review_note={},
        phases=phases,
        source=PLAN_LABEL,
    )
    return with_maintenance(programme, maintenance)


# --------------------------------------------------------------------------- starting points


def from_programme(programme: Programme, catalogue: Mapping[str, Exercise]) -> PlanSchema:
    """A content programme as a plan to edit: the same phases, each exercise with its catalogue dose."""

    def item(exercise_id: str) -> Item:
        ex = catalogue.get(exercise_id)
        if ex is None:
            return Item(exercise=exercise_id)
        return Item(
            exercise=exercise_id,
            sets=ex.sets,
            reps=ex.reps,
            hold_seconds=ex.hold_seconds,
            duration_seconds=ex.duration_seconds,
        )

    return PlanSchema(
        based_on=programme.id,
        phases=[
            PhaseSchema(
                id=p.id,
                from_day=p.from_day,
                to_day=p.to_day,
                title=_Title(**{k: localize(p.title, k) for k in LANGUAGES}),
                change_note=_ChangeNote(**{k: localize(p.change_note, k) for k in LANGUAGES}),
                sessions_per_day=p.sessions_per_day,
                default_times=list(p.default_times),
                sessions=[SessionSchema(items=[item(x) for x in s.exercises]) for s in p.sessions],
            )
            for p in programme.phases
        ],
    )


EMPTY_TITLE = N_("Your exercise programme")
EMPTY_NOTE = N_("Your care team has set up your home exercise programme.")


def empty() -> dict[str, Any]:
    """A plan to start from empty, as a draft for the builder: one open-ended phase, one session at 09:00.

    Its session has no exercise yet (the builder adds them; a plan is only
    saved with at least one per session). The phase's title and note are
    neutral words from the catalogues, in every language; the therapist may reword them.
    """
    return {
        "based_on": "",
        "phases": [
            {
                "id": "phase-1",
                "from_day": 0,
                "to_day": None,
                "title": {lang: t(lang, EMPTY_TITLE) for lang in LANGUAGES},
                "change_note": {lang: t(lang, EMPTY_NOTE) for lang in LANGUAGES},
                "sessions_per_day": 1,
                "default_times": ["09:00"],
                "sessions": [{"items": []}],
            }
        ],
    }


async def starting_point(
    session: AsyncSession, content: Content, start: str, patient: Patient | None = None
) -> dict[str, Any]:
    """A draft for the builder: "empty", "programme:<id>", "template:<id>", or "current" (the patient's own plan
    or content programme). PlanError for a source that does not exist."""
    catalogue = await library.catalogue(session, content)
    kind, _, ref = start.partition(":")
    if kind == "empty":
        return empty()
    if kind == "programme" and ref in content.programmes:
        return from_programme(content.programmes[ref], catalogue).model_dump()
    template_id = number(ref, 9) if kind == "template" else None  # an id the database can hold
    if template_id is not None:
        row = await session.get(ProgrammePlan, template_id)
        if row is not None and row.patient_id is None:
            return PlanSchema.model_validate_json(row.body).model_dump()
    if kind == "current" and patient is not None and patient.id is not None:
        own = await own_plan(session, patient.id)
        if own is not None:
            return PlanSchema.model_validate_json(own.body).model_dump()
        if patient.programme_id in content.programmes:
            return from_programme(content.programmes[patient.programme_id], catalogue).model_dump()
        return empty()
    raise PlanError([N_("That starting point no longer exists.")])


# --------------------------------------------------------------------------- stored plans


def exercise_ids(body: str) -> set[str]:
    """Every exercise id a stored plan names (to load only the clinic exercises it needs)."""
    try:
        data = json.loads(body)
        return {i["exercise"] for p in data["phases"] for s in p["sessions"] for i in s["items"]}
    except (ValueError, KeyError, TypeError):
        return set()


async def own_plan(session: AsyncSession, patient_id: int) -> ProgrammePlan | None:
    """The patient's own plan row, if they have one, as the database has it now (a row this session read
    before is refreshed: after db.lock_row, a colleague's save committed meanwhile is seen)."""
    query = select(ProgrammePlan).where(col(ProgrammePlan.patient_id) == patient_id)
    rows = await session.exec(query.execution_options(populate_existing=True))
    return rows.first()


async def own_programmes(session: AsyncSession, content: Content, patients: Iterable[Patient]) -> dict[int, Programme]:
    """The own plans of these patients as Programmes, by patient id (two queries for any number).

    A stored plan that no longer passes the checks (an exercise was removed
    from the content since) is left out with a warning, and the patient
    follows their content programme until the plan is saved again. A plan
    that ends goes on with the maintenance phase of the patient's content
    programme (:func:`maintenance_for`).
    """
    by_id = {p.id: p for p in patients if p.id is not None}
    ids = list(by_id)
    if not ids:
        return {}
    rows = (await session.exec(select(ProgrammePlan).where(col(ProgrammePlan.patient_id).in_(ids)))).all()
    if not rows:
        return {}
    wanted: set[str] = set()
    for row in rows:
        wanted |= exercise_ids(row.body)
    catalogue = await library.catalogue(session, content, wanted)
    out: dict[int, Programme] = {}
    for row in rows:
        assert row.patient_id is not None
        try:
            checked = check(row.body, catalogue)
        except PlanError:
            log.warning(
                "the own plan of patient %s no longer passes the checks; using the content programme", row.patient_id
            )
            continue
        base = content.programmes.get(row.based_on)
        out[row.patient_id] = to_programme(
            checked,
            catalogue,
            programme_id=row.based_on or PLAN_LABEL,
            name=base.name if base else {},
            maintenance=maintenance_for(content, by_id[row.patient_id]),
        )
    return out


def maintenance_for(content: Content, patient: Patient) -> Phase | None:
    """The maintenance phase that follows the end of the patient's own plan: their content programme's."""
    programme = content.programmes.get(patient.programme_id)
    return programme.maintenance if programme is not None else None


async def templates(session: AsyncSession) -> list[ProgrammePlan]:
    """The clinic's templates, by name."""
    rows = await session.exec(
        select(ProgrammePlan).where(col(ProgrammePlan.patient_id).is_(None)).order_by(col(ProgrammePlan.name))
    )
    return list(rows.all())
