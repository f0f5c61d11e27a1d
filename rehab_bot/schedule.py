"""When does a reminder rule fire next, in the patient's own wall-clock time?

A rule says "at 09:00 local on Mon/Wed/Fri" or "at 18:30 every 2 days", in an
IANA timezone. Each firing is identified by its *local date* and *slot* (the
local HH:MM), never by its UTC instant: that identity is what the delivery
table's unique key is built on, so one local day can never yield two sends of
the same slot, whatever the clocks do.

DST policy (the same as Debian cron and healthchecks' cronsim):

* spring forward: a slot inside the skipped hour (02:30 in Europe/Berlin on the
  last Sunday of March) fires once, at the first valid instant after the gap
  (03:00 local);
* fall back: a slot inside the repeated hour fires once, at its first
  occurrence (fold=0);
* every other slot keeps its wall-clock time on both sides of the change.

Plain Python over zoneinfo: no telegram or database imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rehab_bot.typed import clock_text

WEEKDAYS = "MTWTFSS"
ALL_DAYS = frozenset(range(7))

# Far enough to find a slot for any valid rule (every_n_days is capped at 366),
# short enough that a rule which can never fire again ends the search quickly.
_SEARCH_DAYS = 800


class ScheduleError(ValueError):
    """A rule that cannot describe any reminder (bad time, zone or cadence)."""


def zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA name, or raise ScheduleError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown timezone {name!r}: use an IANA name such as Europe/Berlin") from exc


def parse_hhmm(text: str) -> time:
    """Parse "9:05" or "09:05" into a time, or raise ScheduleError."""
    parts = text.strip().split(":")
    # isdecimal, not isdigit: "²" is a digit that int() cannot read.
    if len(parts) != 2 or not all(p.isdecimal() for p in parts):
        raise ScheduleError(f"time {text!r} is not HH:MM")
    hour, minute = int(parts[0]), int(parts[1])
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ScheduleError(f"time {text!r} is not a valid time of day")
    return time(hour, minute)


def format_days(days: frozenset[int]) -> str:
    """Encode weekdays (0 = Monday) as the digits string stored in the database."""
    return "".join(str(d) for d in sorted(days))


def parse_days(text: str) -> frozenset[int]:
    """Decode the digits string stored in the database ("" means every day)."""
    if not text:
        return ALL_DAYS
    days = frozenset(int(c) for c in text)
    if not days <= ALL_DAYS:
        raise ScheduleError(f"weekdays {text!r} must be digits 0 (Monday) to 6 (Sunday)")
    return days


@dataclass(frozen=True)
class Rule:
    """A recurring local-time slot: weekdays, or every N days from start_date."""

    local_time: time
    tz: str
    start_date: date
    end_date: date | None = None
    days_of_week: frozenset[int] = ALL_DAYS
    every_n_days: int | None = None

    def __post_init__(self) -> None:
        zone(self.tz)
        if self.every_n_days is not None and not 1 <= self.every_n_days <= 366:
            raise ScheduleError("every_n_days must be between 1 and 366")
        if not self.days_of_week:
            raise ScheduleError("a weekly rule needs at least one weekday")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ScheduleError("end_date is before start_date")

    @property
    def slot(self) -> str:
        """The slot label, local HH:MM."""
        t = self.local_time
        return f"{t.hour:02d}:{t.minute:02d}"  # strftime("%H:%M"), several times faster (per reminder)

    def matches(self, day: date) -> bool:
        """True when the rule has a slot on this local date."""
        if day < self.start_date or (self.end_date is not None and day > self.end_date):
            return False
        if self.every_n_days is not None:
            return (day - self.start_date).days % self.every_n_days == 0
        return day.weekday() in self.days_of_week


@dataclass(frozen=True)
class Occurrence:
    """One firing of a rule: its identity (local date, slot) and its UTC instant."""

    local_date: date
    slot: str
    due_at: datetime  # aware, UTC


def local_to_utc(day: date, at: time, tz: str) -> datetime:
    """The UTC instant of a local wall-clock time, with the DST policy above.

    zoneinfo maps a non-existent local time (fold=0) using the offset from
    *before* the gap, which lands after the gap; we move it back to the first
    valid instant instead, so a skipped 02:30 fires at 03:00, not 03:30.
    A repeated local time takes fold=0, its first occurrence.
    """
    tzinfo = zone(tz)
    naive = datetime.combine(day, at)
    early = naive.replace(tzinfo=tzinfo, fold=0).astimezone(UTC)
    if early.astimezone(tzinfo).replace(tzinfo=None) == naive:
        return early
    # Inside a gap. fold=1 maps with the offset from after the gap, which lands
    # before it; the transition lies between the two mappings. Gaps are whole
    # minutes in every IANA zone, so a minute scan finds it in at most ~60 steps.
    late = naive.replace(tzinfo=tzinfo, fold=1).astimezone(UTC)
    low, high = min(early, late), max(early, late)
    probe = low
    while probe < high and probe.astimezone(tzinfo).replace(tzinfo=None) <= naive:
        probe += timedelta(minutes=1)
    return probe


def first_on_or_after(rule: Rule, day: date) -> Occurrence | None:
    """The rule's first slot on a local date >= day, or None if it has ended."""
    day = max(day, rule.start_date)
    for offset in range(_SEARCH_DAYS):
        candidate = day + timedelta(days=offset)
        if rule.end_date is not None and candidate > rule.end_date:
            return None
        if rule.matches(candidate):
            return Occurrence(candidate, rule.slot, local_to_utc(candidate, rule.local_time, rule.tz))
    return None


