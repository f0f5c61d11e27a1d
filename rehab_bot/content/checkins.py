"""Content for check-ins: questionnaires, alert rules, motivational messages, crisis phrases.

Three files, in the built-in defaults and optionally in a clinic's content
directory, with the same override rules as the other content files (same id
replaces, a new id adds, ``enabled = false`` removes):

* ``questionnaires.toml`` -- ``[[questionnaire]]`` (items, answer options with
  scores, scoring rule, default cadence, LOINC codes), ``[[cadence]]`` (a
  questionnaire's cadence for one programme), ``[[rule]]`` (alert rules) and
  an optional ``[checkin_time]`` table (when check-ins are sent);
* ``messages.toml`` -- ``[[message]]``, the motivational message library;
* ``crisis.toml`` -- ``[[crisis]]``, lists of patterns per language that make
  the bot show the "crisis" text and raise an urgent alert, ``[[concern]]``,
  patterns that make the bot ask the "crisis_question" first, and
  ``[[symptom_words]]``, patterns that offer a questionnaire (the symptom
  check) with one tap; the pattern language is :mod:`rehab_bot.crisis`.

The file headers document every key. Loaded by :func:`rehab_bot.content.load_content`;
errors are ``file:line: message`` like every other content error.

Plain Python: no telegram imports.
"""

from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass, field
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import Field

from rehab_bot.content.schema import (
    BUILT_IN,
    DEFAULTS_DIR,
    HHMM_RE,
    ID_RE,
    LANGUAGES,
    Bool,
    Checked,
    DataPath,
    Entry,
    Int,
    Lang,
    SourceFile,
    Str,
    StrList,
    Tables,
    Unchecked,
    check_fields,
    did_you_mean,
    enabled_entries,
    localize,
    merge,
    optional,
    per_language,
    schema,
)
from rehab_bot.crisis import Pattern, PatternError, compile_pattern

FILES = ("questionnaires.toml", "messages.toml", "crisis.toml")

SEVERITIES = ("low", "high", "critical", "emergency")
# The triage level a severity means for the patient, lowest first:
#   emergency  call the emergency number now
#   urgent     contact the clinic today (the emergency number if it gets worse)
#   routine    the therapist sees it; nothing to do now
#   none       no red flag
LEVELS = ("none", "routine", "urgent", "emergency")
LEVEL_OF_SEVERITY = {"low": "routine", "high": "urgent", "critical": "urgent", "emergency": "emergency"}


def level_of(severity: str | None) -> str:
    """The triage level of a severity (None: no red flag)."""
    return "none" if severity is None else LEVEL_OF_SEVERITY[severity]


SCORINGS = ("value", "sum", "mean", "percent", "count", "none")
RULE_KINDS = ("score_at_least", "rise", "above_baseline", "trend", "inactive")
TRIGGERS = (
    "welcome",
    "first_session",
    "streak",
    "comeback",
    "pain_improved",
    "milestone",
    "weekly_summary",
    "first_full_week",
    "phase_change",
    "pain_halved",
    "reminder",
)
# Milestones: sent with a message effect in the chat (never on a red-flag day).
MILESTONE_TRIGGERS = frozenset({"first_full_week", "phase_change", "pain_halved"})
# Questionnaires the bot core relies on: /pain, the pain alert rules, the
# progress chart and the motivation engine read CheckIn rows of "pain" (NRS
# 0-10, its score is the answer) and "mood" (1-5). A clinic may reword them
# but not disable them or change their scale.
REQUIRED_QUESTIONNAIRES = {"pain": (0, 10), "mood": (1, 5)}
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_OPTIONS = 12
# Placeholders each motivational trigger can fill; a message is only chosen
# when every placeholder it uses has a value that day.
TRIGGER_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "welcome": frozenset({"clinic"}),
    "first_session": frozenset({"clinic"}),
    "streak": frozenset({"days", "clinic"}),
    "comeback": frozenset({"missed", "clinic"}),
    "pain_improved": frozenset({"before", "now", "clinic"}),
    "milestone": frozenset({"weeks", "clinic"}),
    "weekly_summary": frozenset({"done", "planned", "adherence", "pain", "mood", "clinic"}),
    "first_full_week": frozenset({"clinic"}),
    "phase_change": frozenset({"phase", "clinic"}),
    "pain_halved": frozenset({"before", "now", "clinic"}),
    "reminder": frozenset({"clinic"}),
}
# Placeholders that carry health data (answers, the treatment's phase): messages using them
# are left out when the chat must carry none ([privacy]).
HEALTH_PLACEHOLDERS = frozenset({"pain", "mood", "before", "now", "phase"})
# The trigger parameter: which streak length / which week a message is for.
TRIGGER_PARAMS = {"streak": "days", "milestone": "weeks"}

_LOINC_RE = re.compile(r"^\d{1,7}-\d$")
_LA_RE = re.compile(r"^LA\d{1,6}-\d$")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Option:
    """One answer button: its stored value (the item score) and what it triggers."""

    value: int
    label: dict[str, str]
    loinc: str | None = None  # LOINC answer code (LA...), where one exists
    flag: str | None = None  # a severity: choosing this option is a red flag
    reply: str | None = None  # id of a [[text]] shown to the patient at once when flagged
    ends: bool = False  # choosing it completes the questionnaire (a "none of these" gate)


