"""Clinic-editable content: exercises, programmes and patient-facing clinical texts.

The bot never improvises medical advice: every clinical sentence it sends comes
from these TOML files. The built-in defaults live in ``content/defaults/``; a
clinic's content directory (``content.dir`` in config.toml) may hold files of
the same names and structure:

* ``exercises.toml``  -- ``[[exercise]]`` entries,
* ``programmes.toml`` -- ``[[programme]]`` with ``[[programme.phase]]`` and
  ``[[programme.phase.session]]``,
* ``texts.toml``      -- ``[[text]]`` entries (consent, emergency, ...),
* ``lessons.toml``    -- the recovery course (see content/lessons.py).
* ``experiments.toml`` -- micro-randomised experiments, off by default (see content/experiments.py).

A clinic entry with the id of a built-in one replaces it as a whole, a new id
adds an entry, and ``enabled = false`` (with just the id) removes a built-in
one. Every entry records its ``source``: "built-in" or the clinic file's path.

Validation is strict and reports every problem at once, as ``file:line:
message`` strings in a :class:`ContentError`: the shape of every table is a
pydantic model (content/schema.py: unknown keys are refused, with a "did you
mean ...?"), its meaning is checked by the parsers here and in
content/checkins.py and content/lessons.py.

Plain Python: no telegram imports.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from rehab_bot.content import checkins, experiments, lessons
from rehab_bot.content.checkins import (
    AlertRule,
    CadenceStep,
    CheckinTime,
    CrisisList,
    Message,
    Questionnaire,
    SymptomWords,
)
from rehab_bot.content.experiments import Experiment
from rehab_bot.content.lessons import Course
from rehab_bot.content.schema import (
    BUILT_IN,
    DEFAULTS_DIR,
    HHMM_RE,
    ID_RE,
    LANGUAGES,
    URL_RE,
    Bool,
    ContentError,
    DataPath,
    Entry,
    Int,
    Lang,
    Locator,
    PhasesOfAPlan,
    SourceFile,
    Str,
    StrList,
    Tables,
    Unchecked,
    check_fields,
    enabled_entries,
    file_entries,
    localize,
    merge,
    optional,
    per_language,
    read_toml,
    schema,
)
from rehab_bot.i18n import FALLBACK_LANGUAGE, N_, Problem, tn

# The old private names of three helpers, for tests/content/test_content.py; new code
# imports them from rehab_bot.content.schema.
_enabled_entries = enabled_entries
_Entry = Entry
_File = SourceFile

__all__ = [
    "BUILT_IN",
    "CONTENT_FILES",
    "DEFAULTS_DIR",
    "LANGUAGES",
    "MAX_SESSIONS_PER_DAY",
    "MEDIA_KINDS",
    "REQUIRED_TEXTS",
    "Content",
    "ContentError",
    "Exercise",
    "Phase",
    "Programme",
    "SessionPlan",
    "Text",
    "load_content",
    "localize",
]

CONTENT_FILES = (
    "exercises.toml",
    "programmes.toml",
    "texts.toml",
    # Check-ins, alert rules, motivation and crisis phrases: see content/checkins.py.
    "questionnaires.toml",
    "messages.toml",
    "crisis.toml",
    # The recovery course: see content/lessons.py.
    "lessons.toml",
    # Micro-randomised experiments (off by default): see content/experiments.py.
    "experiments.toml",
)
MEDIA_KINDS = ("photo", "animation", "video")
# Texts the bot core relies on; a clinic may reword them but not disable them.
REQUIRED_TEXTS = (
    "consent",
    "emergency",
    "red_flag",
    "red_flag_urgent",
    "crisis",
    "help",
    # Telling patients about experiments and their way out (rehab_bot.experiment).
    "experiment_notice",
    "experiment_opted_out",
)
MAX_SESSIONS_PER_DAY = 6

MediaKind = Literal["photo", "animation", "video"]


class _KeepMissing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Exercise:
    id: str
    name: dict[str, str]
    instructions: dict[str, str]
    sets: int
    reps: int | None
    hold_seconds: int | None
    media: str | None  # absolute file path or http(s) URL
    media_kind: MediaKind | None
    safety_notes: dict[str, str]
    source: str
    # A programme builder plan's dose and word for the patient (rehab_bot/plan.py); content has neither.
    duration_seconds: int | None = None
    note: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionPlan:
    exercises: list[str]
    # A patient's own plan (rehab_bot/plan.py): the exercises with the plan's dose, in order;
    # empty for content programmes, whose exercises are looked up by id.
    items: tuple[Exercise, ...] = ()


@dataclass(frozen=True)
class Phase:
    id: str
    from_day: int  # days after surgery (day 0 = day of surgery), inclusive
    to_day: int | None  # inclusive; None = open-ended
    title: dict[str, str]
    change_note: dict[str, str]  # what changed; shown to the patient on entering the phase
    sessions_per_day: int
    default_times: list[str]  # "HH:MM", one per session, ascending
    sessions: list[SessionPlan]  # one plan for every session, or one per session
    # Tapering (rehab_bot/tapering.py): what a patient who kept up gets instead, if the phase allows
    # fewer reminders: this many sessions a day (of the patient's times, spread over the day) and/or
    # only these weekdays (digits, 0 = Monday; "" = every day). None and "": the reminders stay.
    tapered_sessions_per_day: int | None = None
    tapered_days: str = ""
    # The maintenance phase after the programme's end ([programme.maintenance]): one session every
    # every_n_days days (7), and these questionnaires on the same days (the weekly check).
    every_n_days: int | None = None
    questionnaires: tuple[str, ...] = ()

    @property
    def tapers(self) -> bool:
        """True when the phase allows fewer reminders for a patient who kept up."""
        return self.tapered_sessions_per_day is not None or bool(self.tapered_days)

    def contains(self, day_after_surgery: int) -> bool:
        return self.from_day <= day_after_surgery and (self.to_day is None or day_after_surgery <= self.to_day)

    def exercises_for(self, session_index: int) -> list[str]:
        """Exercise ids for the session_index-th session of the day (0-based)."""
        if not 0 <= session_index < self.sessions_per_day:
            raise IndexError(f"phase {self.id!r} has {self.sessions_per_day} sessions a day")
        return list(self.plan_for(session_index).exercises)

    def plan_for(self, session_index: int) -> SessionPlan:
        """The plan of the session_index-th session of the day (0-based)."""
        if not 0 <= session_index < self.sessions_per_day:
            raise IndexError(f"phase {self.id!r} has {self.sessions_per_day} sessions a day")
        return self.sessions[0] if len(self.sessions) == 1 else self.sessions[session_index]

    def exercises_in(self, session_index: int, catalogue: Mapping[str, Exercise]) -> list[Exercise]:
        """The exercises of a session with their dose: a plan's own, else the catalogue's (unknown ids left out)."""
        plan = self.plan_for(session_index)
        if plan.items:
            return list(plan.items)
        return [catalogue[x] for x in plan.exercises if x in catalogue]


@dataclass(frozen=True)
class Programme:
    id: str
    name: dict[str, str]
    surgery_types: list[str]
    example: bool  # an example the clinic must review before use
    review_note: dict[str, str]  # for the clinic; empty when not an example
    phases: list[Phase]  # sorted by from_day, contiguous from day 0
    source: str
    # After the last phase's to_day: a weekly session and check-in instead of a hard stop
    # (id MAINTENANCE, from the day after the last phase, open-ended); None: the programme just ends.
    maintenance: Phase | None = None

    def title(self, lang: str) -> str:
        """The programme's name in lang, else English: what people read (its id is for files and exports)."""
        return localize(self.name, lang)

    def phase_for(self, day_after_surgery: int) -> Phase | None:
        """The phase covering that day (maintenance after the last one), or None before surgery / after the end."""
        for phase in self.phases:
            if phase.contains(day_after_surgery):
                return phase
        if self.maintenance is not None and self.maintenance.contains(day_after_surgery):
            return self.maintenance
        return None