def next_after_date(rule: Rule, last_local_date: date) -> Occurrence | None:
    """The slot after the one fired on last_local_date (at most one per local day)."""
    return first_on_or_after(rule, last_local_date + timedelta(days=1))


def next_from_now(rule: Rule, now: datetime, last_local_date: date | None = None) -> Occurrence | None:
    """The next slot due strictly after now, never on or before last_local_date.

    Used when a rule is created or changed (new time, new timezone): the change
    takes effect from the next slot, and a patient who already had today's slot
    in the old timezone does not get it again in the new one.
    """
    today = now.astimezone(zone(rule.tz)).date()
    start = today - timedelta(days=1)  # a slot late yesterday may still be ahead in UTC
    if last_local_date is not None:
        start = max(start, last_local_date + timedelta(days=1))
    occurrence = first_on_or_after(rule, start)
    while occurrence is not None and occurrence.due_at <= now:
        occurrence = next_after_date(rule, occurrence.local_date)
    return occurrence


def local_now(now: datetime, tz: str) -> datetime:
    """The wall-clock time in tz at the UTC instant now."""
    return now.astimezone(zone(tz))


def in_quiet_hours(now: datetime, tz: str, start: time | None, end: time | None) -> datetime | None:
    """If now falls in the quiet period [start, end) local, return when it ends (UTC).

    A period may wrap midnight (21:30 to 07:30). start == end, or None, means
    no quiet hours.
    """
    if start is None or end is None or start == end:
        return None
    local = local_now(now, tz)
    t = local.time().replace(tzinfo=None, second=0, microsecond=0)
    wraps = start > end
    inside = (start <= t or t < end) if wraps else (start <= t < end)
    if not inside:
        return None
    end_day = local.date()
    if wraps and t >= start:
        end_day += timedelta(days=1)
    return local_to_utc(end_day, end, tz)


# --- one home per rule: today for a patient, quiet hours, typed times ----------------------


class HasTimezone(Protocol):
    """Anything with an IANA timezone name (a Patient, a row selected with its timezone)."""

    @property
    def timezone(self) -> str: ...


class HasQuietHours(Protocol):
    """A patient's own quiet hours: both None = the clinic's, both set = their own, else none."""

    @property
    def quiet_start(self) -> str | None: ...

    @property
    def quiet_end(self) -> str | None: ...