@dataclass(frozen=True)
class Item:
    id: str
    text: dict[str, str]
    options: list[Option]
    loinc: str | None = None
    scored: bool = True  # counts towards the score
    optional: bool = False  # offers a "skip" button (the ODI allows skipped sections)
    columns: int = 4  # buttons per row
    yes_no: bool = False  # "No" (0) / "Yes" (1), labelled by the UI in the patient's language
    # What the lowest and the highest answer mean ("0 = no pain", "10 = ..."), per language: shown under the
    # buttons in the Mini App and below the question in the chat. None = the question says it, or it needs none.
    low: dict[str, str] | None = None
    high: dict[str, str] | None = None
    # A follow-up question: asked only when one of these earlier items was
    # answered with one of the listed values ({item id: values}); None = always.
    when: dict[str, frozenset[int]] | None = None

    def asked_after(self, values: dict[str, int | None]) -> bool:
        """True when this item is to be asked, given the answers so far (item id -> value)."""
        if self.when is None:
            return True
        return any(values.get(item_id) in allowed for item_id, allowed in self.when.items())

    def option(self, value: int) -> Option | None:
        return next((o for o in self.options if o.value == value), None)

    @property
    def max_value(self) -> int:
        return max(o.value for o in self.options)


@dataclass(frozen=True)
class CadenceStep:
    """When a questionnaire is asked: a range of days after surgery and a pattern."""

    from_day: int = 0
    to_day: int | None = None  # inclusive; None = open-ended
    every_n_days: int | None = None  # 1 = daily; anchored at from_day
    weekdays: frozenset[int] | None = None  # 0 = Monday


@dataclass(frozen=True)
class Questionnaire:
    id: str
    title: dict[str, str]
    intro: dict[str, str] | None
    items: list[Item]
    scoring: str  # value | sum | mean | percent | count | none
    cadence: list[CadenceStep]  # empty: asked only on demand
    expires_hours: int
    on_demand: bool  # the patient can start it from /checkin
    min_answered: int | None  # scoring needs this many scored items (default: all)
    loinc: str | None  # panel code
    score_loinc: str | None  # total score code
    source: str = BUILT_IN

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    @property
    def scored_items(self) -> list[Item]:
        return [i for i in self.items if i.scored]


@dataclass(frozen=True)
class AlertRule:
    """A non-item alert rule; the engine implements the kinds, content sets the numbers."""

    id: str
    kind: str  # score_at_least | rise | above_baseline | trend | inactive
    severity: str
    questionnaire: str | None = None
    threshold: float | None = None  # score_at_least
    rise: float | None = None  # rise, above_baseline, trend
    min_score: float | None = None  # rise: only when the new score is at least this
    days: int | None = None  # above_baseline: baseline days; trend: days of rise
    hours: int | None = None  # inactive
    patient_text: str | None = None  # a [[text]] id shown to the patient when it fires
    message: dict[str, str] | None = None  # or a message of its own
    source: str = BUILT_IN


@dataclass(frozen=True)
class CheckinTime:
    """When the evening check-in is sent (see rehab_bot.checkin.checkin_time)."""

    default: time = time(19, 0)
    after_last_session_minutes: int = 60
    earliest: time = time(17, 0)
    latest: time = time(20, 30)
    motivation_after_minutes: int = 30


@dataclass(frozen=True)
class Message:
    """A motivational message."""

    id: str
    trigger: str
    param: int | None  # streak days / milestone weeks
    body: dict[str, str]
    placeholders: frozenset[str]
    source: str = BUILT_IN

    def render(self, lang: str, **values: object) -> str:
        return localize(self.body, lang).format(**values)


@dataclass(frozen=True)
class CrisisList:
    id: str
    phrases: dict[str, list[str]]  # the patterns as written, per language
    source: str = BUILT_IN
    patterns: tuple[Pattern, ...] = ()  # compiled, every language


@dataclass(frozen=True)
class SymptomWords:
    """Words that offer a questionnaire (the symptom check) with one tap."""

    id: str
    questionnaire: str
    words: dict[str, list[str]]  # the patterns as written, per language
    source: str = BUILT_IN
    patterns: tuple[Pattern, ...] = ()


@dataclass
class CheckinContent:
    """What the three files add to Content."""

    questionnaires: dict[str, Questionnaire] = field(default_factory=dict)
    programme_cadences: dict[tuple[str, str], list[CadenceStep]] = field(default_factory=dict)
    alert_rules: dict[str, AlertRule] = field(default_factory=dict)
    checkin_time: CheckinTime = field(default_factory=CheckinTime)
    messages: dict[str, Message] = field(default_factory=dict)
    crisis: dict[str, CrisisList] = field(default_factory=dict)
    concern: dict[str, CrisisList] = field(default_factory=dict)
    symptom_words: dict[str, SymptomWords] = field(default_factory=dict)


# --------------------------------------------------------------------------- parsing helpers


def _check_loinc(f: SourceFile, path: DataPath, what: str, key: str, value: Any, pattern: re.Pattern[str]) -> bool:
    if value is None:
        return True
    if not isinstance(value, str) or not pattern.match(value):
        example = "LA6111-4" if pattern is _LA_RE else "72514-3"
        f.at(path, f"{what}: '{key}' {value!r} is not a LOINC code like {example}", key)
        return False
    return True


def _placeholders(text: str) -> set[str] | str:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return "has an unmatched '{' or '}' (write '{{' or '}}' for a literal brace)"


def _int(value: Any) -> bool:
    return type(value) is int


# --------------------------------------------------------------------------- questionnaires

