"""An alert's detail in parts, so that each staff member reads it in their own language.

An alert is raised once, but read by staff of several languages: the therapist's Telegram message,
an admin's escalation, the web pages. Its detail (what the patient answered, which rule matched) is
therefore kept as parts (``Alert.detail_parts``, JSON), each part one line, rendered in the reader's
language by :func:`text`. ``Alert.detail`` keeps the same parts rendered in English, for exports, the
audit and anything that reads the column as text.

A part, and each value in it, is one of:

* a string: shown as it is, in every language (the patient's own words, Telegram's error text);
* a number: a figure, as the reader's language writes it (2.5, 2,5);
* ``{"number": x, "fixed": true}``: a figure with always one decimal (2.0, 2,0);
* ``{"msgid": ..., "params": {...}}``: a message of the bot's catalogue (an English msgid, marked with
  ``N_`` where it is written), translated, its placeholders filled with values;
* ``{"msgid": ..., "plural": ..., "n": n, "params": {...}}``: the same, with the plural form for n;
* ``{"text": {"en": ..., "de": ...}}``: a clinic content text (a questionnaire's title, a question, an
  answer option) in every language it had when the alert was raised; the reader's, else English;
* ``{"join": separator, "items": [values]}``: the values one after another.

An alert raised before parts existed (or whose detail is plain text, like Telegram's error for an
unreachable patient) has none, and shows its stored detail; so does one whose parts cannot be read.

Plain Python: no telegram, no web imports.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rehab_bot import formats
from rehab_bot.i18n import FALLBACK_LANGUAGE, t, tn

log = logging.getLogger(__name__)

Value = Any  # str | int | float | dict: see the module docstring


class HasDetail(Protocol):
    """An alert, as far as its detail goes (rehab_bot.models.Alert)."""

    detail: str
    detail_parts: str | None


def message(msgid: str, /, **params: Value) -> dict[str, Value]:
    """A message of the catalogue (its msgid marked with N_ where written) with its values."""
    return {"msgid": msgid, "params": params} if params else {"msgid": msgid}


def plural_message(singular: str, plural: str, n: int, /, **params: Value) -> dict[str, Value]:
    """A message with a plural form: {n} is available as a placeholder, as with i18n.tn (the msgids are
    extracted from this call, like tn's: rehab_bot.i18n_tools.KEYWORDS)."""
    found: dict[str, Value] = {"msgid": singular, "plural": plural, "n": n}
    if params:
        found["params"] = params
    return found


def content(texts: Mapping[str, str]) -> dict[str, Value]:
    """A clinic content text in every language it has now ({"en": ..., "de": ...})."""
    return {"text": {lang: str(value) for lang, value in texts.items()}}


def fixed(value: float) -> dict[str, Value]:
    """A figure always shown with one decimal."""
    return {"number": value, "fixed": True}


def join(separator: str, *items: Value) -> dict[str, Value]:
    """Values one after another, with separator between them."""
    return {"join": separator, "items": list(items)}


def render_value(value: Value, lang: str) -> str:
    """One value in lang; ValueError for a shape this module does not write."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a detail value: {value!r}")
    if isinstance(value, int | float):
        return formats.number(value, lang)
    if not isinstance(value, dict):
        raise ValueError(f"not a detail value: {value!r}")
    if "msgid" in value:
        params = value.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError(f"not detail params: {params!r}")
        rendered = {str(key): render_value(param, lang) for key, param in params.items()}
        if "plural" in value:
            n = value.get("n")
            if not isinstance(n, int) or isinstance(n, bool):
                raise ValueError(f"not a count: {n!r}")
            return tn(lang, str(value["msgid"]), str(value["plural"]), n, **rendered)
        return t(lang, str(value["msgid"]), **rendered)
    if "text" in value:
        texts = value["text"]
        if not isinstance(texts, dict) or not texts:
            raise ValueError(f"not a content text: {texts!r}")
        found = texts.get(lang) or texts.get(FALLBACK_LANGUAGE) or next(iter(texts.values()))
        return str(found)
    if "number" in value:
        number = value["number"]
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise ValueError(f"not a number: {number!r}")
        return formats.number(number, lang, fixed=bool(value.get("fixed")))
    if "join" in value:
        items = value.get("items")
        if not isinstance(items, list):
            raise ValueError(f"not a list of values: {items!r}")
        return str(value["join"]).join(render_value(item, lang) for item in items)
    raise ValueError(f"not a detail value: {value!r}")


def render(parts: Sequence[Value], lang: str) -> str:
    """The parts in lang, one line each."""
    return "\n".join(render_value(part, lang) for part in parts)


def english(parts: Sequence[Value]) -> str:
    """The parts in English: what Alert.detail keeps."""
    return render(parts, "en")


def dumps(parts: Sequence[Value]) -> str:
    """The parts as Alert.detail_parts stores them."""
    return json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"))


def loads(stored: str | None) -> list[Value] | None:
    """Alert.detail_parts read back; None without parts, or when they are not a list."""
    if not stored:
        return None
    try:
        parts = json.loads(stored)
    except ValueError:
        return None
    return parts if isinstance(parts, list) else None


def text(alert: HasDetail, lang: str) -> str:
    """An alert's detail in the reader's language; the stored (English) detail for an alert without parts."""
    parts = loads(alert.detail_parts)
    if parts is None:
        return alert.detail
    try:
        return render(parts, lang)
    except (ValueError, TypeError, KeyError):
        log.error("alert detail parts that cannot be read; showing the stored detail")
        return alert.detail


def appended(alert: HasDetail, part: Value) -> tuple[str, str | None]:
    """An alert's (detail, detail_parts) with a line added: in both, the parts only when it has parts."""
    line = render_value(part, "en")
    detail = f"{alert.detail}\n{line}" if alert.detail else line
    parts = loads(alert.detail_parts)
    return detail, (dumps([*parts, part]) if parts is not None else alert.detail_parts)
