"""Content files: built-ins, clinic overlays, and strict file:line validation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rehab_bot.content import (
    BUILT_IN,
    DEFAULTS_DIR,
    LANGUAGES,
    REQUIRED_TEXTS,
    ContentError,
    _enabled_entries,
    _Entry,
    _File,
    in_line_order,
    load_content,
)

EXERCISE = """
[[exercise]]
id = "{id}"
sets = 1
reps = 5
name.en = "Name"
name.de = "Name DE"
instructions.en = "Do it."
instructions.de = "Machen."
safety_notes.en = "Stop if it hurts."
safety_notes.de = "Aufhören bei Schmerz."
"""

PHASE = """
[[programme.phase]]
id = "{id}"
from_day = {from_day}
{to_day}
title.en = "T"
title.de = "T"
change_note.en = "C"
change_note.de = "C"
sessions_per_day = 1
default_times = ["09:00"]

[[programme.phase.session]]
exercises = {exercises}
"""

PROGRAMME = """
[[programme]]
id = "{id}"
surgery_types = ["lumbar"]
name.en = "Mine"
name.de = "Meins"
"""


def phase(id: str, from_day: int, to_day: int | None, exercises: str = '["walking"]') -> str:
    to = "" if to_day is None else f"to_day = {to_day}"
    return PHASE.format(id=id, from_day=from_day, to_day=to, exercises=exercises)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def marked_line(path: Path, marker: str = "# <-") -> int:
    """The 1-based line of the file that carries the marker comment."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if marker in line)


def load_errors(clinic_dir: Path) -> list[str]:
    with pytest.raises(ContentError) as info:
        load_content(clinic_dir)
    return info.value.errors


def assert_error(errors: list[str], path: Path, line: int, fragment: str) -> None:
    prefix = f"{path}:{line}: "
    matching = [e for e in errors if e.startswith(prefix) and fragment in e]
    assert matching, f"no error {prefix}...{fragment}... in:\n" + "\n".join(errors)


# --------------------------------------------------------------------------- built-ins


def test_built_ins_load_and_validate() -> None:
    content = load_content(None)
    assert len(content.exercises) >= 10
    for exercise in content.exercises.values():
        assert exercise.source == BUILT_IN
        for texts in (exercise.name, exercise.instructions, exercise.safety_notes):
            assert set(texts) == set(LANGUAGES) and all(texts.values())
        assert exercise.sets >= 1
    programme = content.programme("lumbar-example")
    assert programme.example and programme.source == BUILT_IN
    assert "REVIEW BEFORE USE" in programme.review_note["en"]
    assert "PRÜFEN" in programme.review_note["de"]
    assert [p.from_day for p in programme.phases] == [0, 14, 42, 84]
    assert programme.phases[-1].to_day is None
    assert set(REQUIRED_TEXTS) <= set(content.texts)
    assert content.consent_version == "2026-11-01"
    assert "end-to-end" in content.text("consent", "en")
    assert "Ende-zu-Ende" in content.text("consent", "de")
    for key in ("consent", "emergency", "red_flag", "help"):
        assert "112" in content.text(key, "en") and "112" in content.text(key, "de")


def test_text_language_fallback_and_placeholders(tmp_path: Path) -> None:
    write(
        tmp_path,
        "texts.toml",
        """
        [[text]]
        id = "help"
        en = "Call {clinic} on {phone}."
        de = "Rufen Sie {clinic} unter {phone} an."
    """,
    )
    content = load_content(tmp_path)
    assert content.text("help", "de", clinic="X", phone="1") == "Rufen Sie X unter 1 an."
    assert content.text("help", "fr", clinic="X", phone="1") == "Call X on 1."
    # A missing value never breaks a clinical text: the placeholder stays visible.
    assert content.text("help", "en", clinic="X") == "Call X on {phone}."


