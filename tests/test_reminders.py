"""The reminder engine against real databases (SQLite file and PostgreSQL), with injected time."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import pytest
from factories import T0, FakeSender, make_patient, make_staff
from sqlmodel import select
from sqlmodel import update as update_

from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, DeliveryConfig
from rehab_bot.db import Database
from rehab_bot.models import PRIORITY, Alert, Delivery, DeliveryStatus, Kind, Patient, PatientStatus, ReminderRule
from rehab_bot.reminders import (
    BookkeepingFailed,
    Dispatcher,
    DueMessage,
    Failed,
    Outcome,
    Retry,
    TickReport,
    Unreachable,
    one_off_values,
    reschedule_patient,
)
from rehab_bot.schedule import zone

NO_QUIET = DeliveryConfig(quiet_hours_start=None, quiet_hours_end=None)


def dispatcher(db: Database, clock: FakeClock, sender: FakeSender, **delivery: object) -> Dispatcher:
    settings = replace(NO_QUIET, **delivery)  # type: ignore[arg-type]
    return Dispatcher(db, clock, settings, ClinicConfig(), sender)


async def run_for(d: Dispatcher, clock: FakeClock, span: timedelta, step: timedelta | None = None) -> None:
    """Run the engine through `span` of fake time.

    With a step, tick every step (like the real 1 s poll, coarser); without,
    jump straight to each instant the engine has work, as a bot polling
    every second would see it.
    """
    end = clock.now() + span
    while clock.now() < end:
        if step is not None:
            clock.set(min(end, clock.now() + step))
        else:
            wake = await d.next_wakeup()
            if wake is None or wake > end:
                clock.set(end)
            else:
                clock.set(max(wake, clock.now()) + timedelta(seconds=1))
        await d.tick()


async def deliveries(db: Database) -> list[Delivery]:
    async with db.session() as session:
        return list((await session.exec(select(Delivery).order_by(Delivery.id))).all())  # type: ignore[arg-type]


async def test_a_week_of_daily_reminders_in_seconds(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    await make_patient(db, clock, times=("09:00", "18:30"))
    d = dispatcher(db, clock, sender)
    await run_for(d, clock, timedelta(days=7))
    assert len(sender.sent) == 14
    assert len(set(sender.keys())) == 14
    berlin = zone("Europe/Berlin")
    rows = [r for r in await deliveries(db) if r.status == DeliveryStatus.SENT]
    assert {r.due_at.astimezone(berlin).strftime("%H:%M") for r in rows} == {"09:00", "18:30"}
    assert all(r.sent_at is not None and timedelta(0) <= r.sent_at - r.due_at <= timedelta(minutes=5) for r in rows)
    assert not any(m.late for m in sender.sent)


@pytest.mark.parametrize(
    ("tz", "start", "expected_local"),
    [
        ("Europe/Berlin", datetime(2026, 3, 27, 12, tzinfo=UTC), ["02:30", "03:00", "02:30", "02:30", "02:30"]),
        ("America/New_York", datetime(2026, 3, 6, 12, tzinfo=UTC), ["02:30", "03:00", "02:30", "02:30", "02:30"]),
        ("Europe/Berlin", datetime(2026, 10, 23, 12, tzinfo=UTC), ["02:30"] * 5),
        ("America/New_York", datetime(2026, 10, 30, 12, tzinfo=UTC), ["02:30"] * 5),
    ],
)
async def test_engine_across_dst_sends_each_day_once(
    db: Database, tz: str, start: datetime, expected_local: list[str]
) -> None:
    clock = FakeClock(start)
    sender = FakeSender()
    await make_patient(db, clock, times=("02:30",), tz=tz)
    d = dispatcher(db, clock, sender)
    await run_for(d, clock, timedelta(days=5))
    rows = [r for r in await deliveries(db) if r.status == DeliveryStatus.SENT]
    got = [r.due_at.astimezone(zone(tz)).strftime("%H:%M") for r in rows]
    # Sent when due, not an hour off: the engine woke at the right UTC instant.
    assert all(r.sent_at is not None and r.sent_at - r.due_at < timedelta(minutes=1) for r in rows)
    assert got == expected_local
    assert len({r.local_date for r in rows}) == 5


async def test_late_within_grace_is_sent_once_and_says_late(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    await make_patient(db, clock, times=("09:00",))  # 07:00 UTC
    d = dispatcher(db, clock, sender, grace_period_minutes=120)
    clock.set(datetime(2026, 6, 10, 8, 30, tzinfo=UTC))  # bot was down; 90 min late
    await d.tick()
    await d.tick()
    assert len(sender.sent) == 1 and sender.sent[0].late


async def test_older_than_grace_is_missed_not_sent_and_no_flood(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    for _ in range(20):
        await make_patient(db, clock, times=("09:00", "13:00", "19:00"))
    d = dispatcher(db, clock, sender, grace_period_minutes=120)
    # Down for three days; back at 14:30 Berlin (12:30 UTC) on 13 June.
    clock.set(datetime(2026, 6, 13, 12, 30, tzinfo=UTC))
    await d.tick()
    rows = await deliveries(db)
    sent = [r for r in rows if r.status == DeliveryStatus.SENT]
    missed = [r for r in rows if r.status == DeliveryStatus.MISSED]
    # Only the 13:00 slot of the day is within two hours: one per patient, late.
    assert len(sent) == 20 and {r.slot for r in sent} == {"13:00"} and all(r.late for r in sent)
    # 10, 11 and 12 June 09/13/19, and 13 June 09: ten missed per patient.
    assert len(missed) == 20 * 10
    assert all(r.sent_at is None for r in missed)
    # Nothing left to catch up: the next tick sends nothing more.
    await d.tick()
    assert len(sender.sent) == 20


async def test_quiet_hours_defer_to_their_end_but_not_safety(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    patient, _ = await make_patient(db, clock, times=("22:00",))
    _, _ = await make_patient(db, clock, times=("22:00",), quiet_start="", quiet_end="")  # opted out
    d = dispatcher(db, clock, sender, quiet_hours_start=dtime(21, 30), quiet_hours_end=dtime(7, 30))
    async with db.session() as session:
        session.add(
            Delivery(
                key="safety-1",
                kind=Kind.SAFETY.value,
                priority=PRIORITY[Kind.SAFETY],
                patient_id=patient.id,
                chat_id=patient.telegram_id or 0,
                due_at=datetime(2026, 6, 10, 20, 15, tzinfo=UTC),
                not_before=datetime(2026, 6, 10, 20, 15, tzinfo=UTC),
                body="Call 112 now.",
            )
        )
        await session.commit()
    clock.set(datetime(2026, 6, 10, 20, 16, tzinfo=UTC))  # 22:16 Berlin
    await d.tick()
    assert [m.kind for m in sender.sent] == ["session", "safety"] or [m.kind for m in sender.sent] == [
        "safety",
        "session",
    ]
    assert {m.chat_id for m in sender.sent if m.kind == "session"} != {patient.telegram_id}
    deferred = [r for r in await deliveries(db) if r.status == DeliveryStatus.QUEUED]
    assert len(deferred) == 1 and deferred[0].not_before == datetime(2026, 6, 11, 5, 30, tzinfo=UTC)
    clock.set(datetime(2026, 6, 11, 5, 29, tzinfo=UTC))
    await d.tick()
    assert len(sender.sent) == 2
    clock.set(datetime(2026, 6, 11, 5, 30, tzinfo=UTC))
    await d.tick()
    assert len(sender.sent) == 3 and sender.sent[-1].chat_id == patient.telegram_id


async def test_rate_limited_retry_waits_retry_after_and_keeps_attempts(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    patient, _ = await make_patient(db, clock, times=("09:05",))
    sender.fail(patient.telegram_id or 0, Retry("429", 7, rate_limited=True), Retry("429", 7, rate_limited=True))
    d = dispatcher(db, clock, sender, max_attempts=1)
    clock.set(datetime(2026, 6, 10, 7, 5, tzinfo=UTC))
    await d.tick()
    row = (await deliveries(db))[0]
    assert row.status == DeliveryStatus.QUEUED and row.not_before == clock.now() + timedelta(seconds=7)
    clock.advance(6)
    await d.tick()
    assert len(sender.calls) == 1, "must not retry before retry_after"
    clock.advance(1)
    await d.tick()
    clock.advance(7)
    await d.tick()
    assert len(sender.sent) == 1 and len(sender.calls) == 3
    assert (await deliveries(db))[0].status == DeliveryStatus.SENT


async def test_network_errors_back_off_then_fail_after_max_attempts(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    patient, _ = await make_patient(db, clock, times=("09:05",))
    sender.fail(patient.telegram_id or 0, *[Retry("network: 502 Bad Gateway")] * 10)
    d = dispatcher(db, clock, sender, max_attempts=3, backoff_base_seconds=10, backoff_max_seconds=60)
    clock.set(datetime(2026, 6, 10, 7, 5, tzinfo=UTC))
    gaps = []
    for _ in range(3):
        await d.tick()
        row = (await deliveries(db))[0]
        if row.status != DeliveryStatus.QUEUED:
            break
        gaps.append((row.not_before - clock.now()).total_seconds())
        clock.set(row.not_before)
    row = (await deliveries(db))[0]
    assert row.status == DeliveryStatus.FAILED and row.attempts == 3
    assert "gave up after 3 attempts" in row.error
    assert len(sender.calls) == 3
    assert 5 <= gaps[0] <= 15 and 10 <= gaps[1] <= 30, gaps  # jittered exponential backoff


async def test_blocked_patient_is_paused_and_therapist_alerted_once(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    therapist = await make_staff(db)
    patient, _ = await make_patient(db, clock, times=("09:05", "11:00"), therapist_id=therapist.id)
    sender.fail(patient.telegram_id or 0, Unreachable("Forbidden: bot was blocked by the user"))
    d = dispatcher(db, clock, sender)
    clock.set(datetime(2026, 6, 10, 7, 5, tzinfo=UTC))
    await d.tick()
    await run_for(d, clock, timedelta(days=2), step=timedelta(hours=1))
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        alerts = (await session.exec(select(Alert))).all()
    assert p is not None and p.status == PatientStatus.UNREACHABLE
    assert "blocked" in p.unreachable_reason
    assert len(alerts) == 1 and alerts[0].kind == "unreachable"
    patient_calls = [m for m in sender.calls if m.chat_id == patient.telegram_id]
    assert len(patient_calls) == 1, "nothing is retried and nothing more is sent to a blocked chat"
    to_therapist = [m for m in sender.sent if m.chat_id == therapist.telegram_id]
    assert len(to_therapist) == 1 and patient.alias in to_therapist[0].body
    rows = await deliveries(db)
    assert {r.status for r in rows if r.chat_id == patient.telegram_id} <= {
        DeliveryStatus.FAILED,
        DeliveryStatus.SKIPPED,
    }


async def test_other_bad_request_is_recorded_failed_with_reason(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    patient, _ = await make_patient(db, clock, times=("09:05",))
    sender.fail(patient.telegram_id or 0, Failed("Bad Request: can't parse entities"))
    d = dispatcher(db, clock, sender)
    clock.set(datetime(2026, 6, 10, 7, 5, tzinfo=UTC))
    await d.tick()
    row = (await deliveries(db))[0]
    assert row.status == DeliveryStatus.FAILED and "can't parse entities" in row.error
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
    assert p is not None and p.status == PatientStatus.ACTIVE


async def test_urgent_kinds_and_earliest_due_go_first(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    await make_patient(db, clock, times=("09:01",), kind=Kind.MOTIVATION)
    await make_patient(db, clock, times=("09:02",), kind=Kind.SESSION)
    await make_patient(db, clock, times=("09:00",), kind=Kind.SESSION)
    await make_patient(db, clock, times=("09:03",), kind=Kind.CHECKIN)
    d = dispatcher(db, clock, sender, send_window=1)
    clock.set(datetime(2026, 6, 10, 7, 5, tzinfo=UTC))
    await d.tick()
    assert [(m.kind, m.slot) for m in sender.sent] == [
        ("checkin", "09:03"),
        ("session", "09:00"),
        ("session", "09:02"),
        ("motivation", "09:01"),
    ]


async def test_two_dispatchers_never_send_the_same_reminder(db: Database, clock: FakeClock) -> None:
    for _ in range(150):
        await make_patient(db, clock, times=("09:00", "09:01"))
    a, b = FakeSender(), FakeSender()
    clock.set(datetime(2026, 6, 10, 7, 2, tzinfo=UTC))
    da = dispatcher(db, clock, a, batch_size=40, send_window=25)
    db2 = Database(db.url, pg_schema=db.pg_schema)
    try:
        dbb = dispatcher(db2, clock, b, batch_size=40, send_window=25)
        await asyncio.gather(da.tick(), dbb.tick())
        await asyncio.gather(da.tick(), dbb.tick())
    finally:
        await db2.dispose()
    keys = a.keys() + b.keys()
    assert len(keys) == 300 and len(set(keys)) == 300
    assert a.sent and b.sent, "both workers should have taken part"


async def test_changing_timezone_takes_effect_from_the_next_slot(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    patient, _ = await make_patient(db, clock, times=("09:00",))
    d = dispatcher(db, clock, sender)
    clock.set(datetime(2026, 6, 10, 7, 1, tzinfo=UTC))
    await d.tick()
    assert len(sender.sent) == 1
    # Later that day the patient flies to New York and tells the bot.
    clock.set(datetime(2026, 6, 10, 12, 0, tzinfo=UTC))
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        p.timezone = "America/New_York"
        session.add(p)
        await reschedule_patient(session, p, clock.now())
        await session.commit()
    await run_for(d, clock, timedelta(days=1, hours=6), step=timedelta(minutes=30))
    ny = zone("America/New_York")
    assert len(sender.sent) == 2
    row = [r for r in await deliveries(db) if r.status == DeliveryStatus.SENT][-1]
    assert row.due_at.astimezone(ny).strftime("%Y-%m-%d %H:%M") == "2026-06-11 09:00"


async def test_changing_time_takes_effect_without_restart(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    patient, rules = await make_patient(db, clock, times=("09:00",))
    d = dispatcher(db, clock, sender)
    async with db.session() as session:
        rule = await session.get(ReminderRule, rules[0].id)
        p = await session.get(Patient, patient.id)
        assert rule is not None and p is not None
        rule.local_time = "10:30"
        session.add(rule)
        await reschedule_patient(session, p, clock.now())
        await session.commit()
    await run_for(d, clock, timedelta(hours=28), step=timedelta(minutes=15))
    assert [m.slot for m in sender.sent] == ["10:30", "10:30"]


async def test_paused_patient_skips_then_resumes_after_pause_date(db: Database, clock: FakeClock) -> None:
    sender = FakeSender()
    await make_patient(db, clock, times=("09:00",), status=PatientStatus.PAUSED, paused_until=date(2026, 6, 12))
    d = dispatcher(db, clock, sender)
    await run_for(d, clock, timedelta(days=4), step=timedelta(hours=1))
    rows = await deliveries(db)
    assert [(r.local_date.day, r.status) for r in rows if r.local_date] == [
        (10, DeliveryStatus.SKIPPED),
        (11, DeliveryStatus.SKIPPED),
        (12, DeliveryStatus.SKIPPED),
        (13, DeliveryStatus.SENT),
    ]


async def test_crash_mid_window_marks_in_flight_unknown_and_never_resends(db: Database, clock: FakeClock) -> None:
    for _ in range(5):
        await make_patient(db, clock, times=("09:00",))
    sender = FakeSender()
    d = dispatcher(db, clock, sender, sending_lease_seconds=60)
    clock.set(datetime(2026, 6, 10, 7, 0, 30, tzinfo=UTC))
    await d.materialise(clock.now())
    claimed = await d.claim(clock.now(), 3)  # ... and the process dies here
    assert len(claimed) == 3
    restarted = dispatcher(db, clock, sender, sending_lease_seconds=60)
    await restarted.tick()
    assert len(sender.sent) == 2, "rows claimed by the dead process are not sent by the next"
    clock.advance(61)
    await restarted.tick()  # the lease is over: in doubt, recorded, not re-sent
    rows = await deliveries(db)
    assert sorted(r.status for r in rows) == sorted([DeliveryStatus.SENT] * 2 + [DeliveryStatus.UNKNOWN] * 3)
    assert len(sender.sent) == 2


def test_one_off_values_name_every_column_a_bulk_insert_needs() -> None:
    """Bulk inserts skip the model's defaults: a new column must be added to one_off_values too."""
    values = one_off_values(7, "Europe/Berlin", kind=Kind.NUDGE, due_at=T0, now=T0, payload="x")
    columns = {c.name for c in ReminderRule.__table__.columns} - {"id"}  # type: ignore[attr-defined]
    assert set(values) == columns
    rule = ReminderRule(**values)
    assert rule.next_local_date == date(2026, 6, 10) and rule.local_time == "07:00" and rule.once


