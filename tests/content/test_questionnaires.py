"""Check-in content: questionnaires, cadences, alert rules, messages and crisis phrases.

The same rules as the other content files: built-ins load, a clinic file
overrides, extends and disables by id, English and German are required, and
every mistake is reported as file:line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from test_content import assert_error, load_errors, marked_line, write

from rehab_bot.content import BUILT_IN, LANGUAGES, ContentError, load_content

QUESTIONNAIRE = """
[[questionnaire]]
id = "{id}"
title.en = "T"
title.de = "T"
scoring = "sum"
expires_hours = 24

[[questionnaire.item]]
id = "a"
text.en = "A?"
text.de = "A?"
scale = [0, 4]
"""


def test_built_in_questionnaires_rules_messages_and_crisis_lists() -> None:
    content = load_content(None)
    assert set(content.questionnaires) == {"pain", "mood", "symptoms", "phq2", "gad2", "psfs", "week"}
    for questionnaire in content.questionnaires.values():
        assert questionnaire.source == BUILT_IN
        assert set(questionnaire.title) == set(LANGUAGES)
        for item in questionnaire.items:
            assert set(item.text) == set(LANGUAGES) and all(item.text.values())
            for option in item.options:
                assert set(option.label) == set(LANGUAGES)
    symptoms = content.questionnaires["symptoms"]
    signs = [item.id for item in symptoms.items if item.scored]
    assert signs == [
        "bladder",
        "chest",
        "legs",
        "walking",
        "calf",
        "fever",
        "wound",
        "headache",
        "wound_red",
        "fall",
        "pain_meds",
    ], "the eleven warning signs; follow-up questions are not scored"
    for lang in LANGUAGES:  # the first question lists each sign, the positional headache too
        assert symptoms.item("any").text[lang].count("•") == len(signs), lang
    assert symptoms.item("bladder").options[1].flag == symptoms.item("chest").options[1].flag == "emergency"
    assert symptoms.item("legs_both").when == {"legs": frozenset({1})}
    assert symptoms.item("legs_both").option(1).flag == "emergency", "both legs: call the emergency number now"
    # Every rule kind is used by the defaults, with Medbridge's severities.
    rules = content.alert_rules
    assert {r.kind for r in rules.values()} == {"score_at_least", "rise", "above_baseline", "trend", "inactive"}
    assert (rules["pain-critical"].threshold, rules["pain-critical"].severity) == (7, "critical")
    assert (rules["pain-rise-low"].rise, rules["pain-rise-low"].min_score, rules["pain-rise-low"].severity) == (
        1,
        5,
        "low",
    )
    assert (rules["pain-rise-high"].rise, rules["pain-rise-high"].severity) == (2, "high")
    assert (rules["no-response"].hours, rules["stalled"].hours) == (48, 14 * 24)
    assert (rules["phq2-positive"].threshold, rules["phq2-positive"].severity) == (3, "high")
    triggers = {m.trigger for m in content.messages.values()}
    assert triggers == {
        "welcome",
        "first_session",
        "streak",
        "comeback",
        "pain_improved",
        "milestone",
        "weekly_summary",
        "first_full_week",
        "phase_change",
        "pain_halved",
        "reminder",
    }
    assert {m.param for m in content.messages.values() if m.trigger == "streak"} == {3, 7, 14, 30}
    assert {m.param for m in content.messages.values() if m.trigger == "milestone"} == {2, 4, 6, 12}
    assert all(set(lst.phrases) == set(LANGUAGES) for lst in content.crisis.values())
    assert content.checkin_time is not None and content.checkin_time.default.hour == 19


def test_clinic_overrides_adds_and_disables(tmp_path: Path) -> None:
    write(
        tmp_path,
        "questionnaires.toml",
        QUESTIONNAIRE.format(id="ndi")
        + """
        [[questionnaire]]
        id = "gad2"
        enabled = false

        [[rule]]
        id = "gad2-positive"
        enabled = false

        [[rule]]
        id = "pain-critical"
        kind = "score_at_least"
        questionnaire = "pain"
        threshold = 8
        severity = "critical"
        """,
    )
    write(
        tmp_path,
        "crisis.toml",
        """
        [[crisis]]
        id = "ours"
        en = ["no way out"]
        de = ["keinen ausweg"]
        """,
    )
    content = load_content(tmp_path)
    assert "gad2" not in content.questionnaires and "gad2-positive" not in content.alert_rules
    assert content.questionnaires["ndi"].source == str(tmp_path / "questionnaires.toml")
    assert content.alert_rules["pain-critical"].threshold == 8
    assert "ours" in content.crisis and "suicide" in content.crisis


def test_questionnaire_errors_have_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "questionnaires.toml",
        """
        [[questionnaire]]
        id = "x1"
        title.en = "T"  # <- title
        scoring = "median"  # <- scoring
        expires_hours = 0  # <- hours
        loinc = "ABC"  # <- loinc

        [[questionnaire.item]]  # <- item
        id = "a"
        text.en = "A?"
        text.de = "A?"

        [[questionnaire.item]]
        id = "b"
        text.en = "B?"
        text.de = "B?"
        options = [{ value = 1, label.en = "one" }]  # <- options

        [[questionnaire]]
        id = "x2"
        title.en = "T"
        title.de = "T"
        scoring = "sum"
        expires_hours = 1
        cadence = [{ from_day = 5, to_day = 2, every_n_days = 1 }]  # <- cadence

        [[questionnaire.item]]
        id = "a"
        text.en = "A?"
        text.de = "A?"
        yes_no = true
        flag = "urgent"  # <- flag
        """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path, "# <- title"), "missing the German ('de') text")
    assert_error(errors, path, marked_line(path, "# <- scoring"), "'scoring' must be one of")
    assert_error(errors, path, marked_line(path, "# <- hours"), "'expires_hours' must be at least 1")
    assert_error(errors, path, marked_line(path, "# <- loinc"), "is not a LOINC code")
    assert_error(errors, path, marked_line(path, "# <- item"), "give exactly one of 'scale")
    assert_error(errors, path, marked_line(path, "# <- options"), "'label' is missing the German")
    assert_error(errors, path, marked_line(path, "# <- cadence"), "'to_day' must be a whole number")
    assert_error(errors, path, marked_line(path, "# <- flag"), "'flag' must be one of low, high, critical, emergency")


def test_rule_errors_and_references(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "questionnaires.toml",
        """
        [[rule]]
        id = "r1"
        kind = "rise"  # <- kind
        questionnaire = "pain"
        severity = "high"

        [[rule]]
        id = "r2"
        kind = "score_at_least"
        questionnaire = "nope"  # <- questionnaire
        threshold = 2
        severity = "severe"  # <- severity

        [[rule]]
        id = "r3"
        kind = "inactive"
        hours = 24
        severity = "low"
        patient_text = "no_such_text"  # <- text
        threshold = "ten"  # <- number
        """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path, "# <- kind") - 2, "a 'rise' rule needs 'rise'")
    assert_error(errors, path, marked_line(path, "# <- severity"), "'severity' must be one of")
    assert_error(errors, path, marked_line(path, "# <- number"), "'threshold' must be a number")
    assert_error(errors, path, marked_line(path, "# <- text"), "names text 'no_such_text', which does not exist")


def test_a_rule_on_a_disabled_questionnaire_is_reported_at_the_disabling_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "questionnaires.toml",
        """
        [[questionnaire]]
        id = "phq2"
        enabled = false  # <-
        """,
    )
    assert_error(load_errors(tmp_path), path, marked_line(path), "rule 'phq2-positive' uses questionnaire 'phq2'")


def test_pain_must_keep_its_scale(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "questionnaires.toml",
        """
        [[questionnaire]]
        id = "pain"
        title.en = "Pain"
        title.de = "Schmerz"
        scoring = "value"  # <-
        expires_hours = 12

        [[questionnaire.item]]
        id = "pain"
        text.en = "How bad, 1-5?"
        text.de = "Wie stark, 1-5?"
        scale = [1, 5]
        """,
    )
    assert_error(load_errors(tmp_path), path, marked_line(path), "must keep one item scored 'value' on the scale 0-10")


def test_programme_cadence_needs_known_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "questionnaires.toml",
        """
        [[cadence]]
        programme = "no-such-programme"  # <-
        questionnaire = "pain"
        steps = []
        """,
    )
    assert_error(load_errors(tmp_path), path, marked_line(path), "unknown programme 'no-such-programme'")


def test_message_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "messages.toml",
        """
        [[message]]
        id = "m1"
        trigger = "streak"  # <- needs days
        en = "Great!"
        de = "Toll!"

        [[message]]
        id = "m2"
        trigger = "weekly_summary"
        en = "You did {done} and {steps}."  # <- placeholder
        de = "Sie haben {done} und {steps}."

        [[message]]
        id = "m3"
        trigger = "birthday"  # <- trigger
        en = "x"
        de = "x"

        [[message]]
        id = "m4"
        trigger = "comeback"
        en = "Back after {missed} days."  # <- german
        """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path, "# <- needs days"), "trigger 'streak' needs 'days'")
    assert_error(errors, path, marked_line(path, "# <- placeholder"), "uses ['steps']")
    assert_error(errors, path, marked_line(path, "# <- trigger"), "'trigger' must be one of")
    assert_error(errors, path, marked_line(path, "# <- german") - 3, "missing the German ('de') text")


def test_crisis_list_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "crisis.toml",
        """
        [[crisis]]
        id = "short"
        en = ["die"]  # <- short
        de = ["tot"]

        [[crisis]]
        id = "english-only"  # <- de
        en = ["no way out"]

        [[crisis]]
        id = "suicide"
        enabled = "no"  # <- enabled
        """,
    )
    errors = load_errors(tmp_path)
    assert_error(errors, path, marked_line(path, "# <- short"), "too short to match safely")
    assert_error(errors, path, marked_line(path, "# <- de") - 1, "missing the German ('de') text")
    assert_error(errors, path, marked_line(path, "# <- enabled"), "'enabled' must be true or false")


def test_unknown_top_level_table(tmp_path: Path) -> None:
    path = write(tmp_path, "messages.toml", "[[messages]]  # <-\nid = 'x'\n")
    assert_error(load_errors(tmp_path), path, marked_line(path), "unknown top-level key 'messages'")


def test_checkin_time_can_be_changed_and_is_checked(tmp_path: Path) -> None:
    write(tmp_path, "questionnaires.toml", '[checkin_time]\ndefault = "18:30"\n')
    content = load_content(tmp_path)
    assert content.checkin_time is not None
    assert content.checkin_time.default.strftime("%H:%M") == "18:30"
    assert content.checkin_time.latest.strftime("%H:%M") == "20:30", "the other keys keep the built-in values"
    path = write(tmp_path, "questionnaires.toml", '[checkin_time]  # <-\ndefault = "7pm"\n')
    assert_error(load_errors(tmp_path), path, marked_line(path), "'default' must be a time")


def test_cli_style_error_text_lists_all(tmp_path: Path) -> None:
    write(tmp_path, "questionnaires.toml", textwrap.dedent(QUESTIONNAIRE.format(id="BAD ID")))
    with pytest.raises(ContentError) as info:
        load_content(tmp_path)
    assert all(e.split(":")[1].isdigit() for e in info.value.errors)


# --------------------------------------------------------------------------- follow-up questions (`when`)

FOLLOW_UPS = """
[[questionnaire]]
id = "signs"
title.en = "T"
title.de = "T"
scoring = "count"
expires_hours = 24

