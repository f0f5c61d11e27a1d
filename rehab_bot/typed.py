"""Typed text as a parser should read it: one cleaning step before times, dates and places are read.

Phones and keyboards add characters nobody sees or means:

* format characters (Unicode category Cf): a zero-width space pasted with a
  time, a left-to-right or right-to-left mark before a city typed on an
  Arabic or Hebrew keyboard, a byte-order mark, a soft hyphen;
* compatibility forms: full-width digits and colons from a Chinese or
  Japanese keyboard ("１０：００"), a no-break space, superscript digits;
* digits of other scripts: Arabic-Indic "١٠:٣٠", Devanagari, ...;
* dashes and minus signs other than the hyphen-minus ("22:00–07:00", "UTC−5").

:func:`plain` drops the first, folds the others into their ASCII forms, and
is applied by every parser of typed times, dates and places (schedule,
timezones, patient, invite). Stored free text (notes, messages) is never
changed by it.

Plain Python, no imports from the rest of the package.
"""

from __future__ import annotations

import unicodedata

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63"), "-")


def _fold(char: str) -> str:
    if unicodedata.category(char) == "Cf":
        return ""
    if char.isdecimal() and not char.isascii():
        return str(unicodedata.decimal(char))
    return char


def plain(text: str) -> str:
    """The text without invisible format characters, with ASCII digits, dashes and spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    if text.isascii():
        return text
    return "".join(_fold(char) for char in text)


def number(text: str, max_digits: int = 18) -> int | None:
    """The whole text as a whole number when it is 1 to max_digits ASCII digits, else None.

    str.isdigit() is also true for "²" and "١", which int() refuses or reads as another
    number: button data, form fields and URL queries, never trusted, are read with this.
    """
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None
