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


@pytest.mark.parametrize(
    ("measure", "baseline", "mark"),
    [
        (PAIN, 7, 5),  # 2 points is less than 30 % (2.1)
        (PAIN, 3, 2.1),  # 30 % (0.9) is less than 2 points
        (PAIN, 0, -2),  # nothing below 0: cannot be reached
        (ODI, 50, 40),  # 10 points < 15
        (ODI, 20, 14),  # 30 % = 6 points
        (PSFS, 3, 5),  # higher is better: 2 points up, no share rule
        (PSFS, 9, 11),  # out of reach on a 0-10 scale
    ],
)
def test_the_chart_mark_is_the_mcid_from_the_baseline(measure: outcomes.Mcid, baseline: float, mark: float) -> None:
    assert outcomes.target(measure, baseline) == pytest.approx(mark)


@pytest.mark.parametrize("measure", [PAIN, ODI, PSFS])
def test_the_mark_agrees_with_the_classification_on_both_sides(measure: outcomes.Mcid) -> None:
    top = 100 if measure is ODI else 10
    for baseline in [b * top / 20 for b in range(21)]:
        mark = outcomes.target(measure, baseline)
        for follow_up in [f * top / 40 for f in range(41)]:
            beyond = follow_up <= mark + 1e-9 if measure.lower_is_better else follow_up >= mark - 1e-9
            improved = classify(measure, baseline, follow_up) == Change.IMPROVED
            assert improved == beyond, (baseline, follow_up, mark)


def test_a_trend_says_whether_the_latest_follow_up_reached_the_mcid() -> None:
    scores = [Score(1, 3.0), Score(14, 4.0), Score(42, 5.5)]
    t = outcomes.trend(PSFS, scores)
    assert (t.baseline, t.target, t.latest, t.change, t.reached) == (
        Score(1, 3.0),
        5.0,
        Score(42, 5.5),
        Change.IMPROVED,
        True,
    )
    t = outcomes.trend(PAIN, [Score(0, 6.0), Score(10, 5.0)])
    assert (t.target, t.change, t.reached) == (pytest.approx(4.2), Change.UNCHANGED, False)  # 30 % of 6 < 2
    assert outcomes.trend(PAIN, [Score(20, 5.0)]).target is None  # no baseline: no mark
    assert outcomes.trend(PAIN, [Score(2, 5.0)]).change is None  # no follow-up yet


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
