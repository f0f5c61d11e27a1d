"""Learned reminder times (rehab_bot.timing): the centre, the decision, the limits, and the database side."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest
from factories import make_patient
from sqlmodel import col, select

from rehab_bot import patient as patient_core
from rehab_bot import programme, timing
from rehab_bot.clock import FakeClock
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.models import Delivery, ExerciseSession, Kind, Patient, ReminderRule, TimingProposal
from rehab_bot.schedule import QuietHours, minutes_of_day

CONTENT = load_content(None)
M = minutes_of_day


# --- the robust centre ------------------------------------------------------------------------


def test_no_centre_before_seven_completions() -> None:
    assert timing.robust_centre([600] * 6) is None
    assert timing.robust_centre([600] * 7) == 600


def test_centre_ignores_outliers() -> None:
    usual = [640, 645, 635, 650, 640, 638, 642, 644, 636, 641]
    assert timing.robust_centre(usual) == 640  # the median, 640.5, rounded half to even
    # Two evenings after a hospital visit and one very early morning do not move it.
    assert timing.robust_centre([*usual, 1260, 1275, 300]) == 640
    # A plain mean would have been dragged by more than an hour.
    with_outliers = [*usual, 1260, 1275, 300]
    assert abs(sum(with_outliers) / len(with_outliers) - 640) > 40
    # No habit (fewer than half agree): no centre, so nothing is proposed.
    assert timing.robust_centre([400, 520, 640, 760, 880, 1000, 1120, 1240]) is None


def test_centre_uses_only_the_last_fourteen() -> None:
    old = [480] * 20  # the patient used to exercise at 08:00 ...
    new = [660] * 14  # ... and now at 11:00
    assert timing.robust_centre(old + new) == 660


def test_centre_converges_on_a_noisy_habit() -> None:
    rng = random.Random(7)  # this seed gives the first habit 7 stray days of 14
    for habit in (450, 640, 1110):
        times = [round(rng.gauss(habit, 15)) if rng.random() > 0.15 else rng.randrange(360, 1320) for _ in range(14)]
        centre = timing.robust_centre(times)
        assert centre is not None and abs(centre - habit) <= 15, (habit, times, centre)


# --- the decision -----------------------------------------------------------------------------


def test_a_move_needs_several_days_away_from_the_reminder() -> None:
    at_ten_forty = [640] * 9
    decision = timing.decide(at_ten_forty, M("09:00"), [], None)
    assert decision == timing.Decision(current=540, usual=640, to=630)  # 10:30, a little before 10:40
    assert timing.decide(at_ten_forty[:8], M("09:00"), [], None) is None  # 7 + 3 - 1 completions needed
    assert timing.decide([620] * 9, M("10:00"), [], None) is None  # 10:10 is within 30 minutes of 10:00
    # One changed day is not "several days": the centre is still the reminder's time.
    assert timing.decide([540] * 10 + [700], M("08:50"), [], None) is None


def test_the_learned_time_converges_when_moves_are_accepted() -> None:
    """A patient who exercises around 17:20 gets a reminder just before it, and no further questions."""
    rng = random.Random(3)
    reminder = M("08:00")
    history: list[int] = []
    moves = 0
    for _ in range(40):
        history.append(max(reminder, round(rng.gauss(M("17:20"), 12))))
        decision = timing.decide(history, reminder, [], None)
        if decision is not None:
            reminder, moves = decision.to, moves + 1
    assert M("16:55") <= reminder <= M("17:15")
    assert moves <= 3


def test_moves_never_enter_quiet_hours() -> None:
    night = QuietHours(time(21, 30), time(7, 30))
    late = timing.decide([M("22:40")] * 10, M("19:00"), [], night)
    assert late is not None and late.to == M("21:25")  # the last allowed time before quiet hours
    early = timing.decide([M("06:10")] * 10, M("09:00"), [], night)
    assert early is not None and early.to == M("07:30")
    # Pulled back to within 15 minutes of the reminder: no move at all.
    assert timing.decide([M("22:40")] * 10, M("21:15"), [], night) is None
    for minutes in range(0, 24 * 60, 5):
        decision = timing.decide([minutes] * 10, M("12:00"), [], night)
        if decision is not None:
            assert not night.contains(time(decision.to // 60, decision.to % 60)), minutes


def test_moves_never_cross_another_session() -> None:
    sessions = [M("08:00"), M("18:00")]
    decision = timing.decide([M("19:00")] * 10, M("13:00"), sessions, None)
    assert decision is not None and decision.to == M("17:30")  # 30 minutes before the evening session
    decision = timing.decide([M("07:00")] * 10, M("13:00"), sessions, None)
    assert decision is not None and decision.to == M("08:30")
    for minutes in range(0, 24 * 60, 5):
        decision = timing.decide([minutes] * 10, M("13:00"), sessions, None)
        if decision is not None:
            assert M("08:30") <= decision.to <= M("17:30"), minutes


# --- the database side ------------------------------------------------------------------------

WED = date(2026, 6, 10)


def berlin(day: date, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=2)


async def planned(
    db: Database, clock: FakeClock, times: str = "08:00,13:00,18:00"
) -> tuple[Patient, list[ReminderRule]]:
    patient, _ = await make_patient(
        db,
        clock,
        times=(),
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=5),  # weeks 1-2: three sessions a day
        session_times=times,
    )
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        rules = await programme.schedule_sessions(s, p, CONTENT, clock.now())
        await s.commit()
    return patient, rules


async def seed_done(db: Database, patient: Patient, rule: ReminderRule, days: list[tuple[date, str]]) -> None:
    """Sessions of `rule` logged done at the given local times (with the delivery that sent them)."""
    assert patient.telegram_id is not None
    async with db.session() as s:
        for day, done_at in days:
            due = berlin(day, rule.local_time)
            delivery = Delivery(
                key=f"r{rule.id}:{day}:{rule.local_time}",
                kind=Kind.SESSION.value,
                priority=3,
                rule_id=rule.id,
                patient_id=patient.id,
                chat_id=patient.telegram_id,
                local_date=day,
                slot=rule.local_time,
                due_at=due,
                not_before=due,
                status="sent",
            )
            s.add(delivery)
            await s.flush()
            s.add(
                ExerciseSession(
                    patient_id=patient.id,
                    delivery_id=delivery.id,
                    local_date=day,
                    slot=rule.local_time,
                    status="done",
                    step="closed",
                    answered_at=berlin(day, done_at),
                )
            )
        await s.commit()


async def test_asked_once_then_yes_moves_the_reminder(db: Database, clock: FakeClock) -> None:
    clock.set(berlin(WED, "20:00"))
    patient, rules = await planned(db, clock)
    days = [(WED - timedelta(days=9 - i), "09:40" if i != 4 else "16:00") for i in range(10)]
    await seed_done(db, patient, rules[0], days)
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        assert await timing.completions(s, p, 0, clock.now()) == [M(t) for _, t in days]
        assert await timing.completions(s, p, 1, clock.now()) == []
        outcome = await timing.consider(s, p, 0, CONTENT, clock.now(), None)
        assert outcome is not None and not outcome.moved
        assert (outcome.proposal.from_time, outcome.proposal.usual_time, outcome.proposal.to_time) == (
            "08:00",
            "09:40",
            "09:30",
        )
        await s.commit()
        proposal_id = outcome.proposal.id
        assert proposal_id is not None
        # Asked once: the same reminder time is not asked about again.
        assert await timing.consider(s, p, 0, CONTENT, clock.now(), None) is None
        # Nothing to learn about the sessions without history.
        assert await timing.consider(s, p, 1, CONTENT, clock.now(), None) is None
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        other = await timing.answer(s, p, proposal_id + 1000, True, CONTENT, clock.now(), None)
        assert other is None
        answered = await timing.answer(s, p, proposal_id, True, CONTENT, clock.now(), None)
        assert answered is not None and answered.status == "accepted"
        await s.commit()
        assert await timing.answer(s, p, proposal_id, True, CONTENT, clock.now(), None) is None  # once
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.session_times == "09:30,13:00,18:00"  # what the therapist sees
        rule = await s.get(ReminderRule, rules[0].id)
        assert rule is not None and rule.local_time == "09:30" and rule.active
        assert rule.next_due_at == berlin(WED + timedelta(days=1), "09:30")
        # The rule has moved: the learned time now matches, no new question.
        assert await timing.consider(s, p, 0, CONTENT, clock.now(), None) is None


async def test_no_keeps_the_reminder(db: Database, clock: FakeClock) -> None:
    clock.set(berlin(WED, "20:00"))
    patient, rules = await planned(db, clock)
    await seed_done(db, patient, rules[2], [(WED - timedelta(days=i), "20:30") for i in range(10)])
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        outcome = await timing.consider(s, p, 2, CONTENT, clock.now(), None)
        assert outcome is not None and outcome.proposal.to_time == "20:20"
        assert outcome.proposal.id is not None
        answered = await timing.answer(s, p, outcome.proposal.id, False, CONTENT, clock.now(), None)
        assert answered is not None and answered.status == "declined"
        await s.commit()
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.session_times == "08:00,13:00,18:00"
        assert await timing.consider(s, p, 2, CONTENT, clock.now(), None) is None


async def test_automatic_moves_inside_the_patients_window(db: Database, clock: FakeClock) -> None:
    clock.set(berlin(WED, "20:00"))
    patient, rules = await planned(db, clock)
    await seed_done(db, patient, rules[1], [(WED - timedelta(days=i), "15:00") for i in range(10)])
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        with pytest.raises(ValueError):
            await timing.set_window(s, p, "18:00", "08:00", clock.now())
        await timing.set_window(s, p, "10:00", "14:00", clock.now())
        outcome = await timing.consider(s, p, 1, CONTENT, clock.now(), None)
        assert outcome is not None and not outcome.moved  # 14:50 is outside the window: asked
        await s.rollback()
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        await timing.set_window(s, p, "07:00", "21:00", clock.now())
        outcome = await timing.consider(s, p, 1, CONTENT, clock.now(), None)
        assert outcome is not None and outcome.moved and outcome.proposal.status == "auto"
        await s.commit()
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.session_times == "08:00,14:50,18:00"
        assert await timing.clear_window(s, p) and not await timing.clear_window(s, p)


async def test_a_yes_after_the_reminder_changed_moves_nothing(db: Database, clock: FakeClock) -> None:
    clock.set(berlin(WED, "20:00"))
    patient, rules = await planned(db, clock)
    await seed_done(db, patient, rules[0], [(WED - timedelta(days=i), "10:00") for i in range(10)])
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        outcome = await timing.consider(s, p, 0, CONTENT, clock.now(), None)
        assert outcome is not None and outcome.proposal.id is not None
        p.session_times = "08:15,13:00,18:00"  # the therapist changed the time meanwhile
        await programme.schedule_sessions(s, p, CONTENT, clock.now())
        answered = await timing.answer(s, p, outcome.proposal.id, True, CONTENT, clock.now(), None)
        assert answered is not None and answered.status == "stale"
        await s.commit()
        rows = (await s.exec(select(TimingProposal).where(col(TimingProposal.patient_id) == p.id))).all()
        assert [r.status for r in rows] == ["stale"]
        assert p.session_times == "08:15,13:00,18:00"


async def test_a_tapered_patients_move_keeps_clear_of_the_sessions_tapering_left_out(
    db: Database, clock: FakeClock
) -> None:
    # Weeks 7-12 (09:00 and 17:00), tapered to one reminder a day: only the 09:00 rule is active, but
    # 17:00 is still the patient's time (Patient.session_times) and comes back when tapering ends.
    clock.set(berlin(WED, "20:00"))
    patient, _ = await make_patient(
        db,
        clock,
        times=(),
        programme_id="lumbar-example",
        surgery_date=WED - timedelta(days=50),
        session_times="09:00,17:00",
        tapered_since=berlin(WED - timedelta(days=20), "09:30"),
    )
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        rules = await programme.schedule_sessions(s, p, CONTENT, clock.now())
        await s.commit()
    assert [(programme.session_index(r), r.local_time) for r in rules] == [(0, "09:00")]
    await seed_done(db, patient, rules[0], [(WED - timedelta(days=i), "18:40") for i in range(10)])
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        outcome = await timing.consider(s, p, 0, CONTENT, clock.now(), None)
        # Never across the 17:00 session: 30 minutes before it at the latest.
        assert outcome is not None and outcome.proposal.to_time == "16:30"
        assert outcome.proposal.id is not None
        answered = await timing.answer(s, p, outcome.proposal.id, True, CONTENT, clock.now(), None)
        assert answered is not None and answered.status == "accepted"
        await s.commit()
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None and p.session_times == "16:30,17:00"
        [rule] = await programme.session_rules(s, p)
        # The reminder the patient said Yes to is where they were told it would be.
        assert (programme.session_index(rule), rule.local_time) == (0, "16:30")


async def test_a_new_timezone_does_not_turn_past_sessions_into_other_hours(db: Database, clock: FakeClock) -> None:
    # Ten days of the 08:00 session done at 08:20 in Berlin: the reminder fits the habit.
    clock.set(berlin(WED, "20:00"))
    patient, rules = await planned(db, clock)
    await seed_done(db, patient, rules[0], [(WED - timedelta(days=i), "08:20") for i in range(10)])
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        assert await timing.completions(s, p, 0, clock.now()) == [M("08:20")] * 10
        # The patient flies to New York and tells the bot: their sessions were at 08:20 their time,
        # not at 02:20 New York time, and the 08:00 reminder still fits them.
        await patient_core.set_timezone(s, p, "America/New_York", clock.now())
        await s.commit()
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        assert await timing.completions(s, p, 0, clock.now()) == [M("08:20")] * 10
        assert await timing.consider(s, p, 0, CONTENT, clock.now(), None) is None


async def test_a_window_until_24_00_allows_a_move_late_in_the_evening(db: Database, clock: FakeClock) -> None:
    # /timing 08:00-24:00 was refused ("the earlier first"): 24:00 reads as 00:00, before 08:00.
    clock.set(berlin(WED, "20:00"))
    patient, rules = await planned(db, clock)
    await seed_done(db, patient, rules[2], [(WED - timedelta(days=i), "23:40") for i in range(10)])
    for quiet, moved_to in (
        (None, "23:30"),
        (QuietHours(time(23), time(7)), "22:55"),
        (QuietHours(time(22), time(0)), "21:55"),
    ):
        async with db.session() as s:
            p = await s.get(Patient, patient.id)
            assert p is not None
            await timing.set_window(s, p, "08:00", "00:00", clock.now())  # as parse_span reads "08:00-24:00"
            window = await timing.window_of(s, p.id or 0)
            assert (
                window is not None and timing.in_window(window, M("23:55")) and not timing.in_window(window, M("07:55"))
            )
            outcome = await timing.consider(s, p, 2, CONTENT, clock.now(), quiet)
            # Inside the window: moved by itself; quiet hours (also those ending at midnight) still win.
            assert outcome is not None and outcome.moved and outcome.proposal.to_time == moved_to, quiet
            await s.rollback()
    async with db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        for start, end in (("00:00", "00:00"), ("23:00", "00:00")):  # the whole day; the last hour
            await timing.set_window(s, p, start, end, clock.now())
        with pytest.raises(ValueError):
            await timing.set_window(s, p, "08:00", "08:00", clock.now())
