"""The session core on both databases: outcomes, idempotency, snooze, nudges, the missed sweep, statistics."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import T0, make_patient
from sqlmodel import col, select

from rehab_bot import session as core
from rehab_bot.clock import FakeClock
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.models import Delivery, DeliveryStatus, ExerciseSession, Kind, Patient, PatientStatus, ReminderRule
from rehab_bot.session import Action, Press, Status, Step

TODAY = date(2026, 6, 10)  # T0 is 07:00 on this Wednesday in Berlin
NINE = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)  # 09:00 Berlin


async def patient_in(db: Database, clock: FakeClock, **kw: Any) -> Patient:
    patient, _ = await make_patient(db, clock, times=(), **kw)
    return patient


async def opened(
    db: Database, patient: Patient, *, day: date = TODAY, slot: str = "09:00", message_id: int = 50
) -> int:
    """A session whose reminder went out as message_id."""
    async with db.session() as s:
        es = await core.open_session(s, patient, local_date=day, slot=slot, phase_id="", delivery_id=None, now=T0)
        assert es.id is not None
        await core.bind_message(s, es.id, message_id=message_id, now=T0)
        await s.commit()
        return es.id


async def press(
    db: Database,
    patient: Patient,
    session_id: int,
    action: Action,
    value: str = "",
    *,
    message_id: int | None = 50,
    now: datetime = NINE,
) -> core.Applied | None:
    async with db.session() as s:
        applied = await core.apply_press(s, patient, Press(session_id, action, value), message_id=message_id, now=now)
        await s.commit()
        return applied


async def row(db: Database, session_id: int) -> ExerciseSession:
    async with db.session() as s:
        es = await core.get(s, session_id)
        assert es is not None
        return es


# --- pure parts ----------------------------------------------------------------------------


def test_callback_data_is_typed_short_and_parsed_defensively() -> None:
    big = Press(10**17, Action.PAIN, "10")
    assert len(big.data().encode()) <= 64
    assert core.parse_press(big.data()) == big
    assert core.parse_press("s:12:d") == Press(12, Action.DONE)
    assert core.parse_press("s:12:z:30") == Press(12, Action.SNOOZE, "30")
    for bad in (
        None,
        "",
        "s:12",
        "s:-1:d",
        "s:abc:d",
        "s:12:x",
        "s:12:d:extra",
        "s:12:z:45",
        "s:12:n:11",
        "s:12:e:terrible",
        "s:12:r:bored",
        "e:12:d",
        "s:12:d:1:2",
        "s:" + "9" * 70 + ":d",
    ):
        assert core.parse_press(bad) is None, bad


def test_rule_payloads_are_read_defensively() -> None:
    assert core.parse_payload(core.rule_payload(2)) == core.Ref(index=2)
    assert core.parse_payload(core.one_off_payload(7, 1)) == core.Ref(index=1, session_id=7)
    assert core.parse_payload(core.one_off_payload(7)) == core.Ref(index=0, session_id=7)
    assert core.parse_payload("") == core.Ref()
    assert core.parse_payload("1") == core.Ref(index=1)
    assert core.parse_payload('{"index": 2}') == core.Ref(index=2)
    for junk in ("{", "[1]", '{"session": -3}', '{"session": "2"}', '{"session_id": true}', "null"):
        assert core.parse_payload(junk).session_id is None
        assert core.parse_payload(junk).index == 0


def test_stats_from_rows_streaks_and_adherence() -> None:
    wed = TODAY
    mon, last_mon = wed - timedelta(days=2), wed - timedelta(days=9)
    rows = [
        (last_mon, "done"),
        (last_mon + timedelta(days=1), "missed"),
        (last_mon + timedelta(days=2), "skipped"),
        (last_mon + timedelta(days=3), "done"),
        (last_mon + timedelta(days=5), "missed"),  # Saturday
        (mon - timedelta(days=1), "done"),  # Sunday; last week: 3 of 6
        (mon, "partly"),
        (mon, "done"),
        (mon + timedelta(days=1), "done"),  # Tuesday
        (wed, "done"),
        (wed, "pending"),  # still open: neither counts nor spoils the day
    ]
    st = core.compute_stats(rows, wed, done_total=7, last_done=wed)
    # Sun, Mon, Tue, Wed and last Thursday: Saturday's miss is a grace day (not counted); last
    # Wednesday's skip, 3 days before that grace day, ends the run.
    assert st.streak_days == 5 and st.streak_since == last_mon + timedelta(days=3)
    assert st.adherence_this_week == 1.0 and st.adherence_last_week == 0.5
    assert st.adherence_7d == 6 / 7 and st.planned_7d == 7 and st.done_7d == 6  # Thursday to today
    assert st.days_missed_in_a_row == 0


def test_stats_a_pause_is_neutral_and_two_missed_days_break_the_streak() -> None:
    wed = TODAY
    rows = [
        (wed - timedelta(days=10), "done"),
        (wed - timedelta(days=9), "done"),  # then a pause: no sessions for 7 days
        (wed - timedelta(days=1), "done"),
    ]
    assert core.compute_stats(rows, wed, 3, None).streak_days == 3
    mixed = [*rows, (wed - timedelta(days=1), "missed")]
    st = core.compute_stats(mixed, wed, 3, None)
    assert st.streak_days == 2, "a day with a missed session is a grace day: not counted, the run goes on"
    assert st.streak_since == wed - timedelta(days=10)
    two = [*mixed, (wed - timedelta(days=8), "skipped")]
    assert core.compute_stats(two, wed, 3, None).streak_days == 0, "two missed days, a pause between them"
    missed = [
        (wed - timedelta(days=3), "done"),
        (wed - timedelta(days=2), "missed"),
        (wed - timedelta(days=1), "skipped"),
    ]
    st = core.compute_stats([*missed, (wed, "pending")], wed, 1, None)
    assert st.days_missed_in_a_row == 2 and st.streak_days == 0
    st = core.compute_stats([*missed, (wed, "skipped")], wed, 1, None)
    assert st.days_missed_in_a_row == 3
    empty = core.compute_stats([], wed, 0, None)
    assert empty.adherence_7d is None and empty.adherence_this_week is None and empty.streak_days == 0


def _streak(days_back: dict[int, list[str]]) -> tuple[int, date | None]:
    """The streak on TODAY from {days before today: statuses}."""
    rows = [(TODAY - timedelta(days=n), status) for n, statuses in days_back.items() for status in statuses]
    st = core.compute_stats(rows, TODAY, 0, None)
    return st.streak_days, st.streak_since


def test_grace_day_streaks() -> None:
    def day(n: int) -> date:
        return TODAY - timedelta(days=n)

    done = ["done"]
    # No miss: every day counts, the run starts on its first day.
    assert _streak({4: done, 3: done, 2: done, 1: done, 0: done}) == (5, day(4))
    # One missed day inside the run is a grace day: kept, but not counted.
    assert _streak({5: done, 4: done, 3: ["missed"], 2: done, 1: done, 0: done}) == (5, day(5))
    assert _streak({3: done, 2: ["done", "skipped"], 1: done, 0: done}) == (3, day(3)), "a mixed day is a miss"
    # Two missed days in a row end the run: only the days after them count.
    assert _streak({5: done, 4: done, 3: ["missed"], 2: ["skipped"], 1: done, 0: done}) == (2, day(1))
    assert _streak({3: done, 2: ["missed"], 1: ["missed"], 0: ["pending"]}) == (0, None)
    # A pause (no sessions, e.g. a paused patient) neither breaks nor counts, also between two misses.
    assert _streak({9: done, 8: done, 2: done, 1: done, 0: done}) == (5, day(9))
    assert _streak({6: done, 5: ["missed"], 3: ["missed"], 1: done, 0: done}) == (2, day(1))
    # Today not yet done: today neither counts nor breaks; a miss yesterday is then the grace day,
    # and today's own miss is one too (the next one resets).
    assert _streak({3: done, 2: done, 1: done, 0: ["pending"]}) == (3, day(3))
    assert _streak({3: done, 2: done, 1: ["missed"], 0: ["pending"]}) == (2, day(3))
    assert _streak({3: done, 2: done, 1: done, 0: ["skipped", "pending"]}) == (3, day(3))
    assert _streak({3: done, 2: done, 1: ["missed"], 0: ["skipped"]}) == (0, None)
    # At most one grace day in 7 days: misses 6 days apart end the run at the older one, 7 apart do not.
    six = {8: done, 7: ["missed"], 6: done, 5: done, 4: done, 3: done, 2: done, 1: ["missed"], 0: done}
    assert _streak(six) == (6, day(6))
    seven = {9: done, 8: ["missed"], 7: done, 6: done, 5: done, 4: done, 3: done, 2: done, 1: ["missed"], 0: done}
    assert _streak(seven) == (8, day(9))
    # The days missed in a row (for alerts) are not softened by grace.
    rows = [(day(2), "done"), (day(1), "missed"), (day(0), "missed")]
    assert core.compute_stats(rows, TODAY, 1, None).days_missed_in_a_row == 2


def test_count_back_passes_neutral_days_and_stops_at_another_kind_or_the_oldest_day() -> None:
    d = TODAY
    by_day = {
        d - timedelta(days=6): ["done"],
        d - timedelta(days=5): ["missed"],
        d - timedelta(days=4): ["done"],
        d - timedelta(days=3): ["pending"],  # only open sessions: neutral
        d - timedelta(days=2): ["done", "pending"],
    }  # d - 1: no sessions, neutral
    yesterday, oldest = d - timedelta(days=1), min(by_day)
    assert core._count_back(by_day, yesterday, oldest, "good") == 2  # -2 and -4; the bad -5 ends the run
    assert core._count_back(by_day, yesterday, oldest, "bad") == 0  # the first day that is not neutral is good
    assert core._count_back(by_day, d - timedelta(days=5), oldest, "bad") == 1
    assert core._count_back(by_day, yesterday, d - timedelta(days=3), "good") == 1  # not past the oldest day
    assert core._count_back(by_day, yesterday, d, "good") == 0
    mixed = {d: ["done", "skipped"]}
    assert core._count_back(mixed, d, d, "good") == 0 and core._count_back(mixed, d, d, "bad") == 0


# --- the state machine, on both databases ---------------------------------------------------------


async def test_open_session_is_idempotent(db: Database, clock: FakeClock) -> None:
    patient = await patient_in(db, clock)
    first = await opened(db, patient)
    second = await opened(db, patient)
    assert first == second
    async with db.session() as s:
        assert len((await s.exec(select(ExerciseSession))).all()) == 1


async def test_done_then_effort_then_pain_each_counted_once(db: Database, clock: FakeClock) -> None:
    patient = await patient_in(db, clock)
    sid = await opened(db, patient)
    applied = await press(db, patient, sid, Action.DONE)
    assert applied is not None and applied.session.status == Status.DONE and applied.session.step == Step.EFFORT
    assert applied.session.answered_at == NINE
    assert await press(db, patient, sid, Action.DONE) is None, "a double press changes nothing"
    assert await press(db, patient, sid, Action.PARTLY) is None
    assert await press(db, patient, sid, Action.SKIP) is None
    assert await press(db, patient, sid, Action.PAIN, "4") is None, "pain before effort is out of order"
    assert await press(db, patient, sid, Action.EFFORT, "hard") is not None
    assert await press(db, patient, sid, Action.EFFORT, "easy") is None
    assert await press(db, patient, sid, Action.PAIN, "4") is not None
    assert await press(db, patient, sid, Action.PAIN, "9") is None
    es = await row(db, sid)
    assert (es.status, es.effort, es.pain, es.step) == ("done", "hard", 4, "closed")


async def test_partly_with_skipped_questions(db: Database, clock: FakeClock) -> None:
    patient = await patient_in(db, clock)
    sid = await opened(db, patient)
    assert await press(db, patient, sid, Action.PARTLY) is not None
    assert await press(db, patient, sid, Action.EFFORT, core.SKIP_ANSWER) is not None
    assert await press(db, patient, sid, Action.PAIN, core.SKIP_ANSWER) is not None
    es = await row(db, sid)
    assert (es.status, es.effort, es.pain, es.step) == ("partly", "", None, "closed")


async def test_skip_records_the_reason_once(db: Database, clock: FakeClock) -> None:
    patient = await patient_in(db, clock)
    sid = await opened(db, patient)
    assert await press(db, patient, sid, Action.SKIP) is not None
    assert await press(db, patient, sid, Action.EFFORT, "ok") is None
    assert await press(db, patient, sid, Action.REASON, "pain") is not None
    assert await press(db, patient, sid, Action.REASON, "forgot") is None
    es = await row(db, sid)
    assert (es.status, es.skip_reason, es.step) == ("skipped", "pain", "closed")


async def test_stale_message_and_foreign_session_change_nothing(db: Database, clock: FakeClock) -> None:
    anna = await patient_in(db, clock)
    ben = await patient_in(db, clock)
    sid = await opened(db, anna, message_id=50)
    assert await press(db, anna, sid, Action.DONE, message_id=49) is None, "a press on an older message is stale"
    assert await press(db, ben, sid, Action.DONE, message_id=50) is None, "Ben cannot log Anna's session"
    assert await press(db, ben, sid + 1000, Action.DONE) is None
    es = await row(db, sid)
    assert es.status == Status.PENDING and es.step == Step.BUTTONS and es.answered_at is None


async def test_snooze_creates_one_re_send_and_back_returns_to_the_buttons(db: Database, clock: FakeClock) -> None:
    patient = await patient_in(db, clock)
    sid = await opened(db, patient)
    assert await press(db, patient, sid, Action.SNOOZE, "30") is None, "only from the snooze menu"
    assert await press(db, patient, sid, Action.SNOOZE) is not None
    assert await press(db, patient, sid, Action.BACK) is not None
    assert (await row(db, sid)).step == Step.BUTTONS
    assert await press(db, patient, sid, Action.SNOOZE) is not None
    applied = await press(db, patient, sid, Action.SNOOZE, "30")
    assert applied is not None and applied.snoozed_until == NINE + timedelta(minutes=30)
    assert await press(db, patient, sid, Action.SNOOZE, "30") is None
    assert await press(db, patient, sid, Action.SNOOZE, "60") is None
    async with db.session() as s:
        rules = (await s.exec(select(ReminderRule).where(col(ReminderRule.once).is_(True)))).all()
    [rule] = rules
    assert rule.kind == Kind.SESSION and rule.next_due_at == NINE + timedelta(minutes=30)
    assert core.parse_payload(rule.payload).session_id == sid
    es = await row(db, sid)
    assert es.status == Status.PENDING and es.step == Step.SNOOZED
    # The re-send binds a new message and puts the four buttons back.
    async with db.session() as s:
        assert await core.bind_message(s, sid, message_id=60, now=NINE + timedelta(minutes=30)) == 50
        await s.commit()
    es = await row(db, sid)
    assert es.step == Step.BUTTONS and es.message_id == 60
    assert await press(db, patient, sid, Action.DONE, message_id=50) is None
    assert await press(db, patient, sid, Action.DONE, message_id=60) is not None


async def test_snooze_never_crosses_the_local_midnight(db: Database, clock: FakeClock) -> None:
    patient = await patient_in(db, clock)
    sid = await opened(db, patient)
    late = datetime(2026, 6, 10, 21, 40, tzinfo=UTC)  # 23:40 in Berlin
    es = await row(db, sid)
    assert core.snooze_options(es, patient, late) == [15]
    assert await press(db, patient, sid, Action.SNOOZE, now=late) is not None
    assert await press(db, patient, sid, Action.SNOOZE, "30", now=late) is None
    assert await press(db, patient, sid, Action.SNOOZE, "15", now=late) is not None


async def test_one_nudge_per_session_within_its_day(db: Database, clock: FakeClock) -> None:
    patient = await patient_in(db, clock)
    sid = await opened(db, patient)
    three = timedelta(hours=3)
    async with db.session() as s:
        assert await core.ensure_nudges(s, [sid], sent_at=NINE, after=three) == 1
        assert await core.ensure_nudges(s, [sid], sent_at=NINE + timedelta(minutes=30), after=three) == 0
        evening = datetime(2026, 6, 10, 20, 0, tzinfo=UTC)  # 22:00 Berlin: 3 h later is tomorrow
        other = await core.open_session(
            s, patient, local_date=TODAY, slot="22:00", phase_id="", delivery_id=None, now=T0
        )
        assert other.id is not None
        assert await core.ensure_nudges(s, [other.id], sent_at=evening, after=three) == 0
        await s.commit()
    async with db.session() as s:
        [rule] = (await s.exec(select(ReminderRule).where(col(ReminderRule.kind) == Kind.NUDGE))).all()
        assert rule.next_due_at == NINE + three and rule.payload == core.one_off_payload(sid) and rule.once
    async with db.session() as s:
        assert await core.nudge_target(s, patient.id or 0, sid, NINE + timedelta(hours=3)) is not None
    await press(db, patient, sid, Action.SKIP)
    async with db.session() as s:
        assert await core.nudge_target(s, patient.id or 0, sid, NINE + timedelta(hours=3)) is None


async def test_nudge_waits_for_a_snoozed_re_send(db: Database, clock: FakeClock) -> None:
    patient = await patient_in(db, clock)
    sid = await opened(db, patient)
    await press(db, patient, sid, Action.SNOOZE)
    await press(db, patient, sid, Action.SNOOZE, "60")
    async with db.session() as s:
        assert await core.nudge_target(s, patient.id or 0, sid, NINE + timedelta(minutes=30)) is None
        assert await core.nudge_target(s, patient.id or 0, sid, NINE + timedelta(hours=2)) is not None


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Asia/Tokyo"])
async def test_sweep_marks_missed_exactly_at_the_local_midnight(db: Database, clock: FakeClock, tz: str) -> None:
    patient = await patient_in(db, clock, tz=tz)
    sid = await opened(db, patient)
    async with db.session() as s:
        never_sent = await core.open_session(
            s, patient, local_date=TODAY, slot="18:00", phase_id="", delivery_id=None, now=T0
        )
        answered = await core.open_session(
            s, patient, local_date=TODAY, slot="13:00", phase_id="", delivery_id=None, now=T0
        )
        assert answered.id is not None and never_sent.id is not None
        await core.bind_message(s, answered.id, message_id=51, now=T0)
        await s.commit()
    await press(db, patient, answered.id, Action.DONE, message_id=51)
    midnight = core.day_end(TODAY, tz)
    async with db.session() as s:
        assert await core.sweep_missed(s, midnight - timedelta(seconds=1)) == []
        missed = await core.sweep_missed(s, midnight)
        await s.commit()
    assert [(m.session_id, m.message_id, m.chat_id) for m in missed] == [(sid, 50, patient.telegram_id)]
    async with db.session() as s:
        assert await core.sweep_missed(s, midnight + timedelta(hours=1)) == []
        statuses = {es.slot: es.status for es in (await s.exec(select(ExerciseSession))).all()}
    assert statuses == {"09:00": "missed", "13:00": "done"}, "the reminder that never went out is not counted"


async def test_stats_on_the_database_across_local_dates(db: Database, clock: FakeClock) -> None:
    # Tokyo is 9 hours ahead: at 20:00 UTC on the 10th it is already the 11th there.
    patient = await patient_in(db, clock, tz="Asia/Tokyo")
    async with db.session() as s:
        for offset, status in [(-3, "done"), (-2, "done"), (-1, "partly"), (0, "done")]:
            day = date(2026, 6, 11) + timedelta(days=offset)
            s.add(ExerciseSession(patient_id=patient.id or 0, local_date=day, slot="09:00", status=status))
        s.add(ExerciseSession(patient_id=patient.id or 0, local_date=date(2026, 6, 1), slot="09:00", status="missed"))
        await s.commit()
    now = datetime(2026, 6, 10, 20, 0, tzinfo=UTC)
    async with db.session() as s:
        st = await core.stats(s, patient, now)
    assert st.streak_days == 4 and st.done_total == 4 and st.last_done == date(2026, 6, 11)
    assert st.adherence_7d == 1.0
    # In Berlin the same instant is still the 10th: the 11th's session is "tomorrow" and uncounted by streak.
    berlin = await patient_in(db, clock)
    async with db.session() as s:
        s.add(ExerciseSession(patient_id=berlin.id or 0, local_date=date(2026, 6, 10), slot="09:00", status="done"))
        s.add(ExerciseSession(patient_id=berlin.id or 0, local_date=date(2026, 6, 9), slot="09:00", status="missed"))
        await s.commit()
        st = await core.stats(s, berlin, now)
    assert st.streak_days == 1 and st.adherence_7d == 0.5 and st.days_missed_in_a_row == 0


async def test_snooze_payload_keeps_the_session_index(db: Database, clock: FakeClock) -> None:
    patient, [rule] = await make_patient(db, clock, times=("13:00",))
    async with db.session() as s:
        stored = await s.get(ReminderRule, rule.id)
        assert stored is not None
        stored.payload = core.rule_payload(1)
        s.add(stored)
        from rehab_bot.models import Delivery

        delivery = Delivery(
            key="k1",
            kind="session",
            priority=3,
            rule_id=rule.id,
            patient_id=patient.id,
            chat_id=1,
            due_at=NINE,
            not_before=NINE,
        )
        s.add(delivery)
        await s.flush()
        es = await core.open_session(
            s, patient, local_date=TODAY, slot="13:00", phase_id="", delivery_id=delivery.id, now=T0
        )
        assert es.id is not None
        sid = es.id
        await s.commit()
    await press(db, patient, sid, Action.SNOOZE, message_id=0)
    await press(db, patient, sid, Action.SNOOZE, "15", message_id=0)
    async with db.session() as s:
        [one_off] = (await s.exec(select(ReminderRule).where(col(ReminderRule.once).is_(True)))).all()
    assert json.loads(one_off.payload) == {"session_id": sid, "session": 1}


async def test_a_batched_first_send_binds_only_sessions_nobody_has_touched(db: Database, clock: FakeClock) -> None:
    """The bookkeeping after a send window runs late: a press that came first must win."""
    patient = await patient_in(db, clock)
    async with db.session() as s:
        opened_ = [
            await core.open_session(s, patient, local_date=TODAY, slot=slot, phase_id="", delivery_id=None, now=T0)
            for slot in ("08:00", "12:00", "18:00")
        ]
        await s.commit()
    fresh, answered, asked = (es.id or 0 for es in opened_)
    # Before the window's bookkeeping: one session answered, one showing a follow-up question.
    assert await press(db, patient, answered, Action.DONE, message_id=None) is not None
    async with db.session() as s:
        await core.set_live_message(s, asked, 99)
        await s.commit()
    async with db.session() as s:
        sends = [core.FirstSend(sid, 70 + n, None) for n, sid in enumerate((fresh, answered, asked))]
        await core.bind_first_messages(s, sends)
        await s.commit()
    assert (await row(db, fresh)).message_id == 70
    assert (await row(db, answered)).message_id is None
    assert (await row(db, asked)).message_id == 99


async def test_open_sessions_is_idempotent_for_a_whole_window(db: Database, clock: FakeClock) -> None:
    patients = [await patient_in(db, clock, telegram_id=9100 + n) for n in range(3)]
    openings = [core.Opening(p.id or 0, TODAY, "09:00", "weeks-1-2", None) for p in patients]
    async with db.session() as s:
        first = await core.open_sessions(s, openings, T0)
        await s.commit()
    async with db.session() as s:
        evening = core.Opening(patients[0].id or 0, TODAY, "18:00", "", None)
        again = await core.open_sessions(s, [*openings, evening], T0)
        await s.commit()
    assert len({o.id for o in first.values()}) == 3
    assert all(again[o] == first[o] for o in openings)
    assert {o.status for o in again.values()} == {Status.PENDING.value}


async def test_a_crash_between_recording_a_send_and_binding_it_does_not_erase_the_session(
    db: Database, clock: FakeClock
) -> None:
    """Sessions are bound after their window is recorded; the sweep trusts the delivery's record too."""
    patient = await patient_in(db, clock)
    assert patient.id is not None and patient.telegram_id is not None

    def delivery(key: str, status: DeliveryStatus, message_id: int | None) -> Delivery:
        return Delivery(
            key=key, kind=Kind.SESSION.value, priority=0, patient_id=patient.id, chat_id=patient.telegram_id,
            local_date=TODAY, slot="09:00", due_at=NINE, not_before=NINE, status=status.value, message_id=message_id,
        )  # fmt: skip

    async with db.session() as s:
        sent, doubt = delivery("a", DeliveryStatus.SENT, 77), delivery("b", DeliveryStatus.UNKNOWN, None)
        s.add_all([sent, doubt])
        await s.flush()
        seen = await core.open_session(
            s, patient, local_date=TODAY, slot="09:00", phase_id="", delivery_id=sent.id, now=T0
        )
        await core.open_session(s, patient, local_date=TODAY, slot="18:00", phase_id="", delivery_id=doubt.id, now=T0)
        await s.commit()
    async with db.session() as s:
        missed = await core.sweep_missed(s, core.day_end(TODAY, patient.timezone))
        await s.commit()
    assert [(m.session_id, m.message_id) for m in missed] == [(seen.id, 77)]
    async with db.session() as s:
        left = {es.id: es.status for es in (await s.exec(select(ExerciseSession))).all()}
    assert left == {seen.id: Status.MISSED.value}, "the one in doubt was never confirmed: removed, not counted"