async def test_a_large_backlog_starts_sending_after_one_batch_not_after_all(db: Database, clock: FakeClock) -> None:
    """After a restart with many slots due, materialising and sending interleave within one tick."""
    events: list[str] = []

    class Recording(FakeSender):
        async def send(self, message: DueMessage) -> Outcome:
            events.append("send")
            return await super().send(message)

    for n in range(120):
        await make_patient(db, clock, times=("07:01",), telegram_id=8000 + n)
    sender = Recording()
    d = dispatcher(db, clock, sender, batch_size=25, send_window=10)
    materialise = d.materialise

    async def recorded(now: datetime) -> TickReport:
        step = await materialise(now)
        events.append(f"materialise {step.materialised}")
        return step

    d.materialise = recorded  # type: ignore[method-assign]
    clock.set(T0 + timedelta(minutes=2))
    report = await d.tick()
    assert report.sent == 120 and len(set(sender.keys())) == 120
    first_send = events.index("send")
    assert events[:first_send] == ["materialise 25"], events[: first_send + 1]
    assert events.count("materialise 25") == 120 // 25 and "materialise 20" in events


async def test_a_slot_falling_due_during_a_long_drain_goes_out_in_the_same_tick(db: Database, clock: FakeClock) -> None:
    """Rules are re-read every poll_interval while a tick drains, not only when it ends."""
    for n in range(30):
        await make_patient(db, clock, times=("07:01",), telegram_id=8200 + n)
    await make_patient(db, clock, times=("07:05",), telegram_id=8299)

    class Slow(FakeSender):
        async def send(self, message: DueMessage) -> Outcome:
            clock.advance(timedelta(seconds=20))  # a paced burst: 30 sends take ten fake minutes
            return await super().send(message)

    sender = Slow()
    d = dispatcher(db, clock, sender, send_window=2)
    clock.set(T0 + timedelta(minutes=2))
    report = await d.tick()
    assert report.sent == 31 and sender.sent[-1].chat_id == 8299