QuestionnaireSchema = schema(
    "QuestionnaireSchema",
    id=Str,
    enabled=optional(Bool),
    title=Lang,
    intro=optional(Lang),
    scoring=Str,
    min_answered=optional(Int(1)),
    loinc=optional(Str),
    score_loinc=optional(Str),
    expires_hours=Int(1),
    on_demand=optional(Bool),
    cadence=optional(Unchecked),  # checked by _parse_cadence
    item=Tables,
)
ItemSchema = schema(
    "ItemSchema",
    id=Str,
    text=Lang,
    loinc=optional(Str),
    scored=optional(Bool),
    optional=optional(Bool),
    columns=optional(Int(1)),
    scale=optional(Unchecked),  # a [min, max] list, checked by _parse_item
    yes_no=optional(Bool),
    low=optional(Lang),
    high=optional(Lang),
    flag=optional(Str),
    reply=optional(Str),
    options=optional(Tables),
    when=optional(Unchecked),  # a table of lists, checked by _parse_when
)
_WEEKDAYS_MESSAGE = f'must list weekdays like "mon,wed,fri" ({", ".join(WEEKDAY_NAMES)})'
# An answer option: an inline table in an item's options = [...]; errors at the item's 'options'.
OptionSchema = schema(
    "OptionSchema",
    value=Checked(int, "must be a whole number from 0 to 999 (the item score)", ge=0, le=999),
    label=Lang,
    loinc=optional(Unchecked),  # a LOINC answer code, checked by _check_loinc
    flag=optional(Checked(Literal[SEVERITIES], f"must be one of {', '.join(SEVERITIES)}")),
    reply=optional(Checked(str, "must be the id of a [[text]]")),
    ends=optional(Checked(bool, "must be true or false")),
)
# One step of a cadence: an inline table in cadence = [...] or steps = [...].
CadenceStepSchema = schema(
    "CadenceStepSchema",
    from_day=optional(Checked(int, "must be a whole number of days, 0 or more", ge=0)),
    to_day=optional(Checked(int, "must be a whole number, not before from_day")),
    every_n_days=optional(Checked(int, "must be between 1 and 366", ge=1, le=366)),
    days=optional(Checked(str, _WEEKDAYS_MESSAGE)),
)


@dataclass(frozen=True)
class _TextRef:
    """A reference to a [[text]] id, checked once all files are merged."""

    file: SourceFile
    path: DataPath
    key: str
    what: str
    text_id: str


def _parse_cadence(f: SourceFile, raw: Any, path: DataPath, what: str) -> list[CadenceStep] | None:
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        f.at(path, f"{what}: 'cadence' must be a list of tables like {{ from_day = 0, every_n_days = 1 }}", "cadence")
        return None
    steps: list[CadenceStep] = []
    ok = True
    for n, step in enumerate(raw, 1):
        where = f"{what} cadence step {n}"
        v, good = check_fields(f, step, path, where, CadenceStepSchema, locate="cadence")
        ok = ok and good
        from_day, to_day = v.get("from_day", 0), v.get("to_day")
        if to_day is not None and "from_day" not in set(step) - set(v) and to_day < from_day:
            f.at(path, f"{where}: 'to_day' must be a whole number, not before from_day", "cadence")
            ok = False
        if ("every_n_days" in step) == ("days" in step):
            f.at(
                path,
                f"{where}: give exactly one of 'every_n_days' (1 = daily) or 'days' (like \"mon,wed,fri\")",
                "cadence",
            )
            ok = False
            continue
        weekdays: frozenset[int] | None = None
        if "days" in v:
            names = [d.strip().lower() for d in v["days"].split(",")]
            if not names or any(d not in WEEKDAY_NAMES for d in names):
                f.at(path, f"{where}: 'days' {_WEEKDAYS_MESSAGE}", "cadence")
                ok = False
            else:
                weekdays = frozenset(WEEKDAY_NAMES.index(d) for d in names)
        if ok:
            steps.append(CadenceStep(from_day, to_day, v.get("every_n_days"), weekdays))
    if not ok:
        return None
    ordered = sorted(steps, key=lambda s: s.from_day)
    for prev, nxt in itertools.pairwise(ordered):
        if prev.to_day is None or nxt.from_day <= prev.to_day:
            f.at(path, f"{what}: cadence steps overlap (from day {nxt.from_day})", "cadence")
            return None
    return ordered


def _parse_options(
    f: SourceFile, raw: Any, path: DataPath, what: str, text_refs: list[_TextRef]
) -> list[Option] | None:
    ok = True
    options: list[Option] = []
    for n, opt in enumerate(raw, 1):
        where = f"{what} option {n}"
        v, good = check_fields(f, opt, path, where, OptionSchema, locate="options")
        if "reply" in v:
            text_refs.append(_TextRef(f, path, "options", where, v["reply"]))
        if not _check_loinc(f, path, where, "options", v.get("loinc"), _LA_RE):
            good = False
        if good:
            label = dict(v["label"])
            options.append(
                Option(v["value"], label, v.get("loinc"), v.get("flag"), v.get("reply"), v.get("ends", False))
            )
        ok = ok and good
    if not ok:
        return None
    values = [o.value for o in options]
    if len(set(values)) != len(values):
        f.at(path, f"{what}: option values must be distinct", "options")
        return None
    return options