def local_date(patient: HasTimezone, now: datetime) -> date:
    """Today for this patient: the date on their wall calendar at the instant now."""
    return now.astimezone(zone(patient.timezone)).date()


def minutes_of_day(value: str | time) -> int:
    """Minutes since midnight of a local time (a time, or "HH:MM")."""
    at = parse_hhmm(value) if isinstance(value, str) else value
    return at.hour * 60 + at.minute


DAY_MINUTES = 24 * 60


def end_minutes(value: str | time) -> int:
    """Minutes since midnight of the end of a local range (a time, or "HH:MM"): 00:00 ends the day, 1440.

    The one rule for the end of a range a patient types: "24:00" (also "24.00", "24 Uhr"; read as
    00:00 by :func:`parse_times`, as on a clock) and "00:00" are midnight at the end of the day, so
    "08:00-24:00" is a window until midnight and quiet hours "22:00-24:00" end at midnight.
    """
    return minutes_of_day(value) or DAY_MINUTES


def hhmm(minutes: int) -> str:
    """Minutes since midnight as "HH:MM" (24 * 60 as "24:00")."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def end_label(value: str | time) -> str:
    """The end of a range as shown to the patient: "HH:MM", midnight at the end of the day as "24:00"."""
    return hhmm(end_minutes(value))


@dataclass(frozen=True)
class QuietHours:
    """A daily local period [start, end) without reminders; it may wrap midnight (21:30 to 07:30)."""

    start: time
    end: time

    @classmethod
    def of(cls, start: time | None, end: time | None) -> QuietHours | None:
        """Quiet hours from two times; None when either is missing or they are equal (no quiet hours)."""
        if start is None or end is None or start == end:
            return None
        return cls(start, end)

    @classmethod
    def for_patient(
        cls, patient: HasQuietHours, clinic_start: time | None, clinic_end: time | None
    ) -> QuietHours | None:
        """The quiet hours that apply to a patient: the clinic's (neither set), none (one empty), or their own."""
        if cls.follows_clinic(patient):
            return cls.of(clinic_start, clinic_end)
        if not patient.quiet_start or not patient.quiet_end:
            return None
        return cls.of(parse_hhmm(patient.quiet_start), parse_hhmm(patient.quiet_end))

    @staticmethod
    def follows_clinic(patient: HasQuietHours) -> bool:
        """True when the patient set no quiet hours of their own, so the clinic's apply."""
        return patient.quiet_start is None and patient.quiet_end is None

    def contains(self, slot: str | time) -> bool:
        """True when a local time ("HH:MM" or a time) falls inside the quiet period."""
        at, start, end = minutes_of_day(slot), minutes_of_day(self.start), end_minutes(self.end)
        return (start <= at or at < end) if start > end else (start <= at < end)

    def clashing(self, times: Iterable[str]) -> list[str]:
        """The session times ("HH:MM") that fall inside the quiet period, in the order given: the one rule a
        patient's /settings and a therapist's change of their times refuse by (a reminder due then waits)."""
        return [slot for slot in times if self.contains(slot)]

    def meant_later(self, times: Iterable[str], others: Iterable[str] = ()) -> list[str] | None:
        """The same times twelve hours later, when each is before noon (01:00-11:59) and none of them then
        falls inside the quiet period or on one of the other times; else None. A time read on the 24-hour
        clock ("halb zwei" and "um 2" are 01:30 and 02:00, as "1:30" is) that is refused for the quiet hours
        was most likely meant in the afternoon: the answer asks "13:30?" rather than guessing."""
        later, taken = [], set(others)
        for slot in times:
            at = minutes_of_day(slot)
            slot_later = hhmm(at + 12 * 60)
            if not 60 <= at < 12 * 60 or self.contains(slot_later) or slot_later in taken:
                return None
            later.append(slot_later)
            taken.add(slot_later)
        return later or None

    def ends_after(self, now: datetime, tz: str) -> datetime | None:
        """If now falls in the quiet period (local to tz), when it ends (UTC); else None."""
        return in_quiet_hours(now, tz, self.start, self.end)

    @property
    def start_text(self) -> str:
        """ "22:00" """
        return f"{self.start:%H:%M}"

    @property
    def end_text(self) -> str:
        """ "07:00"; an end at midnight is "24:00" (:func:`end_label`)"""
        return end_label(self.end)

    def label(self) -> str:
        """ "22:00–07:00" """
        return f"{self.start_text}–{self.end_text}"


