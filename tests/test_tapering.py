"""Tapering (rehab_bot.tapering): nudges stop after weeks kept up, and come back when a week falls short."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from factories import make_patient
from sqlmodel import col, select

from rehab_bot import programme, tapering
from rehab_bot.clock import FakeClock
from rehab_bot.content import Content, Programme, load_content
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


# --- the clinic switches tapering off later -------------------------------------------------------


async def tapered_patient(db: Database, clock: FakeClock, content: Content) -> Patient:
    """A patient in the example's "weeks-7-12" (recorded), tapered to one reminder a day, two weeks kept up."""
    clock.set(datetime(2026, 6, 10, 5, tzinfo=UTC))  # 07:00 in Berlin
    patient, _ = await make_patient(
        db,
        clock,
        times=(),
        programme_id="lumbar-example",
        surgery_date=SURGERY,
        phase_id="weeks-7-12",
        session_times="08:30,18:00",
    )
    await tapered_and_kept_up(db, clock, content, patient, TODAY)
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        assert [r.local_time for r in await programme.session_rules(s, p)] == ["08:30"]
    return patient


async def tapered_and_kept_up(
    db: Database, clock: FakeClock, content: Content, patient: Patient, today: date, prog: Programme | None = None
) -> None:
    """Tapered three days ago, its reminders planned now, and both sessions (08:30, 18:00) done on each
    of the 14 days before today."""
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        p.tapered_since = clock.now() - timedelta(days=3)
        if prog is None:  # the patient's own, as schedule_sessions resolves it
            await programme.schedule_sessions(s, p, content, clock.now())
        else:
            await programme.schedule_sessions(s, p, content, clock.now(), prog)
        for n in range(1, 15):
            for slot in ("08:30", "18:00"):
                s.add(ExerciseSession(patient_id=p.id, local_date=today - timedelta(days=n), slot=slot, status="done"))
        await s.commit()


async def test_tapering_switched_off_brings_the_full_reminders_back_with_a_neutral_message(
    db: Database, clock: FakeClock
) -> None:
    content = load_content(None)
    lumbar = content.programmes["lumbar-example"]
    patient = await tapered_patient(db, clock, content)
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        first = (await programme.session_rules(s, p))[0]
        queued = await tapering.sync_many(s, [p], content, clock.now(), 0, 0.8, {patient.id: lumbar})
        assert [d.body for d in queued] == [content.text("reminders_plan_changed", "en")]
        assert "missed" not in queued[0].body and "ausgefallen" not in content.text("reminders_plan_changed", "de")
        assert p.tapered_since is None
        rules = await programme.session_rules(s, p)
        assert [(r.local_time, r.days) for r in rules] == [("08:30", ""), ("18:00", "")]
        assert rules[0].id == first.id, "re-planned in place: no slot sent twice"
        await s.commit()
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.tapered_since is None, "stored"
        assert await tapering.sync_many(s, [p], content, clock.now(), 0, 0.8, {patient.id: lumbar}) == [], "once"
        assert await tapering.sync(s, p, content, clock.now(), 0, 0.8, lumbar) is None
        queued = (await s.exec(select(Delivery).where(col(Delivery.key).startswith(tapering.NOTICE_KEY)))).all()
        assert len(queued) == 1


async def test_a_phase_that_no_longer_tapers_brings_the_full_reminders_back(db: Database, clock: FakeClock) -> None:
    # The clinic took tapered_sessions_per_day out of "weeks-7-12"; tapering itself stays on (2 weeks).
    content = load_content(None)
    lumbar = content.programmes["lumbar-example"]
    patient = await tapered_patient(db, clock, content)
    plain = [
        dataclasses.replace(ph, tapered_sessions_per_day=None) if ph.id == "weeks-7-12" else ph for ph in lumbar.phases
    ]
    edited = dataclasses.replace(lumbar, phases=plain)
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        notice = await tapering.sync(s, p, content, clock.now(), 2, 0.8, edited)
        assert notice is not None and notice.body == content.text("reminders_plan_changed", "en")
        assert p.tapered_since is None
        assert [r.local_time for r in await programme.session_rules(s, p)] == ["08:30", "18:00"]
        # Still kept up, but the phase allows no fewer reminders: not recorded as tapered again.
        assert await tapering.sync_many(s, [p], content, clock.now(), 2, 0.8, {patient.id: edited}) == []
        assert p.tapered_since is None
        # The clinic puts it back: tapered again, with the usual message.
        again = await tapering.sync(s, p, content, clock.now(), 2, 0.8, lumbar)
        assert again is not None and again.body == content.text("reminders_tapered", "en", weeks=2)
        assert p.tapered_since == clock.now()