def _parse_item(
    f: SourceFile, raw: dict[str, Any], path: DataPath, what: str, text_refs: list[_TextRef]
) -> Item | None:
    raw_id = raw.get("id")
    what = f"{what} item '{raw_id if isinstance(raw_id, str) else '#' + str(path[-1])}'"
    scale = raw.get("scale")
    checked = {k: v for k, v in raw.items() if k not in ("scale", "when")}
    v, ok = check_fields(f, checked, path, what, ItemSchema)
    if "id" in v and not ID_RE.match(v["id"]):
        f.at(path, f"{what}: id must be 1-40 lowercase letters, digits, '-' or '_'", "id")
        ok = False
    shapes = [k for k in ("scale", "yes_no", "options") if k in raw]
    if len(shapes) != 1:
        f.at(path, f"{what}: give exactly one of 'scale = [0, 10]', 'yes_no = true' or 'options = [...]'")
        return None
    if not _check_loinc(f, path, what, "loinc", raw.get("loinc"), _LOINC_RE):
        ok = False
    flag, reply = v.get("flag"), v.get("reply")
    if flag is not None and flag not in SEVERITIES:
        f.at(path, f"{what}: 'flag' must be one of {', '.join(SEVERITIES)}", "flag")
        ok = False
    if (flag is not None or reply is not None) and "yes_no" not in raw:
        f.at(path, f"{what}: item-level 'flag' and 'reply' are for yes_no items; put them on an option", "flag")
        ok = False
    if reply is not None:
        text_refs.append(_TextRef(f, path, "reply", what, reply))
    if ("low" in raw) != ("high" in raw) or ("low" in raw and "yes_no" in raw):
        f.at(path, f"{what}: give both 'low' and 'high' (what the ends of the scale mean), not for a yes_no", "low")
        ok = False
    options: list[Option] | None = None
    if scale is not None:
        if not (
            isinstance(scale, list) and len(scale) == 2 and all(_int(x) for x in scale) and 0 <= scale[0] < scale[1]
        ):
            f.at(path, f"{what}: 'scale' must be [min, max] whole numbers, like [0, 10]", "scale")
            ok = False
        elif scale[1] - scale[0] + 1 > MAX_OPTIONS:
            f.at(path, f"{what}: a scale has at most {MAX_OPTIONS} steps", "scale")
            ok = False
        else:
            options = [Option(n, {lang: str(n) for lang in LANGUAGES}) for n in range(scale[0], scale[1] + 1)]
    elif "yes_no" in raw:
        if v.get("yes_no") is not True:
            f.at(path, f"{what}: 'yes_no' can only be true", "yes_no")
            ok = False
        # Labels are UI text (i18n "No"/"Yes"); these are placeholders for logs.
        options = [
            Option(0, {lang: "no" for lang in LANGUAGES}),
            Option(1, {lang: "yes" for lang in LANGUAGES}, flag=flag, reply=reply),
        ]
    elif "options" in v:
        options = _parse_options(f, v["options"], path, what, text_refs)
        if options is not None and len(options) > MAX_OPTIONS:
            f.at(path, f"{what}: at most {MAX_OPTIONS} options", "options")
            ok = False
        elif options is not None and len(options) < 2:
            f.at(path, f"{what}: give at least 2 options", "options")
            ok = False
    when = _parse_when(f, raw.get("when"), path, what) if "when" in raw else None
    if "when" in raw and when is None:
        ok = False
    if options is None or not ok:
        return None
    return Item(
        id=v["id"],
        text=v["text"],
        options=options,
        loinc=v.get("loinc"),
        scored=v.get("scored", True),
        optional=v.get("optional", False),
        columns=v.get("columns", 6 if scale is not None else 2 if "yes_no" in raw else 1),
        yes_no="yes_no" in raw,
        low=v.get("low"),
        high=v.get("high"),
        when=when,
    )


def _parse_when(f: SourceFile, raw: Any, path: DataPath, what: str) -> dict[str, frozenset[int]] | None:
    """``when = { legs = [1] }``: the shape only; the items and values are checked with the questionnaire."""
    example = "when = { legs = [1] } (asked when item 'legs' was answered 1)"
    if not isinstance(raw, dict) or not raw:
        f.at(path, f"{what}: 'when' must be a table of earlier item ids and answer values, like {example}", "when")
        return None
    result: dict[str, frozenset[int]] = {}
    for item_id, values in raw.items():
        if not isinstance(values, list) or not values or not all(_int(v) for v in values):
            f.at(path, f"{what}: 'when' needs a list of answer values for '{item_id}', like {example}", "when")
            return None
        result[item_id] = frozenset(values)
    return result


def _check_follow_ups(f: SourceFile, path: DataPath, what: str, items: list[Item]) -> bool:
    """Each `when` names an earlier item of the questionnaire and values it can be answered with."""
    ok = True
    for j, item in enumerate(items):
        if item.when is None:
            continue
        earlier = {i.id: i for i in items[:j]}
        for item_id, values in item.when.items():
            target = earlier.get(item_id)
            where = f"{what} item '{item.id}'"
            if target is None:
                later = any(i.id == item_id for i in items[j:])
                f.at(
                    (*path, "item", j),
                    f"{where}: 'when' names item '{item_id}', which "
                    + ("comes later; a follow-up must come after its question" if later else "does not exist"),
                    "when",
                )
                ok = False
                continue
            unknown = sorted(values - {o.value for o in target.options})
            if unknown:
                f.at(
                    (*path, "item", j),
                    f"{where}: 'when' lists {unknown}, which item '{item_id}' cannot be answered with "
                    f"(its values: {sorted(o.value for o in target.options)})",
                    "when",
                )
                ok = False
            for value in values & {o.value for o in target.options}:
                option = target.option(value)
                if option is not None and option.flag is not None:
                    f.at(
                        (*path, "item", j),
                        f"{where}: 'when' follows answer {value} of item '{item_id}', which is flagged: a flagged "
                        "answer is the end of its path (the patient is told what to do at once); put the flags "
                        "on the follow-up's answers instead",
                        "when",
                    )
                    ok = False
    if ok and any(o.flag for i in items for o in i.options):
        ok = _check_dead_ends(f, path, what, items)
    return ok


