"""Keep the .po catalogues in sync with the code.

    python -m rehab_bot.i18n_tools update   # add msgids used in the code to en.po and de.po
    python -m rehab_bot.i18n_tools check    # list msgids lacking a German translation; exit 1

``update`` only adds: it never removes or reorders entries, so msgids added to
the catalogues by hand ahead of the code stay. New German entries have an
empty msgstr until someone translates them (tests/test_i18n.py fails till then).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from rehab_bot import i18n

PACKAGE_DIR = Path(__file__).parent
# t(lang, msgid) and tn(lang, singular, plural, n): the msgid is not the first argument.
# alert_detail.plural_message(singular, plural, n): an alert detail's plural message, rendered later with tn.
KEYWORDS: dict[str, tuple[int, ...] | None] = {
    "t": (2,),
    "tn": (2, 3),
    "plural_message": (1, 2),
    "_": None,
    "gettext": None,
    "gettext_": (2,),
    "N_": None,
}


# Python code, and the web app's Jinja2 templates ({{ _("Caseload") }}).
METHOD_MAP = [("**.py", "python"), ("web/templates/**.html", "jinja2.ext:babel_extract")]
OPTIONS = {"web/templates/**.html": {"trimmed": "true"}}


@dataclass(frozen=True)
class Use:
    msgid: str | tuple[str, str]
    file: str
    line: int


def extract_uses(package_dir: Path = PACKAGE_DIR) -> list[Use]:
    """Every literal msgid passed to a translation call in the package's Python files."""
    uses = []
    for filename, lineno, message, _comments, _context in extract_from_dir(
        package_dir, method_map=METHOD_MAP, keywords=KEYWORDS, options_map=OPTIONS
    ):
        msgid = message if isinstance(message, str) else (str(message[0]), str(message[1]))
        uses.append(Use(msgid, filename, lineno))
    return uses


def _read(lang: str) -> Catalog:
    with i18n.po_path(lang).open("rb") as f:
        return read_po(f, locale=lang)


def update(package_dir: Path = PACKAGE_DIR) -> dict[str, int]:
    """Add msgids used in the code but missing from each catalogue; returns counts added."""
    uses = extract_uses(package_dir)
    added = {}
    for lang in i18n.SUPPORTED_LANGUAGES:
        catalog = _read(lang)
        count = 0
        for use in uses:
            if use.msgid not in catalog:
                catalog.add(
                    use.msgid,
                    "" if isinstance(use.msgid, str) else ("", ""),
                    locations=[(use.file, use.line)],
                )
                count += 1
        if count:
            with i18n.po_path(lang).open("wb") as f:
                write_po(f, catalog, width=100, omit_header=False)
        added[lang] = count
    i18n.clear_cache()
    return added


def missing_translations(lang: str = "de") -> list[str]:
    """Catalogue msgids (plus msgids used in the code) with no usable translation in lang."""
    catalog = _read(lang)
    missing = []
    wanted = [m.id for m in catalog if m.id] + [u.msgid for u in extract_uses()]
    for msgid in dict.fromkeys(wanted):
        key = msgid if isinstance(msgid, str) else msgid[0]
        message = catalog.get(key)
        strings = (
            []
            if message is None
            else (list(message.string) if isinstance(message.string, tuple | list) else [message.string])
        )
        if message is None or message.fuzzy or not all(strings):
            missing.append(key)
    return missing


def main(argv: list[str]) -> int:
    if argv == ["update"]:
        for lang, count in update().items():
            print(f"{i18n.po_path(lang)}: {count} new msgid(s)")
        return 0
    if argv == ["check"]:
        missing = missing_translations("de")
        for msgid in missing:
            print(f"de: no translation for {msgid!r}")
        return 1 if missing else 0
    print("usage: python -m rehab_bot.i18n_tools update|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