def test_wanted_state_and_message() -> None:
    lumbar = load_content(None).programmes["lumbar-example"]
    patient = Patient(alias="x", surgery_date=SURGERY, phase_id="weeks-7-12", session_times="08:30,18:00")
    assert tapering.wanted(patient, lumbar, TODAY, 2, True) == (True, tapering.TAPERED_TEXT)
    assert tapering.wanted(patient, lumbar, TODAY, 2, False) == (False, tapering.FULL_TEXT), "fell short"
    assert tapering.wanted(patient, lumbar, TODAY, 0, True) == (False, tapering.CHANGED_TEXT), "switched off"
    assert tapering.wanted(patient, lumbar, TODAY, 0, False) == (False, tapering.CHANGED_TEXT)
    early = SURGERY + timedelta(days=20)  # "weeks-3-6" declares no tapering
    patient.phase_id = "weeks-3-6"
    phase = lumbar.phase_for(20)
    assert phase is not None and phase.id == "weeks-3-6" and not phase.tapers
    assert tapering.wanted(patient, lumbar, early, 2, True) == (False, tapering.CHANGED_TEXT)
    # The day "weeks-7-12" starts (not yet recorded: programme.sync_phase does that next): the weeks kept up count.
    assert tapering.wanted(patient, lumbar, TODAY, 2, True) == (True, tapering.TAPERED_TEXT)
    assert tapering.wanted(patient, lumbar, TODAY, 2, False) == (False, tapering.FULL_TEXT)
    # The day a phase without tapering starts (weeks-7-12 edited to declare none): its full schedule, whether
    # kept up or not and whatever the clinic's setting, told as the new phase's.
    edited = untapered(lumbar, "weeks-7-12")
    assert tapering.wanted(patient, edited, TODAY, 2, True) == (False, tapering.PHASE_TEXT)
    assert tapering.wanted(patient, edited, TODAY, 2, False) == (False, tapering.PHASE_TEXT)
    assert tapering.wanted(patient, edited, TODAY, 0, True) == (False, tapering.PHASE_TEXT)
    assert tapering.wanted(patient, lumbar, TODAY, 0, True) == (False, tapering.PHASE_TEXT), "off, and a new phase"
    patient.phase_id = "weeks-7-12"  # recorded: the clinic took it out of the phase the patient is in
    assert tapering.wanted(patient, edited, TODAY, 2, True) == (False, tapering.CHANGED_TEXT)


def untapered(prog: Programme, phase_id: str) -> Programme:
    """The programme with one phase's tapering taken out."""
    phases = [
        dataclasses.replace(ph, tapered_sessions_per_day=None, tapered_days="") if ph.id == phase_id else ph
        for ph in prog.phases
    ]
    return dataclasses.replace(prog, phases=phases)


# --- a tapered patient moves into the next phase ---------------------------------------------------

NEXT = TODAY + timedelta(days=7)  # a Wednesday: the clock starts on TODAY, so the eve of NEXT lies ahead


async def tapered_on_the_eve_of(db: Database, clock: FakeClock, content: Content, prog: Programme, day: int) -> Patient:
    """A patient (08:30, 18:00) tapered three days ago, two weeks kept up, planned the evening before the phase of
    `day` (after surgery) starts, which is NEXT; the clock is left at 07:00 in Berlin on NEXT."""
    clock.set(datetime(2026, 6, 16, 18, tzinfo=UTC))  # 20:00 in Berlin, the day before
    surgery = NEXT - timedelta(days=day)
    before = prog.phase_for(day - 1)
    assert before is not None and before.tapers
    patient, _ = await make_patient(
        db,
        clock,
        times=(),
        programme_id=prog.id,
        surgery_date=surgery,
        phase_id=before.id,
        session_times="08:30,18:00",
    )
    await tapered_and_kept_up(db, clock, content, patient, NEXT, prog)
    clock.set(datetime(2026, 6, 17, 5, tzinfo=UTC))
    return patient