def _check_dead_ends(f: SourceFile, path: DataPath, what: str, items: list[Item]) -> bool:
    """In a questionnaire with red flags, a warning-sign answer must decide: a flag, or a follow-up question.

    Every answer of a follow-up question, and every answer above 0 of a first
    question, either carries a flag or opens a further follow-up; otherwise
    the patient who reported a sign would be told nothing and nobody alerted.
    """
    ok = True
    reported: set[tuple[str, int]] = set()  # answers that report a warning sign or follow one up
    for j, item in enumerate(items):
        if any(o.ends for o in item.options):
            continue  # a "none of these" gate
        in_path = item.when is not None and any(
            (item_id, value) in reported for item_id, values in item.when.items() for value in values
        )
        for option in item.options:
            if not in_path and option.value == 0:
                continue  # "no" to a first question (also one asked after another sign's "no")
            reported.add((item.id, option.value))
            if option.flag is not None:
                continue
            opens = any(i.when is not None and option.value in i.when.get(item.id, ()) for i in items)
            if not opens:
                f.at(
                    (*path, "item", j),
                    f"{what} item '{item.id}': answer {option.value} has no 'flag' and opens no follow-up "
                    "question (`when`); a reported warning sign must lead to a level",
                    "options" if not item.yes_no else "flag",
                )
                ok = False
    return ok


def _parse_questionnaires(f: SourceFile, raws: list[Any], text_refs: list[_TextRef]) -> list[Entry]:
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, raws, "questionnaire", result, skip_bad_enabled=True):
        what = f"questionnaire '{entry_id}'"
        raw_cadence = raw.get("cadence")
        checked = {k: val for k, val in raw.items() if k != "cadence"}
        v, ok = check_fields(f, checked, path, what, QuestionnaireSchema)
        scoring = v.get("scoring")
        if scoring is not None and scoring not in SCORINGS:
            f.at(path, f"{what}: 'scoring' must be one of {', '.join(SCORINGS)}", "scoring")
            ok = False
        for key in ("loinc", "score_loinc"):
            if not _check_loinc(f, path, what, key, raw.get(key), _LOINC_RE):
                ok = False
        cadence: list[CadenceStep] | None = []
        if raw_cadence is not None:
            cadence = _parse_cadence(f, raw_cadence, path, what)
            if cadence is None:
                ok = False
        items: list[Item] = []
        item_ids: set[str] = set()
        for j, raw_item in enumerate(v.get("item", [])):
            item_path = (*path, "item", j)
            item = _parse_item(f, raw_item, item_path, what, text_refs)
            if item is None:
                ok = False
                continue
            if item.id in item_ids:
                f.at(item_path, f"{what}: duplicate item id '{item.id}'", "id")
                ok = False
            item_ids.add(item.id)
            items.append(item)
        if ok and not _check_follow_ups(f, path, what, items):
            ok = False
        if ok:
            scored = [i for i in items if i.scored]
            min_answered = v.get("min_answered")
            if scoring == "value" and len(scored) != 1:
                f.at(path, f"{what}: scoring 'value' needs exactly one scored item, not {len(scored)}", "scoring")
                ok = False
            elif scoring in ("sum", "mean", "percent", "count") and not scored:
                f.at(path, f"{what}: scoring '{scoring}' needs at least one scored item", "scoring")
                ok = False
            if min_answered is not None and min_answered > len(scored):
                f.at(
                    path,
                    f"{what}: min_answered {min_answered} is more than the {len(scored)} scored items",
                    "min_answered",
                )
                ok = False
            if scoring == "percent" and any(i.max_value == 0 for i in scored):
                f.at(path, f"{what}: scoring 'percent' needs items whose highest option is above 0", "scoring")
                ok = False
        if not ok:
            continue
        questionnaire = Questionnaire(
            id=entry_id,
            title=v["title"],
            intro=v.get("intro"),
            items=items,
            scoring=v["scoring"],
            cadence=cadence or [],
            expires_hours=v["expires_hours"],
            on_demand=v.get("on_demand", False),
            min_answered=v.get("min_answered"),
            loinc=v.get("loinc"),
            score_loinc=v.get("score_loinc"),
            source=f.source,
        )
        result.append(Entry(entry_id, questionnaire, f, path))
    return result


_ID = Annotated[str, Field(pattern=ID_RE.pattern)]
# [[cadence]]: a questionnaire's cadence for one programme.
ProgrammeCadenceSchema = schema(
    "ProgrammeCadenceSchema",
    programme=Checked(_ID, "must be the id of a programme"),
    questionnaire=Checked(_ID, "must be the id of a questionnaire"),
    steps=optional(Unchecked),  # a list of cadence steps, checked by _parse_cadence
    enabled=optional(Bool),
)