def test_phase_for_picks_the_phase_covering_the_day() -> None:
    programme = load_content(None).programme("lumbar-example")
    expected = {
        0: "weeks-1-2",
        13: "weeks-1-2",
        14: "weeks-3-6",
        41: "weeks-3-6",
        42: "weeks-7-12",
        83: "weeks-7-12",
        84: "after-week-12",
        1000: "after-week-12",
    }
    for day, phase_id in expected.items():
        found = programme.phase_for(day)
        assert found is not None and found.id == phase_id, day
    assert programme.phase_for(-1) is None
    early = programme.phases[0]
    assert early.sessions_per_day == 3 == len(early.default_times)
    assert early.exercises_for(1) == ["walking", "ankle-pumps", "glute-squeezes"]
    later = programme.phases[1]
    assert later.exercises_for(0) == later.exercises_for(1)
    with pytest.raises(IndexError):
        later.exercises_for(2)


def test_phase_for_with_a_closed_last_phase(tmp_path: Path) -> None:
    write(
        tmp_path,
        "programmes.toml",
        PROGRAMME.format(id="short") + phase("a", 0, 6) + phase("b", 7, 20),
    )
    programme = load_content(tmp_path).programme("short")
    assert programme.phase_for(6).id == "a"  # type: ignore[union-attr]
    assert programme.phase_for(20).id == "b"  # type: ignore[union-attr]
    assert programme.phase_for(21) is None


# --------------------------------------------------------------------------- clinic overlay


def test_clinic_overrides_extends_and_disables(tmp_path: Path) -> None:
    ex_path = write(
        tmp_path,
        "exercises.toml",
        """
        [[exercise]]
        id = "walking"
        sets = 2
        name.en = "Clinic walk"
        name.de = "Klinik-Spaziergang"
        instructions.en = "Walk 15 minutes."
        instructions.de = "15 Minuten gehen."
        safety_notes.en = "Stop if pain shoots down your leg."
        safety_notes.de = "Aufhören, wenn Schmerz ins Bein ausstrahlt."
        media = "media/walk.gif"
        media_kind = "animation"

        [[exercise]]
        id = "bridges"
        enabled = false
    """
        + EXERCISE.format(id="clinic-breathing"),
    )
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "walk.gif").write_bytes(b"GIF89a")
    prog_path = write(
        tmp_path,
        "programmes.toml",
        """
        [[programme]]
        id = "lumbar-example"
        enabled = false
    """
        + PROGRAMME.format(id="clinic-lumbar")
        + phase("only", 0, None, '["walking", "clinic-breathing", "ankle-pumps"]'),
    )
    text_path = write(
        tmp_path,
        "texts.toml",
        """
        [[text]]
        id = "consent"
        version = "2027-01-15"
        en = "Our consent."
        de = "Unsere Einwilligung."
    """,
    )
    content = load_content(tmp_path)
    walking = content.exercise("walking")
    assert walking.name["en"] == "Clinic walk" and walking.sets == 2
    assert walking.source == str(ex_path)
    assert walking.media == str((tmp_path / "media" / "walk.gif").resolve())
    assert walking.media_kind == "animation"
    assert content.exercise("clinic-breathing").source == str(ex_path)
    assert content.exercise("ankle-pumps").source == BUILT_IN
    assert "bridges" not in content.exercises
    assert "lumbar-example" not in content.programmes
    assert content.programme("clinic-lumbar").source == str(prog_path)
    assert content.consent_version == "2027-01-15"
    assert content.texts["consent"].source == str(text_path)
    assert content.texts["help"].source == BUILT_IN


def test_media_url_is_not_checked_on_disk(tmp_path: Path) -> None:
    write(
        tmp_path,
        "exercises.toml",
        EXERCISE.format(id="x")
        + """
        media = "https://example.org/x.mp4"
        media_kind = "video"
    """,
    )
    assert load_content(tmp_path).exercise("x").media == "https://example.org/x.mp4"


# --------------------------------------------------------------------------- errors with lines


def test_toml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "exercises.toml",
        """
        [[exercise]]
        id = "x"
        sets = = 1  # <-
    """,
    )
    assert_error(load_errors(tmp_path), path, marked_line(path), "TOML syntax error")


