"""Content for recovery education: the day-by-day course (``lessons.toml``).

One file, in the built-in defaults and optionally in a clinic's content
directory, with the same override rules as the other content files (same id
replaces, a new id adds, ``enabled = false`` removes):

* ``[course]`` -- optional: ``example`` (true marks a course the clinic must
  review), ``review_note.en/.de`` (required when example), ``time`` ("HH:MM",
  when lessons are sent; empty or left out = with the patient's first session);
* ``[[lesson]]`` -- ``id``, ``day`` (days after surgery, 0 = day of surgery),
  optional conditions ``surgery_types``, ``programmes`` and ``phases`` (a
  lesson applies when every condition given matches the patient), ``topic``,
  ``safety`` (true: a safety lesson, which must have a question; wrong
  answers to it reach the care team),
  optional ``triage`` (a red-flag lesson: the triage level of the signs it
  teaches, one of the levels of :mod:`rehab_bot.redflag`; the patient's
  emergency text is added to it), ``title`` and ``text`` per language (text
  at most :data:`MAX_TEXT` characters), optional ``picture`` (a file path
  relative to the file, or an http(s) URL), and an optional teach-back
  question: ``question`` and ``explanation`` per language and 2-4
  ``[[lesson.answer]]`` tables (``en``, ``de``, ``correct``), exactly one of
  them correct.

Errors are ``file:line: message`` like every other content error.
Plain Python: no telegram imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from rehab_bot.content.checkins import SEVERITIES
from rehab_bot.content.schema import (
    HHMM_RE,
    LANGUAGES,
    URL_RE,
    Bool,
    Entry,
    Int,
    Lang,
    SourceFile,
    Str,
    StrList,
    TableFile,
    Tables,
    check_fields,
    did_you_mean,
    enabled_entries,
    merge,
    optional,
    per_language,
    schema,
)
from rehab_bot.models import SURGERY_TYPES

FILE = "lessons.toml"
MAX_TEXT = 600
MIN_ANSWERS, MAX_ANSWERS = 2, 4
# The same triage levels as the check-in red flags (questionnaires.toml).
TRIAGE_LEVELS = SEVERITIES


@dataclass(frozen=True)
class LessonAnswer:
    text: dict[str, str]
    correct: bool


@dataclass(frozen=True)
class Question:
    text: dict[str, str]
    answers: tuple[LessonAnswer, ...]
    explanation: dict[str, str]

    @property
    def correct_index(self) -> int:
        return next(i for i, a in enumerate(self.answers) if a.correct)


@dataclass(frozen=True)
class Lesson:
    id: str
    day: int
    title: dict[str, str]
    text: dict[str, str]
    topic: str = ""
    surgery_types: tuple[str, ...] = ()
    programmes: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    safety: bool = False
    triage: str | None = None
    picture: str | None = None
    question: Question | None = None
    source: str = "built-in"


@dataclass(frozen=True)
class Course:
    lessons: tuple[Lesson, ...] = ()  # in order of day, then file order
    example: bool = False
    review_note: dict[str, str] = field(default_factory=dict)
    time: time | None = None  # None: with the patient's first session


CourseSchema = schema("CourseSchema", example=optional(Bool), review_note=optional(Lang), time=optional(Str))
LessonSchema = schema(
    "LessonSchema",
    id=Str,
    enabled=optional(Bool),
    day=Int(0),
    topic=optional(Str),
    surgery_types=optional(StrList),
    programmes=optional(StrList),
    phases=optional(StrList),
    safety=optional(Bool),
    triage=optional(Str),
    title=Lang,
    text=Lang,
    picture=optional(Str),
    question=optional(Lang),
    explanation=optional(Lang),
    answer=optional(Tables),
)
AnswerSchema = schema("AnswerSchema", **per_language(Str), correct=optional(Bool))


@dataclass
class _Condition:
    """A programme or phase a lesson names, checked against the merged programmes."""

    file: SourceFile
    path: tuple[str | int, ...]
    lesson: str
    key: str
    value: str


def _course_line(f: SourceFile, key: str | None = None) -> int:
    """The line of [course] (a table, not an array, so the locator has no block for it), or of its key."""
    return f.locator.table_line("course", key)


def _parse_course(f: SourceFile, raw: Any, course: Course) -> Course:
    if not isinstance(raw, dict):
        f.at((), "'course' must be a table ([course])", "course")
        return course
    checked = {k: v for k, v in raw.items() if not (k == "time" and v == "")}  # "" = with the first session
    course_file = TableFile(f.path, f.source, f.errors, f.locator, "course")
    v, ok = check_fields(course_file, checked, (), "[course]", CourseSchema)
    at = None
    text = v.get("time", "")
    if text and not HHMM_RE.match(text):
        f.error(_course_line(f, "time"), f"[course]: time {text!r} must be HH:MM (24 hours), or empty")
        ok = False
    elif text:
        at = time(int(text[:2]), int(text[3:]))
    example = v.get("example", False)
    if example and "review_note" not in v:
        f.error(_course_line(f, "example"), "[course]: an example course needs a review_note for the clinic")
        ok = False
    if not ok:
        return course
    return Course(course.lessons, example, v.get("review_note", {}), at)


def _parse_question(
    f: SourceFile, v: dict[str, Any], raw: dict[str, Any], path: Any, what: str
) -> Question | bool | None:
    """The teach-back question, None when there is none, False when it is invalid."""
    has = [k for k in ("question", "explanation", "answer") if k in raw]
    if not has:
        return None
    ok = True
    for key in ("question", "explanation", "answer"):
        if key not in raw:
            f.at(path, f"{what}: a teach-back question needs '{key}' too", has[0])
            ok = False
    answers: list[LessonAnswer] = []
    raws = raw.get("answer")
    if isinstance(raws, list):
        first: tuple[str | int, ...] = (*path, "answer", 0) if raws else path
        if not MIN_ANSWERS <= len(raws) <= MAX_ANSWERS:
            f.at(first, f"{what}: a question needs {MIN_ANSWERS}-{MAX_ANSWERS} answers, not {len(raws)}")
            ok = False
        for j, answer in enumerate(raws):
            if not isinstance(answer, dict):
                continue
            apath = (*path, "answer", j)
            av, aok = check_fields(f, answer, apath, f"{what} answer {j + 1}", AnswerSchema)
            if not aok:
                ok = False
                continue
            answers.append(LessonAnswer({lang: av[lang] for lang in LANGUAGES}, av.get("correct", False)))
        correct = sum(a.correct for a in answers)
        if ok and correct != 1:
            f.at(first, f"{what}: exactly one answer must have correct = true ({correct} have)")
            ok = False
    if not ok or not all(k in v for k in ("question", "explanation", "answer")):
        return False
    return Question(v["question"], tuple(answers), v["explanation"])


def _resolve_picture(f: SourceFile, picture: str) -> str | None:
    if URL_RE.match(picture):
        return picture
    picture_path = Path(picture)
    if not picture_path.is_absolute():
        picture_path = f.path.parent / picture_path
    if not picture_path.is_file():
        return None
    return str(picture_path.resolve())


def _parse_lessons(f: SourceFile, raws: list[dict[str, Any]], conditions: list[_Condition]) -> list[Entry]:
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, raws, "lesson", result):
        what = f"lesson '{entry_id}'"
        v, ok = check_fields(f, raw, path, what, LessonSchema)
        for key in ("title", "text"):
            for lang, text in v.get(key, {}).items():
                if key == "text" and len(text.strip()) > MAX_TEXT:
                    f.at(
                        path,
                        f"{what}: the '{lang}' text has {len(text.strip())} characters; keep lessons to {MAX_TEXT}",
                        f"text.{lang}",
                    )
                    ok = False
        for surgery in v.get("surgery_types", []):
            if surgery not in SURGERY_TYPES:
                f.at(
                    path,
                    f"{what}: unknown surgery type '{surgery}' (use {', '.join(SURGERY_TYPES)})",
                    "surgery_types",
                )
                ok = False
        triage = v.get("triage")
        if triage is not None and triage not in TRIAGE_LEVELS:
            f.at(path, f"{what}: unknown triage level '{triage}' (use {', '.join(TRIAGE_LEVELS)})", "triage")
            ok = False
        picture = v.get("picture")
        if picture is not None:
            resolved = _resolve_picture(f, picture)
            if resolved is None:
                f.at(path, f"{what}: picture file '{picture}' not found", "picture")
                ok = False
            picture = resolved
        question = _parse_question(f, v, raw, path, what)
        if question is False:
            ok = False
        elif question is None and (v.get("safety") or triage is not None):
            # Understanding of safety lessons is what the care team is shown.
            f.at(
                path, f"{what}: a safety lesson needs a teach-back question", "safety" if "safety" in raw else "triage"
            )
            ok = False
        for key in ("programmes", "phases"):
            for value in v.get(key, []):
                conditions.append(_Condition(f, path, entry_id, key, value))
        if ok:
            lesson = Lesson(
                id=entry_id,
                day=v["day"],
                title=v["title"],
                text={lang: text.strip() for lang, text in v["text"].items()},
                topic=v.get("topic", ""),
                surgery_types=tuple(v.get("surgery_types", ())),
                programmes=tuple(v.get("programmes", ())),
                phases=tuple(v.get("phases", ())),
                safety=v.get("safety", False) or triage is not None,
                triage=triage,
                picture=picture,
                question=question if isinstance(question, Question) else None,
                source=f.source,
            )
            result.append(Entry(entry_id, lesson, f, path))
    return result


class Loader:
    """Collects lessons.toml across layers; checks conditions after the merge."""

    def __init__(self) -> None:
        self.lessons: dict[str, Entry] = {}
        self.disabled: dict[str, Entry] = {}
        self.course = Course()
        self.conditions: dict[str, list[_Condition]] = {}

    def parse(self, f: SourceFile, data: dict[str, Any]) -> None:
        for key in data:
            if key not in ("course", "lesson"):
                f.at(
                    (),
                    f"unknown top-level key '{key}'{did_you_mean(key, ('course', 'lesson'))} "
                    "(this file holds [course] and [[lesson]])",
                    key,
                )
        if "course" in data:
            self.course = _parse_course(f, data["course"], self.course)
        raws = data.get("lesson", [])
        if not isinstance(raws, list) or not all(isinstance(e, dict) for e in raws):
            f.at((), "'lesson' must be a list of [[lesson]] tables", "lesson")
            return
        conditions: list[_Condition] = []
        entries = _parse_lessons(f, raws, conditions)
        for entry in entries:
            self.conditions.pop(entry.id, None)
        for condition in conditions:
            self.conditions.setdefault(condition.lesson, []).append(condition)
        merge("lesson", self.lessons, entries, self.disabled)

    def finish(self, programmes: dict[str, Entry]) -> Course:
        """Check programme and phase conditions against the merged programmes."""
        phase_ids = {phase.id for entry in programmes.values() for phase in entry.value.phases}
        for lesson_id, conditions in self.conditions.items():
            if lesson_id not in self.lessons:
                continue
            for c in conditions:
                known = programmes if c.key == "programmes" else phase_ids
                if c.value not in known:
                    kind = "programme" if c.key == "programmes" else "phase"
                    c.file.at(c.path, f"lesson '{c.lesson}': unknown {kind} '{c.value}' in {c.key}", c.key)
        lessons = sorted((e.value for e in self.lessons.values()), key=lambda lesson: lesson.day)
        return Course(tuple(lessons), self.course.example, self.course.review_note, self.course.time)
