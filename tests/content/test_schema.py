"""The content schema (content/schema.py): every table refuses keys it does not know,
at the key's own line, and suggests the key that was probably meant."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rehab_bot.content import DEFAULTS_DIR, ContentError, load_content
from rehab_bot.content.schema import did_you_mean, unknown_key

# (file, the table header the mistyped key goes under, the typo, the key meant)
TYPOS = [
    ("exercises.toml", "[[exercise]]", "instruction", "instructions"),
    ("programmes.toml", "[[programme]]", "surgery_type", "surgery_types"),
    ("programmes.toml", "[[programme.phase]]", "sessions_per_days", "sessions_per_day"),
    ("programmes.toml", "[[programme.phase.session]]", "exercise", "exercises"),
    ("texts.toml", "[[text]]", "versoin", "version"),
    ("questionnaires.toml", "[[questionnaire]]", "expire_hours", "expires_hours"),
    ("questionnaires.toml", "[[questionnaire.item]]", "optinal", "optional"),
    ("questionnaires.toml", "[[rule]]", "severty", "severity"),
    ("questionnaires.toml", "[checkin_time]", "earlist", "earliest"),
    ("messages.toml", "[[message]]", "triger", "trigger"),
    ("crisis.toml", "[[crisis]]", "enabeld", "enabled"),
    ("crisis.toml", "[[symptom_words]]", "questionaire", "questionnaire"),
    ("lessons.toml", "[course]", "exmaple", "example"),
    ("lessons.toml", "[[lesson]]", "topc", "topic"),
    ("lessons.toml", "[[lesson.answer]]", "corect", "correct"),
]


def copy_with_line(clinic_dir: Path, name: str, header: str, line: str) -> tuple[Path, int]:
    """The built-in file in the clinic directory, with line added under the first header; its line number."""
    lines = (DEFAULTS_DIR / name).read_text(encoding="utf-8").splitlines()
    at = lines.index(header) + 1
    lines.insert(at, line)
    path = clinic_dir / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, at + 1


def load_errors(clinic_dir: Path) -> list[str]:
    with pytest.raises(ContentError) as info:
        load_content(clinic_dir)
    return info.value.errors


@pytest.mark.parametrize(("name", "header", "typo", "meant"), TYPOS, ids=[f"{t[0]}:{t[1]}" for t in TYPOS])
def test_an_unknown_key_is_refused_at_its_line_with_a_suggestion(
    tmp_path: Path, name: str, header: str, typo: str, meant: str
) -> None:
    value = '"x"' if typo != "earlist" else '"17:00"'
    path, line = copy_with_line(tmp_path, name, header, f"{typo} = {value}")
    errors = load_errors(tmp_path)
    if header == "[checkin_time]":
        line -= 1  # [checkin_time] errors are reported at its header
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}:{line}: "), errors
    assert f"unknown key '{typo}'; did you mean '{meant}'?" in errors[0]


def test_an_unknown_key_in_a_programme_cadence_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    text = (DEFAULTS_DIR / "questionnaires.toml").read_text(encoding="utf-8")
    text += '\n[[cadence]]\nprogramme = "lumbar-example"\nquestionnaire = "pain"\nstpes = []\n'
    path = tmp_path / "questionnaires.toml"
    path.write_text(text, encoding="utf-8")
    errors = load_errors(tmp_path)
    line = len(text.splitlines())
    assert errors == [
        f"{path}:{line}: cadence: unknown key 'stpes'; did you mean 'steps'? "
        "(allowed: programme, questionnaire, steps, enabled)"
    ]


def test_an_unknown_answer_option_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    text = (DEFAULTS_DIR / "questionnaires.toml").read_text(encoding="utf-8")
    option = '{ value = 0, label.en = "One leg"'
    assert option in text
    path = tmp_path / "questionnaires.toml"
    path.write_text(text.replace(option, option.replace("value", "vaule")), encoding="utf-8")
    errors = load_errors(tmp_path)
    assert any("unknown key 'vaule'; did you mean 'value'?" in e for e in errors), errors


def test_an_unknown_top_level_table_gets_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "exercises.toml"
    path.write_text('[[exercice]]\nid = "x"\n', encoding="utf-8")
    errors = load_errors(tmp_path)
    assert errors == [
        f"{path}:1: unknown top-level key 'exercice'; did you mean 'exercise'? (this file holds [[exercise]] entries)"
    ]


def test_no_suggestion_when_nothing_is_close() -> None:
    assert did_you_mean("colour", ["id", "day", "topic"]) == ""
    assert unknown_key("colour", ["id", "day"]) == "unknown key 'colour' (allowed: id, day)"
    assert did_you_mean("dya", ["id", "day", "topic"]) == "; did you mean 'day'?"


def test_an_unknown_language_is_refused_at_its_line(tmp_path: Path) -> None:
    path, line = copy_with_line(tmp_path, "exercises.toml", "[[exercise]]", 'name.fr = "Nom"')
    errors = load_errors(tmp_path)
    assert len(errors) == 1 and errors[0].startswith(f"{path}:{line}: "), errors
    assert "'name' has unknown language 'fr' (use en, de)" in errors[0]


def test_the_built_in_content_loads_fast() -> None:
    load_content(None)
    start = time.perf_counter()
    for _ in range(5):
        load_content(None)
    # About 20 ms on the CI machine; generous for a shared one.
    assert (time.perf_counter() - start) / 5 < 0.5


def test_a_cadence_step_and_the_checkin_time_refuse_unknown_keys_and_wrong_values_from_the_schema(
    tmp_path: Path,
) -> None:
    text = (DEFAULTS_DIR / "questionnaires.toml").read_text(encoding="utf-8")
    step = "cadence = [{ from_day = 0, to_day = 13, every_n_days = 1 }]"
    assert step in text
    text = text.replace(step, "cadence = [{ from_dya = 0, to_day = 13, every_n_days = 0 }]")
    text = text.replace("after_last_session_minutes = 60\n", "after_last_session_minutes = 601\n")
    text = text.replace('latest = "20:30"\n', 'latest = "9pm"\n')
    path = tmp_path / "questionnaires.toml"
    path.write_text(text, encoding="utf-8")
    errors = load_errors(tmp_path)
    lines = text.splitlines()
    cadence_line = next(n for n, line in enumerate(lines, 1) if "from_dya" in line)
    header_line = lines.index("[checkin_time]") + 1
    step_errors = [e for e in errors if "cadence step 1" in e]
    assert [e.split(": ", 1)[0] for e in step_errors] == [f"{path}:{cadence_line}"] * 2, errors
    assert (
        "unknown key 'from_dya'; did you mean 'from_day'? (allowed: from_day, to_day, every_n_days, days)"
        in (step_errors[0])
    )
    assert step_errors[1].endswith("cadence step 1: 'every_n_days' must be between 1 and 366")
    assert [e for e in errors if "checkin_time" in e] == [
        f"{path}:{header_line}: checkin_time: 'after_last_session_minutes' must be minutes from 0 to 600",
        f"{path}:{header_line}: checkin_time: 'latest' must be a time as \"HH:MM\"",
    ]
    assert len(errors) == 4, errors


def test_a_byte_order_mark_is_no_toml_error(tmp_path: Path) -> None:
    """A file saved by a Windows editor (UTF-8 with a byte-order mark) was 'TOML syntax error: Invalid
    statement (column 1)' at line 1; it is read as the same file without the mark."""
    plain = (DEFAULTS_DIR / "exercises.toml").read_text(encoding="utf-8")
    (tmp_path / "exercises.toml").write_bytes(b"\xef\xbb\xbf" + plain.encode("utf-8"))
    content = load_content(tmp_path)
    assert content.exercises.keys() == load_content(None).exercises.keys()