@dataclass(frozen=True)
class Text:
    id: str
    body: dict[str, str]
    version: str | None  # consent: patients re-consent when it changes
    source: str

    def render(self, lang: str, **kwargs: object) -> str:
        # Unknown {names} stay as written: an emergency text must never fail to send.
        return localize(self.body, lang).format_map(_KeepMissing(kwargs))


@dataclass(frozen=True)
class Content:
    exercises: dict[str, Exercise] = field(default_factory=dict)
    programmes: dict[str, Programme] = field(default_factory=dict)
    texts: dict[str, Text] = field(default_factory=dict)
    # From questionnaires.toml, messages.toml and crisis.toml (content/checkins.py).
    questionnaires: dict[str, Questionnaire] = field(default_factory=dict)
    programme_cadences: dict[tuple[str, str], list[CadenceStep]] = field(default_factory=dict)
    alert_rules: dict[str, AlertRule] = field(default_factory=dict)
    checkin_time: CheckinTime | None = None
    messages: dict[str, Message] = field(default_factory=dict)
    crisis: dict[str, CrisisList] = field(default_factory=dict)
    concern: dict[str, CrisisList] = field(default_factory=dict)  # words that ask the crisis question
    symptom_words: dict[str, SymptomWords] = field(default_factory=dict)
    # From lessons.toml (content/lessons.py); None only for hand-built test content.
    course: Course | None = None
    # From experiments.toml (content/experiments.py).
    experiments: dict[str, Experiment] = field(default_factory=dict)
    # From crisis_examples/**/*.toml, built-in and the clinic's: the examples the crisis question's model
    # learns from (rehab_bot.crisis_model), as (crisis, not_crisis, everyday) sentences of every language.
    crisis_examples: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())

    def exercise(self, exercise_id: str) -> Exercise:
        return self.exercises[exercise_id]

    def programme(self, programme_id: str) -> Programme:
        return self.programmes[programme_id]

    def text(self, key: str, lang: str, **kwargs: object) -> str:
        """Clinic-editable text key in lang (English fallback), {placeholders} filled."""
        return self.texts[key].render(lang, **kwargs)

    @property
    def consent_version(self) -> str:
        version = self.texts["consent"].version
        assert version is not None  # validated on load
        return version

    def counted(self, lang: str) -> str:
        """What was loaded, in lang: "12 exercises, 1 programme, 40 texts, 7 questionnaires" (the content
        check's one wording, on the command line and the admin's page)."""
        return ", ".join(
            [
                tn(lang, "{n} exercise", "{n} exercises", len(self.exercises)),
                tn(lang, "{n} programme", "{n} programmes", len(self.programmes)),
                tn(lang, "{n} text", "{n} texts", len(self.texts)),
                tn(lang, "{n} questionnaire", "{n} questionnaires", len(self.questionnaires)),
            ]
        )


