"""The clinic outcomes report: `rehab-bot report outcomes --from --to` (HTML and CSV).

Everything is counted over the patients enrolled (consent given) between
``--from`` and ``--to`` inclusive, as the database holds them at ``--to``'s
end. No patient is named, and every figure drawn from fewer than
:data:`MIN_GROUP` patients is printed as suppressed.

* **Enrolment and retention.** A patient's programme week N is days
  7(N-1) to 7N-1 after surgery. Retention at week N: of the patients whose
  week N had ended by ``--to``, the share who logged at least one session
  (done or partly) in it. "Final month": active in weeks 9-12. Printed beside
  the published anchors: Hinge Health, 73 % of 10,264 patients still active in
  the final month of a 12-week programme; Sword Health RCT, 81 % completion at
  8 weeks; home-exercise non-adherence is typically 50-65 %.
* **Adherence.** Per patient, the share of resolved sessions (done, partly,
  skipped, missed) logged done or partly; its distribution in fifths, the
  median, and the share of patients under 50 % (non-adherent).
* **Outcome measures.** Per measure of :mod:`rehab_bot.outcomes`: of the
  patients with a baseline and a follow-up at 12 weeks (else 6 weeks), the
  share reaching the measure's MCID.
* **Alerts.** Alerts raised in the period per 100 patient-weeks (the days
  each patient was enrolled within the period, over 7), by triage level; the
  median minutes to acknowledge; alert accuracy (the share of reviewed
  alerts staff marked "needed action"); escalations; crisis events; crisis questions left unanswered
  (crisis-phrase alerts).
* **Experiments.** Every experiment with decisions of these patients: arms
  and effect over their decisions only (:mod:`rehab_bot.experiment`).

Plain Python over SQLModel: no telegram imports. The HTML is rendered with
Jinja2, autoescaping on.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from jinja2 import Environment
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot import experiment, outcomes
from rehab_bot.alert_detail import Value, join, message, render_value
from rehab_bot.alert_detail import content as content_text
from rehab_bot.content import Content
from rehab_bot.content.checkins import LEVEL_OF_SEVERITY, LEVELS
from rehab_bot.i18n import N_
from rehab_bot.models import Alert, AlertReview, ExerciseSession, ExperimentDecision, Patient

MIN_GROUP = 5
SUPPRESSED = "suppressed (fewer than 5)"  # as the command's HTML and CSV say it
_SUPPRESSED = message(N_("suppressed (fewer than 5)"))
RETENTION_WEEKS = (4, 8, 12)
ANCHORS: dict[int, Value] = {
    4: "",
    8: message(N_("Sword Health RCT: 81 % completion at 8 weeks")),
    12: message(N_("Hinge Health (n = 10,264): 73 % still active in the final month of 12 weeks")),
}
NON_ADHERENCE_ANCHOR = message(N_("typical home-exercise non-adherence: 50-65 %"))
# The sections, in order of appearance (msgids: the admin page shows them in the reader's language).
ENROLMENT, RETENTION, ADHERENCE = N_("Enrolment"), N_("Retention"), N_("Adherence")
OUTCOMES, ALERTS, EXPERIMENTS = N_("Outcome measures"), N_("Alerts"), N_("Experiments")
LEVEL_WORDS = {"emergency": N_("emergency"), "urgent": N_("urgent"), "routine": N_("routine")}
DONE = ("done", "partly")
RESOLVED = ("done", "partly", "skipped", "missed")


@dataclass(frozen=True)
class Share:
    """A share of a group, or suppressed when the group has fewer than MIN_GROUP patients."""

    numerator: int
    denominator: int

    @property
    def suppressed(self) -> bool:
        return self.denominator < MIN_GROUP

    def text(self) -> Value:
        if self.suppressed:
            return _SUPPRESSED
        return message(
            N_("{percent} % ({numerator} of {denominator})"),
            percent=f"{self.numerator / self.denominator * 100:.0f}",
            numerator=str(self.numerator),
            denominator=str(self.denominator),
        )

    def value(self) -> str:
        return "" if self.suppressed else f"{self.numerator / self.denominator:.4f}"


@dataclass(frozen=True)
class Row:
    """One line of the report: its section (a msgid), what it is, the figure, and the published anchor beside it.

    What it is, the figure and the anchor are kept as parts (rehab_bot.alert_detail's values) and read in
    English (label, figure, anchor: the command's HTML and CSV) or in a reader's language (in_language:
    the admin page). Figures are written as English writes them in both.
    """

    section: str
    said: Value
    shown: Value
    value: str = ""  # machine-readable (CSV), empty when suppressed or not a number
    n: str = ""
    beside: Value = ""

    @property
    def label(self) -> str:
        return render_value(self.said, "en")

    @property
    def figure(self) -> str:
        return render_value(self.shown, "en")

    @property
    def anchor(self) -> str:
        return render_value(self.beside, "en")

    def in_language(self, lang: str) -> tuple[str, str, str]:
        """(what it is, the figure, the anchor) in lang."""
        return render_value(self.said, lang), render_value(self.shown, lang), render_value(self.beside, lang)


@dataclass
class Report:
    start: date
    end: date
    generated: datetime
    rows: list[Row] = field(default_factory=list)

    def section(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.section == name]

    @property
    def sections(self) -> list[str]:
        return list(dict.fromkeys(r.section for r in self.rows))


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _week_over(surgery: date, week: int, end: date) -> bool:
    """True when programme week ``week`` (days 7(week-1) to 7week-1 after surgery) is over by ``end``'s end."""
    return surgery + timedelta(days=7 * week - 1) <= end


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _day_end(day: date) -> datetime:
    """When the day ends: the next one's start, or for 9999-12-31 (date.max, the last day there is) the
    last instant, as the day after it would overflow (`--to 9999-12-31` meaning "up to any time")."""
    return _day_start(day + timedelta(days=1)) if day < date.max else datetime.max.replace(tzinfo=UTC)


async def build(session: AsyncSession, content: Content, start: date, end: date, now: datetime) -> Report:
    """Count everything for patients enrolled from start to end (inclusive)."""
    report = Report(start, end, now)
    rows = report.rows
    period_start, period_end = _day_start(start), _day_end(end)
    patients = [
        p
        for p in (await session.exec(select(Patient).where(col(Patient.consent_at).is_not(None)))).all()
        if p.consent_at is not None and period_start <= p.consent_at < period_end
    ]
    ids = [p.id for p in patients if p.id is not None]
    enrolled = str(len(patients))
    rows.append(Row(ENROLMENT, message(N_("Patients enrolled in the period")), enrolled, enrolled))

    # The three columns the figures need, not whole rows: a clinic's year is 100,000s of sessions.
    sessions = (
        await session.exec(
            select(col(ExerciseSession.patient_id), col(ExerciseSession.local_date), col(ExerciseSession.status)).where(
                col(ExerciseSession.patient_id).in_(ids)
            )
        )
    ).all()
    by_patient: dict[int, list[Any]] = {}
    # Programme weeks with a session done or partly, per patient: week N is days 7(N-1) to 7N-1 after surgery.
    surgery_of = {p.id: p.surgery_date for p in patients if p.id is not None}
    active_weeks: dict[int, set[int]] = {}
    for es in sessions:
        by_patient.setdefault(es[0], []).append(es)  # rows with .local_date and .status
        surgery = surgery_of.get(es[0])
        if surgery is not None and es[2] in DONE:
            active_weeks.setdefault(es[0], set()).add((es[1] - surgery).days // 7 + 1)

    # Retention by programme week.
    for week in RETENTION_WEEKS:
        eligible = [p for p in patients if p.surgery_date is not None and _week_over(p.surgery_date, week, end)]
        active = sum(week in active_weeks.get(p.id or 0, ()) for p in eligible)
        share = Share(active, len(eligible))
        label = message(N_("Active in week {week}"), week=str(week))
        rows.append(Row(RETENTION, label, share.text(), share.value(), str(len(eligible)), ANCHORS[week]))
    eligible = [p for p in patients if p.surgery_date is not None and _week_over(p.surgery_date, 12, end)]
    final = sum(bool(active_weeks.get(p.id or 0, set()) & {9, 10, 11, 12}) for p in eligible)  # days 56-83
    share = Share(final, len(eligible))
    rows.append(
        Row(
            RETENTION,
            message(N_("Active in the final month (weeks 9-12)")),
            share.text(),
            share.value(),
            str(len(eligible)),
            ANCHORS[12],
        )
    )

    # Adherence distribution.
    adherence: list[float] = []
    for p in patients:
        resolved = [es for es in by_patient.get(p.id or 0, []) if es.status in RESOLVED]
        if resolved:
            adherence.append(sum(es.status in DONE for es in resolved) / len(resolved))
    n = len(adherence)
    bins = Counter(min(int(a * 5), 4) for a in adherence)
    for b in range(5):
        share = Share(bins.get(b, 0), n)
        rows.append(
            Row(
                ADHERENCE,
                message(N_("Patients with {low}-{high} % of sessions done"), low=str(b * 20), high=str(b * 20 + 20)),
                share.text(),
                share.value(),
                str(n),
            )
        )
    median = _median(adherence)
    rows.append(
        Row(
            ADHERENCE,
            message(N_("Median share of sessions done")),
            _SUPPRESSED if n < MIN_GROUP or median is None else f"{median * 100:.0f} %",
            "" if n < MIN_GROUP or median is None else f"{median:.4f}",
            str(n),
        )
    )
    share = Share(sum(a < 0.5 for a in adherence), n)
    rows.append(
        Row(
            ADHERENCE,
            message(N_("Non-adherent (under 50 % of sessions done)")),
            share.text(),
            share.value(),
            str(n),
            NON_ADHERENCE_ANCHOR,
        )
    )

    # Outcome measures against their MCID.
    for measure in outcomes.MEASURES.values():
        if measure.questionnaire not in content.questionnaires:
            continue
        improved = total = 0
        by_measure = await outcomes.scores_by_patient(session, patients, measure.questionnaire)
        for p in patients:
            scores = by_measure.get(p.id or 0, [])
            change = outcomes.change_at(measure, scores, 84) or outcomes.change_at(measure, scores, 42)
            if change is not None:
                total += 1
                improved += change == outcomes.Change.IMPROVED
        share = Share(improved, total)
        points = f"{measure.points:g}"
        mcid = (
            message(N_("{points} points or {percent} %"), points=points, percent=f"{measure.percent:g}")
            if measure.percent
            else message(N_("{points} points"), points=points)
        )
        said = message(
            N_("{measure}: reached the MCID ({mcid}; {source}) at 12 weeks, else 6"),
            measure=measure.name,
            mcid=mcid,
            source=measure.source,
        )
        rows.append(
            Row(
                OUTCOMES,
                said,
                share.text(),
                share.value(),
                str(total),
            )
        )

    # Alerts.
    alerts = [
        a
        for a in (await session.exec(select(Alert).where(col(Alert.patient_id).in_(ids)))).all()
        if period_start <= a.created_at < period_end
    ]
    patient_days = 0
    for p in patients:
        assert p.consent_at is not None
        until = min(period_end, p.discharged_at or period_end)
        patient_days += max(0, (until - p.consent_at).days)
    weeks = patient_days / 7
    # Alerts come from the period's patients: with fewer than MIN_GROUP of them every alert figure is
    # suppressed, counts included (also in the CSV's n), however many alerts they had.
    few = len(patients) < MIN_GROUP
    for level in reversed(LEVELS[1:]):
        # An alert of a severity this version does not know counts under no level (the report never fails on it).
        count = sum(LEVEL_OF_SEVERITY.get(a.severity) == level for a in alerts)
        rate = "" if weeks == 0 or few else f"{count / weeks * 100:.1f}"
        shown = message(
            N_("{rate} ({count} alerts, {weeks} patient-weeks)"),
            rate=rate or "–",
            count=str(count),
            weeks=f"{weeks:.0f}",
        )
        said = message(N_("Alerts per 100 patient-weeks: {level}"), level=message(LEVEL_WORDS[level]))
        rows.append(Row(ALERTS, said, _SUPPRESSED if few else shown, rate, "" if few else str(count)))
    minutes = [(a.acknowledged_at - a.created_at).total_seconds() / 60 for a in alerts if a.acknowledged_at is not None]
    median = _median(minutes)
    hidden = few or len(minutes) < MIN_GROUP or median is None
    rows.append(
        Row(
            ALERTS,
            message(N_("Median time to acknowledge")),
            _SUPPRESSED if hidden or median is None else message(N_("{minutes} min"), minutes=f"{median:.0f}"),
            "" if hidden or median is None else f"{median:.1f}",
            "" if few else str(len(minutes)),
        )
    )
    alert_ids = [a.id for a in alerts if a.id is not None]
    reviews = (
        (await session.exec(select(AlertReview).where(col(AlertReview.alert_id).in_(alert_ids)))).all()
        if alert_ids
        else []
    )
    share = Share(sum(r.needed_action for r in reviews), 0 if few else len(reviews))
    rows.append(
        Row(
            ALERTS,
            message(N_("Alert accuracy: reviewed alerts that needed action")),
            share.text(),
            share.value(),
            "" if few else str(len(reviews)),
        )
    )
    escalations = sum(a.escalated_at is not None for a in alerts)
    crisis = sum(a.kind == "crisis" for a in alerts)
    unanswered = sum(a.kind == "crisis_question" for a in alerts)
    for counted, count in (
        (N_("Escalations (unacknowledged emergencies sent on to the admins)"), escalations),
        (N_("Crisis events (crisis words in a patient's message, or Yes to the crisis question)"), crisis),
        (N_("Crisis questions left unanswered (a critical alert each)"), unanswered),
    ):
        rows.append(Row(ALERTS, message(counted), _SUPPRESSED if few else str(count), "" if few else str(count)))

    # Experiments.
    run = (
        (
            await session.exec(
                select(ExperimentDecision.experiment_id).where(col(ExperimentDecision.patient_id).in_(ids)).distinct()
            )
        ).all()
        if ids
        else []
    )
    for experiment_id in sorted(run):
        if experiment_id not in content.experiments:
            continue
        result = await experiment.report(session, content, experiment_id, now, patients=ids)
        est = result.estimate
        figure = (
            message(N_("not estimated (fewer than 5 patients in an arm)"))
            if est is None
            else message(
                N_("{effect} percentage points (95 % CI {low} to {high})"),
                effect=f"{est.effect * 100:+.1f}",
                low=f"{est.low * 100:+.1f}",
                high=f"{est.high * 100:+.1f}",
            )
        )
        rows.append(
            Row(
                EXPERIMENTS,
                join(": ", experiment_id, content_text(result.experiment.title)),
                figure,
                "" if est is None else f"{est.effect:.4f}",
                str(result.decided),
            )
        )
    return report


def to_csv(report: Report) -> str:
    """The report as CSV: section, measure, figure, value, n, anchor."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "measure", "figure", "value", "n", "anchor"])
    for r in report.rows:
        writer.writerow([r.section, r.label, r.figure, r.value, r.n, r.anchor])
    return out.getvalue()


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Clinic outcomes {{ report.start }} to {{ report.end }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1a1a1a; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2rem; }
caption { text-align: left; font-weight: bold; font-size: 1.2rem; padding: 0.5rem 0; }
th, td { border-bottom: 1px solid #999; padding: 0.4rem; text-align: left; vertical-align: top; }
th { background: #eee; }
.anchor { color: #444; font-size: 0.9rem; }
</style>
</head>
<body>
<header>
<h1>Clinic outcomes report</h1>
<p>Patients enrolled from {{ report.start }} to {{ report.end }}.
Generated {{ report.generated.strftime("%Y-%m-%d %H:%M UTC") }}.
No patient is named; figures from fewer than 5 patients are suppressed.</p>
</header>
<main>
{% for name in report.sections %}
<table>
<caption>{{ name }}</caption>
<thead><tr><th scope="col">Measure</th><th scope="col">Figure</th>
<th scope="col">Patients or events</th><th scope="col">Published anchor</th></tr></thead>
<tbody>
{% for row in report.section(name) %}
<tr><th scope="row">{{ row.label }}</th><td>{{ row.figure }}</td><td>{{ row.n }}</td>
<td class="anchor">{{ row.anchor }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endfor %}
</main>
</body>
</html>
"""


def to_html(report: Report) -> str:
    """The report as one self-contained HTML page (no scripts, no external assets)."""
    env = Environment(autoescape=True, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE).render(report=report)