# --- Start, the player, and one outcome across chat and Mini App ------------------------------------------


async def test_start_queues_the_player_once_and_done_still_counts_once(db: Database, clock: FakeClock) -> None:
    patient = await patient_in(db, clock)
    sid = await opened(db, patient)
    applied = await press(db, patient, sid, Action.START)
    assert applied is not None and applied.session.step == Step.PLAYING and applied.session.status == Status.PENDING
    assert await press(db, patient, sid, Action.START) is None, "a second Start changes nothing"
    assert await press(db, patient, sid, Action.SNOOZE) is None, "no snooze while the exercises are coming"
    async with db.session() as s:
        rules = (await s.exec(select(ReminderRule).where(col(ReminderRule.patient_id) == patient.id))).all()
    [player] = rules
    ref = core.parse_payload(player.payload)
    assert (ref.session_id, ref.play, player.kind, player.once) == (sid, True, Kind.SESSION.value, True)
    assert player.next_due_at == NINE, "due at once: the engine sends it in its next tick"
    # The player's last message becomes the live one; Done there is recorded once.
    async with db.session() as s:
        assert await core.bind_message(s, sid, message_id=60, now=NINE) == 50
        await s.commit()
    assert (await row(db, sid)).step == Step.PLAYING, "binding the last message keeps the step"
    assert await press(db, patient, sid, Action.DONE, message_id=50) is None, "the reminder's buttons are stale"
    applied = await press(db, patient, sid, Action.DONE, message_id=60)
    assert applied is not None and applied.session.status == Status.DONE
    assert await press(db, patient, sid, Action.PARTLY, message_id=60) is None


