"""Dates, times, shares and numbers as a reader of a language writes them: the one place for the staff pages.

The web app's templates use these as Jinja filters (``|day``, ``|when(tz)``, ``|percent``,
``|number``; rehab_bot/web/app.py) with the page's language; the core uses them for the few
texts it formats for a staff member (a save conflict's time, a risk reason's figures). The chat
uses ``soon`` for a moment of the coming days (when the clinic reads a message, a link's end).

- German: 01.12.2026, 01.12.2026 19:12, 44 %, 2,5
- English: 1 Dec 2026, 1 Dec 2026, 19:12, 44%, 2.5 (the month as a word: never 12/1 or 1/12)

A time is always on the 24-hour clock, in the zone given (the reader's, as the pages always did).
Machine formats stay ISO where they are (CSV, exports, FHIR, ``<time datetime>``, form values).
"""

from __future__ import annotations

from datetime import date, datetime

from babel.dates import format_date, format_datetime, get_date_format
from babel.numbers import format_decimal, format_percent

from rehab_bot.schedule import zone

# The date pattern of a language (CLDR); babel's "medium" for a language not listed.
_DATE_PATTERNS = {"en": "d MMM y", "de": "dd.MM.y"}
# Between the date and the time.
_JOINERS = {"en": ", ", "de": " "}
# A day of the coming days by day and month (no year): German puts a full stop after the day.
_DAY_MONTH_PATTERNS = {"en": "d MMMM", "de": "d. MMMM"}


def _date_pattern(lang: str) -> str:
    return _DATE_PATTERNS.get(lang) or get_date_format("medium", locale=lang).pattern


def day(value: date, lang: str = "en") -> str:
    """A calendar date: 01.12.2026 in German, 1 Dec 2026 in English."""
    return format_date(value, _date_pattern(lang), locale=lang)


def when(value: datetime, tz: str, lang: str = "en", *, seconds: bool = False) -> str:
    """An instant as the date and time in a zone: 01.12.2026 19:12 in German, 1 Dec 2026, 19:12 in English."""
    pattern = _date_pattern(lang) + _JOINERS.get(lang, " ") + ("HH:mm:ss" if seconds else "HH:mm")
    return format_datetime(value, pattern, tzinfo=zone(tz), locale=lang)


def soon(value: datetime, tz: str, lang: str = "en", *, weekday: bool = False) -> str:
    """A moment of the coming days, as a patient reads it in the chat, in a zone.

    English: 15 June, 08:00 (Monday, 15 June, 08:00 with the weekday); German: 15. Juni, 08:00
    (Montag, 15. Juni, 08:00). A language not listed takes the English pattern's fields.
    """
    pattern = _DAY_MONTH_PATTERNS.get(lang, _DAY_MONTH_PATTERNS["en"]) + ", HH:mm"
    return format_datetime(value, ("EEEE, " if weekday else "") + pattern, tzinfo=zone(tz), locale=lang)


def percent(share: float, lang: str = "en") -> str:
    """A share (0.44) as a whole percentage: 44 % in German, 44% in English."""
    return format_percent(share, locale=lang)


def number(value: float, lang: str = "en", *, fixed: bool = False) -> str:
    """A score with one decimal at most: 4, 2.1 in English, 2,1 in German; fixed: always one (4.0, 4,0)."""
    return format_decimal(round(value, 1), format="0.0" if fixed else "0.#", locale=lang)
