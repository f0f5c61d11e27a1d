"""Outcome measures over time: the schedule, and whether a change is clinically meaningful.

The outcome questionnaires (content: ``questionnaires.toml``; licences in
docs/OUTCOMES.md) are asked by days after surgery: day 0 (baseline), 2, 6
and 12 weeks (:data:`SCHEDULE_DAYS`). A patient's change on a measure is
the score nearest to a follow-up day (within :data:`WINDOW_DAYS`) against
their baseline: the first score in the first :data:`BASELINE_DAYS` days
after surgery (or the last one before it).

The minimal clinically important difference (MCID) of each measure, with its
source; a change reaches it when the improvement is at least ``points`` or,
where a share is given, at least ``percent`` of the baseline:

* pain NRS 0-10: 2 points or 30 % (Farrar et al. 2001, Pain 94:149);
* Oswestry Disability Index 0-100: 10 points or 30 % (Ostelo et al. 2008,
  Spine 33:90), for clinics that license the ODI;
* Patient-Specific Functional Scale, mean 0-10: 2 points (Stratford et al.
  1995, Physiother Can 47:258; 2 points on the mean score).

Plain Python over SQLModel: no telegram imports.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.models import CheckIn, Patient

SCHEDULE_DAYS = (0, 14, 42, 84)  # baseline, 2, 6 and 12 weeks after surgery
WINDOW_DAYS = 14  # a follow-up score counts for the nearest scheduled day within this many days
BASELINE_DAYS = 7


@dataclass(frozen=True)
class Mcid:
    questionnaire: str
    name: str
    points: float
    percent: float | None  # of the baseline
    lower_is_better: bool
    source: str


MEASURES: dict[str, Mcid] = {
    "pain": Mcid("pain", "Pain (NRS 0-10)", 2, 30, True, "Farrar et al. 2001, Pain 94:149"),
    "odi": Mcid("odi", "Oswestry Disability Index (0-100)", 10, 30, True, "Ostelo et al. 2008, Spine 33:90"),
    "psfs": Mcid(
        "psfs", "Patient-Specific Functional Scale (mean 0-10)", 2, None, False, "Stratford et al. 1995, Physiother Can"
    ),
}


class Change(enum.StrEnum):
    IMPROVED = "improved"  # reached the MCID
    UNCHANGED = "unchanged"
    WORSE = "worse"  # worsened by at least the MCID


def classify(measure: Mcid, baseline: float, follow_up: float) -> Change:
    """Improved (by at least the MCID, in points or share of baseline), worse (by as much), or unchanged."""
    gain = (baseline - follow_up) if measure.lower_is_better else (follow_up - baseline)

    def meaningful(amount: float) -> bool:
        if amount >= measure.points - 1e-9:
            return True
        return measure.percent is not None and baseline > 0 and amount / baseline * 100 >= measure.percent - 1e-9

    if gain > 0 and meaningful(gain):
        return Change.IMPROVED
    if gain < 0 and meaningful(-gain):
        return Change.WORSE
    return Change.UNCHANGED


@dataclass(frozen=True)
class Score:
    day: int  # days after surgery
    value: float


def baseline_of(scores: Sequence[Score]) -> Score | None:
    """The first score in the first BASELINE_DAYS days after surgery, else the last one before surgery."""
    early = [s for s in scores if 0 <= s.day < BASELINE_DAYS]
    if early:
        return min(early, key=lambda s: s.day)
    before = [s for s in scores if s.day < 0]
    return max(before, key=lambda s: s.day) if before else None


def at_day(scores: Sequence[Score], day: int) -> Score | None:
    """The score nearest to a scheduled follow-up day, within WINDOW_DAYS."""
    near = [s for s in scores if abs(s.day - day) <= WINDOW_DAYS and s.day >= BASELINE_DAYS]
    return min(near, key=lambda s: (abs(s.day - day), s.day)) if near else None


async def scores_by_patient(
    session: AsyncSession, patients: Sequence[Patient], questionnaire: str
) -> dict[int, list[Score]]:
    """Each patient's completed scores of one questionnaire by days after surgery, oldest first (one query).

    Patients without a surgery date have no scores (the days count from it).
    """
    surgery: dict[int, date] = {p.id: p.surgery_date for p in patients if p.id is not None and p.surgery_date}
    if not surgery:
        return {}
    rows = await session.exec(
        select(col(CheckIn.patient_id), col(CheckIn.local_date), col(CheckIn.score)).where(
            col(CheckIn.patient_id).in_(list(surgery)),
            col(CheckIn.questionnaire_id) == questionnaire,
            col(CheckIn.status) == "complete",
            col(CheckIn.score).is_not(None),
            col(CheckIn.local_date).is_not(None),
        )
    )
    by_patient: dict[int, list[tuple[date | None, float | None]]] = {pid: [] for pid in surgery}
    for pid, day, score in rows.all():
        by_patient[pid].append((day, score))
    return {pid: scores_from(surgery[pid], pairs) for pid, pairs in by_patient.items()}


def scores_from(surgery: date, answers: Iterable[tuple[date | None, float | None]]) -> list[Score]:
    """Completed check-ins' (local date, score) as Scores by days after surgery, oldest first.

    A check-in without a local date or a score is no score.
    """
    scores = [
        Score((day - surgery).days, float(score)) for day, score in answers if day is not None and score is not None
    ]
    scores.sort(key=lambda s: s.day)
    return scores


async def scores_of(session: AsyncSession, patient: Patient, questionnaire: str) -> list[Score]:
    """A patient's completed scores of one questionnaire by days after surgery, oldest first."""
    return (await scores_by_patient(session, [patient], questionnaire)).get(patient.id or 0, [])


