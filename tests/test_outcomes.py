"""Outcome measures (rehab_bot.outcomes): MCID classification, baseline and follow-up, the schedule in content."""

from __future__ import annotations

from pathlib import Path

import pytest

from rehab_bot import outcomes
from rehab_bot.content import load_content
from rehab_bot.outcomes import MEASURES, Change, Score, classify

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAIN, ODI, PSFS = MEASURES["pain"], MEASURES["odi"], MEASURES["psfs"]


@pytest.mark.parametrize(
    ("measure", "baseline", "follow_up", "expected"),
    [
        # Pain NRS: >= 2 points or >= 30 % lower is better.
        (PAIN, 7, 5, Change.IMPROVED),  # 2 points
        (PAIN, 7, 5.5, Change.UNCHANGED),  # 1.5 points and 21 %: below both
        (PAIN, 3, 2, Change.IMPROVED),  # 1 point, 33 %
        (PAIN, 6, 5, Change.UNCHANGED),  # 1 point, 17 %
        (PAIN, 4, 6, Change.WORSE),  # 2 points worse
        (PAIN, 0, 0, Change.UNCHANGED),
        # ODI 0-100: >= 10 points or >= 30 %.
        (ODI, 50, 40, Change.IMPROVED),
        (ODI, 50, 41, Change.UNCHANGED),  # 9 points, 18 %
        (ODI, 20, 14, Change.IMPROVED),  # 6 points, 30 %
        (ODI, 30, 42, Change.WORSE),
        # PSFS mean 0-10: >= 2 points higher is better; no share rule.
        (PSFS, 3, 5, Change.IMPROVED),
        (PSFS, 1, 2.5, Change.UNCHANGED),  # 1.5 points (150 % of 1, but the PSFS has no share rule)
        (PSFS, 6, 4, Change.WORSE),
    ],
)
def test_mcid_classification(measure: outcomes.Mcid, baseline: float, follow_up: float, expected: Change) -> None:
    assert classify(measure, baseline, follow_up) == expected


def test_baseline_and_follow_up_are_picked_by_days_after_surgery() -> None:
    scores = [Score(-3, 6), Score(1, 7), Score(3, 8), Score(13, 6), Score(40, 5), Score(50, 4), Score(90, 3)]
    assert outcomes.baseline_of(scores) == Score(1, 7)
    assert outcomes.baseline_of([Score(-3, 6), Score(-1, 5)]) == Score(-1, 5)  # before surgery: the latest
    assert outcomes.at_day(scores, 14) == Score(13, 6)
    assert outcomes.at_day(scores, 42) == Score(40, 5)
    assert outcomes.at_day(scores, 84) == Score(90, 3)
    assert outcomes.at_day([Score(1, 7)], 84) is None
    assert outcomes.change_at(PAIN, scores, 84) == Change.IMPROVED
    assert outcomes.change_at(PAIN, scores, 14) == Change.UNCHANGED
    assert outcomes.change_at(PAIN, [Score(60, 2)], 84) is None  # no baseline


def test_the_outcome_questionnaire_follows_the_schedule() -> None:
    psfs = load_content(None).questionnaires["psfs"]
    assert [(s.from_day, s.to_day) for s in psfs.cadence] == [(d, d) for d in outcomes.SCHEDULE_DAYS]
    assert psfs.scoring == "mean" and psfs.on_demand
    for lang in ("en", "de"):
        assert psfs.title[lang] and all(item.text[lang] for item in psfs.items)


@pytest.mark.parametrize(("name", "panel", "total"), [("odi", "97908-8", "97909-6"), ("ndi", "82226-2", "82237-9")])
def test_the_odi_and_ndi_templates_load_once_a_clinic_adds_them(
    tmp_path: Path, name: str, panel: str, total: str
) -> None:
    template = DOCS / "templates" / f"{name}.toml"
    (tmp_path / "questionnaires.toml").write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    assert name not in load_content(None).questionnaires, "not shipped: the clinic enables it under its licence"
    questionnaire = load_content(tmp_path).questionnaires[name]
    assert (questionnaire.scoring, questionnaire.loinc, questionnaire.score_loinc) == ("percent", panel, total)
    assert len(questionnaire.items) == 10 and all(i.max_value == 5 for i in questionnaire.items)
    assert "PASTE" in questionnaire.items[0].text["en"], "no copyrighted wording is shipped"