class TimesError(ScheduleError):
    """A typed list of times has a part that is not a time of day."""

    def __init__(self, part: str) -> None:
        super().__init__(f"{part!r} is not a time of day")
        self.part = part


_TIME_TOKEN = re.compile(r"^([0-9]{1,2})(?:[:.h]?([0-9]{2}))?h?(am|pm)?$")

# --- clock words ---------------------------------------------------------------------------------
# What people say rather than write: "halb acht" (7:30: half *to* eight), "viertel nach acht" (8:15),
# "viertel vor neun" (8:45), "dreiviertel acht" (7:45), "zehn nach acht", "fünf vor halb acht",
# "19 Uhr 30", "7 Uhr abends"; "half past seven", "quarter to nine", "7 in the evening". Each becomes
# "HH:MM" before the times are read (:func:`_clock_words`). Without a part of the day a time is read on
# the 24-hour clock, as "7:30" is: "halb acht" is 07:30, "halb acht abends" 19:30; the patient sees the
# time understood in the confirmation. English "ten to nine" is left out: "10 to 7" is a range.
_HOUR_WORDS = {
    **dict.fromkeys(("eins", "ein", "one"), 1),
    **dict.fromkeys(("zwei", "two"), 2),
    **dict.fromkeys(("drei", "three"), 3),
    **dict.fromkeys(("vier", "four"), 4),
    **dict.fromkeys(("fünf", "fuenf", "funf", "five"), 5),
    **dict.fromkeys(("sechs", "six"), 6),
    **dict.fromkeys(("sieben", "seven"), 7),
    **dict.fromkeys(("acht", "eight"), 8),
    **dict.fromkeys(("neun", "nine"), 9),
    **dict.fromkeys(("zehn", "ten"), 10),
    **dict.fromkeys(("elf", "eleven"), 11),
    **dict.fromkeys(("zwölf", "zwoelf", "zwolf", "twelve"), 12),
}
_MINUTE_WORDS = {
    **dict.fromkeys(("fünf", "fuenf", "funf", "five"), 5),
    **dict.fromkeys(("zehn", "ten"), 10),
    **dict.fromkeys(("zwanzig", "twenty"), 20),
    **dict.fromkeys(
        ("fünfundzwanzig", "fuenfundzwanzig", "funfundzwanzig", "twenty-five", "twenty five", "twentyfive"), 25
    ),
}
# "ein" is an hour only before "Uhr" ("ein Uhr mittags"); elsewhere it is the article.
_HOUR_WORD = "(" + "|".join(sorted(set(_HOUR_WORDS) - {"ein"}, key=len, reverse=True)) + r"|ein(?=\s*uhr))"
_HOUR = r"(\d{1,2}|" + _HOUR_WORD[1:]
_MINUTE = r"(\d{1,2}|" + "|".join(sorted(_MINUTE_WORDS, key=len, reverse=True)) + r")"
# "fünf vor halb acht", "halb acht": half an hour before the hour named.
_HALF_TO = re.compile(rf"\b(?:{_MINUTE}\s+(nach|vor)\s+)?halb\s+{_HOUR}\b")
# "viertel nach acht", "viertel vor neun", "viertel acht" (7:15), "dreiviertel acht" (7:45).
_QUARTER = re.compile(rf"\b(?:viertel\s+(nach|vor)|(drei\s*viertel|viertel))\s+{_HOUR}\b")
# "zehn nach acht", "5 vor 9", "ten past eight", "half past seven", "quarter past/to nine".
_PAST_TO = re.compile(rf"\b(?:{_MINUTE}\s+(nach|vor|past|after)|(half|quarter)\s+(past|after|to))\s+{_HOUR}\b")
# "ten to nine", "twenty-five to eight" (08:50, 07:35): English minutes before an hour, as words only, and
# only where one time is read (parse_times): "8 to 9" and a range's "ten to seven" stay two times.
_MINUTES_TO = re.compile(r"\b(twenty[- ]?five|twenty|ten|five)\s+to\s+" + _HOUR + r"\b")
# "19 Uhr 30", "7 Uhr 5": not "8 Uhr 13 Uhr 18 Uhr", a list.
_UHR_MINUTES = re.compile(r"\b(\d{1,2})\s*uhr\s+(\d{1,2})\b(?!\s*(?:uhr|[:.h]?\d|am\b|pm\b))")
_WORD_HOUR = re.compile(rf"\b{_HOUR_WORD}\b")
# A time with its part of the day: "7 Uhr abends", "07:30 morgens", "7 in the evening".
_PARTS_OF_DAY = {
    "morning": (
        "morgens",
        "früh",
        "frueh",
        "fruh",
        "vormittags",
        "am morgen",
        "am vormittag",
        "in der früh",
        "in the morning",
    ),
    "midday": ("mittags", "am mittag"),
    "afternoon": ("nachmittags", "am nachmittag", "in the afternoon"),
    "evening": ("abends", "am abend", "in the evening", "tonight"),
    "night": ("nachts", "in der nacht", "at night"),
}
_PART_OF_DAY = {word: part for part, words in _PARTS_OF_DAY.items() for word in words}
_WITH_PART = re.compile(
    r"(?<![\d:.])(\d{1,2})(?:[:.h](\d{2}))?h?(?:\s*uhr)?\s+("
    + "|".join(re.escape(w) for w in sorted(_PART_OF_DAY, key=len, reverse=True))
    + r")\b"
)


