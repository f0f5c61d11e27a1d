"""Translations of the bot's own UI text (buttons, prompts, errors).

Source strings are English msgids; the catalogues are the Babel ``.po`` files
under ``rehab_bot/locale/<lang>/LC_MESSAGES/messages.po``. They are read with
Babel at first use and cached, so the installed package needs no compiled
``.mo`` files. Clinical text (exercises, red-flag advice, consent) is *not*
here: it lives in the clinic-editable content files (:mod:`rehab_bot.content`).

Usage::

    t(lang, "Time for your exercise session ({slot}).", slot="09:00")
    _ = translator(lang); _("Done")
    tn(lang, "{n} day", "{n} days", n)

A missing or empty translation falls back to the English msgid; an unknown
language falls back to English. ``tests/test_i18n.py`` fails when a msgid used
in the code has no German translation; ``python -m rehab_bot.i18n_tools
update`` adds new msgids to both catalogues.

Plain Python over Babel: no telegram imports.
"""

from __future__ import annotations

import gettext
import logging
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol

from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

SUPPORTED_LANGUAGES = ("en", "de")
FALLBACK_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


class Translator(Protocol):
    def __call__(self, msgid: str, /, **kwargs: object) -> str: ...


@dataclass(frozen=True)
class _Catalogue:
    singular: dict[str, str]
    plural: dict[tuple[str, str], tuple[str, ...]]
    plural_index: Callable[[int], int]


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def _catalogue(lang: str) -> _Catalogue:
    """Read one language's .po file once. Fuzzy and empty entries are left out."""
    with po_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang, ignore_obsolete=True)
    singular: dict[str, str] = {}
    plural: dict[tuple[str, str], tuple[str, ...]] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, tuple | list):
            forms = tuple(str(s) for s in message.string or ())
            if all(forms):
                plural[(str(message.id[0]), str(message.id[1]))] = forms
        elif message.string:
            singular[str(message.id)] = str(message.string)
    plural_index = gettext.c2py(catalog.plural_expr)
    return _Catalogue(singular, plural, plural_index)


def clear_cache() -> None:
    """Forget the loaded catalogues (for tools and tests that rewrite .po files)."""
    _catalogue.cache_clear()


def supported(tag: str | None) -> str | None:
    """The supported language of an IETF tag ("de-AT", "en_GB": its base language), or None."""
    base = (tag or "").strip().replace("_", "-").split("-")[0].lower()
    return base if base in SUPPORTED_LANGUAGES else None


def pick_language(telegram_language_code: str | None, default: str) -> str:
    """Map Telegram's IETF tag ("de-AT", "en_GB") to a supported language, else default."""
    if default not in SUPPORTED_LANGUAGES:
        default = FALLBACK_LANGUAGE
    return supported(telegram_language_code) or default


def _lang(lang: str) -> str:
    return lang if lang in SUPPORTED_LANGUAGES else FALLBACK_LANGUAGE


class Label(str):
    """A msgid given as a placeholder's value (a status, an alert's kind): translated with its message.

    ``t("de", N_("{alias} is {status}."), alias="LWS-1", status=Label(N_("paused")))`` fills in
    "pausiert"; formatted without t() (``str.format``) it is the English msgid.
    """

    __slots__ = ()


def _format(lang: str, text: str, fallback: str, kwargs: dict[str, object]) -> str:
    if not kwargs:
        return text
    kwargs = {key: gettext_(lang, value) if isinstance(value, Label) else value for key, value in kwargs.items()}
    try:
        return text.format(**kwargs)
    except (KeyError, IndexError, ValueError):
        # A broken translation must not break the message: say so and use English.
        log.error("bad placeholders in %s translation of %r", lang, fallback)
        return fallback.format(**kwargs)


def gettext_(lang: str, msgid: str) -> str:
    """The translation of msgid in lang, unformatted (the msgid itself if missing)."""
    return _catalogue(_lang(lang)).singular.get(msgid, msgid)


def t(lang: str, msgid: str, /, **kwargs: object) -> str:
    """Translate msgid into lang and fill its {placeholders} from kwargs."""
    return _format(lang, gettext_(lang, msgid), msgid, kwargs)


def tn(lang: str, singular: str, plural: str, n: int, /, **kwargs: object) -> str:
    """Plural-aware t(): picks the form for n; {n} is available as a placeholder."""
    catalogue = _catalogue(_lang(lang))
    english = singular if n == 1 else plural
    forms = catalogue.plural.get((singular, plural))
    text = english
    if forms:
        index = catalogue.plural_index(n)
        if 0 <= index < len(forms):
            text = forms[index]
    return _format(lang, text, english, {"n": n, **kwargs})


def N_(msgid: str) -> str:
    """Mark a msgid for extraction where it is defined; translate it later with t()."""
    return msgid


# Each supported language by its name, for staff to read in their own language: t(lang, LANGUAGE_NAMES[code]).
LANGUAGE_NAMES = {"en": N_("English"), "de": N_("German")}


def translator(lang: str) -> Translator:
    """A one-language t(): ``_ = translator("de"); _("Done")``."""

    def _(msgid: str, /, **kwargs: object) -> str:
        return t(lang, msgid, **kwargs)

    return _


def placeholders(text: str) -> set[str]:
    """The {field} names in a str.format template (ValueError if it is malformed)."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a form, a plan or its phases, said in the reader's language.

    ``where``: the field at fault as a dotted path ("name.de", "phases.0.sessions.0.items.0.sets"),
    "" for none; ``msgid`` (marked with N_): what is wrong, its {placeholders} filled from ``values``.
    ``str()`` is the English line ("sets: must be at most 20"), for the CLI, logs and tests.
    """

    msgid: str
    values: Mapping[str, object] = field(default_factory=dict, hash=False)
    where: str = ""

    def said(self, lang: str) -> str:
        """What is wrong, in lang, without where."""
        return t(lang, self.msgid, **self.values)

    def text(self, lang: str) -> str:
        """The problem as one line in lang: 'where: what is wrong'."""
        said = self.said(lang)
        return f"{self.where}: {said}" if self.where else said

    def __str__(self) -> str:
        return self.text(FALLBACK_LANGUAGE)
