"""lessons.toml: the built-in course, clinic overrides, and file:line validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import rehab_bot

from rehab_bot.content import ContentError, load_content
from rehab_bot.content.checkins import SEVERITIES
from rehab_bot.content.lessons import MAX_TEXT, TRIAGE_LEVELS
from rehab_bot.redflag import SEVERITY_RANK

LESSON = """
[[lesson]]
id = "{id}"
day = 3
title.en = "Title"
title.de = "Titel"
text.en = "Text."
text.de = "Text DE."
{extra}
"""

QUESTION = """
question.en = "Which?"
question.de = "Welche?"
explanation.en = "Because."
explanation.de = "Weil."

[[lesson.answer]]
en = "A"
de = "A DE"
correct = {first}

[[lesson.answer]]
en = "B"
de = "B DE"
correct = {second}
"""


def errors_for(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "lessons.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_content(tmp_path)
    return caught.value.errors


def line_of(tmp_path: Path, needle: str) -> int:
    lines = (tmp_path / "lessons.toml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_the_built_in_course_covers_twelve_weeks_of_lumbar_topics_for_review() -> None:
    course = load_content(None).course
    assert course is not None and course.example, "marked for the clinic to review, like the example programme"
    assert "REVIEW BEFORE USE" in course.review_note["en"] and "PRÜFEN" in course.review_note["de"]
    lessons = course.lessons
    assert [lesson.day for lesson in lessons] == sorted(lesson.day for lesson in lessons)
    assert lessons[-1].day <= 84 and all(lesson.surgery_types == ("lumbar",) for lesson in lessons)
    topics = {lesson.topic for lesson in lessons}
    assert {"activity", "wound", "infection", "limits", "driving", "sleep", "pain", "work", "sex"} <= topics
    assert "when_to_call" in topics
    for lesson in lessons:
        for lang in ("en", "de"):
            assert lesson.title[lang].strip() and 0 < len(lesson.text[lang]) <= MAX_TEXT, (lesson.id, lang)
        if lesson.question is not None:
            assert 2 <= len(lesson.question.answers) <= 4
            assert sum(a.correct for a in lesson.question.answers) == 1
    safety = {lesson.id for lesson in lessons if lesson.safety}
    assert {"infection-signs", "when-to-call"} <= safety
    assert all(lesson.question is not None for lesson in lessons if lesson.safety)
    assert {lesson.triage for lesson in lessons if lesson.id in safety} <= set(SEVERITY_RANK)


def test_triage_levels_are_the_red_flag_levels() -> None:
    assert tuple(TRIAGE_LEVELS) == tuple(SEVERITIES) == tuple(SEVERITY_RANK)


def test_a_clinic_replaces_adds_and_removes_lessons(tmp_path: Path) -> None:
    (tmp_path / "lessons.toml").write_text(
        '[course]\nexample = false\ntime = "10:30"\n'
        + LESSON.format(id="walking", extra='surgery_types = ["lumbar", "cervical"]')
        + LESSON.format(id="our-own", extra='programmes = ["lumbar-example"]\nphases = ["weeks-3-6"]')
        + '\n[[lesson]]\nid = "sex"\nenabled = false\n',
        encoding="utf-8",
    )
    course = load_content(tmp_path).course
    assert course is not None and not course.example and course.time is not None
    assert course.time.strftime("%H:%M") == "10:30"
    by_id = {lesson.id: lesson for lesson in course.lessons}
    assert by_id["walking"].day == 3 and by_id["walking"].source == str(tmp_path / "lessons.toml")
    assert by_id["our-own"].phases == ("weeks-3-6",) and "sex" not in by_id
    assert by_id["driving"].source == "built-in"


def test_a_lesson_without_a_correct_answer_is_reported_at_its_line(tmp_path: Path) -> None:
    text = LESSON.format(id="mine", extra=QUESTION.format(first="false", second="false"))
    errors = errors_for(tmp_path, text)
    path = tmp_path / "lessons.toml"
    assert errors == [
        f"{path}:{line_of(tmp_path, '[[lesson.answer]]')}: lesson 'mine': exactly one answer must have "
        "correct = true (0 have)"
    ]
    two = errors_for(tmp_path, LESSON.format(id="mine", extra=QUESTION.format(first="true", second="true")))
    assert len(two) == 1 and "(2 have)" in two[0]


def test_a_missing_translation_is_reported_at_its_line(tmp_path: Path) -> None:
    text = LESSON.format(id="mine", extra="").replace('text.de = "Text DE."\n', "")
    errors = errors_for(tmp_path, text)
    assert errors == [
        f"{tmp_path / 'lessons.toml'}:{line_of(tmp_path, 'text.en')}: lesson 'mine': "
        "'text' is missing the German ('de') text"
    ]
    answer = LESSON.format(id="mine", extra=QUESTION.format(first="true", second="false")).replace('de = "B DE"\n', "")
    errors = errors_for(tmp_path, answer)
    assert len(errors) == 1 and "answer 2: missing the German ('de') text" in errors[0]
    second_answer = line_of(tmp_path, 'en = "B"') - 1  # its [[lesson.answer]] header
    assert errors[0].startswith(f"{tmp_path / 'lessons.toml'}:{second_answer}:")


@pytest.mark.parametrize(
    ("extra", "needle", "message"),
    [
        ('surgery_types = ["knee"]', "surgery_types", "unknown surgery type 'knee'"),
        ('programmes = ["hip-example"]', "programmes", "unknown programme 'hip-example' in programmes"),
        ('phases = ["week-99"]', "phases", "unknown phase 'week-99' in phases"),
        ('triage = "urgent"', "triage", "unknown triage level 'urgent'"),
        ("colour = 'red'", "colour", "unknown key 'colour'"),
    ],
)
def test_an_unknown_condition_is_reported_at_its_line(tmp_path: Path, extra: str, needle: str, message: str) -> None:
    errors = errors_for(
        tmp_path, LESSON.format(id="mine", extra=extra + "\n" + QUESTION.format(first="true", second="false"))
    )
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{tmp_path / 'lessons.toml'}:{line_of(tmp_path, needle)}: lesson 'mine': ")
    assert message in errors[0]


def test_other_problems(tmp_path: Path) -> None:
    long = "x" * (MAX_TEXT + 1)
    errors = errors_for(tmp_path, LESSON.format(id="mine", extra="").replace('"Text."', f'"{long}"'))
    assert len(errors) == 1 and f"keep lessons to {MAX_TEXT}" in errors[0]
    errors = errors_for(tmp_path, LESSON.format(id="mine", extra="safety = true"))
    assert len(errors) == 1 and "a safety lesson needs a teach-back question" in errors[0]
    errors = errors_for(tmp_path, LESSON.format(id="mine", extra='picture = "nope.png"'))
    assert len(errors) == 1 and "picture file 'nope.png' not found" in errors[0]
    errors = errors_for(tmp_path, '[course]\ntime = "25:00"\n')
    assert errors == [f"{tmp_path / 'lessons.toml'}:2: [course]: time '25:00' must be HH:MM (24 hours), or empty"]
    one = LESSON.format(id="mine", extra=QUESTION.format(first="true", second="false"))
    one = one[: one.index("[[lesson.answer]]", one.index("correct = true"))]
    errors = errors_for(tmp_path, one)
    assert len(errors) == 1 and "needs 2-4 answers, not 1" in errors[0]


def test_content_check_catches_a_lesson_without_a_correct_answer(tmp_path: Path) -> None:
    clinic = tmp_path / "clinic"
    clinic.mkdir()
    (clinic / "lessons.toml").write_text(
        LESSON.format(id="mine", extra=QUESTION.format(first="false", second="false")), encoding="utf-8"
    )
    result = rehab_bot("content", "check", str(clinic), cwd=tmp_path)
    assert result.returncode == 1
    assert "lessons.toml:" in result.stdout and "exactly one answer must have correct = true" in result.stdout