# --------------------------------------------------------------------------- exercises.toml

ExerciseSchema = schema(
    "ExerciseSchema",
    id=Str,
    enabled=optional(Bool),
    name=Lang,
    instructions=Lang,
    sets=Int(1),
    reps=optional(Int(1)),
    hold_seconds=optional(Int(1)),
    media=optional(Str),
    media_kind=optional(Str),
    safety_notes=Lang,
)


def _parse_exercises(f: SourceFile, data: dict[str, Any]) -> list[Entry]:
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, file_entries(f, data, "exercise"), "exercise", result):
        what = f"exercise '{entry_id}'"
        v, ok = check_fields(f, raw, path, what, ExerciseSchema)
        media, kind = v.get("media"), v.get("media_kind")
        if kind is not None and kind not in MEDIA_KINDS:
            f.at(path, f"{what}: media_kind must be one of {', '.join(MEDIA_KINDS)}", "media_kind")
            ok = False
        if "media" in raw and "media_kind" not in raw:
            f.at(path, f"{what}: 'media' needs 'media_kind' ({', '.join(MEDIA_KINDS)})", "media")
            ok = False
        if "media_kind" in raw and "media" not in raw:
            f.at(path, f"{what}: 'media_kind' without 'media'", "media_kind")
            ok = False
        if media is not None and not URL_RE.match(media):
            media_path = Path(media)
            if not media_path.is_absolute():
                media_path = f.path.parent / media_path
            if not media_path.is_file():
                f.at(
                    path,
                    f"{what}: media file '{media}' not found (looked for {media_path})",
                    "media",
                )
                ok = False
            media = str(media_path.resolve())
        if ok:
            exercise = Exercise(
                id=entry_id,
                name=v["name"],
                instructions=v["instructions"],
                sets=v["sets"],
                reps=v.get("reps"),
                hold_seconds=v.get("hold_seconds"),
                media=media,
                media_kind=cast("MediaKind | None", kind),
                safety_notes=v["safety_notes"],
                source=f.source,
            )
            result.append(Entry(entry_id, exercise, f, path))
    return result


# --------------------------------------------------------------------------- programmes.toml

_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TAPER_FIELDS = {"tapered_sessions_per_day": optional(Int(1)), "tapered_days": optional(Str)}
ProgrammeSchema = schema(
    "ProgrammeSchema",
    id=Str,
    enabled=optional(Bool),
    name=Lang,
    surgery_types=StrList,
    example=optional(Bool),
    review_note=optional(Lang),
    phase=Tables,
    maintenance=optional(Unchecked),  # checked by _parse_maintenance
)
PhaseSchema = schema(
    "PhaseSchema",
    id=Str,
    from_day=Int(0),
    to_day=optional(Int(0)),
    title=Lang,
    change_note=Lang,
    sessions_per_day=Int(1),
    default_times=StrList,
    session=Tables,
    **TAPER_FIELDS,
)
SessionSchema = schema("SessionSchema", exercises=StrList)
# [programme.maintenance]: what follows the last phase (which must then have a to_day).
MaintenanceSchema = schema(
    "MaintenanceSchema",
    title=Lang,
    change_note=Lang,
    exercises=StrList,
    questionnaires=optional(StrList),
    every_n_days=optional(Int(1)),
)
MAINTENANCE = "maintenance"
MAINTENANCE_EVERY_DAYS = 7