def _number(word: str, words: dict[str, int]) -> int:
    return int(word) if word.isdecimal() else words[word]


def _hhmm(hour: int, minute: int) -> str | None:
    return f"{hour:02d}:{minute:02d}" if 0 <= hour <= 23 and 0 <= minute <= 59 else None


def _before(hour: int, minutes: int) -> str | None:
    """``minutes`` before the full hour ``hour`` (1-24): "viertel vor neun" is 08:45."""
    return _hhmm(hour - 1, 60 - minutes) if 1 <= hour <= 24 and 0 < minutes < 60 else None


def _half_to(match: re.Match[str]) -> str:
    hour = _number(match[3], _HOUR_WORDS)
    minutes = 30
    if match[1] is not None:
        step = _number(match[1], _MINUTE_WORDS)
        minutes += step if match[2] == "nach" else -step
    return (_before(hour, 60 - minutes) if 0 < minutes < 60 else None) or match[0]


def _quarter(match: re.Match[str]) -> str:
    hour = _number(match[3], _HOUR_WORDS)
    if match[1] == "nach":
        return _hhmm(hour, 15) or match[0]
    minutes = 15 if match[1] == "vor" or (match[2] or "").replace(" ", "") == "dreiviertel" else 45
    return _before(hour, minutes) or match[0]


def _past_to(match: re.Match[str]) -> str:
    hour = _number(match[5], _HOUR_WORDS)
    if match[1] is not None:
        minutes = _number(match[1], _MINUTE_WORDS)
        if match[2] == "vor":
            return _before(hour, minutes) or match[0]
        return (_hhmm(hour, minutes) if 0 < minutes < 60 else None) or match[0]
    minutes = 30 if match[3] == "half" else 15
    if match[4] == "to":
        return (_before(hour, minutes) if match[3] == "quarter" else None) or match[0]
    return _hhmm(hour, minutes) or match[0]