def test_unknown_missing_and_wrong_type_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "exercises.toml",
        """
        [[exercise]]
        id = "a"
        sets = 1
        repetitions = 3  # <- unknown
        name.en = "A"
        name.de = "A"
        instructions.en = "Do."
        instructions.de = "Tun."
        safety_notes.en = "Careful."
        safety_notes.de = "Vorsicht."

        [[exercise]]  # <- missing
        id = "b"
        name.en = "B"
        name.de = "B"
        instructions.en = "Do."
        instructions.de = "Tun."
        safety_notes.en = "Careful."
        safety_notes.de = "Vorsicht."

        [[exercise]]
        id = "c"
        sets = "three"  # <- type
        hold_seconds = true  # <- bool
        name.en = "C"
        name.de = "C"
        instructions.en = "Do."
        instructions.de = "Tun."
        safety_notes.en = "Careful."
        safety_notes.de = "Vorsicht."
    """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path, "# <- unknown"), "unknown key 'repetitions'")
    assert_error(errors, path, marked_line(path, "# <- missing"), "missing required key 'sets'")
    assert_error(errors, path, marked_line(path, "# <- type"), "'sets' must be an integer")
    assert_error(errors, path, marked_line(path, "# <- bool"), "'hold_seconds' must be an integer")
    assert len(errors) == 4, errors


def test_duplicate_ids_within_one_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "exercises.toml",
        EXERCISE.format(id="dup")
        + """
        [[exercise]]
        id = "dup"  # <-
        sets = 1
    """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path), "duplicate exercise id 'dup' (first defined on line 3)")


@pytest.mark.parametrize("skip_bad_enabled", [False, True])
def test_enabled_entries_keeps_file_order_and_passes_over_bad_headers(skip_bad_enabled: bool) -> None:
    errors: list[str] = []
    f = _File(Path("things.toml"), "test", errors)
    raws = [
        {"id": "a"},
        {"id": "b", "enabled": False},
        {"enabled": True},  # no id
        {"id": "c", "enabled": "no"},
        {"id": "a"},  # duplicate
        {"id": "d"},
    ]
    result: list[_Entry] = []
    for entry_id, path, raw in _enabled_entries(f, raws, "thing", result, skip_bad_enabled=skip_bad_enabled):
        assert raw is raws[path[1]]
        result.append(_Entry(entry_id, raw, f, path))
    parsed = [(e.id, e.path, e.value is not None) for e in result]
    bad_enabled = [] if skip_bad_enabled else [("c", ("thing", 3), True)]
    assert parsed == [("a", ("thing", 0), True), ("b", ("thing", 1), False), *bad_enabled, ("d", ("thing", 5), True)]
    assert len(errors) == 3, errors  # the missing id, the bad enabled, the duplicate


def test_missing_language_variant(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "exercises.toml",
        """
        [[exercise]]
        id = "x"
        sets = 1
        name = { en = "Only English" }  # <- name
        instructions.en = "Do."
        instructions.de = "Tun."
        safety_notes.en = "Careful."
        safety_notes.fr = "Attention."  # <- lang
        safety_notes.de = ""  # <- empty
    """,
    )
    text_path = write(
        tmp_path,
        "texts.toml",
        """
        [[text]]  # <- text
        id = "help"
        en = "Help"
    """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path, "# <- name"), "'name' is missing the German ('de') text")
    assert_error(errors, path, marked_line(path, "# <- lang"), "unknown language 'fr'")
    assert_error(errors, path, marked_line(path, "# <- empty"), "'safety_notes.de' is empty")
    assert_error(errors, text_path, marked_line(text_path, "# <- text"), "missing the German ('de') text")


def test_programme_references_unknown_exercise(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "programmes.toml",
        PROGRAMME.format(id="p") + phase("a", 0, None, '["walking", "no-such-exercise"]  # <-'),
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path), "phase 'a' uses unknown exercise 'no-such-exercise'")
    assert len(errors) == 1, errors


def test_disabling_an_exercise_a_programme_still_uses(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "exercises.toml",
        """
        [[exercise]]
        id = "bridges"
        enabled = false  # <-
    """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path), "programme 'lumbar-example' (built-in)")