def _parse_programme_cadences(f: SourceFile, raws: list[Any]) -> list[Entry]:
    """[[cadence]] tables: a questionnaire's cadence for one programme (steps = [] turns it off)."""
    result: list[Entry] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raws):
        path: DataPath = ("cadence", i)
        what = "cadence"
        v, ok = check_fields(f, raw, path, what, ProgrammeCadenceSchema)
        if not ok:
            continue
        programme, questionnaire = v["programme"], v["questionnaire"]
        entry_id = f"{programme}/{questionnaire}"
        here = f.locator.line(path, "programme")
        if entry_id in seen:
            f.error(here, f"duplicate cadence for programme '{programme}' and questionnaire '{questionnaire}'")
            continue
        seen[entry_id] = here
        if not v.get("enabled", True):
            result.append(Entry(entry_id, None, f, path))
            continue
        if "steps" not in raw:
            f.at(path, f"{what}: missing required key 'steps' (use steps = [] to not ask it in this programme)")
            continue
        steps = _parse_cadence(f, raw["steps"], path, f"cadence for '{entry_id}'")
        if steps is not None:
            result.append(Entry(entry_id, (programme, questionnaire, steps), f, path))
    return result


RuleSchema = schema(
    "RuleSchema",
    id=Str,
    enabled=optional(Bool),
    kind=Str,
    severity=Str,
    questionnaire=optional(Str),
    threshold=optional(Unchecked),  # numbers: checked by _parse_rules
    rise=optional(Unchecked),
    min_score=optional(Unchecked),
    days=optional(Int(2)),
    hours=optional(Int(1)),
    patient_text=optional(Str),
    message=optional(Lang),
)
_RULE_NEEDS: dict[str, tuple[str, ...]] = {
    "score_at_least": ("questionnaire", "threshold"),
    "rise": ("questionnaire", "rise"),
    "above_baseline": ("questionnaire", "rise", "days"),
    "trend": ("questionnaire", "rise", "days"),
    "inactive": ("hours",),
}
_NUMBER_KEYS = ("threshold", "rise", "min_score")


def _parse_rules(f: SourceFile, raws: list[Any], text_refs: list[_TextRef]) -> list[Entry]:
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, raws, "rule", result, skip_bad_enabled=True):
        what = f"rule '{entry_id}'"
        numbers = {k: raw[k] for k in _NUMBER_KEYS if k in raw}
        checked = {k: val for k, val in raw.items() if k not in _NUMBER_KEYS}
        v, ok = check_fields(f, checked, path, what, RuleSchema)
        for key, value in numbers.items():
            if type(value) not in (int, float) or value < 0:
                f.at(path, f"{what}: '{key}' must be a number, 0 or more", key)
                ok = False
        kind = v.get("kind")
        if kind is not None and kind not in RULE_KINDS:
            f.at(path, f"{what}: 'kind' must be one of {', '.join(RULE_KINDS)}", "kind")
            ok = False
        elif kind is not None:
            for key in _RULE_NEEDS[kind]:
                if key not in raw:
                    f.at(path, f"{what}: a '{kind}' rule needs '{key}'")
                    ok = False
            if kind == "inactive" and "questionnaire" in raw:
                f.at(path, f"{what}: an 'inactive' rule is about any answer, not one questionnaire", "questionnaire")
                ok = False
        severity = v.get("severity")
        if severity is not None and severity not in SEVERITIES:
            f.at(path, f"{what}: 'severity' must be one of {', '.join(SEVERITIES)}", "severity")
            ok = False
        if "patient_text" in v:
            text_refs.append(_TextRef(f, path, "patient_text", what, v["patient_text"]))
        if not ok:
            continue
        rule = AlertRule(
            id=entry_id,
            kind=v["kind"],
            severity=v["severity"],
            questionnaire=v.get("questionnaire"),
            threshold=_float(numbers.get("threshold")),
            rise=_float(numbers.get("rise")),
            min_score=_float(numbers.get("min_score")),
            days=v.get("days"),
            hours=v.get("hours"),
            patient_text=v.get("patient_text"),
            message=v.get("message"),
            source=f.source,
        )
        result.append(Entry(entry_id, rule, f, path))
    return result


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


_HHMM = Annotated[str, Field(pattern=HHMM_RE.pattern)]
_TIME = Checked(_HHMM, 'must be a time as "HH:MM"')
_MINUTES = Checked(int, "must be minutes from 0 to 600", ge=0, le=600)
# [checkin_time]: when check-ins are sent; a clinic's table changes only the keys it gives.
CheckinTimeSchema = schema(
    "CheckinTimeSchema",
    default=optional(_TIME),
    after_last_session_minutes=optional(_MINUTES),
    earliest=optional(_TIME),
    latest=optional(_TIME),
    motivation_after_minutes=optional(_MINUTES),
)


def _parse_checkin_time(f: SourceFile, raw: Any, base: CheckinTime) -> CheckinTime:
    path: DataPath = ()
    if not isinstance(raw, dict):
        f.at(path, "'checkin_time' must be a [checkin_time] table", "checkin_time")
        return base
    v, _ = check_fields(f, raw, path, "checkin_time", CheckinTimeSchema, locate="checkin_time")
    values = {k: value if k.endswith("_minutes") else time(int(value[:2]), int(value[3:])) for k, value in v.items()}
    result = CheckinTime(**{**base.__dict__, **values})
    if result.earliest > result.latest:
        f.at(path, "checkin_time: 'earliest' is after 'latest'", "checkin_time")
        return base
    return result


# --------------------------------------------------------------------------- messages and crisis

MessageSchema = schema(
    "MessageSchema",
    id=Str,
    enabled=optional(Bool),
    trigger=Str,
    days=optional(Int(1)),
    weeks=optional(Int(1)),
    **per_language(Str),
)


