"""The clinic outcomes report from a database of 200 simulated patients: figures, suppression, nobody named."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta

import pytest
from outcome_seed import END, START, seed
from sqlmodel import col, func, select

from rehab_bot import outcomes_report
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.models import Alert, AlertReview, ExerciseSession, ExperimentDecision, Patient

CONTENT = load_content(None)
NOW = datetime(2026, 7, 1, 8, tzinfo=UTC)
PERIOD_END = datetime(2026, 7, 1, tzinfo=UTC)


def figure(report: outcomes_report.Report, label: str) -> outcomes_report.Row:
    return next(r for r in report.rows if r.label.startswith(label))


@pytest.mark.slow  # a long scenario: 200 simulated patients
async def test_the_report_from_200_simulated_patients(db: Database) -> None:
    aliases = await seed(db, 200)
    async with db.session() as s:
        report = await outcomes_report.build(s, CONTENT, START, END, NOW)
        in_period = col(Alert.created_at) < PERIOD_END  # alerts raised after --to are not counted
        crisis = (
            await s.exec(select(func.count()).select_from(Alert).where(col(Alert.kind) == "crisis", in_period))
        ).one()
        escalated = (
            await s.exec(select(func.count()).select_from(Alert).where(col(Alert.escalated_at).is_not(None), in_period))
        ).one()
        reviews = (
            await s.exec(select(AlertReview).join(Alert, col(Alert.id) == col(AlertReview.alert_id)).where(in_period))
        ).all()
        resolved = (await s.exec(select(func.count()).select_from(ExerciseSession))).one()
    assert resolved > 10_000
    assert report.sections == ["Enrolment", "Retention", "Adherence", "Outcome measures", "Alerts", "Experiments"]
    assert figure(report, "Patients enrolled").figure == "200"
    for week in (4, 8, 12):
        row = figure(report, f"Active in week {week}")
        assert int(row.n) >= 5 and 0 < float(row.value) <= 1, row
    assert "81 %" in figure(report, "Active in week 8").anchor
    assert "73 %" in figure(report, "Active in the final month").anchor
    bins = [r for r in report.section("Adherence") if r.label.startswith("Patients with")]
    assert len(bins) == 5 and sum(round(float(r.value) * int(r.n)) for r in bins) == int(bins[0].n) == 200
    assert "50-65 %" in figure(report, "Non-adherent").anchor
    pain, psfs = figure(report, "Pain (NRS 0-10)"), figure(report, "Patient-Specific Functional Scale")
    assert int(pain.n) >= 100 and 0 < float(pain.value) < 1 and "Farrar" in pain.label
    assert int(psfs.n) >= 100 and 0 < float(psfs.value) < 1
    assert "ODI" not in " ".join(r.label for r in report.rows), "the ODI is not in the built-in content"
    for level in ("emergency", "urgent", "routine"):
        assert float(figure(report, f"Alerts per 100 patient-weeks: {level}").value) > 0
    assert float(figure(report, "Median time to acknowledge").value) > 0
    accuracy = figure(report, "Alert accuracy")
    assert int(accuracy.n) == len(reviews) and float(accuracy.value) == round(
        sum(r.needed_action for r in reviews) / len(reviews), 4
    )
    assert figure(report, "Escalations").figure == str(escalated)
    assert figure(report, "Crisis events").figure == str(crisis)
    experiment = figure(report, "nudge-or-not")
    assert "95 % CI" in experiment.figure and experiment.n == "2000"

    html, table = outcomes_report.to_html(report), outcomes_report.to_csv(report)
    for text in (html, table):
        assert not any(alias in text for alias in aliases), "no patient is named"
        assert "Dr Seed" not in text
    rows = list(csv.reader(io.StringIO(table)))
    assert rows[0] == ["section", "measure", "figure", "value", "n", "anchor"] and len(rows) == len(report.rows) + 1


async def test_groups_under_five_are_suppressed_and_text_is_escaped(db: Database) -> None:
    await seed(db, 12, seed_value=3)
    async with db.session() as s:
        report = await outcomes_report.build(s, CONTENT, date(2026, 3, 1), date(2026, 3, 10), NOW)
    enrolled = int(figure(report, "Patients enrolled").figure)
    assert 0 < enrolled < 5
    for row in report.rows:
        if row.section in ("Retention", "Adherence", "Outcome measures") or row.label.startswith("Alert accuracy"):
            assert row.figure == outcomes_report.SUPPRESSED and row.value == "", row
    report.rows.append(outcomes_report.Row("Experiments", "<script>alert(1)</script>", "x"))
    html = outcomes_report.to_html(report)
    assert "<script>" not in html and "&lt;script&gt;" in html


async def test_crisis_questions_left_unanswered_are_counted_beside_the_crisis_events(db: Database) -> None:
    await seed(db, 12, seed_value=5)
    async with db.session() as s:
        before = await outcomes_report.build(s, CONTENT, START, END, NOW)
        patient_id = (await s.exec(select(ExerciseSession.patient_id))).first()
        assert patient_id is not None
        for day in (2, 3):
            at = datetime(2026, 4, day, tzinfo=UTC)
            s.add(Alert(patient_id=patient_id, severity="critical", kind="crisis_question", created_at=at))
        await s.commit()
        after = await outcomes_report.build(s, CONTENT, START, END, NOW)
    assert figure(before, "Crisis questions left unanswered").figure == "0"
    assert figure(after, "Crisis questions left unanswered").figure == "2"
    assert figure(after, "Crisis events").figure == figure(before, "Crisis events").figure


async def test_an_alert_of_an_unknown_severity_counts_under_no_level(db: Database) -> None:
    await seed(db, 12, seed_value=5)
    async with db.session() as s:
        before = await outcomes_report.build(s, CONTENT, START, END, NOW)
        patient_id = (await s.exec(select(ExerciseSession.patient_id))).first()
        assert patient_id is not None
        s.add(
            Alert(
                patient_id=patient_id, severity="urgent", kind="red_flag", created_at=datetime(2026, 4, 1, tzinfo=UTC)
            )
        )
        await s.commit()
        after = await outcomes_report.build(s, CONTENT, START, END, NOW)
    levels = [r for r in after.rows if r.label.startswith("Alerts per 100 patient-weeks")]
    assert [r.n for r in levels] == [r.n for r in before.rows if r.label.startswith("Alerts per 100 patient-weeks")]


async def _enrol_five(db: Database, surgery: date, *, alerts: int = 0, patients: int = 5, first: int = 0) -> list[str]:
    """Five patients operated on one day and enrolled that day; the first gets `alerts` crisis alerts (escalated)."""
    aliases = []
    async with db.session() as s:
        for n in range(patients):
            patient = Patient(
                alias=f"FIVE-{first + n}",
                telegram_id=7_700_000 + first + n,
                status="active",
                surgery_date=surgery,
                programme_id="lumbar-example",
                consent_at=datetime.combine(surgery, time(8), tzinfo=UTC),
                consent_version="2026-11-01",
            )
            s.add(patient)
            await s.flush()
            assert patient.id is not None
            aliases.append(patient.alias)
            for day in range(84):
                local = surgery + timedelta(days=day)
                s.add(
                    ExerciseSession(
                        patient_id=patient.id,
                        local_date=local,
                        slot="09:00",
                        status="done",
                        created_at=datetime.combine(local, time(9), tzinfo=UTC),
                    )
                )
            for _ in range(alerts if n == 0 else 0):
                s.add(
                    Alert(
                        patient_id=patient.id,
                        severity="emergency",
                        kind="crisis",
                        created_at=datetime.combine(surgery, time(12), tzinfo=UTC),
                        escalated_at=datetime.combine(surgery, time(13), tzinfo=UTC),
                    )
                )
        await s.commit()
    return aliases


async def test_retention_counts_a_week_that_ends_on_the_last_day_of_the_period(db: Database) -> None:
    # Week 4 is days 21-27 after surgery: 2026-03-22 to 2026-03-28. A report to 03-28 is as of that day's end.
    await _enrol_five(db, date(2026, 3, 1))
    async with db.session() as s:
        report = await outcomes_report.build(s, CONTENT, date(2026, 3, 1), date(2026, 3, 28), NOW)
        week4 = figure(report, "Active in week 4")
        assert week4.n == "5" and week4.figure == "100 % (5 of 5)", week4
        # Weeks 9-12 end on day 83, 2026-05-23.
        report = await outcomes_report.build(s, CONTENT, date(2026, 3, 1), date(2026, 5, 23), NOW)
    for label in ("Active in week 12", "Active in the final month"):
        assert figure(report, label).figure == "100 % (5 of 5)", figure(report, label)


async def test_alert_counts_of_fewer_than_five_patients_are_suppressed_in_the_csv_too(db: Database) -> None:
    await _enrol_five(db, date(2026, 3, 1), alerts=3, patients=3)
    async with db.session() as s:
        report = await outcomes_report.build(s, CONTENT, date(2026, 3, 1), date(2026, 3, 31), NOW)
    assert figure(report, "Patients enrolled").figure == "3"
    rows = list(csv.DictReader(io.StringIO(outcomes_report.to_csv(report))))
    for row in rows:
        if row["section"] == "Alerts":
            assert row["figure"] == outcomes_report.SUPPRESSED, row
            assert row["value"] == "" and "3" not in row["n"], row


async def test_the_experiment_row_counts_only_the_decisions_of_patients_enrolled_in_the_period(db: Database) -> None:
    await _enrol_five(db, date(2026, 3, 1))  # in the period
    async with db.session() as s:
        inside = (await s.exec(select(Patient))).all()
    await _enrol_five(db, date(2026, 5, 1), first=5)  # enrolled later: outside the period
    async with db.session() as s:
        everyone = (await s.exec(select(Patient))).all()
        for n, patient in enumerate(everyone):
            for ref in range(4):
                s.add(
                    ExperimentDecision(
                        experiment_id="nudge-or-not",
                        patient_id=patient.id,
                        ref=ref,
                        decided_at=NOW - timedelta(days=20),
                        treated=bool((n + ref) % 2),
                        probability=0.5,
                        local_hour=12,
                        outcome=ref % 2,
                        outcome_at=NOW - timedelta(days=20),
                    )
                )
        await s.commit()
        report = await outcomes_report.build(s, CONTENT, date(2026, 3, 1), date(2026, 3, 31), NOW)
    assert len(inside) == 5 and len(everyone) == 10
    assert figure(report, "nudge-or-not").n == str(5 * 4), "only the period's patients' decisions"