def _weekday_digits(text: str) -> str | None:
    """ "mon,wed,fri" as the rule's digits ("024"); None when a name is not a weekday."""
    names = [d.strip().lower() for d in text.split(",")]
    if not names or any(d not in _WEEKDAY_NAMES for d in names):
        return None
    return "".join(str(d) for d in sorted({_WEEKDAY_NAMES.index(d) for d in names}))


@dataclass(frozen=True)
class _Ref:
    """A programme's use of an exercise id, checked once all files are merged."""

    file: SourceFile
    line: int
    programme: str
    phase: str
    exercise: str
    path: DataPath = ()  # its place: (..., "session", k, "exercises", n)


# The rules on phases, in words the programme builder shows in the staff member's language
# (check_phases); a content file has them in English after the phase and key (SourceFile.rule).
PHASE_ID_FORM = N_("must be 1-40 lowercase letters, digits, '-' or '_'")
AT_MOST_PER_DAY = N_("at most {n} sessions a day")
ENDS_BEFORE_START = N_("ends on day {to_day}, before it starts (day {from_day})")
NOT_HHMM = N_("not a time as HH:MM (00:00-23:59): {times}")
NOT_ASCENDING = N_("must be different times, from the earliest to the latest")
TIMES_PER_SESSION = N_("needs one time per session ({per_day} a day); {count} given")
SESSIONS_PER_DAY = N_("give 1 session (the same for every session of the day) or {per_day} (one for each), not {count}")
LATE_START = N_(
    "the first phase starts on day {from_day}: days 0-{last} after surgery are in no phase (start it on day 0)"
)
OVERLAP = N_("starts on day {from_day} and so overlaps phase '{other}' (days {first}-{last})")
OVERLAP_OPEN = N_("starts on day {from_day} and so overlaps phase '{other}' (open-ended from day {first})")
GAP = N_("days {first}-{last} are in no phase (between phase '{before}' and phase '{after}')")
DUPLICATE_PHASE = N_("another phase has the id '{id}' too")
NO_PHASE = N_("needs at least one phase")
UNKNOWN_EXERCISE = N_("uses unknown exercise '{exercise}'")
TAPERED_MORE = N_("{tapered} sessions a day when tapered is more than the phase's {per_day} (sessions_per_day)")
NOT_WEEKDAYS = N_('must list weekdays like "mon,wed,fri" ({names})')


def _parse_phase(
    f: SourceFile, raw: dict[str, Any], path: DataPath, what: str, refs: list[_Ref], programme_id: str
) -> Phase | None:
    raw_id = raw.get("id")
    phase_id = raw_id if isinstance(raw_id, str) else f"#{cast(int, path[-1]) + 1}"
    what = f"{what} phase '{phase_id}'"
    v, ok = check_fields(f, raw, path, what, PhaseSchema)
    if "id" in v and not ID_RE.match(v["id"]):
        f.rule(path, "id", what, PHASE_ID_FORM)
        ok = False
    per_day = v.get("sessions_per_day")
    if per_day is not None and per_day > MAX_SESSIONS_PER_DAY:
        f.rule(path, "sessions_per_day", what, AT_MOST_PER_DAY, n=MAX_SESSIONS_PER_DAY)
        ok = False
    tapered = v.get("tapered_sessions_per_day")
    if tapered is not None and per_day is not None and tapered > per_day:
        f.rule(path, "tapered_sessions_per_day", what, TAPERED_MORE, tapered=tapered, per_day=per_day)
        ok = False
    tapered_days = ""
    if "tapered_days" in v:
        digits = _weekday_digits(v["tapered_days"])
        if digits is None:
            f.rule(path, "tapered_days", what, NOT_WEEKDAYS, names=", ".join(_WEEKDAY_NAMES))
            ok = False
        else:
            tapered_days = digits
    if "from_day" in v and "to_day" in v and v["to_day"] < v["from_day"]:
        f.rule(path, "to_day", what, ENDS_BEFORE_START, to_day=v["to_day"], from_day=v["from_day"])
        ok = False
    times = v.get("default_times")
    if times is not None:
        bad = [t for t in times if not HHMM_RE.match(t)]
        if bad:
            f.rule(path, "default_times", what, NOT_HHMM, times=", ".join(bad))
            ok = False
        elif times != sorted(set(times)):
            f.rule(path, "default_times", what, NOT_ASCENDING)
            ok = False
        elif per_day is not None and len(times) != per_day:
            f.rule(path, "default_times", what, TIMES_PER_SESSION, per_day=per_day, count=len(times))
            ok = False
    sessions: list[SessionPlan] = []
    raw_sessions = v.get("session", [])
    if per_day is not None and raw_sessions and len(raw_sessions) not in (1, per_day):
        f.rule(path, "session", what, SESSIONS_PER_DAY, per_day=per_day, count=len(raw_sessions))
        ok = False
    for k, raw_session in enumerate(raw_sessions):
        session_path = (*path, "session", k)
        sv, session_ok = check_fields(f, raw_session, session_path, f"{what} session {k + 1}", SessionSchema)
        if not session_ok:
            ok = False
            continue
        line = f.locator.line(session_path, "exercises")
        refs.extend(
            _Ref(f, line, programme_id, phase_id, ex, (*session_path, "exercises", n))
            for n, ex in enumerate(sv["exercises"])
        )
        sessions.append(SessionPlan(list(sv["exercises"])))
    if not ok:
        return None
    return Phase(
        id=phase_id,
        from_day=v["from_day"],
        to_day=v.get("to_day"),
        title=v["title"],
        change_note=v["change_note"],
        sessions_per_day=v["sessions_per_day"],
        default_times=list(v["default_times"]),
        sessions=sessions,
        tapered_sessions_per_day=tapered,
        tapered_days=tapered_days,
    )