def test_player_payloads_are_told_apart_from_snoozes_and_nudges() -> None:
    assert core.parse_payload(core.player_payload(7, 2)) == core.Ref(index=2, session_id=7, play=True)
    assert core.parse_payload(core.one_off_payload(7, 2)) == core.Ref(index=2, session_id=7, play=False)
    assert core.parse_payload(json.dumps({"play": True})) == core.Ref(), "play without a session is nothing"
    assert core.parse_payload(json.dumps({"session_id": 7, "play": 1})).play is False, "only true is true"


@pytest.mark.parametrize("first", ["chat", "app"])
async def test_done_in_the_chat_and_finishing_in_the_mini_app_record_one_outcome(
    db: Database, clock: FakeClock, first: str
) -> None:
    patient = await patient_in(db, clock)
    sid = await opened(db, patient)
    later = NINE + timedelta(minutes=10)

    async def finish(status: Status, at: datetime, **kw: Any) -> core.Outcome | None:
        async with db.session() as s:
            outcome = await core.record_outcome(s, patient, sid, status=status, now=at, **kw)
            await s.commit()
            return outcome

    if first == "chat":
        assert await press(db, patient, sid, Action.DONE) is not None
        outcome = await finish(Status.PARTLY, later, effort="hard", pain=6)
        assert outcome is not None and not outcome.recorded
        assert (outcome.session.status, outcome.session.answered_at, outcome.session.pain) == ("done", NINE, None)
    else:
        outcome = await finish(Status.DONE, NINE, effort="ok", pain=2)
        assert outcome is not None and outcome.recorded
        assert await press(db, patient, sid, Action.PARTLY) is None, "the chat's button is stale now"
        again = await finish(Status.DONE, later, effort="easy", pain=0)
        assert again is not None and not again.recorded
    es = await row(db, sid)
    expected = ("done", NINE, "", None) if first == "chat" else ("done", NINE, "ok", 2)
    assert (es.status, es.answered_at, es.effort, es.pain) == expected