async def test_a_phase_without_tapering_brings_the_full_reminders_back_once_as_the_new_phases(
    db: Database, clock: FakeClock
) -> None:
    # "weeks-3-6" tapers to one of two a day here, "weeks-7-12" (from day 42) does not.
    content = load_content(None)
    lumbar = content.programmes["lumbar-example"]
    three_to_six = next(ph for ph in lumbar.phases if ph.id == "weeks-3-6")
    tapers = dataclasses.replace(three_to_six, tapered_sessions_per_day=1)
    edited = untapered(
        dataclasses.replace(lumbar, phases=[tapers if ph is three_to_six else ph for ph in lumbar.phases]), "weeks-7-12"
    )
    patient = await tapered_on_the_eve_of(db, clock, content, edited, 42)
    async with db.session() as first, db.session() as second:
        a = await first.get(Patient, patient.id)
        b = await second.get(Patient, patient.id)
        assert a is not None and b is not None
        assert [r.local_time for r in await programme.session_rules(first, a)] == ["08:30"]
        rule = (await programme.session_rules(first, a))[0]
        # The renderer of the 08:30 reminder: tapering first, then the phase (rehab_bot.session.open_for_deliveries).
        queued = await tapering.sync_many(first, [a], content, clock.now(), 2, 0.8, {patient.id: edited})
        assert [d.body for d in queued] == [content.text(tapering.PHASE_TEXT, "en")]
        assert a.tapered_since is None
        rules = await programme.session_rules(first, a)
        assert [(r.local_time, r.days) for r in rules] == [("08:30", ""), ("18:00", "")]
        assert rules[0].id == rule.id, "re-planned in place: no slot sent twice"
        change = await programme.sync_phase(first, a, content, clock.now(), edited)
        assert change is not None and change.phase.id == "weeks-7-12"
        await first.commit()
        # A second renderer that read the patient before: nothing more to record, nothing more to say.
        assert b.tapered_since is not None and b.phase_id == "weeks-3-6"
        assert await tapering.sync_many(second, [b], content, clock.now(), 2, 0.8, {patient.id: edited}) == []
        assert await tapering.sync(second, b, content, clock.now(), 2, 0.8, edited) is None
        assert await programme.sync_phase(second, b, content, clock.now(), edited) is None
        await second.commit()
    clock.advance(timedelta(hours=12))  # the 18:00 reminder, and a restart: read afresh
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.tapered_since is None and p.phase_id == "weeks-7-12"
        assert await tapering.sync_many(s, [p], content, clock.now(), 2, 0.8, {patient.id: edited}) == []
        assert await programme.sync_phase(s, p, content, clock.now(), edited) is None
        queued = (await s.exec(select(Delivery).where(col(Delivery.key).startswith(tapering.NOTICE_KEY)))).all()
        assert [d.body for d in queued] == [content.text(tapering.PHASE_TEXT, "en")]
    for lang in ("en", "de"):
        text = content.text(tapering.PHASE_TEXT, lang)
        assert text != content.text(tapering.CHANGED_TEXT, lang), "the exercises may change with the phase"
        assert not any(word in text.lower() for word in ("missed", "ausgefallen", "verpasst", "versäumt"))


async def test_a_phase_without_tapering_with_the_same_reminders_changes_them_silently(
    db: Database, clock: FakeClock
) -> None:
    # "weeks-7-12" tapers to one a day, "after-week-12" (one a day) is edited to declare no tapering:
    # the reminders stay the same, so the phase's announcement is all the patient hears.
    content = load_content(None)
    edited = untapered(content.programmes["lumbar-example"], "after-week-12")
    patient = await tapered_on_the_eve_of(db, clock, content, edited, 84)
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        before = [(r.id, r.local_time, r.days) for r in await programme.session_rules(s, p)]
        assert [x[1:] for x in before] == [("08:30", "")]
        assert await tapering.sync_many(s, [p], content, clock.now(), 2, 0.8, {patient.id: edited}) == []
        assert p.tapered_since is None
        change = await programme.sync_phase(s, p, content, clock.now(), edited)
        assert change is not None and change.phase.id == "after-week-12"
        assert [(r.id, r.local_time, r.days) for r in await programme.session_rules(s, p)] == before


async def test_a_phase_that_tapers_too_keeps_the_patient_tapered_without_a_message(
    db: Database, clock: FakeClock
) -> None:
    # The built-in example: "weeks-7-12" tapers to one a day, "after-week-12" to Monday, Wednesday and Friday.
    content = load_content(None)
    lumbar = content.programmes["lumbar-example"]
    patient = await tapered_on_the_eve_of(db, clock, content, lumbar, 84)
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        since = p.tapered_since
        assert await tapering.sync_many(s, [p], content, clock.now(), 2, 0.8, {patient.id: lumbar}) == []
        change = await programme.sync_phase(s, p, content, clock.now(), lumbar)
        assert change is not None and change.phase.id == "after-week-12"
        assert [(r.local_time, r.days) for r in await programme.session_rules(s, p)] == [("08:30", "024")]
        await s.commit()
    clock.advance(timedelta(hours=12))
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.tapered_since == since
        assert await tapering.sync_many(s, [p], content, clock.now(), 2, 0.8, {patient.id: lumbar}) == []
        assert p.tapered_since == since
        assert (await s.exec(select(Delivery).where(col(Delivery.key).startswith(tapering.NOTICE_KEY)))).all() == []