def _parse_maintenance(
    f: SourceFile, raw: Any, path: DataPath, what: str, refs: list[_Ref], programme_id: str, last: Phase | None
) -> tuple[Phase | None, bool]:
    """[programme.maintenance]: the weekly phase after the last one; (phase or None, whether it is valid)."""
    where = f"{what} maintenance"
    if not isinstance(raw, dict):
        f.at(path, f"{where}: must be a [programme.maintenance] table", MAINTENANCE)
        return None, False
    v, ok = check_fields(f, raw, path, where, MaintenanceSchema, locate=MAINTENANCE)
    if last is not None and last.to_day is None:
        f.at(path, f"{where}: the last phase '{last.id}' has no to_day, so the programme never ends", MAINTENANCE)
        ok = False
    if not ok or last is None or last.to_day is None:
        return None, False
    line = f.locator.line(path, MAINTENANCE)
    refs.extend(_Ref(f, line, programme_id, MAINTENANCE, ex) for ex in v["exercises"])
    phase = Phase(
        id=MAINTENANCE,
        from_day=last.to_day + 1,
        to_day=None,
        title=v["title"],
        change_note=v["change_note"],
        sessions_per_day=1,
        default_times=list(last.default_times[:1]),
        sessions=[SessionPlan(list(v["exercises"]))],
        every_n_days=v.get("every_n_days", MAINTENANCE_EVERY_DAYS),
        questionnaires=tuple(v.get("questionnaires", ())),
    )
    return phase, True


def _check_phase_days(f: SourceFile, what: str, phases: list[tuple[Phase, DataPath]]) -> bool:
    """Phases must cover day 0 onwards without gaps or overlaps."""
    ok = True
    ordered = sorted(phases, key=lambda p: p[0].from_day)
    if ordered and ordered[0][0].from_day != 0:
        first, path = ordered[0]
        named = f"{what} phase '{first.id}'"
        f.rule(path, "from_day", named, LATE_START, from_day=first.from_day, last=first.from_day - 1)
        ok = False
    for (prev, _), (phase, path) in itertools.pairwise(ordered):
        named = f"{what} phase '{phase.id}'"
        if prev.to_day is None:
            f.rule(path, "from_day", named, OVERLAP_OPEN, from_day=phase.from_day, other=prev.id, first=prev.from_day)
            ok = False
        elif phase.from_day <= prev.to_day:
            days = {"first": prev.from_day, "last": prev.to_day}
            f.rule(path, "from_day", named, OVERLAP, from_day=phase.from_day, other=prev.id, **days)
            ok = False
        elif phase.from_day > prev.to_day + 1:
            days = {"first": prev.to_day + 1, "last": phase.from_day - 1}
            f.rule(path, "from_day", named, GAP, before=prev.id, after=phase.id, **days)
            ok = False
    return ok


