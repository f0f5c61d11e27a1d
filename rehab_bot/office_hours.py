"""The clinic's office hours: when somebody is at the clinic to pick up the phone.

Configured as ``[clinic] office_hours``, per weekday in the clinic's timezone::

    office_hours = { mon-fri = "08:00-17:00", sat = "09:00-12:00" }

Keys are ``mon`` … ``sun`` or a range such as ``mon-fri``; values are one or
more ``HH:MM-HH:MM`` ranges separated by commas (``"08:00-12:00, 13:00-17:00"``;
``"24:00"`` may end a range). A day without a key is closed. From the
environment (``REHAB_BOT_CLINIC_OFFICE_HOURS``) the same is written as
``"mon-fri=08:00-17:00; sat=09:00-12:00"``. Empty means "not configured":
then every hour counts.

Used by the escalation of urgent alerts (only office time counts, see
:func:`rehab_bot.alert.escalate_overdue`), and meant for showing the hours to
patients. Plain Python; DST is handled by :func:`rehab_bot.schedule.local_to_utc`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from rehab_bot.schedule import ScheduleError, local_to_utc, parse_hhmm, zone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LONG = {name: index for index, name in enumerate(DAYS)} | {
    full: index
    for index, full in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
}
END_OF_DAY = time(23, 59, 59, 999999)  # "24:00"
# How far ahead add_open_time looks for enough office time (a year of weeks).
_HORIZON_DAYS = 400

Span = tuple[time, time]


@dataclass(frozen=True)
class OfficeHours:
    """Opening ranges per weekday (0 = Monday), local wall-clock times."""

    days: tuple[tuple[Span, ...], ...] = ((),) * 7

    @property
    def configured(self) -> bool:
        """True when at least one range is set."""
        return any(self.days)

    def ranges(self, weekday: int) -> tuple[Span, ...]:
        """The opening ranges of one weekday (0 = Monday)."""
        return self.days[weekday]

    def lines(self) -> list[str]:
        """One "mon 08:00-17:00" line per open day, for display."""
        return [
            f"{DAYS[n]} " + ", ".join(f"{_hhmm(start)}-{_hhmm(end)}" for start, end in spans)
            for n, spans in enumerate(self.days)
            if spans
        ]

    def windows(self, day: date, tz: str) -> list[tuple[datetime, datetime]]:
        """The UTC instants the clinic opens and closes on a local calendar day."""
        result = []
        for start, end in self.ranges(day.weekday()):
            opens = local_to_utc(day, start, tz)
            if end == END_OF_DAY:
                closes = local_to_utc(day + timedelta(days=1), time(0), tz)
            else:
                closes = local_to_utc(day, end, tz)
            if closes > opens:
                result.append((opens, closes))
        return result

    def is_open(self, instant: datetime, tz: str) -> bool:
        """True within office hours (always True when none are configured)."""
        if not self.configured:
            return True
        day = instant.astimezone(zone(tz)).date()
        return any(opens <= instant < closes for opens, closes in self.windows(day, tz))

    def add_open_time(self, start: datetime, span: timedelta, tz: str) -> datetime:
        """The instant by which ``span`` of office time has passed since ``start``.

        Without configured hours every hour counts: start + span.
        """
        if not self.configured:
            return start + span
        remaining = span
        day = start.astimezone(zone(tz)).date()
        for _ in range(_HORIZON_DAYS):
            for opens, closes in self.windows(day, tz):
                begin = max(opens, start)
                if closes <= begin:
                    continue
                available = closes - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
        return start + span  # unreachable with any configured range; never later than wall time


def _hhmm(value: time) -> str:
    return "24:00" if value == END_OF_DAY else value.strftime("%H:%M")


def _time(text: str) -> time:
    text = text.strip()
    if text == "24:00":
        return END_OF_DAY
    return parse_hhmm(text)


def _day_keys(key: str) -> list[int]:
    key = key.strip().lower()
    if key in _LONG:
        return [_LONG[key]]
    first, sep, last = key.partition("-")
    if sep and first in _LONG and last in _LONG and _LONG[first] <= _LONG[last]:
        return list(range(_LONG[first], _LONG[last] + 1))
    raise ValueError(f"{key!r} is not a weekday or a range of weekdays (mon … sun, e.g. mon-fri)")


def _spans(value: str) -> tuple[Span, ...]:
    spans: list[Span] = []
    for part in (p for p in value.split(",") if p.strip()):
        start_text, sep, end_text = part.partition("-")
        if not sep:
            raise ValueError(f"{part.strip()!r} is not a range HH:MM-HH:MM")
        try:
            start, end = _time(start_text), _time(end_text)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from exc
        if start == END_OF_DAY or end <= start:
            raise ValueError(f"{part.strip()!r} ends before it starts (ranges cannot pass midnight)")
        spans.append((start, end))
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(f"the ranges in {value!r} overlap")
    return tuple(spans)


def parse_office_hours(value: Mapping[str, object] | str | OfficeHours | None) -> OfficeHours:
    """Office hours from a TOML table or an environment string; ValueError names the problem."""
    if value is None or isinstance(value, OfficeHours):
        return value or OfficeHours()
    if isinstance(value, str):
        entries: dict[str, object] = {}
        for part in (p for p in value.split(";") if p.strip()):
            day_text, sep, hours_text = part.partition("=")
            if not sep:
                raise ValueError(f"{part.strip()!r} is not DAY=HH:MM-HH:MM")
            entries[day_text] = hours_text
        value = entries
    days: list[tuple[Span, ...]] = [()] * 7
    seen: set[int] = set()
    for key, spans in value.items():
        if not isinstance(spans, str):
            raise ValueError(f'{key}: give the hours as a string, e.g. "08:00-17:00"')
        for day in _day_keys(str(key)):
            if day in seen:
                raise ValueError(f"{DAYS[day]} is given twice")
            seen.add(day)
            days[day] = _spans(spans)
    return OfficeHours(tuple(days))