def _parse_messages(f: SourceFile, raws: list[Any]) -> list[Entry]:
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, raws, "message", result, skip_bad_enabled=True):
        what = f"message '{entry_id}'"
        v, ok = check_fields(f, raw, path, what, MessageSchema)
        trigger = v.get("trigger")
        if trigger is not None and trigger not in TRIGGERS:
            f.at(path, f"{what}: 'trigger' must be one of {', '.join(TRIGGERS)}", "trigger")
            continue
        param_key = TRIGGER_PARAMS.get(trigger or "")
        for key in ("days", "weeks"):
            if key in raw and key != param_key:
                f.at(path, f"{what}: '{key}' is not used by trigger '{trigger}'", key)
                ok = False
        if param_key is not None and param_key not in raw:
            f.at(path, f"{what}: trigger '{trigger}' needs '{param_key}'", "trigger")
            ok = False
        names: dict[str, set[str]] = {}
        for lang in LANGUAGES:
            if lang not in v:
                continue
            found = _placeholders(v[lang])
            if isinstance(found, str):
                f.at(path, f"{what}: the '{lang}' text {found}", lang)
                ok = False
                continue
            allowed = TRIGGER_PLACEHOLDERS.get(trigger or "", frozenset())
            unknown = sorted(found - allowed)
            if unknown:
                f.at(
                    path,
                    f"{what}: the '{lang}' text uses {unknown}; trigger '{trigger}' offers {sorted(allowed)}",
                    lang,
                )
                ok = False
            names[lang] = found
        if len(names) == len(LANGUAGES) and len({frozenset(n) for n in names.values()}) > 1:
            f.at(path, f"{what}: the languages use different placeholders", LANGUAGES[-1])
            ok = False
        if not ok:
            continue
        message = Message(
            id=entry_id,
            trigger=v["trigger"],
            param=v.get(param_key) if param_key else None,
            body={lang: v[lang] for lang in LANGUAGES},
            placeholders=frozenset(names.get("en", set())),
            source=f.source,
        )
        result.append(Entry(entry_id, message, f, path))
    return result


def _pattern_line(f: SourceFile, path: DataPath, lang: str, pattern: str) -> int:
    """The line of one pattern in a list (the list's key line when it cannot be found)."""
    start = f.locator.line(path, lang)
    quoted = (f'"{pattern}"', f"'{pattern}'")
    for lineno in range(start, len(f.locator.lines) + 1):
        line = f.locator.lines[lineno - 1]
        if any(q in line for q in quoted):
            return lineno
        if lineno > start and _HEADER_LINE_RE.match(line):
            break
    return start


_HEADER_LINE_RE = re.compile(r"^\s*\[")


def _compile_lists(f: SourceFile, path: DataPath, what: str, v: dict[str, Any]) -> tuple[Pattern, ...] | None:
    """Every language's patterns compiled; None (errors reported at their lines) when one is bad."""
    compiled: list[Pattern] = []
    ok = True
    for lang in LANGUAGES:
        for pattern in v.get(lang, []):
            try:
                compiled.append(compile_pattern(pattern))
            except PatternError as exc:
                f.error(_pattern_line(f, path, lang, pattern), f"{what} ({lang}): {exc}")
                ok = False
    return tuple(compiled) if ok else None


CrisisSchema = schema("CrisisSchema", id=Str, enabled=optional(Bool), **per_language(StrList))
SymptomWordsSchema = schema(
    "SymptomWordsSchema", id=Str, enabled=optional(Bool), questionnaire=Str, **per_language(StrList)
)


def _parse_crisis(f: SourceFile, raws: list[Any], kind: str = "crisis") -> list[Entry]:
    """[[crisis]] lists, or [[concern]] lists (kind): the same shape, patterns per language."""
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, raws, kind, result, skip_bad_enabled=True):
        what = f"{kind} list '{entry_id}'"
        v, ok = check_fields(f, raw, path, what, CrisisSchema)
        patterns = _compile_lists(f, path, what, v)
        if ok and patterns is not None:
            phrases = {lang: list(v[lang]) for lang in LANGUAGES}
            result.append(Entry(entry_id, CrisisList(entry_id, phrases, f.source, patterns), f, path))
    return result


def _parse_symptom_words(f: SourceFile, raws: list[Any]) -> list[Entry]:
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, raws, "symptom_words", result, skip_bad_enabled=True):
        what = f"symptom_words '{entry_id}'"
        v, ok = check_fields(f, raw, path, what, SymptomWordsSchema)
        patterns = _compile_lists(f, path, what, v)
        if ok and patterns is not None:
            words = {lang: list(v[lang]) for lang in LANGUAGES}
            value = SymptomWords(entry_id, v["questionnaire"], words, f.source, patterns)
            result.append(Entry(entry_id, value, f, path))
    return result


# --------------------------------------------------------------------------- the layer loader


