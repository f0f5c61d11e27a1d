"""The content schema: pydantic models of every TOML table, and where errors are in the file.

Every content file (exercises, programmes, texts, questionnaires, messages,
crisis, lessons) is checked in two steps:

1. the *shape* of each table -- which keys it may have, which are required,
   their types and simple bounds -- by a pydantic model declared with
   :func:`schema` (``extra="forbid"``, strict types), through
   :func:`check_fields`, which turns pydantic's errors into the friendly
   ``file:line: message`` strings clinics see (an unknown key gets a "did you
   mean ...?" suggestion);
2. the *meaning* (phases that cover every day, placeholders that agree across
   languages, ids that exist, ...) by the parsers of each file.

Line numbers come from :class:`Locator`, which scans the file text for the
entry's table header or the offending key, so a pydantic error ``loc`` like
``("name", "de")`` inside the third ``[[exercise]]`` becomes the line of
``name.de`` (or of ``name``) in that entry.

This module is the public home of what the content parsers share; they
import nothing private from each other. Plain Python: no telegram imports.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import ErrorDetails, PydanticCustomError

from rehab_bot.i18n import FALLBACK_LANGUAGE, N_, SUPPORTED_LANGUAGES, Problem

LANGUAGES: tuple[str, ...] = SUPPORTED_LANGUAGES
BUILT_IN = "built-in"
DEFAULTS_DIR = Path(__file__).parent / "defaults"
LANG_NAMES = {"en": "English", "de": "German"}
# Ids go into callback data and logs: short, lowercase, no spaces.
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
HHMM_RE = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
URL_RE = re.compile(r"^https?://", re.IGNORECASE)

DataPath = tuple[str | int, ...]


class ContentError(Exception):
    """The content files are invalid; ``errors`` lists every ``file:line: message``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def localize(texts: Mapping[str, str], lang: str) -> str:
    """The text in lang, else English (validation guarantees English exists)."""
    return texts.get(lang) or texts["en"]