def test_overlapping_and_gapped_phases(tmp_path: Path) -> None:
    text = (
        PROGRAMME.format(id="overlap")
        + phase("a", 0, 10)
        + phase("b", 10, None)
        + PROGRAMME.format(id="gap")
        + phase("a", 0, 10)
        + phase("b", 12, None)
        + PROGRAMME.format(id="late-start")
        + phase("a", 3, None)
    )
    path = write(tmp_path, "programmes.toml", text)
    lines = path.read_text().splitlines()
    from_day_lines = [i for i, line in enumerate(lines, 1) if line.startswith("from_day")]
    errors = load_errors(tmp_path)
    assert_error(
        errors, path, from_day_lines[1], "phase 'b': from_day: starts on day 10 and so overlaps phase 'a' (days 0-10)"
    )
    assert_error(errors, path, from_day_lines[3], "days 11-11 are in no phase (between phase 'a' and phase 'b')")
    assert_error(
        errors,
        path,
        from_day_lines[4],
        "from_day: the first phase starts on day 3: days 0-2 after surgery are in no phase",
    )
    assert len(errors) == 3, errors


def test_a_phase_id_used_twice_is_refused_at_the_second(tmp_path: Path) -> None:
    path = write(tmp_path, "programmes.toml", PROGRAMME.format(id="p") + phase("a", 0, 10) + phase("a", 11, None))
    id_lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith('id = "a"')]
    errors = load_errors(tmp_path)
    assert_error(errors, path, id_lines[1], "programme 'p': id: another phase has the id 'a' too")
    assert len(errors) == 1, errors


def test_open_ended_phase_before_another_overlaps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "programmes.toml",
        PROGRAMME.format(id="p") + phase("a", 0, None) + phase("b", 30, None),
    )
    errors = load_errors(tmp_path)
    assert "phase 'b': from_day: starts on day 30 and so overlaps phase 'a' (open-ended from day 0)" in errors[
        0
    ] and errors[0].startswith(f"{path}:")


def test_missing_media_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "exercises.toml",
        EXERCISE.format(id="x")
        + """
        media = "img/missing.png"  # <-
        media_kind = "photo"
    """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path), "media file 'img/missing.png' not found")
    assert str(tmp_path / "img" / "missing.png") in errors[0]


def test_phase_structure_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "programmes.toml",
        PROGRAMME.format(id="p")
        + """
        [[programme.phase]]
        id = "a"
        from_day = 0
        title.en = "T"
        title.de = "T"
        change_note.en = "C"
        change_note.de = "C"
        sessions_per_day = 2
        default_times = ["09:00", "25:00"]  # <- times

        [[programme.phase.session]]
        exercises = ["walking"]

        [[programme.phase.session]]
        exercises = ["walking"]

        [[programme.phase.session]]
        exercises = ["walking"]
    """,
    )
    errors = load_errors(tmp_path)
    assert_error(
        errors, path, marked_line(path, "# <- times"), "default_times: not a time as HH:MM (00:00-23:59): 25:00"
    )
    assert any("phase 'a': session: give 1 session (the same for every session of the day) or 2" in e for e in errors)


def test_text_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "texts.toml",
        """
        [[text]]
        id = "consent"
        version = "2026-11-01"  # <- version
        en = "Changed consent."
        de = "Geänderte Einwilligung."

        [[text]]
        id = "help"
        en = "Call {phone}"
        de = "Rufen Sie {telefon} an"  # <- fields

        [[text]]
        id = "crisis"
        en = "Broken {brace"  # <- brace
        de = "Kaputt"

        [[text]]
        id = "emergency"
        enabled = false  # <- required

        [[text]]
        id = "no-such-text"
        enabled = false  # <- unknown
    """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path, "# <- version"), "give it a new version")
    assert_error(errors, path, marked_line(path, "# <- fields"), "different placeholders")
    assert_error(errors, path, marked_line(path, "# <- brace"), "unmatched '{'")
    assert_error(errors, path, marked_line(path, "# <- required"), "required and cannot be disabled")
    assert_error(errors, path, marked_line(path, "# <- unknown"), "no text with that id")