async def test_record_outcome_refuses_other_patients_skipped_sessions_and_bad_values(
    db: Database, clock: FakeClock
) -> None:
    anna = await patient_in(db, clock)
    ben = await patient_in(db, clock)
    sid = await opened(db, anna)
    async with db.session() as s:
        assert await core.record_outcome(s, ben, sid, status=Status.DONE, now=NINE) is None
        assert await core.record_outcome(s, anna, sid + 1000, status=Status.DONE, now=NINE) is None
        with pytest.raises(ValueError, match="out of range"):
            await core.record_outcome(s, anna, sid, status=Status.DONE, now=NINE, pain=11)
        with pytest.raises(ValueError, match="out of range"):
            await core.record_outcome(s, anna, sid, status=Status.DONE, now=NINE, effort="extreme")
        with pytest.raises(ValueError, match="not an outcome"):
            await core.record_outcome(s, anna, sid, status=Status.SKIPPED, now=NINE)
    assert (await row(db, sid)).status == Status.PENDING
    assert await press(db, anna, sid, Action.SKIP) is not None
    async with db.session() as s:
        assert await core.record_outcome(s, anna, sid, status=Status.DONE, now=NINE) is None, "skipped stays skipped"
    assert (await row(db, sid)).status == Status.SKIPPED