def did_you_mean(key: str, allowed: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the allowed name closest to a mistyped key, else ""."""
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def unknown_key(key: str, allowed: Iterable[str]) -> str:
    """The message for a key a table may not have, with a suggestion when one is close."""
    names = list(allowed)
    return f"unknown key '{key}'{did_you_mean(key, names)} (allowed: {', '.join(names)})"


# --------------------------------------------------------------------------- locating lines

_HEADER_RE = re.compile(r"^\s*(\[\[|\[)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")


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


class Locator:
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
        self.blocks: dict[DataPath, tuple[int, int]] = {}
        counters: dict[DataPath, int] = {}
        stack: list[tuple[tuple[str, ...], DataPath]] = []
        for n, (lineno, keys, is_array) in enumerate(headers):
            while stack and not (len(stack[-1][0]) < len(keys) and keys[: len(stack[-1][0])] == stack[-1][0]):
                stack.pop()
            if not is_array:
                continue
            parent_keys, parent_path = stack[-1] if stack else ((), ())
            base: DataPath = parent_path + keys[len(parent_keys) :]
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

    def find_key(self, start: int, end: int, key: str) -> int | None:
        """The line assigning key ("name" or dotted "name.de") within [start, end]."""
        parts = [r"(?:" + re.escape(p) + r"|\"" + re.escape(p) + r"\")" for p in key.split(".")]
        key_re = re.compile(r"^\s*" + r"\s*\.\s*".join(parts) + r"\s*[=.]")
        for lineno in range(start, end + 1):
            if not self.mask[lineno - 1] and key_re.match(self.lines[lineno - 1]):
                return lineno
        if "." in key:
            return self.find_key(start, end, key.split(".")[0])
        for lineno, keys, _ in self.headers:
            if start <= lineno <= end and key in keys:
                return lineno
        return None

    def table_line(self, name: str, key: str | None = None) -> int:
        """The line of a plain [name] table (not an array), or of its key; 1 when there is none."""
        header = next((ln for ln, keys, is_array in self.headers if keys == (name,) and not is_array), None)
        if header is None:
            return 1
        if key is not None:
            end = next((ln - 1 for ln, _, _ in self.headers if ln > header), len(self.lines))
            found = self.find_key(header, end, key)
            if found is not None:
                return found
        return header

    def line(self, path: DataPath, key: str | None = None, entry_id: str | None = None) -> int:
        if not path:
            if key is not None:
                found = self.find_key(1, self.first_header - 1, key)
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
            found = self.find_key(start, end, key)
            if found is not None:
                return found
        return start


@dataclass
class SourceFile:
    """One content file being checked: its errors go to the shared list."""

    path: Path
    source: str  # "built-in" or the clinic file path
    errors: list[str]
    locator: Locator = field(default_factory=lambda: Locator(""))

    def error(self, line: int, message: str) -> None:
        self.errors.append(f"{self.path}:{line}: {message}")

    def at(self, path: DataPath, message: str, key: str | None = None, entry_id: str | None = None) -> None:
        self.error(self.locator.line(path, key, entry_id), message)

    def rule(self, path: DataPath, key: str | None, what: str, msgid: str, **values: object) -> None:
        """A rule broken at key of the entry at path (or at the entry), said by a msgid (marked with N_):
        in English here, after what and key ("programme 'p' phase 'a': from_day: ..."); the programme
        builder's checks keep it as a Problem, to say in the staff member's language (PhasesOfAPlan)."""
        said = Problem(msgid, values).said(FALLBACK_LANGUAGE)
        self.at(path, f"{what}: {key}: {said}" if key else f"{what} {said}", key)


# Any other error the content's checks find in a plan's phases (a field check, written for content files
# and in English only): said in the staff member's language around the check's own words. The plan's schema
# (rehab_bot/plan.py) refuses what it can first, in our own words, so this is the last resort.
OTHER_RULE = N_("the programme rules refuse this: {reason}")


@dataclass
class PhasesOfAPlan(SourceFile):
    """The phases of a programme builder plan being checked: each broken rule a Problem whose where is
    its path in the phases given ("phase.1.from_day"), any other error a Problem that says the check's
    text (OTHER_RULE)."""

    problems: list[Problem] = field(default_factory=list)

    def error(self, line: int, message: str) -> None:
        self.problems.append(Problem(OTHER_RULE, {"reason": message}))

    def rule(self, path: DataPath, key: str | None, what: str, msgid: str, **values: object) -> None:
        self.problems.append(Problem(msgid, values, ".".join(str(part) for part in (*path, key) if part is not None)))


@dataclass
class TableFile(SourceFile):
    """A file whose errors are located in one plain [table] (like [course]), not an array entry."""

    table: str = ""

    def at(self, path: DataPath, message: str, key: str | None = None, entry_id: str | None = None) -> None:
        self.error(self.locator.table_line(self.table, key.split(".")[0] if key else None), message)


def read_toml(path: Path, source: str, errors: list[str]) -> tuple[SourceFile, dict[str, Any]] | None:
    f = SourceFile(path, source, errors)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is no TOML error
    except UnicodeDecodeError as exc:
        f.error(1, f"not valid UTF-8 ({exc.reason})")
        return None
    except OSError as exc:
        f.error(1, f"cannot read: {exc.strerror}")
        return None
    f.locator = Locator(text)
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


# --------------------------------------------------------------------------- field types

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "a table",
}


def type_name(value: object) -> str:
    for typ, name in _TYPE_NAMES.items():
        if type(value) is typ:
            return name
    return type(value).__name__


@dataclass(frozen=True)
class _Kind:
    """Which friendly messages a field's pydantic errors become."""

    name: Literal["str", "int", "bool", "lang", "strlist", "tables", "any"]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "is empty")
    return value


_Str = Annotated[str, AfterValidator(_not_blank)]
Str = Annotated[_Str, _Kind("str")]
Bool = Annotated[bool, _Kind("bool")]
StrList = Annotated[list[str], Field(min_length=1), _Kind("strlist")]
Tables = Annotated[list[dict[str, Any]], Field(min_length=1), _Kind("tables")]
# Checked by hand by the parser (its own messages); the schema only knows the key.
Unchecked = Annotated[Any, _Kind("any")]


def Int(minimum: int | None = None) -> Any:
    """A whole number (not true/false), at least minimum."""
    return Annotated[int, Field(ge=minimum), _Kind("int")]


@dataclass(frozen=True)
class Says:
    """What a field's wrong value is told, after the field's name: 'ends' must be true or false."""

    text: str