[[questionnaire.item]]
id = "weak"
text.en = "Weak?"
text.de = "Schwach?"
yes_no = true

[[questionnaire.item]]
id = "side"
scored = false
when = {{ {when} }}  # <- when
text.en = "Which?"
text.de = "Welche?"
options = [
    {{ value = 0, label.en = "One", label.de = "Eins", flag = "critical" }},
    {{ value = 1, label.en = "Both", label.de = "Beide", flag = "emergency" }},
]
"""


def test_a_follow_up_is_asked_only_after_the_answer_it_names(tmp_path: Path) -> None:
    from rehab_bot.checkin import next_item
    from rehab_bot.models import Answer

    write(tmp_path, "questionnaires.toml", FOLLOW_UPS.format(when="weak = [1]"))
    signs = load_content(tmp_path).questionnaires["signs"]
    assert signs.item("side").when == {"weak": frozenset({1})}

    def answered(**values: int) -> dict[str, Answer]:
        return {k: Answer(checkin_id=1, patient_id=1, item_id=k, value=v) for k, v in values.items()}

    assert next_item(signs, answered()) is signs.item("weak")
    assert next_item(signs, answered(weak=0)) is None, "no: the follow-up is passed over"
    assert next_item(signs, answered(weak=1)) is signs.item("side")


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        ("nope = [1]", "'when' names item 'nope', which does not exist"),
        ("side = [1]", "'when' names item 'side', which comes later"),
        ("weak = [7]", "'when' lists [7], which item 'weak' cannot be answered with"),
        ('weak = "yes"', "'when' needs a list of answer values for 'weak'"),
    ],
)
def test_follow_up_mistakes_are_reported_with_their_line(tmp_path: Path, when: str, fragment: str) -> None:
    path = write(tmp_path, "questionnaires.toml", FOLLOW_UPS.format(when=when))
    assert_error(load_errors(tmp_path), path, marked_line(path, "# <- when"), fragment)


def test_a_flagged_answer_cannot_open_a_follow_up_and_a_sign_cannot_end_unflagged(tmp_path: Path) -> None:
    text = FOLLOW_UPS.format(when="weak = [1]").replace("yes_no = true\n", 'yes_no = true\nflag = "high"\n', 1)
    path = write(tmp_path, "questionnaires.toml", text)
    assert_error(load_errors(tmp_path), path, marked_line(path, "# <- when"), "which is flagged")
    text = FOLLOW_UPS.format(when="weak = [1]").replace(', flag = "critical"', "")
    path = write(tmp_path, "questionnaires.toml", text)
    errors = load_errors(tmp_path)
    assert any("item 'side': answer 0 has no 'flag' and opens no follow-up" in e for e in errors), errors


def test_the_ends_of_a_scale_are_clinic_text_and_come_in_pairs(tmp_path: Path) -> None:
    """The PSFS's anchors (what 0 and 10 mean) are content a clinic can reword, as the pain scale's are."""
    content = load_content(None)
    for item in content.questionnaires["psfs"].items:
        assert item.low == {
            "en": "0 = unable to perform the activity",
            "de": "0 = Ich kann die Tätigkeit nicht ausführen",
        }
        assert item.high and item.high["en"].startswith("10 = able to perform it at the level before the problem")
    [pain] = content.questionnaires["pain"].items
    assert (pain.low, pain.high) == (
        {"en": "0 = no pain", "de": "0 = keine Schmerzen"},
        {"en": "10 = the worst pain you can imagine", "de": "10 = die stärksten vorstellbaren Schmerzen"},
    )
    path = write(
        tmp_path,
        "questionnaires.toml",
        """
        [[questionnaire]]
        id = "ours"
        title.en = "Ours"
        title.de = "Unsere"
        scoring = "value"
        expires_hours = 12

        [[questionnaire.item]]
        id = "how"
        text.en = "How well?"
        text.de = "Wie gut?"
        low.en = "0 = not at all"  # <-
        low.de = "0 = gar nicht"
        scale = [0, 10]
        """,
    )
    assert_error(load_errors(tmp_path), path, marked_line(path), "give both 'low' and 'high'")
