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
changed by it: :func:`text` only takes out what no keyboard types (control
characters such as NUL, which PostgreSQL refuses in text) and the spaces
around it, and reads a text of nothing visible (spaces, zero-width
characters) as empty.

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


# Emoji and other pictographs (Unicode category So) and the variation selectors that pick their emoji form.
_VARIATION_SELECTORS = frozenset("\ufe0e\ufe0f")


def clock_text(text: str) -> str:
    """:func:`plain`, and without emoji: typed beside a time or a date ("22:00 🌙", "von 23 bis 6 Uhr 😴"),
    nobody means them as part of it. Names keep theirs ("Dr 👩‍⚕️ Lisa"): only clock readers use this."""
    text = plain(text)
    if text.isascii():
        return text
    return "".join(c for c in text if unicodedata.category(c) != "So" and c not in _VARIATION_SELECTORS)


# Control characters (Unicode category Cc) other than line breaks and tabs: NUL (which PostgreSQL
# refuses in text), escape sequences, a pasted form feed. Nobody means them in a message or a name.
_CONTROLS = dict.fromkeys(c for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\r\t")


def text(value: str) -> str:
    """Typed free text as it is stored: without control characters and surrounding spaces, and ""
    when nothing visible is left (only spaces, zero-width or other format characters)."""
    cleaned = value.translate(_CONTROLS).strip()
    if all(char.isspace() or unicodedata.category(char) == "Cf" for char in cleaned):
        return ""
    return cleaned


def number(text: str, max_digits: int = 18) -> int | None:
    """The whole text as a whole number when it is 1 to max_digits ASCII digits, else None.

    str.isdigit() is also true for "²" and "١", which int() refuses or reads as another
    number: button data, form fields and URL queries, never trusted, are read with this.
    """
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def one_slip(typed: str, word: str) -> bool:
    """True when typed is word, or word with one letter left out, one added, or two neighbours swapped
    ("erldigt", "doen", "wnat"); not one letter changed, so "gone" and "none" are not "done"."""
    if typed == word:
        return True
    if len(typed) == len(word):
        diff = [i for i, (a, b) in enumerate(zip(typed, word, strict=True)) if a != b]
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and typed[diff[0]] == word[diff[1]]
            and typed[diff[1]] == word[diff[0]]
        )
    short, long = sorted((typed, word), key=len)
    if len(long) - len(short) != 1:
        return False
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
