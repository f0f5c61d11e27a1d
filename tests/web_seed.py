"""A clinic's worth of data for the web app's tests, benchmarks and screenshots, written in bulk.

``seed_clinic(db, now, patients=..., days=...)`` makes an admin (Telegram id 7001), two therapists
(7002 "Dr Ben", 7003 "Dr Cleo") and patients LWS-0001… split between the therapists, each with
``days`` days of sessions (done / partly / skipped / missed), a daily pain and mood answer, now and
then a note, some open alerts, a few unreachable or paused patients and some safety lessons
unanswered. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from rehab_bot.db import Database
from rehab_bot.models import (
    Alert,
    Answer,
    CheckIn,
    ExerciseSession,
    LessonProgress,
    Note,
    Patient,
    PatientStatus,
    Staff,
)
from rehab_bot.schedule import local_date

ADMIN, BEN, CLEO = 7001, 7002, 7003
STATUSES = ("done", "done", "done", "partly", "skipped", "missed")


@dataclass
class Clinic:
    admin_id: int
    ben_id: int
    cleo_id: int
    patient_ids: list[int]


def _table(model: Any) -> Any:
    return model.__table__


async def _insert(db: Database, model: Any, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
    if not rows:
        return
    async with db.engine.begin() as conn:
        for start in range(0, len(rows), chunk):
            await conn.execute(insert(_table(model)), rows[start : start + chunk])


async def seed_clinic(
    db: Database, now: datetime, *, patients: int = 12, days: int = 30, seed: int = 15, notes: bool = True
) -> Clinic:
    rng = random.Random(seed)
    async with db.session() as session:
        staff = [
            Staff(telegram_id=ADMIN, name="Admin Anna", role="admin", created_at=now),
            Staff(telegram_id=BEN, name="Dr Ben", role="therapist", created_at=now),
            Staff(telegram_id=CLEO, name="Dr Cleo", role="therapist", created_at=now),
        ]
        session.add_all(staff)
        await session.commit()
        ids = [s.id for s in staff]
    assert all(i is not None for i in ids)
    admin_id, ben_id, cleo_id = (int(i or 0) for i in ids)
    people = []
    for n in range(1, patients + 1):
        status = PatientStatus.ACTIVE.value
        if n % 9 == 0:
            status = PatientStatus.UNREACHABLE.value
        elif n % 13 == 0:
            status = PatientStatus.PAUSED.value
        people.append(
            {
                "alias": f"LWS-{n:04d}",
                "telegram_id": 1_500_000 + n,
                "language": "de" if n % 3 == 0 else "en",
                "timezone": "Europe/Berlin",
                "status": status,
                "therapist_id": ben_id if n % 2 else cleo_id,
                "surgery_date": (now - timedelta(days=days + rng.randint(0, 20))).date(),
                "surgery_type": "lumbar",
                "programme_id": "lumbar-example",
                "consent_at": now - timedelta(days=days),
                "consent_version": "1",
                "enrol_step": "done",
                "session_times": "09:00,18:00",
                "created_at": now - timedelta(days=days),
                "last_activity_at": now - timedelta(hours=rng.randint(1, 30)),
            }
        )
    await _insert(db, Patient, people)
    async with db.session() as session:
        from sqlmodel import col, select

        rows = (await session.exec(select(Patient).order_by(col(Patient.id)))).all()
    pids = [int(p.id or 0) for p in rows]
    sessions: list[dict[str, Any]] = []
    checkins: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    note_rows: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    lessons: list[dict[str, Any]] = []
    checkin_id = 0
    async with db.engine.connect() as conn:
        from sqlalchemy import func
        from sqlalchemy import select as sa_select

        checkin_id = int(
            (await conn.execute(sa_select(func.coalesce(func.max(_table(CheckIn).c.id), 0)))).scalar() or 0
        )
    for p in rows:
        pid = int(p.id or 0)
        today = local_date(p, now)
        trend = rng.uniform(-0.08, 0.04)
        for back in range(days, 0, -1):
            day: date = today - timedelta(days=back)
            at = now - timedelta(days=back)
            for slot in ("09:00", "18:00"):
                status = rng.choice(STATUSES)
                sessions.append(
                    {
                        "patient_id": pid,
                        "local_date": day,
                        "slot": slot,
                        "phase_id": "early",
                        "status": status,
                        "answered_at": at if status in ("done", "partly", "skipped") else None,
                        "created_at": at,
                        "step": "closed",
                    }
                )
            pain = max(0, min(10, round(6 + trend * (days - back) + rng.uniform(-1.5, 1.5))))
            mood = max(0, min(4, round(2 + rng.uniform(-1.4, 1.4))))
            for item, value in (("pain", pain), ("mood", mood)):  # the content's questionnaires "pain", "mood"
                checkin_id += 1
                checkins.append(
                    {
                        "id": checkin_id,
                        "patient_id": pid,
                        "questionnaire_id": item,
                        "status": "complete",
                        "started_at": at,
                        "completed_at": at,
                        "local_date": day,
                    }
                )
                answers.append(
                    {
                        "checkin_id": checkin_id,
                        "patient_id": pid,
                        "item_id": item,
                        "value": value,
                        "text": "",
                        "answered_at": at,
                    }
                )
            if notes and back % 10 == 3:
                note_rows.append(
                    {"patient_id": pid, "text": "Knee felt stiff after the walk.", "crisis": False, "created_at": at}
                )
        if pid % 5 == 0:
            alerts.append(
                {
                    "patient_id": pid,
                    "key": f"seed:{pid}",
                    "severity": "urgent",
                    "kind": "red_flag",
                    "detail": "Fever above 38 °C reported",
                    "created_at": now - timedelta(hours=5),
                }
            )
        if pid % 7 == 0:
            lessons.append(
                {"patient_id": pid, "lesson_id": "wound-care", "safety": True, "delivered_at": now - timedelta(days=3)}
            )
    await _insert(db, ExerciseSession, sessions)
    await _insert(db, CheckIn, checkins)
    await _insert(db, Answer, answers)
    await _insert(db, Note, note_rows)
    await _insert(db, Alert, alerts)
    await _insert(db, LessonProgress, lessons)
    return Clinic(admin_id, ben_id, cleo_id, pids)
