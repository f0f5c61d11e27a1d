"""Which sentences a patient of one language must never read: those written only in another language.

Shared by tests/test_triage.py (every render of every message) and the
end-to-end journeys (every message a patient received).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from rehab_bot import i18n
from rehab_bot.config import LANGUAGES, ClinicConfig
from rehab_bot.content import Content

_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+|•|\s[–—-]\s")


def sentences(text: str) -> set[str]:
    """Fragments of three words or more, without placeholders: what a reader would notice as foreign."""
    result = set()
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip(" .!?:;,()\"'«»*")
        if "{" in piece or "}" in piece:
            continue
        if len(re.findall(r"[A-Za-zÄÖÜäöüß]{2,}", piece)) >= 3:
            result.add(piece)
    return result


def content_pairs(value: Any, seen: set[int] | None = None) -> list[dict[str, str]]:
    """Every {en: ..., de: ...} text table anywhere in the content."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    found: list[dict[str, str]] = []
    if isinstance(value, dict):
        if set(value) == set(LANGUAGES) and all(isinstance(v, str) for v in value.values()):
            return [value]
        for v in value.values():
            found += content_pairs(v, seen)
    elif isinstance(value, list | tuple):
        for v in value:
            found += content_pairs(v, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            found += content_pairs(getattr(value, f.name), seen)
    return found


def msgids() -> list[str]:
    """Every singular msgid of the English catalogue: the UI strings patients can see."""
    from babel.messages.pofile import read_po

    with i18n.po_path("en").open("rb") as f:
        catalog = read_po(f, locale="en")
    return [str(m.id) for m in catalog if m.id and isinstance(m.id, str)]


def sources(content: Content, lang: str, clinics: tuple[ClinicConfig, ...] = (ClinicConfig(),)) -> list[str]:
    """The texts written in this language: its catalogue, its content, the clinic's texts in it."""
    if lang == "en":
        out = msgids()
    else:
        out = [text for msgid in msgids() if (text := i18n._catalogue(lang).singular.get(msgid))]
    out += [pair[lang] for pair in content_pairs(content)]
    out += [c.text(key, lang) for c in clinics for key in ("emergency_text", "phone_hours")]
    return out


def foreign_sentences(content: Content, lang: str, clinics: tuple[ClinicConfig, ...] = (ClinicConfig(),)) -> set[str]:
    """Sentences written only in another language."""
    own = set().union(*(sentences(text) for text in sources(content, lang, clinics)))
    others = set().union(*(sentences(text) for o in LANGUAGES if o != lang for text in sources(content, o, clinics)))
    return others - own


def leaks(texts: list[str], foreign: set[str]) -> list[str]:
    """The foreign sentences found in these texts."""
    shown = "\n".join(texts)
    return sorted(s for s in foreign if s in shown)