def Checked(typ: Any, says: str, **bounds: Any) -> Any:
    """A field of type typ (strict; bounds as pydantic Field arguments) whose wrong value gets the message says."""
    inner = Annotated[typ, Field(**bounds)] if bounds else typ
    return Annotated[inner, _Kind("any"), Says(says)]


_STRICT = ConfigDict(extra="forbid", strict=True)

# A text per language: lang = "...", one for every supported language.
LangModel = create_model(  # type: ignore[call-overload]
    "LangText", __config__=_STRICT, **{lang: (_Str, ...) for lang in LANGUAGES}
)
Lang = Annotated[LangModel, _Kind("lang")]  # type: ignore[valid-type]


def schema(name: str, /, **fields: Any) -> type[BaseModel]:
    """A table's model: fields as name=Type (required) or name=(Type, None) (optional)."""
    spec: dict[str, Any] = {key: (value if isinstance(value, tuple) else (value, ...)) for key, value in fields.items()}
    model: type[BaseModel] = create_model(name, __config__=_STRICT, **spec)
    return model


def optional(typ: Any) -> tuple[Any, None]:
    """An optional field of type typ (its kind and message kept on the field, for the messages)."""
    meta = tuple(m for m in getattr(typ, "__metadata__", ()) if isinstance(m, _Kind | Says))
    assert any(isinstance(m, _Kind) for m in meta)
    return (Annotated[(typ | None, *meta)], None)


def per_language(typ: Any) -> dict[str, Any]:
    """One required field per supported language (a [[text]] or [[message]] body)."""
    return {lang: typ for lang in LANGUAGES}


def _kind_of(model: type[BaseModel], key: str) -> str:
    info = model.model_fields.get(key)
    if info is None:
        return "any"
    return next((m.name for m in info.metadata if isinstance(m, _Kind)), "any")


def _says_of(model: type[BaseModel], key: str) -> str | None:
    info = model.model_fields.get(key)
    return next((m.text for m in info.metadata if isinstance(m, Says)), None) if info is not None else None


def _field_message(model: type[BaseModel], raw: dict[str, Any], error: ErrorDetails) -> tuple[str, str]:
    """(message, key to locate) for one pydantic error below a top-level key."""
    loc = error["loc"]
    key = str(loc[0])
    says = _says_of(model, key)
    if says is not None:
        return f"'{key}' {says}", key
    kind = _kind_of(model, key)
    typ = error["type"]
    value = raw.get(key)
    if kind == "lang":
        if len(loc) == 1:
            return (
                f'\'{key}\' must be a table of texts per language, like {key}.en = "..." and {key}.de = "..."',
                key,
            )
        lang = str(loc[1])
        if typ == "extra_forbidden":
            return f"'{key}' has unknown language '{lang}' (use {', '.join(LANGUAGES)})", f"{key}.{lang}"
        if typ == "missing":
            return f"'{key}' is missing the {LANG_NAMES.get(lang, lang)} ('{lang}') text", key
        if typ == "blank":
            return f"'{key}.{lang}' is empty", f"{key}.{lang}"
        return f"'{key}.{lang}' must be a string, not {type_name(error['input'])}", f"{key}.{lang}"
    if typ == "blank" or typ == "too_short":
        return f"'{key}' is empty", key
    if kind == "str":
        return f"'{key}' must be a string, not {type_name(value)}", key
    if kind == "int":
        if typ == "greater_than_equal":
            return f"'{key}' must be at least {(error.get('ctx') or {}).get('ge')}, not {value}", key
        return f"'{key}' must be an integer, not {type_name(value)}", key
    if kind == "bool":
        return f"'{key}' must be true or false, not {type_name(value)}", key
    if kind == "strlist":
        return f"'{key}' must be a list of strings", key
    if kind == "tables":
        return f"'{key}' must be a list of [[...{key}]] tables", key
    return f"'{key}': {error['msg']}", key