def test_estimated_minutes_from_the_doses() -> None:
    from rehab_bot.content import Exercise

    def ex(sets: int = 1, reps: int | None = None, hold: int | None = None) -> Exercise:
        return Exercise("x", {}, {}, sets, reps, hold, None, None, {}, "built-in")

    assert core.estimated_minutes([]) == 1
    assert core.estimated_minutes([ex()]) == 6, "walking: 5 minutes and 20 s to get ready"
    assert core.estimated_minutes([ex(reps=20)]) == 2  # 20 x 3 s + 20 s = 80 s
    assert core.estimated_minutes([ex(sets=2, reps=10, hold=5)]) == 4  # 2 x 10 x 8 s + 30 s + 20 s = 210 s
    assert core.estimated_minutes([ex(sets=3, hold=30)]) == 3  # 90 s + 60 s + 20 s


@pytest.mark.parametrize("lang", ["en", "de"])
def test_every_built_in_reminder_is_short(lang: str) -> None:
    """At most 400 characters for every session of every phase, late or not, with the longest encouragement."""
    from rehab_bot import motivation
    from rehab_bot.bot.session import reminder_text, session_exercises
    from rehab_bot.content import load_content, localize

    content = load_content(None)
    cheer = max((motivation.encouragement(content, lang, n) for n in range(10)), key=len)
    for programme_ in content.programmes.values():
        for phase in programme_.phases:
            for index in range(phase.sessions_per_day):
                exercises = session_exercises(content, phase, index)
                for late in (False, True):
                    text = reminder_text(
                        lang,
                        slot="18:30",
                        late=late,
                        exercises=exercises,
                        session_name=localize(phase.title, lang),
                        encouragement=cheer,
                    )
                    assert len(text) <= 400, (phase.id, index, len(text), text)
                    assert str(len(exercises)) in text and cheer in text