class WindowSender(FakeSender):
    """A batch sender whose window hooks can be told to fail; records what they saw."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: list[list[int]] = []
        self.prepared: list[int] = []
        self.flushed: list[int] = []
        self.fail_window = self.fail_flush = 0

    async def render_window(self, db: Any, messages: Any, opened: Any) -> None:
        self.windows.append([m.delivery_id for m in messages])
        # A write through the claim's transaction: it must vanish with the claim's rollback.
        await db.exec(update_(Patient).values(alias="touched by a failed window"))
        if self.fail_window:
            self.fail_window -= 1
            raise RuntimeError("window bug")

    async def prepare(self, messages: Any) -> None:
        self.prepared.extend(m.delivery_id for m in messages)

    def forget(self, messages: Any) -> None:
        pass

    async def flush(self, db: Any, *, isolate: bool = False) -> None:
        if self.fail_flush and not isolate:
            self.fail_flush -= 1
            raise BookkeepingFailed
        self.flushed.extend(m.delivery_id for m in self.sent)


async def test_a_failing_window_preparation_retakes_the_claim_and_each_reminder_goes_once(
    db: Database, clock: FakeClock
) -> None:
    sender = WindowSender()
    sender.fail_window = 1
    patient, _ = await make_patient(db, clock, times=("09:00",))
    d = dispatcher(db, clock, sender)
    clock.set(datetime(2026, 6, 10, 7, 0, 5, tzinfo=UTC))
    await d.tick()
    assert len(sender.windows) == 1, "the claim is taken again without the window preparation"
    [delivery] = await deliveries(db)
    assert sender.prepared == [delivery.id] and [m.delivery_id for m in sender.sent] == [delivery.id]
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 1
    async with db.session() as s:
        again = await s.get(Patient, patient.id)
    assert again is not None and again.alias == patient.alias, "nothing of the failed preparation stays"


async def test_failing_bookkeeping_is_left_out_and_the_outcomes_are_recorded(db: Database, clock: FakeClock) -> None:
    sender = WindowSender()
    sender.fail_flush = 1
    await make_patient(db, clock, times=("09:00",))
    d = dispatcher(db, clock, sender)
    clock.set(datetime(2026, 6, 10, 7, 0, 5, tzinfo=UTC))
    report = await d.tick()
    [delivery] = await deliveries(db)
    assert report.sent == 1 and delivery.status == DeliveryStatus.SENT and delivery.message_id is not None
    assert sender.flushed == [delivery.id], "recorded again, with the bookkeeping isolated"