def check_fields(
    f: SourceFile,
    raw: dict[str, Any],
    path: DataPath,
    what: str,
    model: type[BaseModel],
    *,
    locate: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Check raw against model: unknown, missing and mistyped keys become located errors.

    Returns the keys whose values are good (as written) and whether all were good,
    so that a parser can go on checking the meaning of the good ones. Errors are
    located at the offending key in the entry at path, or all at the key locate
    (for an inline table, whose keys are not on lines of their own).
    """
    try:
        model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        return dict(raw), True
    fields = list(model.model_fields)
    order = {key: n for n, key in enumerate(fields)}
    langs = {lang: n for n, lang in enumerate(LANGUAGES)}

    def rank(error: ErrorDetails) -> tuple[int, int, int, int]:
        """Today's order: unknown keys as written, then field by field (unknown languages first)."""
        loc = error["loc"]
        if error["type"] == "extra_forbidden" and len(loc) == 1:
            return (0, list(raw).index(str(loc[0])), 0, 0)
        nested = len(loc) > 1
        if nested and error["type"] == "extra_forbidden":
            return (1, order.get(str(loc[0]), len(fields)), 0, list(raw[str(loc[0])]).index(loc[1]))
        return (1, order.get(str(loc[0]), len(fields)), 1, langs.get(str(loc[1]), 0) if nested else 0)

    bad: set[str] = set()
    said: set[str] = set()
    for error in sorted(errors, key=rank):
        loc = error["loc"]
        key = str(loc[0])
        bad.add(key)
        if error["type"] == "extra_forbidden" and len(loc) == 1:
            message, where = unknown_key(key, fields), key
        elif error["type"] == "missing" and len(loc) == 1:
            if key in LANGUAGES:
                message, where = f"missing the {LANG_NAMES.get(key, key)} ('{key}') text", None
            else:
                message, where = f"missing required key '{key}'", None
        else:
            message, where = _field_message(model, raw, error)
        if message in said:
            continue  # one message per field, however many list items are wrong
        said.add(message)
        f.at(path, f"{what}: {message}", locate or where)
    return {key: value for key, value in raw.items() if key in order and key not in bad}, False


# --------------------------------------------------------------------------- entries and layers


@dataclass
class Entry:
    """A parsed entry (or a disabling stub) with where it was defined."""

    id: str
    value: Any  # the parsed value, or None when enabled = false
    file: SourceFile
    path: DataPath


def file_entries(f: SourceFile, data: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The [[table]] entries of a file, after checking the file's top-level keys."""
    for key in data:
        if key != table:
            f.at(
                (),
                f"unknown top-level key '{key}'{did_you_mean(key, [table])} (this file holds [[{table}]] entries)",
                key,
            )
    entries = data.get(table, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        f.at((), f"'{table}' must be a list of [[{table}]] tables", table)
        return []
    return entries


def _entry_header(
    f: SourceFile, raw: dict[str, Any], path: DataPath, kind: str, seen: dict[str, int]
) -> tuple[str | None, bool]:
    """Check id and enabled; returns (id or None, enabled)."""
    entry_id = raw.get("id")
    if entry_id is None:
        f.at(path, f"{kind}: missing required key 'id'")
        entry_id = None
    elif not isinstance(entry_id, str) or not ID_RE.match(entry_id):
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
        f.at(path, f"{kind}: 'enabled' must be true or false, not {type_name(enabled)}", "enabled")
        enabled = True
    return entry_id, enabled


def enabled_entries(
    f: SourceFile, raws: list[dict[str, Any]], kind: str, result: list[Entry], *, skip_bad_enabled: bool = False
) -> Iterator[tuple[str, DataPath, dict[str, Any]]]:
    """The [[kind]] entries to parse, as (id, path, raw), after checking id and enabled.

    Passes over entries without a good id; for enabled = false it appends the disabling
    stub to result instead, so that result keeps the file's order. skip_bad_enabled: pass
    over entries whose enabled is not true or false too (else they are parsed as enabled).
    """
    seen: dict[str, int] = {}
    for i, raw in enumerate(raws):
        path: DataPath = (kind, i)
        entry_id, enabled = _entry_header(f, raw, path, kind, seen)
        if entry_id is None or (skip_bad_enabled and type(raw.get("enabled", True)) is not bool):
            continue
        if not enabled:
            result.append(Entry(entry_id, None, f, path))
            continue
        yield entry_id, path, raw


def merge(kind: str, target: dict[str, Entry], entries: list[Entry], disabled: dict[str, Entry]) -> None:
    """Lay one file's entries over what came before: same id replaces, enabled = false removes."""
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
