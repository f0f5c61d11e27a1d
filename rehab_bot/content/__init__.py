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

A clinic entry with the id of a built-in one replaces it as a whole, a new id
adds an entry, and ``enabled = false`` (with just the id) removes a built-in
one. Every entry records its ``source``: "built-in" or the clinic file's path.

Validation is strict and reports every problem at once, as ``file:line:
message`` strings in a :class:`ContentError`. Line numbers are found by
scanning the file text for the entry's table header or the offending key.

Plain Python: no telegram imports.
"""

from __future__ import annotations

import itertools
import re
import string
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from rehab_bot.i18n import SUPPORTED_LANGUAGES

if TYPE_CHECKING:
    from rehab_bot.content.checkins import (
        AlertRule,
        CadenceStep,
        CheckinTime,
        CrisisList,
        Message,
        Questionnaire,
        SymptomWords,
    )
    from rehab_bot.content.lessons import Course

LANGUAGES: tuple[str, ...] = SUPPORTED_LANGUAGES
BUILT_IN = "built-in"
DEFAULTS_DIR = Path(__file__).parent / "defaults"
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
)
MEDIA_KINDS = ("photo", "animation", "video")
# Texts the bot core relies on; a clinic may reword them but not disable them.
REQUIRED_TEXTS = ("consent", "emergency", "red_flag", "red_flag_urgent", "crisis", "help")
MAX_SESSIONS_PER_DAY = 6

MediaKind = Literal["photo", "animation", "video"]
_LANG_NAMES = {"en": "English", "de": "German"}
# Ids go into callback data and logs: short, lowercase, no spaces.
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_HHMM_RE = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
_URL_RE = re.compile(r"^https?://", re.IGNORECASE)


class ContentError(Exception):
    """The content files are invalid; ``errors`` lists every ``file:line: message``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


# --------------------------------------------------------------------------- model


def localize(texts: Mapping[str, str], lang: str) -> str:
    """The text in lang, else English (validation guarantees English exists)."""
    return texts.get(lang) or texts["en"]


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


@dataclass(frozen=True)
class SessionPlan:
    exercises: list[str]


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

    def contains(self, day_after_surgery: int) -> bool:
        return self.from_day <= day_after_surgery and (self.to_day is None or day_after_surgery <= self.to_day)

    def exercises_for(self, session_index: int) -> list[str]:
        """Exercise ids for the session_index-th session of the day (0-based)."""
        if not 0 <= session_index < self.sessions_per_day:
            raise IndexError(f"phase {self.id!r} has {self.sessions_per_day} sessions a day")
        plan = self.sessions[0] if len(self.sessions) == 1 else self.sessions[session_index]
        return list(plan.exercises)


@dataclass(frozen=True)
class Programme:
    id: str
    name: dict[str, str]
    surgery_types: list[str]
    example: bool  # an example the clinic must review before use
    review_note: dict[str, str]  # for the clinic; empty when not an example
    phases: list[Phase]  # sorted by from_day, contiguous from day 0
    source: str

    def phase_for(self, day_after_surgery: int) -> Phase | None:
        """The phase covering that day, or None before surgery / after the last phase."""
        for phase in self.phases:
            if phase.contains(day_after_surgery):
                return phase
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
    symptom_words: dict[str, SymptomWords] = field(default_factory=dict)
    # From lessons.toml (content/lessons.py); None only for hand-built test content.
    course: Course | None = None

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


# --------------------------------------------------------------------------- locating lines