@pytest.mark.parametrize("lang", ["en", "de"])
def test_the_first_reminder_of_a_new_phase_names_the_phase_once(lang: str) -> None:
    from rehab_bot.bot.session import reminder_text, session_exercises
    from rehab_bot.content import load_content, localize
    from rehab_bot.programme import PhaseChange

    content = load_content(None)
    phase = next(p for p in content.programmes["lumbar-example"].phases if p.id == "weeks-3-6")
    title = localize(phase.title, lang)
    change = PhaseChange(previous_id="weeks-1-2", phase=phase, replanned=True, session_times=["09:00", "18:00"])
    text = reminder_text(
        lang,
        slot="09:00",
        late=False,
        exercises=session_exercises(content, phase, 0),
        change=change,
        session_name=title,
    )
    assert text.count(title) == 1, text
    assert f"🆕 {title}\n{localize(phase.change_note, lang).strip()}" in text
    # Any other reminder of the phase still names it.
    plain = reminder_text(
        lang, slot="18:00", late=False, exercises=session_exercises(content, phase, 1), session_name=title
    )
    assert plain.count(title) == 1


async def test_the_mini_app_player_shows_only_the_patients_own_session_with_its_exercises(
    db: Database, clock: FakeClock
) -> None:
    content = load_content(None)
    today = clock.now().date()
    patient, _ = await make_patient(
        db, clock, times=(), programme_id="lumbar-example", surgery_date=today - timedelta(days=5), phase_id="weeks-1-2"
    )
    other, _ = await make_patient(db, clock, times=())
    async with db.session() as session:
        row = ExerciseSession(patient_id=patient.id, local_date=today, slot="09:00")
        session.add(row)
        await session.commit()
        p = await session.get(Patient, patient.id)
        o = await session.get(Patient, other.id)
        assert p is not None and o is not None and row.id is not None
        played = await core.for_player(session, p, content, row.id)
        assert played is not None and played.session.id == row.id
        phase = next(x for x in content.programme("lumbar-example").phases if x.id == "weeks-1-2")
        assert [e.id for e in played.exercises] == phase.exercises_for(0)
        assert await core.for_player(session, o, content, row.id) is None
        assert await core.for_player(session, p, content, row.id + 1000) is None