def _minutes_to(match: re.Match[str]) -> str:
    minutes = _MINUTE_WORDS[match[1]]
    return _before(_number(match[2], _HOUR_WORDS), minutes) or match[0]


def _uhr_minutes(match: re.Match[str]) -> str:
    return _hhmm(int(match[1]), int(match[2])) or match[0]


def _with_part(match: re.Match[str]) -> str:
    hour, minute, part = int(match[1]), int(match[2] or 0), _PART_OF_DAY[match[3]]
    if part == "morning":
        ok = 0 <= hour <= 11
    elif part == "midday":  # "viertel vor eins mittags" (00:45 before the part of the day) is 12:45
        ok = 11 <= hour <= 17 or 0 <= hour <= 5
        hour += 12 if 0 <= hour <= 5 else 0
    elif part in ("afternoon", "evening"):
        ok = 1 <= hour <= 23 and not (part == "evening" and hour == 12)
        hour += 12 if 1 <= hour <= 11 else 0
    else:  # the night: "12 Uhr nachts" is midnight, "2 Uhr nachts" 02:00, "10 Uhr nachts" 22:00
        ok = 0 <= hour <= 12 or 18 <= hour <= 24
        hour = 0 if hour in (12, 24) else hour + 12 if 6 <= hour <= 11 else hour
    return (_hhmm(hour, minute) if ok else None) or match[0]


def _clock_words(text: str) -> str:
    """Casefolded typed text with its clock words as "HH:MM" ("halb acht abends" -> "19:30");
    what names no time ("19 Uhr morgens", "halb") is left as typed, for the reader to refuse."""
    text = _HALF_TO.sub(_half_to, text)
    text = _QUARTER.sub(_quarter, text)
    text = _PAST_TO.sub(_past_to, text)
    text = _WORD_HOUR.sub(lambda m: str(_number(m[1], _HOUR_WORDS)), text)
    text = _UHR_MINUTES.sub(_uhr_minutes, text)
    return _WITH_PART.sub(_with_part, text)


# Words around typed times that are no part of them: "um 8, 13 und 18 Uhr", "at 8 & 6pm".
_FILLERS = frozenset({"um", "at", "&", "+"})


def parse_times(text: str, *, skip_bad: bool = False) -> list[str]:
    """Typed or stored times -> "HH:MM" strings, in the order given (duplicates kept).

    Reads "8:30, 13:00 and 6pm", "18.30 Uhr", "8" (08:00), "13h", "19:00h", "08:00,13:00",
    "um 8, 13 und 18 Uhr", "08:00 – 13:00 – 18:00" (any dash between times), full-width or
    Arabic-Indic digits (see rehab_bot.typed), and clock words (:func:`_clock_words`): "halb acht"
    (07:30, read on the 24-hour clock as "7:30" is), "viertel vor neun", "19 Uhr 30",
    "7 Uhr abends", "half past seven", "quarter to nine", "ten to nine" (08:50; minutes as words:
    "8 to 9" is no time), "7 in the evening".
    "24:00" is midnight, 00:00, as on a clock: the end
    of quiet hours "22:00-24:00" or of a window "08:00-24:00" (:func:`end_minutes` reads a range's
    end of 00:00 as the end of the day), or a session time the caller's rules then judge as 00:00.
    Raises TimesError naming the first part that is not a time of day, or,
    with skip_bad (stored values), leaves such parts out.
    """
    lowered = clock_text(text).casefold().replace("a.m.", "am").replace("p.m.", "pm")
    lowered = _clock_words(_MINUTES_TO.sub(_minutes_to, lowered)).replace("uhr", " ")
    lowered = re.sub(r"\s+(am|pm)\b", r"\1", lowered)
    # A dash joins two times; one before the first or after the last joins nothing: "-5" is no 05:00.
    dangling = re.match(r"\s*(-\s*[^\s,;/~-]*)", lowered) or re.search(r"([^\s,;/~-]*\s*-)\s*$", lowered)
    if dangling is not None and not skip_bad:
        raise TimesError(_as_typed(dangling[1].strip(), text))
    times: list[str] = []
    for token in (tok for tok in re.split(r"[,;/~-]|\s+and\s+|\s+und\s+|\s+", lowered) if tok):
        if token in _FILLERS:
            continue
        match = _TIME_TOKEN.match(token)
        value: str | None = None
        if match is not None:
            hour, minute = int(match[1]), int(match[2] or 0)
            if match[3]:
                hour = hour % 12 + (12 if match[3] == "pm" else 0) if 1 <= hour <= 12 else 99
            elif hour == 24 and minute == 0:
                hour = 0  # midnight at the end of a day
            if 0 <= hour <= 23 and 0 <= minute <= 59:
                value = f"{hour:02d}:{minute:02d}"
        if value is not None:
            times.append(value)
        elif not skip_bad:
            raise TimesError(_as_typed(token, text))
    return times


