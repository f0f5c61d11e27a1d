"""Tapering (rehab_bot.tapering): nudges stop after weeks kept up, and come back when a week falls short."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from factories import make_patient

from rehab_bot import tapering
from rehab_bot.clock import FakeClock
from rehab_bot.db import Database
from rehab_bot.models import ExerciseSession

TODAY = date(2026, 6, 10)


def days(statuses_per_day: list[list[str]]) -> list[tuple[date, str]]:
    """Rows for the days before today, yesterday first."""
    return [(TODAY - timedelta(days=1 + n), s) for n, day in enumerate(statuses_per_day) for s in day]


def test_two_weeks_at_or_above_the_threshold_stop_the_nudges() -> None:
    good = [["done", "done"]] * 14
    assert tapering.kept_up(days(good), TODAY, 2, 0.8)
    assert not tapering.kept_up(days(good), TODAY, 0, 0.8), "0 weeks: never"
    assert tapering.kept_up(days(good[:13]), TODAY, 2, 0.8), "a week with a day without sessions still counts"
    # 4 of 5 resolved (80 %) in a week still counts; 3 of 5 does not.
    week = [["done"], ["done"], ["partly"], ["done"], ["skipped"], [], []]
    assert tapering.kept_up(days(week + week), TODAY, 2, 0.8)
    short = [["done"], ["missed"], ["partly"], ["done"], ["skipped"], [], []]
    assert not tapering.kept_up(days(week + short), TODAY, 2, 0.8)
    assert not tapering.kept_up(days(short + week), TODAY, 2, 0.8), "the nudges come back after a short week"
    # A paused week (nothing resolved) is not a kept-up week; today's sessions do not count yet.
    assert not tapering.kept_up(days(week + [[]] * 7), TODAY, 2, 0.8)
    assert not tapering.kept_up([(TODAY, "done")] * 10, TODAY, 1, 0.8)


async def test_nudges_stopped_reads_the_patients_sessions(db: Database, clock: FakeClock) -> None:
    clock.set(datetime(2026, 6, 10, 10, tzinfo=UTC))
    patient, _ = await make_patient(db, clock, times=())
    other, _ = await make_patient(db, clock, times=())
    async with db.session() as s:
        for n in range(1, 15):
            s.add(
                ExerciseSession(
                    patient_id=patient.id, local_date=TODAY - timedelta(days=n), slot="09:00", status="done"
                )
            )
            s.add(
                ExerciseSession(
                    patient_id=other.id, local_date=TODAY - timedelta(days=n), slot="09:00", status="missed"
                )
            )
        await s.commit()
        assert await tapering.nudges_stopped(s, patient, clock.now(), 2, 0.8)
        assert not await tapering.nudges_stopped(s, patient, clock.now(), 3, 0.8), "only two weeks of sessions"
        assert not await tapering.nudges_stopped(s, patient, clock.now(), 0, 0.8)
        assert not await tapering.nudges_stopped(s, other, clock.now(), 2, 0.8)