# --- a session done before its reminder -----------------------------------------------------


async def test_ahead_today_is_the_next_session_whose_reminder_has_not_gone_out(db: Database, clock: FakeClock) -> None:
    clock.set(T0)  # 07:00 in Berlin
    content = load_content(None)
    patient, _ = await make_patient(db, clock, times=("09:00", "18:00"))
    async with db.session() as s:
        assert await core.ahead_today(s, content, patient, T0) == core.Ahead(TODAY, "09:00", "")
    await opened(db, patient, slot="09:00")  # the 09:00 session's row exists (its reminder is out)
    async with db.session() as s:
        assert await core.ahead_today(s, content, patient, T0) == core.Ahead(TODAY, "18:00", "")
        # 18:00 and later: that reminder is due (the engine sends it); nothing is ahead today.
        assert await core.ahead_today(s, content, patient, NINE + timedelta(hours=9)) is None
    # Just after a session was recorded, "done" means that one, not the next: nothing is ahead until the
    # next session's time is nearer than the last answer.
    nine = await opened(db, patient, slot="09:00")
    await press(db, patient, nine, Action.DONE, now=NINE + timedelta(minutes=1))
    async with db.session() as s:
        assert await core.ahead_today(s, content, patient, NINE + timedelta(minutes=5)) is None
        later = NINE + timedelta(hours=5)  # 14:00: 5 h after the answer, 4 h before 18:00
        assert await core.ahead_today(s, content, patient, later) == core.Ahead(TODAY, "18:00", "")
    paused, _ = await make_patient(db, clock, times=("18:00",), status=PatientStatus.PAUSED)
    async with db.session() as s:
        assert await core.ahead_today(s, content, paused, T0) is None, "a paused patient gets no reminder"


async def test_record_ahead_records_done_once_and_only_for_the_session_ahead(db: Database, clock: FakeClock) -> None:
    clock.set(T0)
    content = load_content(None)
    patient, _ = await make_patient(db, clock, times=("18:00",))
    async with db.session() as s:
        assert await core.record_ahead(s, content, patient, "09:00", T0) is None, "no session at 09:00"
        applied = await core.record_ahead(s, content, patient, "18:00", T0)
        await s.commit()
    assert applied is not None
    es = applied.session
    assert (es.local_date, es.slot, es.status, es.step, es.answered_at) == (TODAY, "18:00", "done", "effort", T0)
    async with db.session() as s:
        assert await core.record_ahead(s, content, patient, "18:00", T0) is None, "recorded already"
        assert await core.ahead_today(s, content, patient, T0) is None
        [only] = await core.sessions_on(s, patient.id or 0, TODAY)
    assert only.id == es.id
