"""Programmes over time, against real databases: phases, session rules, phase changes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import FakeSender
from sqlmodel import select

from rehab_bot import checkin
from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, DeliveryConfig
from rehab_bot.content import Content, load_content
from rehab_bot.db import Database
from rehab_bot.models import Kind, Patient, PatientStatus, ReminderRule
from rehab_bot.programme import (
    current_phase,
    day_after_surgery,
    fit_times,
    on_enrolled,
    planning_phase,
    schedule_sessions,
    session_index,
    sync_phase,
)
from rehab_bot.reminders import Dispatcher
from rehab_bot.schedule import local_to_utc, parse_hhmm

SURGERY = date(2026, 6, 1)  # T0 (2026-06-10 07:00 Berlin) is day 9


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


def patient_at(**kw: Any) -> Patient:
    values: dict[str, Any] = {
        "alias": "P-1",
        "telegram_id": 4242,
        "surgery_date": SURGERY,
        "programme_id": "lumbar-example",
        "timezone": "Europe/Berlin",
        "status": PatientStatus.ENROLLING.value,
        "enrol_step": "done",
    }
    values.update(kw)
    return Patient(**values)


async def stored(db: Database, **kw: Any) -> Patient:
    patient = patient_at(**kw)
    async with db.session() as session:
        session.add(patient)
        await session.commit()
        await session.refresh(patient)
    return patient


async def rules_of(db: Database, patient: Patient, *, active_only: bool = True) -> list[ReminderRule]:
    async with db.session() as session:
        query = select(ReminderRule).where(ReminderRule.patient_id == patient.id, ReminderRule.kind == "session")
        rows = list((await session.exec(query)).all())
    rows = [r for r in rows if r.active or not active_only]
    return sorted(rows, key=lambda r: (session_index(r), r.id or 0))


def at_local(day: date, hhmm: str, tz: str) -> datetime:
    return local_to_utc(day, parse_hhmm(hhmm), tz)


# --- pure ------------------------------------------------------------------------


def test_day_counting_and_phases(content: Content) -> None:
    patient = patient_at()
    assert day_after_surgery(patient, SURGERY) == 0
    assert day_after_surgery(patient, date(2026, 6, 10)) == 9
    assert day_after_surgery(patient, date(2026, 5, 31)) == -1
    expected = {-1: None, 0: "weeks-1-2", 13: "weeks-1-2", 14: "weeks-3-6", 41: "weeks-3-6", 42: "weeks-7-12"}
    expected |= {83: "weeks-7-12", 84: "after-week-12", 400: "after-week-12"}
    for day, phase_id in expected.items():
        phase = current_phase(content, patient, SURGERY + timedelta(days=day))
        assert (phase.id if phase else None) == phase_id, day
    # Before surgery the sessions are planned for the first phase.
    first = planning_phase(content, patient, SURGERY - timedelta(days=3))
    assert first is not None and first.id == "weeks-1-2"
    lost = patient_at(programme_id="withdrawn")
    assert current_phase(content, lost, SURGERY) is None and planning_phase(content, lost, SURGERY) is None
    with pytest.raises(ValueError, match="no surgery date"):
        day_after_surgery(patient_at(surgery_date=None), SURGERY)


@pytest.mark.parametrize(
    ("preferred", "count", "defaults", "expected"),
    [
        (["08:00", "13:00", "18:00"], 3, ["09:00", "13:00", "18:00"], ["08:00", "13:00", "18:00"]),
        (["18:00", "08:00", "13:00"], 2, ["09:00", "17:00"], ["08:00", "18:00"]),
        (["08:00", "13:00", "18:00"], 1, ["10:00"], ["08:00"]),
        (["07:30"], 3, ["09:00", "13:00", "18:00"], ["07:30", "13:00", "18:00"]),
        ([], 2, ["09:00", "17:00"], ["09:00", "17:00"]),
        (["06:00", "09:00", "12:00", "15:00", "18:00", "21:00"], 3, ["x"], ["06:00", "12:00", "21:00"]),
    ],
)
def test_fit_times(preferred: list[str], count: int, defaults: list[str], expected: list[str]) -> None:
    assert fit_times(preferred, count, defaults) == expected


# --- schedule_sessions --------------------------------------------------------------


async def test_schedule_sessions_plans_one_rule_per_session_in_the_patients_zone(
    db: Database, clock: FakeClock, content: Content
) -> None:
    tz = "America/New_York"
    patient = await stored(db, timezone=tz, session_times="07:30,12:00,19:30")
    # T0 is 01:00 in New York on 2026-06-10 (day 9: three sessions a day).
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        made = await schedule_sessions(session, p, content, clock.now())
        await session.commit()
    rules = await rules_of(db, patient)
    assert [r.id for r in rules] == [r.id for r in made]
    today = date(2026, 6, 10)
    assert [(r.local_time, session_index(r), json.loads(r.payload)) for r in rules] == [
        ("07:30", 0, {"session": 0}),
        ("12:00", 1, {"session": 1}),
        ("19:30", 2, {"session": 2}),
    ]
    assert [r.next_due_at for r in rules] == [at_local(today, x, tz) for x in ("07:30", "12:00", "19:30")]
    assert rules[0].next_due_at == datetime(2026, 6, 10, 11, 30, tzinfo=UTC)
    assert all(r.kind == Kind.SESSION and r.start_date == today for r in rules)
    # Session 3 ends with weeks 1-2, session 2 before week 13, session 1 runs on.
    assert [r.end_date for r in rules] == [None, SURGERY + timedelta(days=83), SURGERY + timedelta(days=13)]


async def test_schedule_sessions_is_idempotent_and_moves_times_in_place(
    db: Database, clock: FakeClock, content: Content
) -> None:
    tz = "Europe/Berlin"
    patient = await stored(db, session_times="")
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await schedule_sessions(session, p, content, clock.now())
        await schedule_sessions(session, p, content, clock.now())
        assert p.session_times == "09:00,13:00,18:00"  # the phase's defaults
        await session.commit()
    first = await rules_of(db, patient, active_only=False)
    assert [r.local_time for r in first] == ["09:00", "13:00", "18:00"]
    # 10:00 local: the 09:00 session has been reminded today (the engine set last_local_date).
    today = date(2026, 6, 10)
    clock.set(at_local(today, "10:00", tz))
    async with db.session() as session:
        rule = await session.get(ReminderRule, first[0].id)
        assert rule is not None
        rule.last_local_date = today
        p = await session.get(Patient, patient.id)
        assert p is not None
        p.session_times = "11:00,14:00,18:00"
        await schedule_sessions(session, p, content, clock.now())
        await session.commit()
    moved = await rules_of(db, patient, active_only=False)
    assert [r.id for r in moved] == [r.id for r in first], "updated in place, nothing added"
    assert [r.local_time for r in moved] == ["11:00", "14:00", "18:00"]
    # Session 1 was already reminded today: its new 11:00 slot starts tomorrow.
    assert moved[0].next_due_at == at_local(today + timedelta(days=1), "11:00", tz)
    assert moved[1].next_due_at == at_local(today, "14:00", tz)


async def test_before_surgery_sessions_start_on_the_day_of_surgery(
    db: Database, clock: FakeClock, content: Content
) -> None:
    surgery = date(2026, 6, 13)
    patient = await stored(db, surgery_date=surgery)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        rules = await on_enrolled(session, p, content, clock.now())
        await session.commit()
        assert p.phase_id == "" and p.status == PatientStatus.ACTIVE
    assert [r.next_due_at for r in rules] == [
        at_local(surgery, x, "Europe/Berlin") for x in ("09:00", "13:00", "18:00")
    ]
    assert all(r.start_date == surgery for r in rules)


async def test_an_unknown_programme_retires_the_rules(db: Database, clock: FakeClock, content: Content) -> None:
    patient = await stored(db)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await schedule_sessions(session, p, content, clock.now())
        p.programme_id = "withdrawn"
        assert await schedule_sessions(session, p, content, clock.now()) == []
        await session.commit()
    assert await rules_of(db, patient) == []
    assert all(r.next_due_at is None for r in await rules_of(db, patient, active_only=False))


async def test_on_enrolled_activates_plans_and_asks_for_check_ins(
    db: Database, clock: FakeClock, content: Content, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int | None, datetime]] = []

    async def schedule_for(session: Any, patient: Patient, content: Content, now: datetime) -> None:
        calls.append((patient.id, now))

    monkeypatch.setattr(checkin, "schedule_for", schedule_for)
    patient = await stored(db, session_times="08:00,12:00,17:00")
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        rules = await on_enrolled(session, p, content, clock.now())
        await session.commit()
    assert calls == [(patient.id, clock.now())]
    assert [r.local_time for r in rules] == ["08:00", "12:00", "17:00"]
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
    assert p is not None and p.status == PatientStatus.ACTIVE and p.phase_id == "weeks-1-2"


# --- sync_phase ------------------------------------------------------------------------


async def enrolled(db: Database, clock: FakeClock, content: Content, **kw: Any) -> Patient:
    patient = await stored(db, **kw)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await on_enrolled(session, p, content, clock.now())
        await session.commit()
    return patient


async def sync(db: Database, clock: FakeClock, content: Content, patient: Patient) -> Any:
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        change = await sync_phase(session, p, content, clock.now())
        await session.commit()
        return change


async def test_sync_phase_reports_the_move_into_the_next_phase_exactly_once(
    db: Database, clock: FakeClock, content: Content
) -> None:
    tz = "America/Los_Angeles"
    # Surgery 13 days before T0's local date in Los Angeles (2026-06-09 22:00 there).
    patient = await enrolled(db, clock, content, timezone=tz, surgery_date=date(2026, 5, 27))
    assert await sync(db, clock, content, patient) is None  # still weeks 1-2
    day14 = date(2026, 6, 10)
    clock.set(at_local(day14, "00:00", tz) - timedelta(seconds=1))
    assert await sync(db, clock, content, patient) is None  # 23:59:59 on day 13, local
    clock.set(at_local(day14, "00:00", tz))
    change = await sync(db, clock, content, patient)
    assert change is not None
    assert (change.previous_id, change.phase.id, change.replanned) == ("weeks-1-2", "weeks-3-6", True)
    assert change.session_times == ["09:00", "18:00"]
    assert change.note("en").startswith("New phase: twice a day now")
    assert change.note("de").startswith("Neue Phase: jetzt zweimal am Tag")
    assert change.title("en") == "Weeks 3-6: standing exercises"
    rules = await rules_of(db, patient)
    assert [(r.local_time, session_index(r)) for r in rules] == [("09:00", 0), ("18:00", 1)]
    assert [r.next_due_at for r in rules] == [at_local(day14, x, tz) for x in ("09:00", "18:00")]
    assert await sync(db, clock, content, patient) is None, "told once"
    clock.advance(timedelta(days=1))
    assert await sync(db, clock, content, patient) is None
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
    assert p is not None and p.phase_id == "weeks-3-6" and p.session_times == "09:00,18:00"
    # Weeks 3-6 to 7-12 keeps two sessions: the rules stay as they are.
    clock.set(at_local(date(2026, 5, 27) + timedelta(days=42), "08:00", tz))
    change = await sync(db, clock, content, patient)
    assert change is not None and change.phase.id == "weeks-7-12" and not change.replanned
    assert [r.id for r in await rules_of(db, patient)] == [r.id for r in rules]


async def test_two_renderers_cannot_both_report_a_change(db: Database, clock: FakeClock, content: Content) -> None:
    patient = await enrolled(db, clock, content, surgery_date=date(2026, 5, 28))  # day 13 at T0
    clock.advance(timedelta(days=1))
    async with db.session() as first, db.session() as second:
        a = await first.get(Patient, patient.id)
        b = await second.get(Patient, patient.id)
        assert a is not None and b is not None and a.phase_id == b.phase_id == "weeks-1-2"
        change = await sync_phase(first, a, content, clock.now())
        await first.commit()
        # The second still holds the old phase_id in memory: the conditional update finds nothing.
        assert await sync_phase(second, b, content, clock.now()) is None
        await second.commit()
    assert change is not None and change.phase.id == "weeks-3-6"


async def test_a_patient_enrolled_before_surgery_hears_of_the_first_phase_on_the_day(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient = await enrolled(db, clock, content, surgery_date=date(2026, 6, 12))
    assert await sync(db, clock, content, patient) is None
    clock.set(datetime(2026, 6, 11, 22, 0, tzinfo=UTC))  # 00:00 on 12 June in Berlin
    change = await sync(db, clock, content, patient)
    assert change is not None and change.previous_id == "" and change.phase.id == "weeks-1-2"
    assert not change.replanned
    assert await sync(db, clock, content, patient) is None


@pytest.mark.slow
async def test_sessions_end_with_the_programme_without_any_sync(db: Database, clock: FakeClock, tmp_path: Path) -> None:
    (tmp_path / "programmes.toml").write_text(
        """