def _parse_programmes(f: SourceFile, data: dict[str, Any], refs: dict[str, list[_Ref]]) -> list[Entry]:
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, file_entries(f, data, "programme"), "programme", result):
        what = f"programme '{entry_id}'"
        v, ok = check_fields(f, raw, path, what, ProgrammeSchema)
        example = v.get("example", False)
        if example and "review_note" not in raw:
            f.at(
                path,
                f"{what}: an example programme needs a 'review_note' for the clinic",
                "example",
            )
            ok = False
        my_refs: list[_Ref] = []
        phases, parsed = _parse_phases(f, v.get("phase", []), path, what, my_refs, entry_id)
        ok = ok and parsed
        if ok and not _check_phase_days(f, what, phases):
            ok = False
        maintenance: Phase | None = None
        if ok and "maintenance" in raw:
            if any(p.id == MAINTENANCE for p, _ in phases):
                f.at(path, f"{what}: the phase id '{MAINTENANCE}' is kept for [programme.maintenance]", "phase")
                ok = False
            last = max((p for p, _ in phases), key=lambda p: p.from_day, default=None)
            maintenance, good = _parse_maintenance(f, raw["maintenance"], path, what, my_refs, entry_id, last)
            ok = ok and good
        if ok:
            programme = Programme(
                id=entry_id,
                name=v["name"],
                surgery_types=list(v["surgery_types"]),
                example=example,
                review_note=v.get("review_note", {}),
                phases=sorted((p for p, _ in phases), key=lambda p: p.from_day),
                source=f.source,
                maintenance=maintenance,
            )
            refs[entry_id] = my_refs
            result.append(Entry(entry_id, programme, f, path))
    return result


def _parse_phases(
    f: SourceFile, raw_phases: list[Any], path: DataPath, what: str, refs: list[_Ref], entry_id: str
) -> tuple[list[tuple[Phase, DataPath]], bool]:
    """A programme's [[programme.phase]] tables, each parsed, at its path; False when any is refused.

    The one home of the rules on a list of phases before their days are checked (programmes.toml and
    the builder's plans alike): a phase id used twice is refused at the second.
    """
    phases: list[tuple[Phase, DataPath]] = []
    seen: set[str] = set()
    ok = True
    for j, raw in enumerate(raw_phases):
        phase_path = (*path, "phase", j)
        phase = _parse_phase(f, raw, phase_path, what, refs, entry_id)
        if phase is None:
            ok = False
            continue
        if phase.id in seen:
            f.rule(phase_path, "id", what, DUPLICATE_PHASE, id=phase.id)
            ok = False
        seen.add(phase.id)
        phases.append((phase, phase_path))
    return phases, ok


def check_phases(
    raw_phases: list[dict[str, Any]], exercise_ids: set[str], what: str
) -> tuple[list[Phase], list[Problem]]:
    """Phases given as the [[programme.phase]] tables of programmes.toml, checked by the same rules.

    For the programme builder (rehab_bot/plan.py): the phases it builds are
    checked here, where programmes.toml's are, so a rule on phases has one
    home. Returns the phases (sorted by from_day) and the problems, each at its
    path in raw_phases ("phase.1.from_day", "phase.0.session.1.exercises.2"),
    to say in the staff member's language; the phases are only usable without problems.
    """
    f = PhasesOfAPlan(Path(what), what, [], Locator(""))
    refs: list[_Ref] = []
    phases, _ = _parse_phases(f, raw_phases, (), what, refs, what)
    if not raw_phases:
        f.rule((), "phase", what, NO_PHASE)
    if not f.problems:
        _check_phase_days(f, what, phases)
    for ref in refs:
        if ref.exercise not in exercise_ids:
            f.rule(ref.path, None, f"{what} phase '{ref.phase}'", UNKNOWN_EXERCISE, exercise=ref.exercise)
    return sorted((p for p, _ in phases), key=lambda p: p.from_day), f.problems


# --------------------------------------------------------------------------- texts.toml

TextSchema = schema("TextSchema", id=Str, enabled=optional(Bool), version=optional(Str), **per_language(Str))
# The consent text carries a version: patients re-consent when it changes.
ConsentSchema = schema("ConsentSchema", id=Str, enabled=optional(Bool), version=Str, **per_language(Str))


def _placeholder_problem(text: str) -> str | set[str]:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return "has an unmatched '{' or '}' (write '{{' or '}}' for a literal brace)"
    bad = sorted(name for name in fields if not name.isidentifier())
    if bad:
        return f"has placeholders {bad}; use names like {{clinic}} (or '{{{{' for a brace)"
    return fields