def change_at(measure: Mcid, scores: Sequence[Score], day: int) -> Change | None:
    """The change from baseline at a scheduled day, or None without both scores."""
    base, follow = baseline_of(scores), at_day(scores, day)
    if base is None or follow is None:
        return None
    return classify(measure, base.value, follow.value)


# --- scores over time, for charts ------------------------------------------------------------------


def target(measure: Mcid, baseline: float) -> float:
    """The follow-up score that reaches the MCID from this baseline (the chart's mark).

    A follow-up at or below it (at or above it where higher is better) is what
    :func:`classify` calls improved: the smaller of ``points`` and ``percent`` of
    the baseline, since either is enough.
    """
    amount = measure.points
    if measure.percent is not None and baseline > 0:
        amount = min(amount, baseline * measure.percent / 100)
    return baseline - amount if measure.lower_is_better else baseline + amount


@dataclass(frozen=True)
class Trend:
    """One measure's scores of one patient, with the baseline, the MCID mark and where the latest score stands."""

    measure: Mcid
    scores: list[Score]
    baseline: Score | None
    target: float | None  # None without a baseline
    latest: Score | None  # the latest follow-up (from BASELINE_DAYS after surgery)
    change: Change | None  # the latest follow-up against the baseline

    @property
    def reached(self) -> bool:
        return self.change == Change.IMPROVED


def trend(measure: Mcid, scores: Sequence[Score]) -> Trend:
    """Where a patient stands on a measure: the MCID mark from their baseline and the latest follow-up's change."""
    base = baseline_of(scores)
    follow_ups = [s for s in scores if s.day >= BASELINE_DAYS]
    latest = max(follow_ups, key=lambda s: s.day) if follow_ups else None
    return Trend(
        measure,
        list(scores),
        base,
        None if base is None else target(measure, base.value),
        latest,
        None if base is None or latest is None else classify(measure, base.value, latest.value),
    )


async def trends(session: AsyncSession, patient: Patient, questionnaires: Sequence[str]) -> list[Trend]:
    """The patient's trend on every measure of MEASURES the content asks and the patient has scores for."""
    found = []
    for measure in MEASURES.values():
        if measure.questionnaire not in questionnaires:
            continue
        scores = await scores_of(session, patient, measure.questionnaire)
        if scores:
            found.append(trend(measure, scores))
    return found