class Loader:
    """Collects the three files' entries across layers; cross-checks after the merge."""

    def __init__(self) -> None:
        self.questionnaires: dict[str, Entry] = {}
        self.cadences: dict[str, Entry] = {}
        self.rules: dict[str, Entry] = {}
        self.messages: dict[str, Entry] = {}
        self.crisis: dict[str, Entry] = {}
        self.concern: dict[str, Entry] = {}
        self.disabled: dict[str, dict[str, Entry]] = {
            k: {} for k in ("questionnaire", "cadence", "rule", "message", "crisis", "concern", "symptom_words")
        }
        self.symptom_words: dict[str, Entry] = {}
        self.text_refs: list[_TextRef] = []
        self.checkin_time = CheckinTime()

    def parse(self, name: str, f: SourceFile, data: dict[str, Any]) -> None:
        """Parse one file of one layer and merge it over what came before."""
        tables = {
            "questionnaires.toml": ("questionnaire", "cadence", "rule", "checkin_time"),
            "messages.toml": ("message",),
            "crisis.toml": ("crisis", "concern", "symptom_words"),
        }[name]
        for key in data:
            if key not in tables:
                allowed = ", ".join(f"[[{t}]]" if t != "checkin_time" else "[checkin_time]" for t in tables)
                f.at((), f"unknown top-level key '{key}'{did_you_mean(key, tables)} (this file holds {allowed})", key)
        lists: dict[str, list[Any]] = {}
        for table in tables:
            if table == "checkin_time" or table not in data:
                continue
            value = data[table]
            if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
                f.at((), f"'{table}' must be a list of [[{table}]] tables", table)
                continue
            lists[table] = value
        if "checkin_time" in data and "checkin_time" in tables:
            self.checkin_time = _parse_checkin_time(f, data["checkin_time"], self.checkin_time)
        if "questionnaire" in lists:
            merge(
                "questionnaire",
                self.questionnaires,
                _parse_questionnaires(f, lists["questionnaire"], self.text_refs),
                self.disabled["questionnaire"],
            )
        if "cadence" in lists:
            merge("cadence", self.cadences, _parse_programme_cadences(f, lists["cadence"]), self.disabled["cadence"])
        if "rule" in lists:
            merge("rule", self.rules, _parse_rules(f, lists["rule"], self.text_refs), self.disabled["rule"])
        if "message" in lists:
            merge("message", self.messages, _parse_messages(f, lists["message"]), self.disabled["message"])
        if "crisis" in lists:
            merge("crisis", self.crisis, _parse_crisis(f, lists["crisis"]), self.disabled["crisis"])
        if "concern" in lists:
            merge("concern", self.concern, _parse_crisis(f, lists["concern"], "concern"), self.disabled["concern"])
        if "symptom_words" in lists:
            merge(
                "symptom_words",
                self.symptom_words,
                _parse_symptom_words(f, lists["symptom_words"]),
                self.disabled["symptom_words"],
            )

    def finish(self, errors: list[str], texts: dict[str, Entry], programmes: dict[str, Entry]) -> CheckinContent:
        """Cross-file checks on the merged content; returns the values for Content."""
        for ref in self.text_refs:
            if ref.text_id not in texts:
                ref.file.at(
                    ref.path, f"{ref.what}: '{ref.key}' names text '{ref.text_id}', which does not exist", ref.key
                )
        for qid, (low, high) in REQUIRED_QUESTIONNAIRES.items():
            entry = self.questionnaires.get(qid)
            if entry is None:
                stub = self.disabled["questionnaire"].get(qid)
                if stub is not None:
                    stub.file.at(stub.path, f"questionnaire '{qid}' is required and cannot be disabled", "enabled")
                else:
                    errors.append(
                        f"{DEFAULTS_DIR / 'questionnaires.toml'}:1: required questionnaire '{qid}' is missing"
                    )
                continue
            q: Questionnaire = entry.value
            values = sorted(o.value for o in q.items[0].options) if q.items else []
            if q.scoring != "value" or len(q.items) != 1 or values != list(range(low, high + 1)):
                entry.file.at(
                    entry.path,
                    f"questionnaire '{qid}' must keep one item scored 'value' on the scale {low}-{high} "
                    "(the alert rules, the chart and motivation rely on it); reword it freely",
                    "scoring",
                )
        for rule_entry in self.rules.values():
            rule: AlertRule = rule_entry.value
            if rule.questionnaire is not None and rule.questionnaire not in self.questionnaires:
                stub = self.disabled["questionnaire"].get(rule.questionnaire)
                target = stub if stub is not None else rule_entry
                target.file.at(
                    target.path,
                    f"rule '{rule.id}' uses questionnaire '{rule.questionnaire}', which "
                    + ("is disabled here; disable the rule too" if stub is not None else "does not exist"),
                    "enabled" if stub is not None else "questionnaire",
                )
        cadences: dict[tuple[str, str], list[CadenceStep]] = {}
        for cad_entry in self.cadences.values():
            programme, questionnaire, steps = cad_entry.value
            if programme not in programmes:
                cad_entry.file.at(cad_entry.path, f"cadence: unknown programme '{programme}'", "programme")
            elif questionnaire not in self.questionnaires:
                cad_entry.file.at(cad_entry.path, f"cadence: unknown questionnaire '{questionnaire}'", "questionnaire")
            else:
                cadences[(programme, questionnaire)] = steps
        for words_entry in self.symptom_words.values():
            words: SymptomWords = words_entry.value
            found = self.questionnaires.get(words.questionnaire)
            if found is None or not found.value.on_demand:
                why = "does not exist" if found is None else "cannot be started on demand (on_demand = true)"
                words_entry.file.at(
                    words_entry.path,
                    f"symptom_words '{words.id}': questionnaire '{words.questionnaire}' {why}",
                    "questionnaire",
                )
        return CheckinContent(
            questionnaires={k: e.value for k, e in self.questionnaires.items()},
            programme_cadences=cadences,
            alert_rules={k: e.value for k, e in self.rules.items()},
            checkin_time=self.checkin_time,
            messages={k: e.value for k, e in self.messages.items()},
            crisis={k: e.value for k, e in self.crisis.items()},
            concern={k: e.value for k, e in self.concern.items()},
            symptom_words={k: e.value for k, e in self.symptom_words.items()},
        )