def _parse_texts(f: SourceFile, data: dict[str, Any]) -> list[Entry]:
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, file_entries(f, data, "text"), "text", result):
        what = f"text '{entry_id}'"
        v, ok = check_fields(f, raw, path, what, ConsentSchema if entry_id == "consent" else TextSchema)
        fields_by_lang: dict[str, set[str]] = {}
        for lang in LANGUAGES:
            if lang in v:
                problem = _placeholder_problem(v[lang])
                if isinstance(problem, str):
                    f.at(path, f"{what}: the '{lang}' text {problem}", lang)
                    ok = False
                else:
                    fields_by_lang[lang] = problem
        if len(fields_by_lang) == len(LANGUAGES) and len(set(map(frozenset, fields_by_lang.values()))) > 1:
            described = "; ".join(f"{lang}: {sorted(names)}" for lang, names in fields_by_lang.items())
            f.at(
                path,
                f"{what}: the languages use different placeholders ({described})",
                LANGUAGES[-1],
            )
            ok = False
        if ok:
            body = {lang: v[lang] for lang in LANGUAGES}
            result.append(Entry(entry_id, Text(entry_id, body, v.get("version"), f.source), f, path))
    return result


# --------------------------------------------------------------------------- loading


# The built-in content as last loaded, by the fingerprint of the files it was read from. The bot
# reads its content once at start, but every test that starts a bot (and several test modules when
# they are collected) read the same built-in files again: about 0.13 s each on this machine kind.
_built_in: tuple[tuple[tuple[str, int, int], ...], Content] | None = None


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under directory: its path, modification time and size."""
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            stat = path.stat()
            found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


# The folder of labelled example messages the crisis question's model learns from (rehab_bot.crisis_model).
CRISIS_EXAMPLES = "crisis_examples"
CrisisExamplesSchema = schema(
    "CrisisExamplesSchema", crisis=optional(StrList), not_crisis=optional(StrList), everyday=optional(StrList)
)
CRISIS_EXAMPLE_LISTS = ("crisis", "not_crisis", "everyday")


def _crisis_examples(
    directories: list[Path], errors: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Every example under each directory's crisis_examples/: TOML files with any of the lists ``crisis``,
    ``not_crisis`` (hard negatives, as the crisis report's corpora) and ``everyday`` (everyday messages);
    the built-in ones first, then the clinic's."""
    lists: dict[str, list[str]] = {name: [] for name in CRISIS_EXAMPLE_LISTS}
    for directory in directories:
        for path in sorted(directory.rglob("*.toml")) if directory.is_dir() else ():
            source = BUILT_IN if directory.parent == DEFAULTS_DIR else str(path)
            parsed = read_toml(path, source, errors)
            if parsed is None:
                continue
            f, data = parsed
            good, ok = check_fields(f, data, (), "crisis examples", CrisisExamplesSchema)
            if ok and not good:
                f.error(1, f"no examples: expected the lists {', '.join(CRISIS_EXAMPLE_LISTS)}")
            elif ok:
                for name in CRISIS_EXAMPLE_LISTS:
                    lists[name].extend(good.get(name) or ())
    return tuple(lists["crisis"]), tuple(lists["not_crisis"]), tuple(lists["everyday"])


_AT_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+): ")


def in_line_order(errors: list[str]) -> list[str]:
    """Problems as ``file:line: message``, each file's in the order of its lines (the checks find them field
    by field), the files in the order they were read; a line naming no file and line keeps its place."""
    first: dict[str, int] = {}

    def key(item: tuple[int, str]) -> tuple[int, int, int]:
        index, text = item
        found = _AT_LINE.match(text)
        if found is None:
            return index, 0, index
        return first.setdefault(found["path"], index), int(found["line"]), index

    return [text for _, text in sorted(enumerate(errors), key=key)]


def load_content(clinic_dir: Path | None) -> Content:
    """Built-in defaults, overlaid by the clinic's files; ContentError lists all problems.

    The built-in content alone (clinic_dir None) is read once and returned again while no file under
    DEFAULTS_DIR changed (same paths, times and sizes); Content is not changed by its users. A clinic's
    content is read every time: its media files count too, and the content check must see edits.
    """
    global _built_in
    if clinic_dir is not None:
        return _load_content(clinic_dir)
    fingerprint = _fingerprint(DEFAULTS_DIR)
    cached = _built_in
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    content = _load_content(None)
    _built_in = (fingerprint, content)
    return content