def test_consent_needs_a_version(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "texts.toml",
        """
        [[text]]  # <-
        id = "consent"
        en = "Consent."
        de = "Einwilligung."
    """,
    )
    assert_error(load_errors(tmp_path), path, marked_line(path), "missing required key 'version'")


def test_unknown_file_and_top_level_key(tmp_path: Path) -> None:
    stray = write(tmp_path, "exercise.toml", "")
    path = write(
        tmp_path,
        "exercises.toml",
        """
        [[exercises]]  # <-
        id = "x"
    """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, stray, 1, "unknown content file")
    assert_error(errors, path, marked_line(path), "unknown top-level key 'exercises'")


def test_all_errors_are_reported_across_files(tmp_path: Path) -> None:
    write(tmp_path, "exercises.toml", "[[exercise]]\nid = 'x'\nsets = 'one'\n")
    write(tmp_path, "programmes.toml", "[[programme]\n")
    write(tmp_path, "texts.toml", "[[text]]\nid = 'help'\nen = 'Help'\nde = 'Hilfe'\nlang = 'x'\n")
    errors = load_errors(tmp_path)
    files = {e.split(":", 1)[0] for e in errors}
    assert files == {str(tmp_path / n) for n in ("exercises.toml", "programmes.toml", "texts.toml")}
    assert all(e.split(":")[1].isdigit() for e in errors)


def test_missing_clinic_dir(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="does not exist"):
        load_content(tmp_path / "nope")


def test_defaults_dir_holds_the_three_files() -> None:
    # Plus the check-in files (questionnaires, messages, crisis): tests/content/test_questionnaires.py.
    assert sorted(p.name for p in DEFAULTS_DIR.glob("*.toml")) == [
        "crisis.toml",
        "exercises.toml",
        "experiments.toml",
        "lessons.toml",
        "messages.toml",
        "programmes.toml",
        "questionnaires.toml",
        "texts.toml",
    ]


def test_the_built_in_content_is_read_again_only_when_a_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import rehab_bot.content as content_module

    defaults = tmp_path / "defaults"
    shutil.copytree(DEFAULTS_DIR, defaults)
    monkeypatch.setattr(content_module, "DEFAULTS_DIR", defaults)
    monkeypatch.setattr(content_module, "_built_in", None)
    first = load_content(None)
    assert load_content(None) is first
    texts = defaults / "texts.toml"
    texts.write_text(texts.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    again = load_content(None)
    assert again is not first and again == first  # read again: same content, a new object
    assert load_content(None) is again
    # A clinic's content is read every time (its media files count too).
    clinic = tmp_path / "clinic"
    clinic.mkdir()
    assert load_content(clinic) is not load_content(clinic)


def test_a_files_problems_are_listed_in_the_order_of_its_lines(tmp_path: Path) -> None:
    """An outside tester saw line 4's problem printed before line 3's (the checks go field by field)."""
    path = write(
        tmp_path,
        "exercises.toml",
        """\
        [[exercise]]
        id = "walk"
        sets = 0
        name = { en = "Walk" }
        instructions = { en = "Walk slowly.", de = "Langsam gehen." }
        safety_notes = { en = "Stop if it hurts.", de = "Bei Schmerzen aufhören." }
        """,
    )
    errors = load_errors(tmp_path)
    assert [e.split(": ", 1)[0] for e in errors] == [f"{path}:3", f"{path}:4"], errors


def test_in_line_order_keeps_the_files_in_their_order_and_lines_without_a_place_in_theirs() -> None:
    found = ["b.toml:9: x", "a.toml:2: y", "b.toml:3: z", "no place", "a.toml:1: w", "b.toml:10: v"]
    assert in_line_order(found) == [
        "b.toml:3: z",
        "b.toml:9: x",
        "b.toml:10: v",
        "a.toml:1: w",
        "a.toml:2: y",
        "no place",
    ]
