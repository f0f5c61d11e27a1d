"""crisis.toml: [[crisis]] patterns and [[symptom_words]], overridden by id, checked with file:line."""

from __future__ import annotations

from pathlib import Path

from cli_runner import rehab_bot
from test_content import assert_error, load_errors, marked_line, write

from rehab_bot import crisis
from rehab_bot.content import BUILT_IN, LANGUAGES, load_content


def test_built_in_crisis_and_symptom_lists() -> None:
    content = load_content(None)
    assert {"suicide", "passive", "hopelessness", "self-harm"} <= set(content.crisis)
    assert {"symptoms", "pain"} <= set(content.symptom_words)
    for words in content.symptom_words.values():
        assert set(words.words) == set(LANGUAGES) and words.source == BUILT_IN
        assert content.questionnaires[words.questionnaire].on_demand


def test_a_clinic_replaces_adds_and_removes_lists(tmp_path: Path) -> None:
    write(
        tmp_path,
        "crisis.toml",
        """
        [[crisis]]
        id = "ours"
        en = ["no ... way ... out"]
        de = ["keinen ... ausweg"]

        [[crisis]]
        id = "self-harm"
        enabled = false

        [[symptom_words]]
        id = "symptoms"
        questionnaire = "symptoms"
        en = ["dizz*"]
        de = ["schwindel*"]

        [[symptom_words]]
        id = "pain"
        enabled = false
        """,
    )
    content = load_content(tmp_path)
    assert "ours" in content.crisis and "suicide" in content.crisis and "self-harm" not in content.crisis
    assert crisis.is_crisis("there is no real way out for me", content)
    assert not crisis.is_crisis("ich ritze mich", content)
    assert crisis.symptom_check_for("I feel dizzy", content) == "symptoms"
    assert crisis.symptom_check_for("I have a fever", content) is None  # the list was replaced
    assert crisis.symptom_check_for("this pain is killing me", content) is None  # and pain removed
    assert content.symptom_words["symptoms"].source == str(tmp_path / "crisis.toml")


def test_bad_patterns_are_reported_at_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "crisis.toml",
        """
        [[crisis]]
        id = "ours"
        en = [
            "want to die",
            "... want to die",  # <- leading dots
            "st*rb",  # <- star
        ]
        de = ["will (nicht) sterben"]  # <- brackets

        [[symptom_words]]
        id = "words"
        questionnaire = "symptoms"
        en = ["ok"]  # <- short
        de = ["fieber"]
        """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path, "# <- leading dots"), "'...' must stand between two words")
    assert_error(errors, path, marked_line(path, "# <- star"), "'*' may only end a word")
    assert_error(errors, path, marked_line(path, "# <- brackets"), "crisis list 'ours' (de)")
    assert_error(errors, path, marked_line(path, "# <- short"), "too short to match safely")


def test_symptom_words_need_an_on_demand_questionnaire(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "crisis.toml",
        """
        [[symptom_words]]
        id = "nowhere"
        questionnaire = "nope"  # <- unknown
        en = ["fever"]
        de = ["fieber"]

        [[symptom_words]]
        id = "mood-words"
        questionnaire = "weekly"  # <- not on demand
        en = ["sadness"]
        de = ["traurig"]

        [[symptom_words]]
        id = "english-only"  # <- de
        questionnaire = "symptoms"
        en = ["fever"]
        """,
    )
    write(
        tmp_path,
        "questionnaires.toml",
        """
        [[questionnaire]]
        id = "weekly"
        title.en = "Weekly"
        title.de = "Wöchentlich"
        scoring = "sum"
        expires_hours = 24

        [[questionnaire.item]]
        id = "a"
        text.en = "A?"
        text.de = "A?"
        scale = [0, 4]
        """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path, "# <- unknown"), "questionnaire 'nope' does not exist")
    assert_error(errors, path, marked_line(path, "# <- not on demand"), "cannot be started on demand")
    assert_error(errors, path, marked_line(path, "# <- de") - 1, "missing the German ('de') text")


def test_content_check_names_a_bad_pattern_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "crisis.toml",
        """
        [[crisis]]
        id = "ours"
        en = [
            "no way out",
            "want to die ...",  # <-
        ]
        de = ["keinen ausweg"]
        """,
    )
    result = rehab_bot("content", "check", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert (
        f"{path}:{marked_line(path)}: crisis list 'ours' (en): 'want to die ...': '...' must stand between two words"
        in (result.stdout)
    )