def _load_content(clinic_dir: Path | None) -> Content:
    errors: list[str] = []
    exercises: dict[str, Entry] = {}
    programmes: dict[str, Entry] = {}
    texts: dict[str, Entry] = {}
    disabled: dict[str, dict[str, Entry]] = {"exercise": {}, "programme": {}, "text": {}}
    refs: dict[str, list[_Ref]] = {}
    built_in_consent: Text | None = None
    checkin_loader = checkins.Loader()
    lesson_loader = lessons.Loader()
    experiment_loader = experiments.Loader()
    checkin_files = checkins.FILES

    layers: list[tuple[Path, str]] = [(DEFAULTS_DIR, BUILT_IN)]
    if clinic_dir is not None:
        if not clinic_dir.is_dir():
            raise ContentError([f"{clinic_dir}: the content directory does not exist"])
        for path in sorted(clinic_dir.glob("*.toml")):
            if path.name not in CONTENT_FILES:
                errors.append(f"{path}:1: unknown content file; expected {', '.join(CONTENT_FILES)}")
        layers.append((clinic_dir, "clinic"))

    for directory, layer in layers:
        for name in CONTENT_FILES:
            path = directory / name
            if layer != BUILT_IN and not path.exists():
                continue
            parsed = read_toml(path, BUILT_IN if layer == BUILT_IN else str(path), errors)
            if parsed is None:
                continue
            f, data = parsed
            if name == "exercises.toml":
                merge("exercise", exercises, _parse_exercises(f, data), disabled["exercise"])
            elif name in checkin_files:
                checkin_loader.parse(name, f, data)
            elif name == lessons.FILE:
                lesson_loader.parse(f, data)
            elif name == experiments.FILE:
                experiment_loader.parse(f, data)
            elif name == "programmes.toml":
                layer_refs: dict[str, list[_Ref]] = {}
                entries = _parse_programmes(f, data, layer_refs)
                for entry in entries:
                    refs.pop(entry.id, None)
                refs.update(layer_refs)
                merge("programme", programmes, entries, disabled["programme"])
            else:
                entries = _parse_texts(f, data)
                if layer == BUILT_IN:
                    consent = next((e.value for e in entries if e.id == "consent"), None)
                    built_in_consent = consent
                merge("text", texts, entries, disabled["text"])

    # Cross-file checks, on the merged result.
    for programme_id, programme_refs in refs.items():
        if programme_id not in programmes:
            continue
        for ref in programme_refs:
            if ref.exercise in exercises:
                continue
            stub = disabled["exercise"].get(ref.exercise)
            if stub is not None:
                stub.file.at(
                    stub.path,
                    f"exercise '{ref.exercise}' is disabled here but programme "
                    f"'{programme_id}' ({programmes[programme_id].file.source}) phase "
                    f"'{ref.phase}' still uses it; override or disable that programme too",
                    "enabled",
                )
            else:
                said = Problem(UNKNOWN_EXERCISE, {"exercise": ref.exercise}).said(FALLBACK_LANGUAGE)
                ref.file.error(ref.line, f"programme '{programme_id}' phase '{ref.phase}' {said}")
    for text_id in REQUIRED_TEXTS:
        if text_id in texts:
            continue
        stub = disabled["text"].get(text_id)
        if stub is not None:
            stub.file.at(stub.path, f"text '{text_id}' is required and cannot be disabled", "enabled")
        else:
            errors.append(f"{DEFAULTS_DIR / 'texts.toml'}:1: required text '{text_id}' is missing")
    consent_entry = texts.get("consent")
    if consent_entry is not None and built_in_consent is not None and consent_entry.file.source != BUILT_IN:
        consent = cast(Text, consent_entry.value)
        if consent.body != built_in_consent.body and consent.version == built_in_consent.version:
            consent_entry.file.at(
                consent_entry.path,
                f"text 'consent' differs from the built-in text but keeps its version "
                f"'{consent.version}'; give it a new version so patients are asked again",
                "version",
            )

    checkin_content = checkin_loader.finish(errors, texts, programmes)
    for entry in programmes.values():
        kept = cast(Programme, entry.value).maintenance
        for questionnaire_id in kept.questionnaires if kept is not None else ():
            if questionnaire_id not in checkin_content.questionnaires:
                entry.file.at(
                    entry.path,
                    f"programme '{entry.id}' maintenance: unknown questionnaire '{questionnaire_id}'",
                    MAINTENANCE,
                )
    course = lesson_loader.finish(programmes)
    experiment_content = experiment_loader.finish()
    examples = _crisis_examples([directory / CRISIS_EXAMPLES for directory, _ in layers], errors)
    if errors:
        raise ContentError(in_line_order(errors))
    return Content(
        **checkin_content.__dict__,
        course=course,
        experiments=experiment_content,
        crisis_examples=examples,
        exercises={k: e.value for k, e in exercises.items()},
        programmes={k: e.value for k, e in programmes.items()},
        texts={k: e.value for k, e in texts.items()},
    )
