"""Micro-randomised experiments (rehab_bot.experiment, content/experiments.py): content, draws, outcomes, estimator."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from factories import make_patient
from sqlmodel import col, select

from rehab_bot import experiment
from rehab_bot.clock import FakeClock
from rehab_bot.content import ContentError, load_content
from rehab_bot.db import Database
from rehab_bot.models import ExerciseSession, ExperimentDecision, Patient

RUNNING = """
[[experiment]]
id = "nudge-or-not"
running = true
title.en = "Nudge or not"
title.de = "Nachfrage oder nicht"
decision = "nudge"
probability = 0.4
control = "skip"
outcome_hours = 3
"""


def clinic(tmp_path: Path, text: str) -> Path:
    (tmp_path / "experiments.toml").write_text(text, encoding="utf-8")
    return tmp_path


# --- content ----------------------------------------------------------------------------------------


def test_experiments_are_off_by_default_and_the_consent_says_nothing_of_them() -> None:
    content = load_content(None)
    assert content.experiments, "the defaults ship examples"
    assert not any(e.running for e in content.experiments.values())
    assert experiment.running(content, "nudge") is None
    assert experiment.consent_text(content, "en") == content.text("consent", "en")


def test_the_consent_mentions_a_running_experiment_before_its_question(tmp_path: Path) -> None:
    content = load_content(clinic(tmp_path, RUNNING))
    assert experiment.running(content, "nudge") is not None
    for lang, question in (("en", "Do you agree?"), ("de", "Sind Sie einverstanden?")):
        text = experiment.consent_text(content, lang)
        assert text.endswith("\n\n" + question)
        assert content.text("experiment_consent", lang) in text
        assert text.startswith(content.text("consent", lang).rpartition("\n\n")[0])


@pytest.mark.parametrize("decision", ["alert", "safety", "red_flag", "crisis", "checkin", "session"])
def test_safety_messages_alerts_and_check_ins_can_never_be_randomised(tmp_path: Path, decision: str) -> None:
    with pytest.raises(ContentError) as raised:
        load_content(clinic(tmp_path, RUNNING.replace('"nudge"', f'"{decision}"')))
    assert f"decision '{decision}' cannot be randomised" in str(raised.value)
    assert "experiments.toml:7:" in str(raised.value)  # the line of `decision`


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("probability = 0.4", "probability = 1.0"), "probability must be a number from 0.1 to 0.9"),
        (("probability = 0.4", 'probability = "half"'), "probability must be a number"),
        (('control = "skip"', 'control = "maybe"'), "control 'maybe' must be one of skip, send"),
        (("outcome_hours = 3", "outcome_hours = 48"), "outcome_hours must be at most 12"),
        (("running = true", "runing = true"), "did you mean 'running'?"),
        (
            ('control = "skip"', 'control = "skip"\ncontrol_text.en = "A {slot}"\ncontrol_text.de = "B {slot}"'),
            "control_text is never shown",
        ),
        (
            ('control = "skip"', 'control = "send"\ntreatment_text.en = "A {name}"\ntreatment_text.de = "B {name}"'),
            "unknown placeholder(s) ['name']",
        ),
    ],
)
def test_bad_experiments_are_refused_with_the_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ContentError) as raised:
        load_content(clinic(tmp_path, RUNNING.replace(*change)))
    assert message in str(raised.value)


def test_one_experiment_at_most_runs_per_decision_point(tmp_path: Path) -> None:
    second = RUNNING.replace('id = "nudge-or-not"', 'id = "another"')
    with pytest.raises(ContentError) as raised:
        load_content(clinic(tmp_path, RUNNING + second))
    assert "'another' runs at decision point 'nudge', where 'nudge-or-not' already runs" in str(raised.value)


# --- the estimator ----------------------------------------------------------------------------------


def simulate(rng: random.Random, effect: float, patients: int = 40, points: int = 30) -> list[experiment.Observation]:
    """Decisions whose probability depends on the time of day, as does the outcome without treatment.

    Mornings: P(treatment) 0.3 and a baseline of 0.2; evenings: 0.7 and 0.5;
    each patient shifts their baseline by up to 0.1 either way. A plain
    difference of means is biased here (treatment falls more often on the
    evenings, which do better anyway); the weighted and centred estimator is not.
    """
    out = []
    for patient in range(patients):
        shift = rng.uniform(-0.1, 0.1)
        for _ in range(points):
            morning = rng.random() < 0.5
            p = 0.3 if morning else 0.7
            treated = rng.random() < p
            chance = (0.2 if morning else 0.5) + shift + (effect if treated else 0.0)
            out.append(experiment.Observation(patient, treated, p, int(rng.random() < chance)))
    return out


def naive(obs: list[experiment.Observation]) -> float:
    treated = [o.outcome for o in obs if o.treated]
    control = [o.outcome for o in obs if not o.treated]
    return sum(treated) / len(treated) - sum(control) / len(control)


@pytest.mark.slow  # a simulation study: 200 simulated experiments of 1,200 decisions each
def test_the_estimator_recovers_a_known_effect_within_its_interval() -> None:
    rng = random.Random(19)
    effect = 0.15
    covered, estimates, naives = 0, [], []
    for _ in range(200):
        obs = simulate(rng, effect)
        found = experiment.estimate(obs)
        assert found is not None and found.patients == 40 and found.decisions == 1200
        covered += found.low <= effect <= found.high
        estimates.append(found.effect)
        naives.append(naive(obs))
    assert covered >= 180, f"{covered}/200 intervals hold the true effect"
    assert abs(sum(estimates) / 200 - effect) < 0.01
    assert sum(naives) / 200 - effect > 0.05, "the plain difference of means is biased by the probabilities"


def test_no_effect_is_found_as_none() -> None:
    rng = random.Random(5)
    covered = sum(
        (found := experiment.estimate(simulate(rng, 0.0))) is not None and found.low <= 0 <= found.high
        for _ in range(100)
    )
    assert covered >= 90


def test_no_estimate_without_both_arms_or_two_patients() -> None:
    one_arm = [experiment.Observation(p, True, 0.5, 1) for p in range(10)]
    assert experiment.estimate(one_arm) is None
    one_patient = [experiment.Observation(1, i % 2 == 0, 0.5, i % 3 == 0) for i in range(20)]
    assert experiment.estimate(one_patient) is None


# --- draws, context and outcomes in the database -----------------------------------------------------

WED = date(2026, 6, 10)


def berlin(day: date, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=2)


async def test_a_draw_is_stored_once_with_its_context_and_outcome(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    content = load_content(clinic(tmp_path, RUNNING))
    clock.set(berlin(WED, "12:00"))
    patient, _ = await make_patient(db, clock, times=(), surgery_date=WED - timedelta(days=9))
    async with db.session() as s:
        # The week before: 3 done, 1 skipped; today's session is the one the nudge is about.
        for back, status in ((1, "done"), (2, "done"), (3, "skipped"), (5, "partly"), (9, "done")):
            s.add(
                ExerciseSession(
                    patient_id=patient.id, local_date=WED - timedelta(days=back), slot="09:00", status=status
                )
            )
        today = ExerciseSession(patient_id=patient.id, local_date=WED, slot="09:00")
        s.add(today)
        await s.commit()
        p = await s.get(Patient, patient.id)
        assert p is not None
        draws = iter([0.39, 0.1])
        first = await experiment.decide_nudge(s, content, p, today, clock.now(), draw=lambda: next(draws))
        assert first is not None and first.treated and first.send and first.text("en") is None
        again = await experiment.decide_nudge(s, content, p, today, clock.now(), draw=lambda: next(draws))
        assert again == first  # read, not drawn again
        await s.commit()
        [row] = (await s.exec(select(ExperimentDecision))).all()
        assert (row.treated, row.probability, row.local_hour, row.programme_day) == (True, 0.4, 12, 9)
        assert row.adherence == 0.75  # 3 of the 4 sessions resolved in the 7 days before
        assert row.outcome is None
        # Done 2 h 59 min after the draw: inside the 3-hour window, recorded once the window has passed.
        today.status, today.answered_at = "done", berlin(WED, "14:59")
        s.add(today)
        await s.commit()
        clock.set(berlin(WED, "14:59"))
        assert await experiment.record_outcomes(s, content, clock.now()) == 0
        clock.set(berlin(WED, "15:00"))
        assert await experiment.record_outcomes(s, content, clock.now()) == 1
        await s.commit()
        row = (await s.exec(select(ExperimentDecision).where(col(ExperimentDecision.id) == row.id))).one()
        await s.refresh(row)
        assert row.outcome == 1


async def test_the_report_suppresses_small_groups(db: Database, clock: FakeClock, tmp_path: Path) -> None:
    content = load_content(clinic(tmp_path, RUNNING))
    clock.set(berlin(WED, "12:00"))
    patients = [(await make_patient(db, clock, times=()))[0] for _ in range(8)]
    async with db.session() as s:
        for n, patient in enumerate(patients):
            es = ExerciseSession(patient_id=patient.id, local_date=WED, slot="09:00")
            s.add(es)
            await s.flush()
            p = await s.get(Patient, patient.id)
            assert p is not None
            await experiment.decide_nudge(s, content, p, es, clock.now(), draw=lambda n=n: 0.0 if n < 6 else 0.9)
        await s.commit()
    clock.set(berlin(WED, "16:00"))
    async with db.session() as s:
        r = await experiment.report(s, content, "nudge-or-not", clock.now())
        await s.commit()
    assert (r.decided, r.waiting, r.treatment.patients, r.control.patients) == (8, 0, 6, 2)
    assert r.estimate is None  # the control arm is too small
    text = "\n".join(experiment.report_lines(r))
    assert "treatment: 6 decisions, 6 patients, outcome 0.0 %" in text
    assert "control: fewer than 5 patients, suppressed" in text
    assert "Effect: not estimated" in text
