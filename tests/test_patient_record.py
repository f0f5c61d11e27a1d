"""The patient page's calendar (rehab_bot.patient_record.calendar): from the week the patient enrolled,
at most the last 12 weeks, on real SQLite files and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from factories import make_patient

from rehab_bot import patient_record
from rehab_bot.clock import FakeClock
from rehab_bot.db import Database
from rehab_bot.models import ExerciseSession, Patient

NOW = datetime(2026, 6, 10, 10, tzinfo=UTC)  # a Wednesday; 12:00 in Berlin
TODAY = date(2026, 6, 10)
MONDAY = date(2026, 6, 8)


async def _calendar(db: Database, patient: Patient) -> list[list[patient_record.Day]]:
    async with db.session() as session:
        stored = await session.get(Patient, patient.id)
        assert stored is not None
        return await patient_record.calendar(session, stored, NOW)


async def _sessions(db: Database, patient: Patient, *days: date) -> None:
    async with db.session() as session:
        for day in days:
            session.add(ExerciseSession(patient_id=patient.id, local_date=day, slot="09:00", status="done"))
        await session.commit()


async def test_a_patient_enrolled_this_week_sees_one_week_from_the_day_they_enrolled(
    db: Database, clock: FakeClock
) -> None:
    clock.set(NOW)
    # Invited last week, agreed yesterday (Tuesday): the week starts at the agreement.
    patient, _ = await make_patient(db, clock, created_at=NOW - timedelta(days=9), consent_at=NOW - timedelta(days=1))
    [week] = await _calendar(db, patient)
    assert [d.day for d in week] == [MONDAY + timedelta(days=i) for i in range(7)]
    assert [d.before for d in week] == [True, False, False, False, False, False, False]
    assert [d.future for d in week] == [False, False, False, True, True, True, True]
    assert patient_record.since([week]) == date(2026, 6, 9)


async def test_five_weeks_after_enrolment_shows_five_weeks_and_says_since_when(db: Database, clock: FakeClock) -> None:
    clock.set(NOW)
    enrolled = datetime(2026, 5, 14, 8, tzinfo=UTC)  # a Thursday, four weeks and six days ago
    patient, _ = await make_patient(db, clock, created_at=enrolled, consent_at=enrolled)
    await _sessions(db, patient, date(2026, 5, 14), date(2026, 6, 1))
    weeks = await _calendar(db, patient)
    assert [w[0].day for w in weeks] == [date(2026, 5, 11) + timedelta(weeks=n) for n in range(5)]
    assert sum(d.before for w in weeks for d in w) == 3  # Monday to Wednesday of the first week
    assert {d.day: d.kind for w in weeks for d in w}[date(2026, 5, 14)] == "done"
    assert patient_record.since(weeks) == date(2026, 5, 14)


async def test_long_after_enrolment_the_last_12_weeks(db: Database, clock: FakeClock) -> None:
    clock.set(NOW)
    enrolled = NOW - timedelta(days=200)
    patient, _ = await make_patient(db, clock, created_at=enrolled, consent_at=enrolled)
    weeks = await _calendar(db, patient)
    assert len(weeks) == 12 and weeks[-1][0].day == MONDAY
    assert not any(d.before for w in weeks for d in w)
    assert patient_record.since(weeks) is None


async def test_a_session_before_the_consent_moves_the_start_back_so_nothing_is_hidden(
    db: Database, clock: FakeClock
) -> None:
    # Consent given again to a new text yesterday; the sessions of the weeks before stay on the calendar.
    clock.set(NOW)
    patient, _ = await make_patient(db, clock, created_at=NOW - timedelta(days=30), consent_at=NOW - timedelta(days=1))
    await _sessions(db, patient, date(2026, 5, 20))
    weeks = await _calendar(db, patient)
    assert weeks[0][0].day == date(2026, 5, 18) and len(weeks) == 4
    assert patient_record.since(weeks) == date(2026, 5, 20)


async def test_enrolment_is_the_record_before_the_consent_and_never_after_today(db: Database, clock: FakeClock) -> None:
    clock.set(NOW)
    waiting, _ = await make_patient(db, clock, created_at=NOW - timedelta(days=8), consent_at=None)
    weeks = await _calendar(db, waiting)
    assert len(weeks) == 2 and patient_record.since(weeks) == date(2026, 6, 2)
    ahead, _ = await make_patient(db, clock, created_at=NOW + timedelta(days=20), consent_at=None)  # a clock ahead
    [week] = await _calendar(db, ahead)
    assert patient_record.since([week]) == TODAY
