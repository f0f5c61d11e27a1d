"""Tapering (rehab_bot.tapering): nudges stop after weeks kept up, and come back when a week falls short."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from factories import make_patient
from sqlmodel import col, select

from rehab_bot import programme, tapering
from rehab_bot.clock import FakeClock
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.models import Delivery, ExerciseSession, Patient
from rehab_bot.programme import planned_rules
from rehab_bot.schedule import parse_days

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


# --- less frequent reminders, as the programme's content allows ----------------------------------

SURGERY = TODAY - timedelta(days=50)  # day 50: the built-in example's "weeks-7-12" (2 a day, tapered 1)


def test_planned_rules_follow_the_phases_tapered_frequency() -> None:

    lumbar = load_content(None).programmes["lumbar-example"]
    patient = Patient(alias="x", surgery_date=SURGERY, session_times="08:30,18:00")
    _, full = planned_rules(lumbar, patient, TODAY)
    assert [(r.index, r.local_time, r.days) for r in full] == [(0, "08:30", ""), (1, "18:00", "")]
    patient.tapered_since = datetime(2026, 6, 1, tzinfo=UTC)
    phase, fewer = planned_rules(lumbar, patient, TODAY)
    assert phase is not None and phase.id == "weeks-7-12"
    assert [(r.index, r.local_time, r.days) for r in fewer] == [(0, "08:30", "")], "one a day, the first time"
    # After week 12 (once a day): tapered to Monday, Wednesday and Friday.
    _, weekly = planned_rules(lumbar, patient, SURGERY + timedelta(days=90))
    assert [(r.local_time, r.days) for r in weekly] == [("08:30", "024")]
    # A phase that declares nothing keeps its reminders for a patient who kept up.
    _, early = planned_rules(lumbar, patient, SURGERY + timedelta(days=20))
    assert len(early) == 2 and all(r.days == "" for r in early)


async def test_sync_tapers_the_reminders_once_and_brings_them_back(db: Database, clock: FakeClock) -> None:
    content = load_content(None)
    clock.set(datetime(2026, 6, 10, 5, tzinfo=UTC))  # 07:00 in Berlin, before the first reminder
    patient, _ = await make_patient(
        db, clock, times=(), programme_id="lumbar-example", surgery_date=SURGERY, session_times="08:30,18:00"
    )
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        await programme.schedule_sessions(s, p, content, clock.now())
        for n in range(1, 15):
            for slot in ("08:30", "18:00"):
                s.add(ExerciseSession(patient_id=p.id, local_date=TODAY - timedelta(days=n), slot=slot, status="done"))
        await s.commit()
    lumbar = content.programmes["lumbar-example"]
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        notice = await tapering.sync(s, p, content, clock.now(), 2, 0.8, lumbar)
        assert notice is not None and p.tapered_since == clock.now()
        assert notice.body == content.text("reminders_tapered", "en", weeks=2)
        rules = await programme.session_rules(s, p)
        assert [(r.local_time, r.days) for r in rules] == [("08:30", "")]
        assert p.session_times == "08:30,18:00", "the patient's own times are kept for later"
        assert await tapering.sync(s, p, content, clock.now(), 2, 0.8, lumbar) is None, "once"
        await s.commit()
    # Yesterday both sessions were missed: the last week falls short, the reminders come back.
    async with db.session() as s:
        for row in (
            await s.exec(select(ExerciseSession).where(ExerciseSession.local_date == TODAY - timedelta(days=1)))
        ).all():
            row.status = "missed"
            s.add(row)
        for n in (2, 3):
            for row in (
                await s.exec(select(ExerciseSession).where(ExerciseSession.local_date == TODAY - timedelta(days=n)))
            ).all():
                row.status = "skipped"
                s.add(row)
        await s.commit()
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        first = (await programme.session_rules(s, p))[0]
        back = await tapering.sync(s, p, content, clock.now(), 2, 0.8, lumbar)
        assert back is not None and back.body == content.text("reminders_full", "en", weeks=2)
        assert p.tapered_since is None
        rules = await programme.session_rules(s, p)
        assert [(r.local_time, r.days) for r in rules] == [("08:30", ""), ("18:00", "")]
        assert rules[0].id == first.id, "the first session's rule is kept: no restart, no slot sent twice"
        await s.commit()
        queued = (await s.exec(select(Delivery).where(col(Delivery.key).startswith(tapering.NOTICE_KEY)))).all()
        assert len(queued) == 2


async def test_tapered_sessions_keep_their_place_in_the_day(db: Database, clock: FakeClock) -> None:
    # Weeks 1-2 of the example (3 a day, the middle one shorter), tapered to 2: the first and the last stay.
    content = load_content(None)
    lumbar = content.programmes["lumbar-example"]
    first = dataclasses.replace(lumbar.phases[0], tapered_sessions_per_day=2, tapered_days="0246")
    three = dataclasses.replace(lumbar, phases=[first, *lumbar.phases[1:]])
    surgery = TODAY - timedelta(days=5)
    clock.set(datetime(2026, 6, 10, 5, tzinfo=UTC))
    patient, _ = await make_patient(
        db, clock, times=(), programme_id="lumbar-example", surgery_date=surgery, session_times="08:00,12:00,19:00"
    )
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        full = await programme.schedule_sessions(s, p, content, clock.now(), three)
        assert [(programme.session_index(r), r.local_time, r.days) for r in full] == [
            (0, "08:00", ""),
            (1, "12:00", ""),
            (2, "19:00", ""),
        ]
        ids = [r.id for r in full]
        p.tapered_since = clock.now()
        fewer = await programme.schedule_sessions(s, p, content, clock.now(), three)
        assert [(programme.session_index(r), r.local_time, r.days) for r in fewer] == [
            (0, "08:00", "0246"),
            (2, "19:00", "0246"),
        ]
        assert [r.id for r in fewer] == [ids[0], ids[2]], "the same rules, moved in place"
        assert [programme.session_index(r) for r in await programme.session_rules(s, p)] == [0, 2]
        p.tapered_since = None
        back = await programme.schedule_sessions(s, p, content, clock.now(), three)
        assert [(programme.session_index(r), r.local_time, r.days) for r in back] == [
            (0, "08:00", ""),
            (1, "12:00", ""),
            (2, "19:00", ""),
        ]
        assert back[0].id == ids[0] and back[2].id == ids[2]


async def test_sync_many_reads_a_windows_patients_at_once(db: Database, clock: FakeClock) -> None:
    content = load_content(None)
    lumbar = content.programmes["lumbar-example"]
    clock.set(datetime(2026, 6, 10, 5, tzinfo=UTC))
    kept, short = [
        (
            await make_patient(
                db, clock, times=(), programme_id="lumbar-example", surgery_date=SURGERY, session_times="08:30,18:00"
            )
        )[0]
        for _ in range(2)
    ]
    async with db.session() as s:
        for p in (kept, short):
            row = await s.get(Patient, p.id)
            assert row is not None
            await programme.schedule_sessions(s, row, content, clock.now())
            for n in range(1, 15):
                status = "done" if p is kept or n % 3 else "missed"
                s.add(
                    ExerciseSession(patient_id=p.id, local_date=TODAY - timedelta(days=n), slot="08:30", status=status)
                )
        await s.commit()
    async with db.session() as s:
        rows = [await s.get(Patient, p.id) for p in (kept, short)]
        patients = [r for r in rows if r is not None]
        queued = await tapering.sync_many(
            s, patients, content, clock.now(), 2, 0.8, {p.id: lumbar for p in patients if p.id is not None}
        )
        assert [d.patient_id for d in queued] == [kept.id]
        assert [p.tapered_since is not None for p in patients] == [True, False]
        assert [len(await programme.session_rules(s, p)) for p in patients] == [1, 2]
        assert await tapering.sync_many(s, patients, content, clock.now(), 2, 0.8, {}) == [], "once"


def test_a_tapered_patient_always_has_a_reminder_within_a_week_that_re_checks_the_state() -> None:
    """Why tapering needs no daily job of its own: tapering.sync runs before every session reminder, and
    no programme's plan for a tapered patient goes a week without one (tapered_sessions_per_day >= 1,
    tapered_days names weekdays or none = every day, the maintenance phase weekly). So a short week
    brings the reminders back within a week, and a patient who became eligible is tapered by their next
    reminder, the only message the state changes; nudges read the sessions when they are due."""
    maintenance = Path(__file__).parent / "data" / "maintenance"
    for content in (load_content(None), load_content(maintenance)):
        for prog in content.programmes.values():
            phases = [*prog.phases, *([prog.maintenance] if prog.maintenance is not None else [])]
            for phase in phases:
                patient = Patient(alias="x", surgery_date=SURGERY, session_times="08:30,13:00,18:00")
                patient.tapered_since = datetime(2026, 1, 1, tzinfo=UTC)
                _, rules = planned_rules(prog, patient, SURGERY + timedelta(days=phase.from_day))
                assert rules, f"{prog.id}/{phase.id}: a tapered patient keeps at least one reminder"
                for rule in rules:
                    assert rule.days == "" or 1 <= len(parse_days(rule.days)) <= 7, (prog.id, phase.id)
                    assert rule.every_n_days is None or rule.every_n_days <= 7, (prog.id, phase.id)