def _as_typed(token: str, text: str) -> str:
    """A part of the times as the patient typed it ("Mallorca", not "mallorca"), for the answer that quotes
    it; as read when reading changed it beyond case ("uhr" left out, clock words turned into times)."""
    found = re.search(re.escape(token), clock_text(text), re.IGNORECASE)
    return found[0] if found is not None else token


# "2026-06-03"; day first, as written in Germany and the UK: "3.6.26", "03.06.2026", "03/06/2026",
# "3. 6. 2026", "3.6." (no year). The separators between day, month and year are the same.
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DAY_FIRST = re.compile(r"(\d{1,2})\s*([./-])\s*(\d{1,2})(?:\s*\2\s*(\d{4}|\d{2})?)?\.?")


# Month names, English and German, in full and short ("24. Juni", "24 June 2026", "June 24th", "3. Mrz").
_MONTHS = {
    **dict.fromkeys(("january", "januar", "jänner", "jaenner", "janner", "jan"), 1),
    **dict.fromkeys(("february", "februar", "feber", "feb", "febr"), 2),
    **dict.fromkeys(("march", "märz", "maerz", "marz", "mar", "mär", "mrz"), 3),
    **dict.fromkeys(("april", "apr"), 4),
    **dict.fromkeys(("may", "mai"), 5),
    **dict.fromkeys(("june", "juni", "jun"), 6),
    **dict.fromkeys(("july", "juli", "jul"), 7),
    **dict.fromkeys(("august", "aug"), 8),
    **dict.fromkeys(("september", "sept", "sep"), 9),
    **dict.fromkeys(("october", "oktober", "oct", "okt"), 10),
    **dict.fromkeys(("november", "nov"), 11),
    **dict.fromkeys(("december", "dezember", "dec", "dez"), 12),
}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:\.|st|nd|rd|th)?"
_YEAR = r"(?:\s*,?\s*(\d{4}))?"
_DAY_MONTH = re.compile(rf"{_DAY}\s*(?:of\s+)?{_MONTH}{_YEAR}")
_MONTH_DAY = re.compile(rf"{_MONTH}\s+(?:the\s+)?{_DAY}{_YEAR}")
# Words before a date that are no part of it: "bis zum 24.6.", "am 3. Juni", "until the 24th of June".
_DATE_LEAD = re.compile(
    r"^(?:(?:bis(?:\s+(?:zum|einschlie(?:ß|ss)lich))?|zum|am|ab|until|till|to|on|the)\s+)+", re.IGNORECASE
)
# Days named from today, for a date ahead (a pause "bis morgen"); a surgery date is written out.
_DAYS_AHEAD = {
    **dict.fromkeys(("heute", "today"), 0),
    **dict.fromkeys(("morgen", "tomorrow"), 1),
    **dict.fromkeys(("übermorgen", "uebermorgen", "ubermorgen", "the day after tomorrow", "day after tomorrow"), 2),
}


