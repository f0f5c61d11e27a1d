"""A database of simulated patients for the outcomes report: sessions, scores, alerts, reviews, experiment draws.

`seed(db, patients=200)` enrols patients from START over three months, each
with a surgery date, their own adherence and (for some) a dropout week, one
session a day for 12 weeks (up to END), pain and PSFS scores at day 1/0, 2, 6
and 12 weeks that improve by a patient-specific amount, a few alerts (most
acknowledged, some reviewed, some escalated, a few crisis events), and draws of
the "nudge-or-not" experiment with a true effect. Deterministic for a seed.

The sessions, scores and draws (about 20,000 rows for 200 patients) go in as
rows of one insert per table, with the columns' defaults, not as ORM objects:
built and flushed one by one they took about 7 s of CPU, in each of the seven
tests that seed.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert

from rehab_bot.db import Database
from rehab_bot.models import Alert, AlertReview, CheckIn, ExerciseSession, ExperimentDecision, Patient, Staff

START, END = date(2026, 3, 1), date(2026, 6, 30)
SEVERITIES = ("low", "high", "critical", "emergency")


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


async def seed(db: Database, patients: int = 200, seed_value: int = 19) -> list[str]:
    """Add the simulated patients; return their aliases (which no report may print)."""
    rng = random.Random(seed_value)
    aliases = []
    sessions: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    draws: list[dict[str, Any]] = []
    async with db.session() as s:
        staff = Staff(telegram_id=9_900_000 + seed_value, name="Dr Seed")
        s.add(staff)
        await s.flush()
        for n in range(patients):
            enrolled = START + timedelta(days=rng.randrange(0, 92))
            surgery = enrolled + timedelta(days=rng.randrange(0, 4))
            alias = f"SIM-{seed_value}-{n:04d}"
            aliases.append(alias)
            patient = Patient(
                alias=alias,
                telegram_id=8_000_000 + seed_value * 10_000 + n,
                status="active",
                surgery_date=surgery,
                programme_id="lumbar-example",
                consent_at=_at(enrolled, 10),
                consent_version="2026-11-01",
                therapist_id=staff.id,
            )
            s.add(patient)
            await s.flush()
            pid = patient.id
            assert pid is not None
            adherence = rng.betavariate(4, 2)
            dropout = rng.randrange(2, 12) if rng.random() < 0.3 else None
            for day in range(84):
                local = surgery + timedelta(days=day)
                if local > END:
                    break
                if dropout is not None and day >= dropout * 7:
                    status = "missed"
                elif rng.random() < adherence:
                    status = "done" if rng.random() < 0.85 else "partly"
                else:
                    status = "skipped" if rng.random() < 0.3 else "missed"
                sessions.append(
                    {
                        "patient_id": pid,
                        "local_date": local,
                        "slot": "09:00",
                        "status": status,
                        "answered_at": _at(local, 9, 30) if status in ("done", "partly", "skipped") else None,
                    }
                )
            pain0, pain_drop = rng.uniform(4, 8), rng.uniform(0, 4)
            psfs0, psfs_gain = rng.uniform(1, 5), rng.uniform(0, 5)
            for day in (1, 14, 42, 84):
                local = surgery + timedelta(days=day)
                if local > END or (dropout is not None and day >= dropout * 7):
                    continue
                pain = min(10, max(0, round(pain0 - pain_drop * day / 84 + rng.gauss(0, 0.7))))
                psfs = min(10.0, max(0.0, round(psfs0 + psfs_gain * day / 84 + rng.gauss(0, 0.5), 1)))
                for qid, score in (("pain", float(pain)), ("psfs", psfs)):
                    scores.append(
                        {
                            "patient_id": pid,
                            "questionnaire_id": qid,
                            "status": "complete",
                            "started_at": _at(local, 19),
                            "completed_at": _at(local, 19, 5),
                            "score": score,
                            "local_date": local if qid == "pain" else local - timedelta(days=1 if day == 1 else 0),
                        }
                    )
            for k in range(rng.choice((0, 0, 1, 1, 2, 3))):
                raised = _at(surgery + timedelta(days=rng.randrange(0, 40)), 11 + k)
                severity = rng.choice(SEVERITIES)
                kind = "crisis" if rng.random() < 0.05 else "red_flag"
                acknowledged = raised + timedelta(minutes=rng.expovariate(1 / 40)) if rng.random() < 0.9 else None
                alert = Alert(
                    key=f"sim:{pid}:{k}",
                    patient_id=pid,
                    severity="emergency" if kind == "crisis" else severity,
                    kind=kind,
                    detail="simulated",
                    created_at=raised,
                    acknowledged_at=acknowledged,
                    acknowledged_by=staff.id if acknowledged else None,
                    escalated_at=raised + timedelta(minutes=30)
                    if severity == "emergency" and rng.random() < 0.2
                    else None,
                )
                s.add(alert)
                await s.flush()
                if acknowledged is not None and alert.id is not None and rng.random() < 0.7:
                    s.add(
                        AlertReview(
                            alert_id=alert.id,
                            needed_action=rng.random() < (0.8 if severity in ("critical", "emergency") else 0.4),
                            staff_id=staff.id,
                            reviewed_at=acknowledged,
                        )
                    )
            for ref in range(10):
                treated = rng.random() < 0.5
                draws.append(
                    {
                        "experiment_id": "nudge-or-not",
                        "patient_id": pid,
                        "ref": n * 100 + ref,
                        "decided_at": _at(surgery + timedelta(days=ref), 12),
                        "treated": treated,
                        "probability": 0.5,
                        "local_hour": 14,
                        "programme_day": ref,
                        "outcome": int(rng.random() < (0.5 if treated else 0.35)),
                        "outcome_at": _at(surgery + timedelta(days=ref), 15),
                    }
                )
        for model, rows in ((ExerciseSession, sessions), (CheckIn, scores), (ExperimentDecision, draws)):
            if rows:
                await s.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]
        await s.commit()
    return aliases
