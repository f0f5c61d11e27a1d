"""Clinician tools core: access rules, the patient list, changes, alerts, escalation, the weekly digest."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import TEST_TOKEN, make_config, make_patient, make_staff
from sqlmodel import col, select

from rehab_bot import access as access_core
from rehab_bot import alert as alert_core
from rehab_bot import caseload
from rehab_bot import digest as digest_core
from rehab_bot import invite as invite_core
from rehab_bot import patient as patient_core
from rehab_bot import staff as staff_core
from rehab_bot.clock import FakeClock
from rehab_bot.config import ConfigError, StaffConfig, load_config
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.models import (
    Alert,
    Answer,
    AuditLog,
    CheckIn,
    Delivery,
    DeliveryStatus,
    ExerciseSession,
    Patient,
    PatientStatus,
    ReminderRule,
    Staff,
    StaffDraft,
)
from rehab_bot.schedule import local_date

CONTENT = load_content(None)


async def add_answer(
    db: Database, patient: Patient, item: str, value: int, at: datetime, questionnaire: str | None = None
) -> None:
    assert patient.id is not None
    async with db.session() as session:
        checkin = CheckIn(
            patient_id=patient.id,
            questionnaire_id=questionnaire or item,
            status="complete",
            started_at=at,
            completed_at=at,
            score=value,
        )
        session.add(checkin)
        await session.flush()
        assert checkin.id is not None
        session.add(Answer(checkin_id=checkin.id, patient_id=patient.id, item_id=item, value=value, answered_at=at))
        await session.commit()


async def add_alert(db: Database, patient: Patient, at: datetime, severity: str = "emergency") -> Alert:
    assert patient.id is not None
    async with db.session() as session:
        alert = Alert(patient_id=patient.id, severity=severity, kind="red_flag", detail="bladder: yes", created_at=at)
        session.add(alert)
        await session.commit()
        await session.refresh(alert)
    return alert


async def audit_actions(db: Database) -> list[tuple[str, int | None, int | None]]:
    async with db.session() as session:
        rows = (await session.exec(select(AuditLog).order_by(col(AuditLog.id)))).all()
    return [(r.action, r.staff_id, r.patient_id) for r in rows]


# --- roles and access -----------------------------------------------------------------


async def test_access_admin_owner_colleague_and_removed(db: Database, clock: FakeClock) -> None:
    admin = await make_staff(db, role="admin")
    owner = await make_staff(db)
    colleague = await make_staff(db)
    gone = await make_staff(db, active=False)
    patient, _ = await make_patient(db, clock, therapist_id=owner.id)
    assert access_core.access(admin, patient) == access_core.Access.WRITE
    assert access_core.access(owner, patient) == access_core.Access.WRITE
    assert access_core.access(colleague, patient) == access_core.Access.READ
    assert access_core.access(gone, patient) == access_core.Access.NONE
    assert access_core.access(None, patient) == access_core.Access.NONE
    with pytest.raises(access_core.Forbidden, match="not your patient"):
        access_core.require(colleague, patient, access_core.Access.WRITE)
    access_core.require(colleague, patient, access_core.Access.READ)
    async with db.session() as session:
        assert await staff_core.active_staff(session, owner.telegram_id) is not None
        assert await staff_core.active_staff(session, gone.telegram_id) is None
        assert await staff_core.active_staff(session, 424242) is None


async def test_add_staff_creates_updates_validates_and_audits(db: Database, clock: FakeClock) -> None:
    async with db.session() as session:
        staff, created = await staff_core.add_staff(
            session, telegram_id=777, role="admin", name="  Dr  Ada ", now=clock.now(), timezone="America/New_York"
        )
        await session.commit()
    assert created and staff.name == "Dr Ada" and staff.timezone == "America/New_York"
    async with db.session() as session:
        again, created = await staff_core.add_staff(
            session, telegram_id=777, role="therapist", name="Ada", now=clock.now()
        )
        await session.commit()
    assert not created and again.id == staff.id and again.role == "therapist" and again.timezone == "America/New_York"
    for kwargs, message in [
        ({"role": "boss"}, "admin or therapist"),
        ({"telegram_id": -5}, "positive"),
        ({"telegram_id": 10**18}, "at most 18 digits"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"name": " "}, "empty"),
    ]:
        args: dict[str, Any] = {"telegram_id": 778, "role": "therapist", "name": "X", "now": clock.now(), **kwargs}
        async with db.session() as session:
            with pytest.raises(access_core.StaffError, match=message):
                await staff_core.add_staff(session, **args)
    assert [a for a, _, _ in await audit_actions(db)] == ["staff.add", "staff.add"]


def test_alias_date_and_times_validation() -> None:
    assert invite_core.validate_alias(" LWS-0412 ") == "LWS-0412"
    for bad in ("Mueller", "ab", "has space1", "-x12", "x" * 30 + "1"):
        with pytest.raises(access_core.StaffError):
            invite_core.validate_alias(bad)
    today = date(2026, 6, 10)
    assert invite_core.parse_surgery_date("2026-06-03", today) == date(2026, 6, 3)
    assert invite_core.parse_surgery_date("03.06.2026", today) == date(2026, 6, 3)
    for bad, message in [("tomorrow", "YYYY-MM-DD"), ("2027-06-03", "6 months"), ("2024-01-01", "year ago")]:
        with pytest.raises(access_core.StaffError, match=message):
            invite_core.parse_surgery_date(bad, today)
    assert staff_core.parse_times("18:00, 8:00 13:00") == ["08:00", "13:00", "18:00"]
    assert staff_core.parse_times("08:00 – 13:00 – 18:00") == ["08:00", "13:00", "18:00"]
    seven = " ".join(f"0{i}:00" for i in range(7))
    for bad, message in [("", "one to six"), ("25:00", "not a time"), ("08:00 08:00", "once"), (seven, "At most 6")]:
        with pytest.raises(access_core.StaffError, match=message):
            staff_core.parse_times(bad)


# --- the patient list and detail ------------------------------------------------------------


async def test_patient_page_scope_paging_figures_and_order(db: Database, clock: FakeClock) -> None:
    admin = await make_staff(db, role="admin")
    mine = await make_staff(db)
    other = await make_staff(db)
    now = clock.now()
    patients = []
    for i in range(7):
        p, _ = await make_patient(db, clock, alias=f"A-{i:02d}", therapist_id=mine.id, surgery_date=date(2026, 6, 1))
        patients.append(p)
    await make_patient(db, clock, alias="B-01", therapist_id=other.id)
    await make_patient(db, clock, alias="A-00X", therapist_id=mine.id, status=PatientStatus.DISCHARGED)
    await make_patient(db, clock, alias="A-STOP1", therapist_id=mine.id, status=PatientStatus.STOPPED)
    first = patients[0]
    await add_answer(db, first, "pain", 6, now - timedelta(days=2))
    await add_answer(db, first, "pain", 4, now - timedelta(hours=3))
    await add_answer(db, first, "mood", 3, now - timedelta(hours=2))
    await add_alert(db, first, now)
    async with db.session() as session:
        page = await caseload.patient_page(session, mine, now)
        assert page.scope == "mine" and page.total == 8 and page.pages == 2
        assert [r.alias for r in page.rows] == ["A-00", "A-01", "A-02", "A-03", "A-04"]
        row = page.rows[0]
        assert (row.last_pain, row.last_mood, row.open_alerts, row.days_since_surgery) == (4, 3, 1, 9)
        assert row.status == "active"
        last = await caseload.patient_page(session, mine, now, page=1)
        assert [r.alias for r in last.rows] == ["A-05", "A-06", "A-00X"], "discharged last, stopped hidden"
        clamped = await caseload.patient_page(session, mine, now, page=99)
        assert clamped.page == 1
        everyone = await caseload.patient_page(session, admin, now)
        assert everyone.scope == "all" and everyone.total == 9
        colleagues = await caseload.patient_page(session, other, now, scope="all")
        assert colleagues.total == 9


async def test_adherence_in_the_list_comes_from_the_session_feature(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db)
    patient, _ = await make_patient(db, clock, therapist_id=doc.id)
    assert patient.id is not None
    today = date(2026, 6, 10)
    async with db.session() as session:
        for back in range(1, 5):
            status = "done" if back == 1 else "missed"
            session.add(
                ExerciseSession(
                    patient_id=patient.id, local_date=today - timedelta(days=back), slot="09:00", status=status
                )
            )
        await session.commit()
    async with db.session() as session:
        row = await caseload.patient_row(session, patient, clock.now())
    assert row.adherence_7d == pytest.approx(0.25)


async def test_detail_has_answers_notes_alerts_and_times(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db, name="Dr Owner")
    colleague = await make_staff(db)
    patient, _ = await make_patient(
        db, clock, therapist_id=doc.id, programme_id="lumbar-example", surgery_date=date(2026, 6, 1)
    )
    await add_answer(db, patient, "pain", 5, clock.now() - timedelta(hours=1))
    await add_alert(db, patient, clock.now())
    async with db.session() as session:
        detail = await caseload.patient_detail(session, colleague, patient, clock.now(), CONTENT)
    assert detail.access == access_core.Access.READ and detail.therapist_name == "Dr Owner"
    assert detail.session_times == ["09:00", "13:00", "18:00"], "the phase's defaults until the patient picks"
    assert [(a.item_id, a.value) for a in detail.answers] == [("pain", 5)]
    assert len(detail.alerts) == 1 and "lumbar spine" in detail.programme_name


# --- changes --------------------------------------------------------------------------------


async def test_pause_resume_discharge_and_colleague_refused(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db)
    colleague = await make_staff(db)
    patient, _ = await make_patient(db, clock, therapist_id=doc.id, times=("09:00", "18:00"))
    now = clock.now()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        until = patient_core.pause_until_for(7, local_date(p, now))
        with pytest.raises(access_core.Forbidden):
            await patient_core.pause(session, p, until, now, staff=colleague)
        assert await patient_core.pause(session, p, until, now, staff=doc) == patient_core.PauseResult.PAUSED
        await session.commit()
    assert until == date(2026, 6, 16)
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None and p.status == "paused" and p.paused_until == until
        await patient_core.resume(session, p, content=CONTENT, now=now, staff=doc)
        with pytest.raises(access_core.StaffError, match="not paused"):
            await patient_core.resume(session, p, content=CONTENT, now=now, staff=doc)
        session.add(
            Delivery(key="r1:x", kind="session", priority=3, patient_id=p.id, chat_id=1, due_at=now, not_before=now)
        )
        assert await caseload.discharge(session, doc, p, now)
        assert not await caseload.discharge(session, doc, p, now)
        await session.commit()
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        left = (await session.exec(select(ReminderRule).where(col(ReminderRule.active).is_(True)))).all()
        queued = (await session.exec(select(Delivery))).one()
    assert p is not None and p.status == "discharged" and p.discharged_at == now
    assert left == [] and queued.status == DeliveryStatus.SKIPPED
    actions = [a for a, _, _ in await audit_actions(db)]
    assert actions == ["change.pause", "change.resume", "change.discharge"]


async def test_change_times_and_programme_replan_session_rules(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db)
    patient, _ = await make_patient(
        db, clock, therapist_id=doc.id, programme_id="lumbar-example", surgery_date=date(2026, 6, 1), times=()
    )
    async with db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await caseload.change_session_times(session, doc, p, ["07:30", "12:00", "19:00"], CONTENT, clock.now())
        await session.commit()
    async with db.session() as session:
        rules = (
            await session.exec(
                select(ReminderRule).where(col(ReminderRule.active).is_(True)).order_by(col(ReminderRule.local_time))
            )
        ).all()
        p = await session.get(Patient, patient.id)
        assert p is not None
        with pytest.raises(access_core.StaffError, match="no longer available"):
            await caseload.change_programme(session, doc, p, "nope", CONTENT, clock.now())
    assert [r.local_time for r in rules] == ["07:30", "12:00", "19:00"]
    assert p.session_times == "07:30,12:00,19:00"
    actions = await audit_actions(db)
    assert actions == [("change.times", doc.id, patient.id)]


# --- alerts and escalation ------------------------------------------------------------------


async def test_acknowledge_once_and_only_by_those_who_may(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db, name="Dr Owner")
    colleague = await make_staff(db)
    admin = await make_staff(db, role="admin", name="Admin")
    patient, _ = await make_patient(db, clock, therapist_id=doc.id)
    alert = await add_alert(db, patient, clock.now())
    assert alert.id is not None
    async with db.session() as session:
        assert [a.id for a, _ in await alert_core.open_alerts(session, doc)] == [alert.id]
        assert await alert_core.open_alerts(session, colleague) == []
        assert [a.id for a, _ in await alert_core.open_alerts(session, admin)] == [alert.id]
        with pytest.raises(access_core.Forbidden):
            await alert_core.acknowledge(session, colleague, alert.id, clock.now())
        first = await alert_core.acknowledge(session, doc, alert.id, clock.now())
        await session.commit()
    async with db.session() as session:
        second = await alert_core.acknowledge(session, admin, alert.id, clock.now() + timedelta(minutes=1))
        await session.commit()
        assert await alert_core.open_alerts(session, doc) == []
    assert first.now and not second.now and second.by == "Dr Owner"
    assert second.alert.acknowledged_at == clock.now()
    assert [a for a, _, _ in await audit_actions(db)] == ["alert.acknowledge"]


async def test_emergency_escalates_to_admins_once_after_the_configured_minutes(db: Database, clock: FakeClock) -> None:
    config = make_config(staff={"escalation_minutes": 30})
    doc = await make_staff(db)
    admins = [await make_staff(db, role="admin") for _ in range(2)]
    await make_staff(db, role="admin", active=False)
    patient, _ = await make_patient(db, clock, therapist_id=doc.id)
    urgent = await add_alert(db, patient, clock.now())
    await add_alert(db, patient, clock.now(), severity="high")
    acked = await add_alert(db, patient, clock.now())
    async with db.session() as session:
        await alert_core.acknowledge(session, doc, acked.id or 0, clock.now())
        await session.commit()

    async def tick(at: datetime) -> list[int]:
        clock.set(at)
        async with db.session() as session:
            escalated = await alert_core.escalate_overdue(session, clock.now(), config)
            await session.commit()
        return escalated

    assert await tick(clock.now() + timedelta(minutes=29)) == []
    assert await tick(clock.now() + timedelta(minutes=1)) == [urgent.id]
    assert await tick(clock.now() + timedelta(minutes=30)) == []
    async with db.session() as session:
        rows = (await session.exec(select(Delivery).order_by(col(Delivery.chat_id)))).all()
        stored = await session.get(Alert, urgent.id)
    assert sorted(r.chat_id for r in rows) == sorted(a.telegram_id for a in admins)
    assert all(r.kind == "alert" and "ESCALATION" in r.body and patient.alias in r.body for r in rows)
    assert stored is not None and stored.escalated_at is not None


# --- the weekly digest ----------------------------------------------------------------------


def test_digest_due_follows_local_time_across_dst() -> None:
    settings = StaffConfig()
    staff = Staff(id=1, telegram_id=1, name="x", timezone="Europe/Berlin")
    ny = Staff(id=2, telegram_id=2, name="y", timezone="America/New_York")
    # Monday 23 March 2026 (CET, UTC+1) and Monday 30 March (CEST, UTC+2): 08:00 local both times.
    assert digest_core.digest_due(staff, datetime(2026, 3, 23, 6, 59, tzinfo=UTC), settings) is None
    assert digest_core.digest_due(staff, datetime(2026, 3, 23, 7, 0, tzinfo=UTC), settings) == date(2026, 3, 23)
    assert digest_core.digest_due(staff, datetime(2026, 3, 30, 5, 59, tzinfo=UTC), settings) is None
    assert digest_core.digest_due(staff, datetime(2026, 3, 30, 6, 0, tzinfo=UTC), settings) == date(2026, 3, 30)
    assert digest_core.digest_due(staff, datetime(2026, 3, 31, 6, 0, tzinfo=UTC), settings) is None, "Tuesday"
    # New York changed on 8 March: Monday 9 March 08:00 EDT is 12:00 UTC.
    assert digest_core.digest_due(ny, datetime(2026, 3, 9, 11, 59, tzinfo=UTC), settings) is None
    assert digest_core.digest_due(ny, datetime(2026, 3, 9, 12, 0, tzinfo=UTC), settings) == date(2026, 3, 9)
    # A digest time inside the spring-forward gap fires at the first valid minute.
    sunday = replace(settings, digest_weekday="sunday", digest_time=time(2, 30))
    assert digest_core.digest_due(staff, datetime(2026, 3, 29, 0, 59, tzinfo=UTC), sunday) is None
    assert digest_core.digest_due(staff, datetime(2026, 3, 29, 1, 0, tzinfo=UTC), sunday) == date(2026, 3, 29)
    assert digest_core.digest_key(staff, date(2026, 3, 30)) == "d1:2026-W14"


async def test_digest_lists_patients_at_risk_once_per_week(db: Database) -> None:
    clock = FakeClock(datetime(2026, 3, 20, 12, 0, tzinfo=UTC))  # a Friday
    config = make_config()
    doc = await make_staff(db, name="Dr Owner")
    idle = await make_staff(db, name="No patients")
    assert idle.id is not None
    await make_patient(
        db, clock, alias="SIL-1", therapist_id=doc.id, last_activity_at=datetime(2026, 3, 19, 6, 0, tzinfo=UTC)
    )
    rising, _ = await make_patient(db, clock, alias="PAIN-1", therapist_id=doc.id)
    fine, _ = await make_patient(db, clock, alias="FINE-1", therapist_id=doc.id)
    lazy, _ = await make_patient(db, clock, alias="LOW-1", therapist_id=doc.id)
    await make_patient(db, clock, alias="GONE-1", therapist_id=doc.id, status=PatientStatus.UNREACHABLE)
    monday = datetime(2026, 3, 23, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
    for back, value in ((12, 2), (10, 3), (5, 6), (2, 7)):
        await add_answer(db, rising, "pain", value, monday - timedelta(days=back))
    for back, value in ((12, 5), (3, 4)):
        await add_answer(db, fine, "pain", value, monday - timedelta(days=back))
    await add_answer(db, lazy, "mood", 4, monday - timedelta(hours=20))
    async with db.session() as session:
        for back in range(1, 6):
            local = date(2026, 3, 23) - timedelta(days=back)
            session.add(ExerciseSession(patient_id=lazy.id or 0, local_date=local, slot="09:00", status="missed"))
            done_at = datetime.combine(local, time(8, 30), tzinfo=UTC)
            for p in (fine, rising):
                session.add(
                    ExerciseSession(
                        patient_id=p.id or 0, local_date=local, slot="09:00", status="done", answered_at=done_at
                    )
                )
        await session.commit()

    async def run(at: datetime) -> int:
        async with db.session() as session:
            queued = await digest_core.queue_digests(session, at, config)
            await session.commit()
        return queued

    assert await run(monday - timedelta(minutes=1)) == 0
    assert await run(monday) == 1, "one digest: the staff member without patients gets none"
    assert await run(monday + timedelta(hours=5)) == 0
    async with db.session() as session:
        [digest] = (await session.exec(select(Delivery))).all()
    assert digest.chat_id == doc.telegram_id and digest.key == f"d{doc.id}:2026-W13"
    body = digest.body
    assert "4 of the 5 patients in your care at risk" in body
    assert "SIL-1" in body and "no response for 4 days" in body
    assert "PAIN-1" in body and "pain rising: mean 2.5 → 6.5" in body
    assert "LOW-1" in body and "adherence 0%" in body
    assert "GONE-1" in body and "unreachable" in body
    assert "FINE-1" not in body
    assert await run(monday + timedelta(days=7)) == 1, "next week, again once"


async def test_drafts_replace_each_other_and_expire(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db)
    async with db.session() as session:
        await staff_core.start_draft(session, doc, "invite", "alias", clock.now(), alias="P-1")
        await session.commit()
    async with db.session() as session:
        await staff_core.start_draft(session, doc, "times", "times", clock.now())
        await session.commit()
    async with db.session() as session:
        draft = await staff_core.draft_for(session, doc, clock.now())
        assert draft is not None and draft.kind == "times" and draft.alias == ""
        assert await staff_core.draft_for(session, doc, clock.now() + timedelta(hours=25)) is None
        await session.commit()
        assert (await session.exec(select(StaffDraft))).all() == []


async def test_ending_a_draft_removes_it_and_returns_it_once(db: Database, clock: FakeClock) -> None:
    doc = await make_staff(db)
    async with db.session() as session:
        started = await staff_core.start_draft(session, doc, "times", "times", clock.now(), message_id=41)
        await session.commit()
        assert started.message_id == 41
    async with db.session() as session:
        ended = await staff_core.end_draft(session, doc)
        await session.commit()
        assert ended is not None and (ended.kind, ended.message_id) == ("times", 41)
    async with db.session() as session:
        assert (await session.exec(select(StaffDraft))).all() == []
        assert await staff_core.end_draft(session, doc) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[staff]\ndigest_weekday = "mon"\n', "staff.digest_weekday is 'mon': use one of monday"),
        ("[staff]\nescalation_minutes = 0\n", "staff.escalation_minutes must be at least 1"),
        ('[staff]\ndigest_time = "8"\n', "staff.digest_time has the value '8'"),
        ("[staff]\ndigest_low_adherence = 1.5\n", "staff.digest_low_adherence must be above 0 and at most 1"),
        ("[staff]\ndigest_pain_rise = 0\n", "staff.digest_pain_rise must be above 0"),
        ("[staff]\ndigest_no_response_days = 0\n", "staff.digest_no_response_days must be at least 1"),
    ],
)
def test_staff_settings_are_validated(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN})
    path.write_text('[staff]\ndigest_weekday = "Sunday"\ndigest_time = "18:30"\n', encoding="utf-8")
    settings = load_config(path, env={"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN}).staff
    assert settings.digest_weekday_index == 6 and settings.digest_time == time(18, 30)
