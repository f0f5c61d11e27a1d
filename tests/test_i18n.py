"""Translations: every msgid the code uses must exist in en.po and be translated in de.po."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from rehab_bot import i18n, i18n_tools
from rehab_bot.i18n import (
    N_,
    SUPPORTED_LANGUAGES,
    pick_language,
    placeholders,
    t,
    tn,
    translator,
)


def catalogue(lang: str) -> Catalog:
    with i18n.po_path(lang).open("rb") as f:
        return read_po(f, locale=lang)


def strings_of(catalog: Catalog, msgid: str | tuple[str, str]) -> list[str]:
    message = catalog.get(msgid if isinstance(msgid, str) else msgid[0])
    if message is None or message.fuzzy:
        return []
    value = message.string
    return [str(s) for s in value] if isinstance(value, tuple | list) else [str(value or "")]


def msgid_forms(msgid: str | tuple[str, str]) -> list[str]:
    return [msgid] if isinstance(msgid, str) else list(msgid)


def test_every_msgid_used_in_the_code_is_translated() -> None:
    uses = i18n_tools.extract_uses()
    en, de = catalogue("en"), catalogue("de")
    problems = []
    for use in uses:
        where = f"{use.file}:{use.line}: {use.msgid!r}"
        key = use.msgid if isinstance(use.msgid, str) else use.msgid[0]
        if key not in en:
            problems.append(f"{where} is missing from en.po")
        translations = strings_of(de, use.msgid)
        if not translations or not all(s.strip() for s in translations):
            problems.append(f"{where} has no German translation in de.po")
    assert not problems, "\n".join(problems) + "\nRun `python -m rehab_bot.i18n_tools update` and translate."


def test_every_catalogue_entry_is_translated_with_matching_placeholders() -> None:
    en, de = catalogue("en"), catalogue("de")
    en_ids = {m.id if isinstance(m.id, str) else m.id[0] for m in en if m.id}
    de_ids = {m.id if isinstance(m.id, str) else m.id[0] for m in de if m.id}
    assert en_ids == de_ids, f"only in en: {en_ids - de_ids}; only in de: {de_ids - en_ids}"
    problems = []
    for message in de:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else (message.id[0], message.id[1])
        translations = strings_of(de, msgid)
        if not translations or not all(s.strip() for s in translations):
            problems.append(f"{msgid!r}: no German translation (or marked fuzzy)")
            continue
        expected = set().union(*(placeholders(form) for form in msgid_forms(msgid)))
        for translation in translations:
            try:
                found = placeholders(translation)
            except ValueError as exc:
                problems.append(f"{msgid!r}: German text has a broken brace ({exc})")
                continue
            # A plural form may drop {n} ("Ein Tag"); a singular must match exactly.
            if found != expected and (isinstance(msgid, str) or not found <= expected):
                problems.append(f"{msgid!r}: German placeholders {sorted(found)} != English {sorted(expected)}")
    assert not problems, "\n".join(problems)


def test_extraction_finds_t_calls_with_the_msgid_second(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(
        "from rehab_bot.i18n import t, tn, translator\n"
        "def f(lang, n):\n"
        "    _ = translator(lang)\n"
        '    return t(lang, "Hello {name}.", name="x"), _("Done"), '
        'tn(lang, "{n} day", "{n} days", n)\n',
        encoding="utf-8",
    )
    found = {use.msgid for use in i18n_tools.extract_uses(tmp_path)}
    assert found == {"Hello {name}.", "Done", ("{n} day", "{n} days")}


def test_translation_and_fallbacks() -> None:
    assert t("de", "Done") == "Erledigt"
    assert t("en", "Done") == "Done"
    assert t("fr", "Done") == "Done"  # unknown language: English
    assert t("de", "No such msgid {x}", x=1) == "No such msgid 1"
    assert t("de", "Time for your exercise session ({slot}).", slot="09:00") == ("Zeit für Ihre Übungseinheit (09:00).")
    _ = translator("de")
    assert _("Snooze") == "Später erinnern"
    assert _("Welcome! I am {clinic}'s exercise and recovery assistant.", clinic="X").endswith("von X.")
    assert tn("en", "{n} day", "{n} days", 1) == "1 day"
    assert tn("de", "{n} day", "{n} days", 3) == "3 days"  # untranslated plural: English


@pytest.mark.parametrize(
    ("code", "default", "expected"),
    [
        ("de-AT", "en", "de"),
        ("de", "en", "de"),
        ("en_GB", "de", "en"),
        ("DE-ch", "en", "de"),
        ("fr", "de", "de"),
        (None, "de", "de"),
        ("", "en", "en"),
        ("fr", "xx", "en"),
    ],
)
def test_pick_language(code: str | None, default: str, expected: str) -> None:
    assert pick_language(code, default) == expected


def test_every_supported_language_has_a_catalogue() -> None:
    for lang in SUPPORTED_LANGUAGES:
        assert i18n.po_path(lang).is_file()


def test_update_adds_new_msgids_to_both_catalogues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locale = tmp_path / "locale"
    for lang in SUPPORTED_LANGUAGES:
        target = locale / lang / "LC_MESSAGES"
        target.mkdir(parents=True)
        (target / "messages.po").write_bytes(i18n.po_path(lang).read_bytes())
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale)
    i18n.clear_cache()
    code = tmp_path / "code"
    code.mkdir()
    (code / "m.py").write_text('t(lang, "Brand new text.")\nt(lang, "Done")\n', encoding="utf-8")
    try:
        assert i18n_tools.update(code) == {"en": 1, "de": 1}
        assert i18n_tools.update(code) == {"en": 0, "de": 0}
        de = catalogue("de")
        assert strings_of(de, "Brand new text.") == [""]
        assert strings_of(de, "Done") == ["Erledigt"]  # existing entries kept
        assert t("de", "Brand new text.") == "Brand new text."  # empty msgstr: English
    finally:
        monkeypatch.undo()
        i18n.clear_cache()


def test_every_catalogue_parses_without_a_warning() -> None:
    """A merge that drops a msgstr line makes Babel print a WARNING on stdout at every start (and the demo
    reads its first stdout line as its address): each catalogue must parse with abort_invalid."""
    for lang in SUPPORTED_LANGUAGES:
        with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            assert len(read_po(handle, abort_invalid=True)) > 0


def test_a_staff_error_keeps_its_msgid_and_placeholders_for_every_language() -> None:
    from rehab_bot.access import StaffError
    from rehab_bot.i18n import Label

    exc = StaffError(N_("{alias} is {status}, not paused."), alias="LWS-0001", status=Label(N_("discharged")))
    assert str(exc) == "LWS-0001 is discharged, not paused."  # the chat and the CLI
    assert exc.text("de") == "LWS-0001 ist entlassen, nicht pausiert."
    assert exc.text("en") == str(exc)
    plain = StaffError(N_("The reply is empty."))
    assert str(plain) == "The reply is empty." and plain.text("de") == "Die Antwort ist leer."


def test_every_sentence_starts_with_a_capital_letter() -> None:
    # Words and phrases put into other text ("discharged", "nothing yet") start lower-case; a message
    # that is a whole sentence (ends as one) starts with a capital, a digit, a symbol or a placeholder.
    lower = [
        msgid
        for message in catalogue("en")
        if (msgid := message.id if isinstance(message.id, str) else message.id[0])
        and msgid.rstrip().endswith((".", "!", "?"))
        and msgid[0].islower()
    ]
    assert lower == [], lower


def test_adherence_is_one_word_in_german() -> None:
    # The caseload column "Adherence 7 days" and its risk reason "adherence 44 % over 7 days" sit side by side
    # on the staff pages: one German word for adherence, not "Therapietreue" here and "Trainingstreue" there.
    german = catalogue("de")
    words = {
        word
        for message in catalogue("en")
        if isinstance(message.id, str) and "adherence" in message.id.lower()
        for text in strings_of(german, message.id)
        for word in text.split()
        if word.lower().endswith("treue")
    }
    assert words == {"Therapietreue"}