def read_date(text: str, today: date, *, ahead: bool = False) -> date | None:
    """A typed date -> the date, or None when the text is no date (or no day of the calendar, "31.02.").

    The one reading of typed dates (a pause's last day, a surgery date): ISO "2026-06-03", or day
    first, as written in Germany and the UK: "3.6.26", "03.06.2026", "03/06/2026", "3-6-2026",
    "3. 6. 2026"; "03/06/2026" is always the 3rd of June, never March 6th. A two-digit year is in
    this century. A month may be named, in English or German: "24. Juni", "24 June 2026", "June 24th",
    "3. Mrz."; with ``ahead``, "heute", "morgen", "übermorgen" (and in English) count from today.
    Words before the date are no part of it: "bis zum 24.6.", "am 3. Juni", "until the 24th of June".
    Without a year ("3.6.", "3/6", "24. Juni"): the next such day from today on when ``ahead``
    (a pause), else the one nearest today (a surgery date, which is often past). Whether the date
    is in range is each caller's own rule.
    """
    raw = " ".join(clock_text(text).casefold().split())
    raw = _DATE_LEAD.sub("", raw) or raw
    if ahead and raw in _DAYS_AHEAD:
        return today + timedelta(days=_DAYS_AHEAD[raw])
    iso, day_first = _ISO_DATE.fullmatch(raw), _DAY_FIRST.fullmatch(raw)
    day_month, month_day = _DAY_MONTH.fullmatch(raw), _MONTH_DAY.fullmatch(raw)
    try:
        if iso is not None:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if day_month is not None or month_day is not None:
            if day_month is not None:
                day, month, year = int(day_month[1]), _MONTHS[day_month[2]], day_month[3]
            else:
                assert month_day is not None
                day, month, year = int(month_day[2]), _MONTHS[month_day[1]], month_day[3]
        elif day_first is None:
            return None
        else:
            day, month, year = int(day_first[1]), int(day_first[3]), day_first[4]
        if year is not None:
            return date(int(year) + (2000 if len(year) == 2 else 0), month, day)
    except ValueError:
        return None
    candidates = []
    for offset in (-1, 0, 1):
        try:
            candidates.append(date(today.year + offset, month, day))
        except ValueError:  # 29 February, in a year without it
            continue
    if ahead:
        return min((c for c in candidates if c >= today), default=None)
    return min(candidates, key=lambda c: abs((c - today).days), default=None)


# "22:00-07:00", "22 - 7", "10pm to 7am", "von 22 bis 7 Uhr", "between 8 and 20": two times, a range.
_SPAN_SPLIT = re.compile(r"\s*[-~]\s*|\s+(?:to|till|until|bis|and|und)\s+", re.IGNORECASE)
_SPAN_LEAD = re.compile(r"^(?:from|between|von|ab|zwischen)\s+", re.IGNORECASE)


def parse_span(text: str) -> tuple[str, str]:
    """A typed range of two local times -> ("HH:MM", "HH:MM"); ScheduleError when it is not one.

    Each end is read as :func:`parse_times` reads a time ("22 Uhr", "10pm", "22h");
    the ends may wrap midnight and are returned in the order typed.
    """
    # Clock words first: "quarter to nine" is one time, not a range's "to".
    cleaned = _SPAN_LEAD.sub("", _clock_words(clock_text(text).strip().casefold()))
    parts = [p for p in _SPAN_SPLIT.split(cleaned) if p.strip()]
    if len(parts) != 2:
        raise ScheduleError(f"{text[:40]!r} is not two times")
    ends = [parse_times(part) for part in parts]
    if any(len(end) != 1 for end in ends):
        raise ScheduleError(f"{text[:40]!r} is not two times")
    return ends[0][0], ends[1][0]