_HEADER_RE = re.compile(r"^\s*(\[\[|\[)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_DataPath = tuple[str | int, ...]


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def _multiline_mask(lines: list[str]) -> list[bool]:
    """True for lines that start inside a multi-line string (not TOML structure)."""
    mask = []
    inside: str | None = None
    for line in lines:
        mask.append(inside is not None)
        pos = 0
        while True:
            if inside is not None:
                j = line.find(inside, pos)
                if j < 0:
                    break
                inside, pos = None, j + 3
            else:
                found = [(j, d) for d in ('"""', "'''") if (j := line.find(d, pos)) >= 0]
                if not found:
                    break
                j, inside = min(found)
                pos = j + 3
    return mask


class _Locator:
    """Maps data paths like ("programme", 0, "phase", 2) to line numbers in the file text."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.mask = _multiline_mask(self.lines)
        headers: list[tuple[int, tuple[str, ...], bool]] = []
        for i, line in enumerate(self.lines):
            if not self.mask[i] and (m := _HEADER_RE.match(line)):
                headers.append((i + 1, _split_key(m.group(2)), m.group(1) == "[["))
        self.first_header = headers[0][0] if headers else len(self.lines) + 1
        self.headers = headers
        self.blocks: dict[_DataPath, tuple[int, int]] = {}
        counters: dict[_DataPath, int] = {}
        stack: list[tuple[tuple[str, ...], _DataPath]] = []
        for n, (lineno, keys, is_array) in enumerate(headers):
            while stack and not (len(stack[-1][0]) < len(keys) and keys[: len(stack[-1][0])] == stack[-1][0]):
                stack.pop()
            if not is_array:
                continue
            parent_keys, parent_path = stack[-1] if stack else ((), ())
            base: _DataPath = parent_path + keys[len(parent_keys) :]
            index = counters.get(base, 0)
            counters[base] = index + 1
            end = len(self.lines)
            for later_line, later_keys, later_array in headers[n + 1 :]:
                own_subtable = not later_array and len(later_keys) > len(keys) and later_keys[: len(keys)] == keys
                if not own_subtable:
                    end = later_line - 1
                    break
            self.blocks[(*base, index)] = (lineno, end)
            stack.append((keys, (*base, index)))

    def _find_key(self, start: int, end: int, key: str) -> int | None:
        """The line assigning key ("name" or dotted "name.de") within [start, end]."""
        parts = [r"(?:" + re.escape(p) + r"|\"" + re.escape(p) + r"\")" for p in key.split(".")]
        key_re = re.compile(r"^\s*" + r"\s*\.\s*".join(parts) + r"\s*[=.]")
        for lineno in range(start, end + 1):
            if not self.mask[lineno - 1] and key_re.match(self.lines[lineno - 1]):
                return lineno
        if "." in key:
            return self._find_key(start, end, key.split(".")[0])
        for lineno, keys, _ in self.headers:
            if start <= lineno <= end and key in keys:
                return lineno
        return None

    def line(self, path: _DataPath, key: str | None = None, entry_id: str | None = None) -> int:
        if not path:
            if key is not None:
                found = self._find_key(1, self.first_header - 1, key)
                if found is None:
                    found = next((ln for ln, keys, _ in self.headers if keys[0] == key), None)
                if found is not None:
                    return found
            return 1
        block = self.blocks.get(path)
        if block is None:
            # Inline tables or arrays: find the id, else fall back to the enclosing entry.
            if entry_id is not None:
                id_re = re.compile(r"\bid\s*=\s*[\"']" + re.escape(entry_id) + r"[\"']")
                for lineno, text in enumerate(self.lines, 1):
                    if id_re.search(text):
                        return lineno
            return self.line(path[:-2] if len(path) >= 2 else (), None)
        start, end = block
        if key is not None:
            found = self._find_key(start, end, key)
            if found is not None:
                return found
        return start


# --------------------------------------------------------------------------- checking


@dataclass
class _File:
    """One content file being checked: its errors go to the shared list."""

    path: Path
    source: str  # "built-in" or the clinic file path
    errors: list[str]
    locator: _Locator = field(default_factory=lambda: _Locator(""))

    def error(self, line: int, message: str) -> None:
        self.errors.append(f"{self.path}:{line}: {message}")

    def at(self, path: _DataPath, message: str, key: str | None = None, entry_id: str | None = None) -> None:
        self.error(self.locator.line(path, key, entry_id), message)


@dataclass(frozen=True)
class _Spec:
    kind: Literal["str", "int", "bool", "lang", "strlist", "tables"]
    required: bool = True
    minimum: int | None = None


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "a table",
}


def _type_name(value: object) -> str:
    for typ, name in _TYPE_NAMES.items():
        if type(value) is typ:
            return name
    return type(value).__name__


def _value_problems(key: str, spec: _Spec, value: object) -> list[tuple[str, str]]:
    """(message, key to locate) for each problem with value."""
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            return [(f"'{key}' must be a string, not {_type_name(value)}", key)]
        if not value.strip():
            return [(f"'{key}' is empty", key)]
    elif kind == "int":
        if type(value) is not int:
            return [(f"'{key}' must be an integer, not {_type_name(value)}", key)]
        if spec.minimum is not None and value < spec.minimum:
            return [(f"'{key}' must be at least {spec.minimum}, not {value}", key)]
    elif kind == "bool":
        if type(value) is not bool:
            return [(f"'{key}' must be true or false, not {_type_name(value)}", key)]
    elif kind == "strlist":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return [(f"'{key}' must be a list of strings", key)]
        if not value:
            return [(f"'{key}' is empty", key)]
    elif kind == "tables":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            return [(f"'{key}' must be a list of [[...{key}]] tables", key)]
        if not value:
            return [(f"'{key}' is empty", key)]
    elif kind == "lang":
        if not isinstance(value, dict):
            return [
                (
                    f'\'{key}\' must be a table of texts per language, like {key}.en = "..." and {key}.de = "..."',
                    key,
                )
            ]
        problems: list[tuple[str, str]] = []
        for lang in value:
            if lang not in LANGUAGES:
                problems.append(
                    (
                        f"'{key}' has unknown language '{lang}' (use {', '.join(LANGUAGES)})",
                        f"{key}.{lang}",
                    )
                )
        for lang in LANGUAGES:
            text = value.get(lang)
            if text is None:
                problems.append((f"'{key}' is missing the {_LANG_NAMES.get(lang, lang)} ('{lang}') text", key))
            elif not isinstance(text, str):
                problems.append((f"'{key}.{lang}' must be a string, not {_type_name(text)}", f"{key}.{lang}"))
            elif not text.strip():
                problems.append((f"'{key}.{lang}' is empty", f"{key}.{lang}"))
        return problems
    return []


def _check_fields(
    f: _File, raw: dict[str, Any], path: _DataPath, what: str, specs: dict[str, _Spec]
) -> tuple[dict[str, Any], bool]:
    """Unknown keys, missing keys, types. Returns the good values and whether all were good."""
    good: dict[str, Any] = {}
    ok = True
    for key in raw:
        if key not in specs:
            f.at(path, f"{what}: unknown key '{key}' (allowed: {', '.join(specs)})", key)
            ok = False
    for key, spec in specs.items():
        if key not in raw:
            if spec.required and key in LANGUAGES:
                f.at(path, f"{what}: missing the {_LANG_NAMES.get(key, key)} ('{key}') text")
                ok = False
            elif spec.required:
                f.at(path, f"{what}: missing required key '{key}'")
                ok = False
            continue
        problems = _value_problems(key, spec, raw[key])
        for problem, where in problems:
            f.at(path, f"{what}: {problem}", where)
        if problems:
            ok = False
        else:
            good[key] = raw[key]
    return good, ok


def _entries(f: _File, data: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The [[table]] entries of a file, after checking the file's top-level keys."""
    for key in data:
        if key != table:
            f.at((), f"unknown top-level key '{key}' (this file holds [[{table}]] entries)", key)
    entries = data.get(table, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        f.at((), f"'{table}' must be a list of [[{table}]] tables", table)
        return []
    return entries


@dataclass
class _Entry:
    """A parsed entry (or a disabling stub) with where it was defined."""

    id: str
    value: Any  # Exercise / Programme / Text, or None when enabled = false
    file: _File
    path: _DataPath


def _entry_header(
    f: _File, raw: dict[str, Any], path: _DataPath, kind: str, seen: dict[str, int]
) -> tuple[str | None, bool]:
    """Check id and enabled; returns (id or None, enabled)."""
    entry_id = raw.get("id")
    if entry_id is None:
        f.at(path, f"{kind}: missing required key 'id'")
        entry_id = None
    elif not isinstance(entry_id, str) or not _ID_RE.match(entry_id):
        f.at(
            path,
            f"{kind}: id {entry_id!r} must be 1-40 lowercase letters, digits, '-' or '_'",
            "id",
        )
        entry_id = None
    else:
        here = f.locator.line(path, "id", entry_id)
        if entry_id in seen:
            f.error(here, f"duplicate {kind} id '{entry_id}' (first defined on line {seen[entry_id]})")
            entry_id = None
        else:
            seen[entry_id] = here
    enabled = raw.get("enabled", True)
    if type(enabled) is not bool:
        f.at(path, f"{kind}: 'enabled' must be true or false, not {_type_name(enabled)}", "enabled")
        enabled = True
    return entry_id, enabled


def _enabled_entries(
    f: _File, raws: list[dict[str, Any]], kind: str, result: list[_Entry], *, skip_bad_enabled: bool = False
) -> Iterator[tuple[str, _DataPath, dict[str, Any]]]:
    """The [[kind]] entries to parse, as (id, path, raw), after checking id and enabled.

    Passes over entries without a good id; for enabled = false it appends the disabling
    stub to result instead, so that result keeps the file's order. skip_bad_enabled: pass
    over entries whose enabled is not true or false too (else they are parsed as enabled).
    """
    seen: dict[str, int] = {}
    for i, raw in enumerate(raws):
        path: _DataPath = (kind, i)
        entry_id, enabled = _entry_header(f, raw, path, kind, seen)
        if entry_id is None or (skip_bad_enabled and type(raw.get("enabled", True)) is not bool):
            continue
        if not enabled:
            result.append(_Entry(entry_id, None, f, path))
            continue
        yield entry_id, path, raw


_EXERCISE_SPECS = {
    "id": _Spec("str"),
    "enabled": _Spec("bool", required=False),
    "name": _Spec("lang"),
    "instructions": _Spec("lang"),
    "sets": _Spec("int", minimum=1),
    "reps": _Spec("int", required=False, minimum=1),
    "hold_seconds": _Spec("int", required=False, minimum=1),
    "media": _Spec("str", required=False),
    "media_kind": _Spec("str", required=False),
    "safety_notes": _Spec("lang"),
}


def _parse_exercises(f: _File, data: dict[str, Any]) -> list[_Entry]:
    result: list[_Entry] = []
    for entry_id, path, raw in _enabled_entries(f, _entries(f, data, "exercise"), "exercise", result):
        what = f"exercise '{entry_id}'"
        v, ok = _check_fields(f, raw, path, what, _EXERCISE_SPECS)
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
        if media is not None and not _URL_RE.match(media):
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
            result.append(_Entry(entry_id, exercise, f, path))
    return result


_PROGRAMME_SPECS = {
    "id": _Spec("str"),
    "enabled": _Spec("bool", required=False),
    "name": _Spec("lang"),
    "surgery_types": _Spec("strlist"),
    "example": _Spec("bool", required=False),
    "review_note": _Spec("lang", required=False),
    "phase": _Spec("tables"),
}
_PHASE_SPECS = {
    "id": _Spec("str"),
    "from_day": _Spec("int", minimum=0),
    "to_day": _Spec("int", required=False, minimum=0),
    "title": _Spec("lang"),
    "change_note": _Spec("lang"),
    "sessions_per_day": _Spec("int", minimum=1),
    "default_times": _Spec("strlist"),
    "session": _Spec("tables"),
}
_SESSION_SPECS = {"exercises": _Spec("strlist")}


@dataclass(frozen=True)
class _Ref:
    """A programme's use of an exercise id, checked once all files are merged."""

    file: _File
    line: int
    programme: str
    phase: str
    exercise: str


def _parse_phase(
    f: _File, raw: dict[str, Any], path: _DataPath, what: str, refs: list[_Ref], programme_id: str
) -> Phase | None:
    raw_id = raw.get("id")
    phase_id = raw_id if isinstance(raw_id, str) else f"#{cast(int, path[-1]) + 1}"
    what = f"{what} phase '{phase_id}'"
    v, ok = _check_fields(f, raw, path, what, _PHASE_SPECS)
    if "id" in v and not _ID_RE.match(v["id"]):
        f.at(path, f"{what}: id must be 1-40 lowercase letters, digits, '-' or '_'", "id")
        ok = False
    per_day = v.get("sessions_per_day")
    if per_day is not None and per_day > MAX_SESSIONS_PER_DAY:
        f.at(path, f"{what}: at most {MAX_SESSIONS_PER_DAY} sessions a day", "sessions_per_day")
        ok = False
    if "from_day" in v and "to_day" in v and v["to_day"] < v["from_day"]:
        f.at(path, f"{what}: to_day {v['to_day']} is before from_day {v['from_day']}", "to_day")
        ok = False
    times = v.get("default_times")
    if times is not None:
        bad = [t for t in times if not _HHMM_RE.match(t)]
        if bad:
            f.at(path, f"{what}: default_times {bad} are not HH:MM (00:00-23:59)", "default_times")
            ok = False
        elif times != sorted(set(times)):
            f.at(path, f"{what}: default_times must be distinct and ascending", "default_times")
            ok = False
        elif per_day is not None and len(times) != per_day:
            f.at(
                path,
                f"{what}: {len(times)} default_times for {per_day} sessions_per_day",
                "default_times",
            )
            ok = False
    sessions: list[SessionPlan] = []
    raw_sessions = v.get("session", [])
    if per_day is not None and raw_sessions and len(raw_sessions) not in (1, per_day):
        f.at(
            path,
            f"{what}: {len(raw_sessions)} [[session]] tables; give 1 (the same for every "
            f"session) or {per_day} (one per session)",
            "session",
        )
        ok = False
    for k, raw_session in enumerate(raw_sessions):
        session_path = (*path, "session", k)
        sv, session_ok = _check_fields(f, raw_session, session_path, f"{what} session {k + 1}", _SESSION_SPECS)
        if not session_ok:
            ok = False
            continue
        line = f.locator.line(session_path, "exercises")
        refs.extend(_Ref(f, line, programme_id, phase_id, ex) for ex in sv["exercises"])
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
    )


def _check_phase_days(f: _File, what: str, phases: list[tuple[Phase, _DataPath]]) -> bool:
    """Phases must cover day 0 onwards without gaps or overlaps."""
    ok = True
    ordered = sorted(phases, key=lambda p: p[0].from_day)
    if ordered and ordered[0][0].from_day != 0:
        first, path = ordered[0]
        f.at(
            path,
            f"{what}: the first phase '{first.id}' starts on day {first.from_day}; days 0-"
            f"{first.from_day - 1} after surgery are in no phase (start it at from_day = 0)",
            "from_day",
        )
        ok = False
    for (prev, _), (phase, path) in itertools.pairwise(ordered):
        if prev.to_day is None or phase.from_day <= prev.to_day:
            prev_days = f"{prev.from_day}-{'' if prev.to_day is None else prev.to_day}"
            f.at(
                path,
                f"{what}: phase '{phase.id}' (from day {phase.from_day}) overlaps phase '{prev.id}' (days {prev_days})",
                "from_day",
            )
            ok = False
        elif phase.from_day > prev.to_day + 1:
            f.at(
                path,
                f"{what}: days {prev.to_day + 1}-{phase.from_day - 1} are in no phase (gap "
                f"between phase '{prev.id}' and phase '{phase.id}')",
                "from_day",
            )
            ok = False
    return ok


def _parse_programmes(f: _File, data: dict[str, Any], refs: dict[str, list[_Ref]]) -> list[_Entry]:
    result: list[_Entry] = []
    for entry_id, path, raw in _enabled_entries(f, _entries(f, data, "programme"), "programme", result):
        what = f"programme '{entry_id}'"
        v, ok = _check_fields(f, raw, path, what, _PROGRAMME_SPECS)
        example = v.get("example", False)
        if example and "review_note" not in raw:
            f.at(
                path,
                f"{what}: an example programme needs a 'review_note' for the clinic",
                "example",
            )
            ok = False
        my_refs: list[_Ref] = []
        phases: list[tuple[Phase, _DataPath]] = []
        phase_ids: dict[str, int] = {}
        for j, raw_phase in enumerate(v.get("phase", [])):
            phase_path = (*path, "phase", j)
            phase = _parse_phase(f, raw_phase, phase_path, what, my_refs, entry_id)
            if phase is None:
                ok = False
                continue
            if phase.id in phase_ids:
                f.at(
                    phase_path,
                    f"{what}: duplicate phase id '{phase.id}' (first defined on line {phase_ids[phase.id]})",
                    "id",
                )
                ok = False
            phase_ids.setdefault(phase.id, f.locator.line(phase_path, "id"))
            phases.append((phase, phase_path))
        if ok and not _check_phase_days(f, what, phases):
            ok = False
        if ok:
            programme = Programme(
                id=entry_id,
                name=v["name"],
                surgery_types=list(v["surgery_types"]),
                example=example,
                review_note=v.get("review_note", {}),
                phases=sorted((p for p, _ in phases), key=lambda p: p.from_day),
                source=f.source,
            )
            refs[entry_id] = my_refs
            result.append(_Entry(entry_id, programme, f, path))
    return result


_TEXT_SPECS = {
    "id": _Spec("str"),
    "enabled": _Spec("bool", required=False),
    "version": _Spec("str", required=False),
    **{lang: _Spec("str") for lang in LANGUAGES},
}


def _placeholder_problem(text: str) -> str | set[str]:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return "has an unmatched '{' or '}' (write '{{' or '}}' for a literal brace)"
    bad = sorted(name for name in fields if not name.isidentifier())
    if bad:
        return f"has placeholders {bad}; use names like {{clinic}} (or '{{{{' for a brace)"
    return fields


def _parse_texts(f: _File, data: dict[str, Any]) -> list[_Entry]:
    result: list[_Entry] = []
    for entry_id, path, raw in _enabled_entries(f, _entries(f, data, "text"), "text", result):
        what = f"text '{entry_id}'"
        specs = dict(_TEXT_SPECS)
        if entry_id == "consent":
            specs["version"] = _Spec("str")
        v, ok = _check_fields(f, raw, path, what, specs)
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
            result.append(_Entry(entry_id, Text(entry_id, body, v.get("version"), f.source), f, path))
    return result


def _read_toml(path: Path, source: str, errors: list[str]) -> tuple[_File, dict[str, Any]] | None:
    f = _File(path, source, errors)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        f.error(1, f"not valid UTF-8 ({exc.reason})")
        return None
    except OSError as exc:
        f.error(1, f"cannot read: {exc.strerror}")
        return None
    f.locator = _Locator(text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if m:
            line = int(m.group(1))
            message = message[: m.start()].rstrip() + f" (column {m.group(2)})"
        else:
            line = max(1, len(text.splitlines()))
        f.error(line, f"TOML syntax error: {message}")
        return None
    return f, data


# --------------------------------------------------------------------------- loading


def _merge(kind: str, target: dict[str, _Entry], entries: list[_Entry], disabled: dict[str, _Entry]) -> None:
    for entry in entries:
        if entry.value is None:
            if entry.file.source != BUILT_IN and entry.id not in target:
                entry.file.at(
                    entry.path,
                    f"{kind} '{entry.id}' is disabled here but there is no {kind} with that id",
                    "enabled",
                )
            target.pop(entry.id, None)
            disabled[entry.id] = entry
        else:
            target[entry.id] = entry
            disabled.pop(entry.id, None)


def load_content(clinic_dir: Path | None) -> Content:
    """Built-in defaults, overlaid by the clinic's files; ContentError lists all problems."""
    errors: list[str] = []
    exercises: dict[str, _Entry] = {}
    programmes: dict[str, _Entry] = {}
    texts: dict[str, _Entry] = {}
    disabled: dict[str, dict[str, _Entry]] = {"exercise": {}, "programme": {}, "text": {}}
    refs: dict[str, list[_Ref]] = {}
    built_in_consent: Text | None = None
    from rehab_bot.content import checkins  # needs this module's helpers, so imported late

    checkin_loader = checkins.Loader()
    from rehab_bot.content import lessons

    lesson_loader = lessons.Loader()
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
            parsed = _read_toml(path, BUILT_IN if layer == BUILT_IN else str(path), errors)
            if parsed is None:
                continue
            f, data = parsed
            if name == "exercises.toml":
                _merge("exercise", exercises, _parse_exercises(f, data), disabled["exercise"])
            elif name in checkin_files:
                checkin_loader.parse(name, f, data)
            elif name == lessons.FILE:
                lesson_loader.parse(f, data)
            elif name == "programmes.toml":
                layer_refs: dict[str, list[_Ref]] = {}
                entries = _parse_programmes(f, data, layer_refs)
                for entry in entries:
                    refs.pop(entry.id, None)
                refs.update(layer_refs)
                _merge("programme", programmes, entries, disabled["programme"])
            else:
                entries = _parse_texts(f, data)
                if layer == BUILT_IN:
                    consent = next((e.value for e in entries if e.id == "consent"), None)
                    built_in_consent = consent
                _merge("text", texts, entries, disabled["text"])

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
                ref.file.error(
                    ref.line,
                    f"programme '{programme_id}' phase '{ref.phase}' uses unknown exercise '{ref.exercise}'",
                )
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
    course = lesson_loader.finish(programmes)
    if errors:
        raise ContentError(errors)
    return Content(
        **checkin_content.__dict__,
        course=course,
        exercises={k: e.value for k, e in exercises.items()},
        programmes={k: e.value for k, e in programmes.items()},
        texts={k: e.value for k, e in texts.items()},
    )