[[programme]]
id = "short"
surgery_types = ["lumbar"]
name.en = "Short"
name.de = "Kurz"

[[programme.phase]]
id = "first"
from_day = 0
to_day = 6
title.en = "First"
title.de = "Erste"
change_note.en = "Two a day."
change_note.de = "Zweimal am Tag."
sessions_per_day = 2
default_times = ["09:00", "17:00"]
[[programme.phase.session]]
exercises = ["walking"]

[[programme.phase]]
id = "second"
from_day = 7
to_day = 13
title.en = "Second"
title.de = "Zweite"
change_note.en = "Once a day."
change_note.de = "Einmal am Tag."
sessions_per_day = 1
default_times = ["09:00"]
[[programme.phase.session]]
exercises = ["walking"]
""",
        encoding="utf-8",
    )
    content = load_content(tmp_path)
    patient = await enrolled(db, clock, content, programme_id="short", surgery_date=date(2026, 6, 10))
    sender = FakeSender()
    dispatcher = Dispatcher(
        db, clock, DeliveryConfig(quiet_hours_start=None, quiet_hours_end=None), ClinicConfig(), sender
    )
    for _ in range(20 * 24):
        clock.advance(timedelta(hours=1))
        await dispatcher.tick()
    per_slot: dict[str, list[str]] = {}
    for message in (m for m in sender.sent if m.kind == Kind.SESSION):
        assert message.local_date is not None
        per_slot.setdefault(message.slot, []).append(message.local_date.isoformat())
    assert per_slot["09:00"][0] == "2026-06-10" and per_slot["09:00"][-1] == "2026-06-23"
    assert len(per_slot["09:00"]) == 14
    assert per_slot["17:00"][0] == "2026-06-10" and per_slot["17:00"][-1] == "2026-06-16"
    assert len(per_slot["17:00"]) == 7
    assert await rules_of(db, patient) == []


async def test_every_re_plan_of_the_sessions_moves_the_evening_check_in(
    db: Database, clock: FakeClock, content: Content
) -> None:
    """/settings, the therapist's change of times or programme and a phase change all re-plan through here."""
    patient = await stored(db)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await on_enrolled(session, p, content, clock.now())
        await session.commit()

    async def checkin_times() -> set[str]:
        async with db.session() as session:
            query = select(ReminderRule).where(
                ReminderRule.patient_id == patient.id, ReminderRule.kind == Kind.CHECKIN.value
            )
            return {r.local_time for r in (await session.exec(query)).all() if r.active}

    assert await checkin_times() == {"19:00"}, "an hour after the 18:00 session"
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        p.session_times = "08:00,11:00,15:00"
        await schedule_sessions(session, p, content, clock.now())
        await session.commit()
    assert await checkin_times() == {"17:00"}, "an hour after a 15:00 last session is before 17:00, the earliest"
