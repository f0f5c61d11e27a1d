"""The patient's own account on both databases: settings, pause/resume/stop, my-data export and deletion."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from factories import T0, FakeSender, make_patient, make_staff
from sqlalchemy import Table, delete, func, insert, select
from sqlmodel import SQLModel, col
from sqlmodel import select as select_models

from rehab_bot import alert as alerts
from rehab_bot import patient as core
from rehab_bot import programme
from rehab_bot import session as sessions
from rehab_bot.access import StaffError
from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig, DeliveryConfig
from rehab_bot.content import Content, load_content
from rehab_bot.db import Database
from rehab_bot.models import (
    Alert,
    AuditLog,
    Delivery,
    DeliveryStatus,
    ExerciseSession,
    Kind,
    Patient,
    PatientStatus,
    ReminderRule,
)
from rehab_bot.reminders import Dispatcher
from rehab_bot.schedule import QuietHours

TODAY = date(2026, 6, 10)  # a Wednesday; T0 is 07:00 in Berlin
NO_QUIET = DeliveryConfig(quiet_hours_start=None, quiet_hours_end=None)
CLINIC_QUIET = DeliveryConfig()  # 21:30-07:30


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


async def programme_patient(db: Database, clock: FakeClock, content: Content, **kw: Any) -> Patient:
    """A patient five days after lumbar surgery (three sessions a day), with their session rules."""
    patient, _ = await make_patient(
        db,
        clock,
        times=(),
        programme_id="lumbar-example",
        surgery_date=TODAY - timedelta(days=5),
        phase_id="weeks-1-2",
        session_times="09:00,13:00,18:00",
        **kw,
    )
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        await programme.schedule_sessions(s, fresh, content, clock.now())
        await s.commit()
        return fresh


async def rules_of(db: Database, patient: Patient, kind: Kind = Kind.SESSION) -> list[ReminderRule]:
    async with db.session() as s:
        rows = await s.exec(
            select_models(ReminderRule).where(
                col(ReminderRule.patient_id) == patient.id, col(ReminderRule.kind) == kind.value
            )
        )
        return sorted(rows.all(), key=lambda r: (r.local_time, r.id or 0))


async def reload(db: Database, patient: Patient) -> Patient:
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        return fresh


def berlin(day: date, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    # June: Berlin is UTC+2.
    return datetime(day.year, day.month, day.day, hour - 2, minute, tzinfo=UTC)


# --- who is asking -------------------------------------------------------------------------


async def test_standing_tells_patients_from_staff_and_strangers(db: Database, clock: FakeClock) -> None:
    active, _ = await make_patient(db, clock, times=())
    enrolling, _ = await make_patient(db, clock, times=(), status=PatientStatus.ENROLLING)
    staff = await make_staff(db)
    async with db.session() as s:
        assert (await core.standing(s, active.telegram_id or 0))[0] == core.Standing.PATIENT
        assert (await core.standing(s, enrolling.telegram_id or 0))[0] == core.Standing.ENROLLING
        assert (await core.standing(s, staff.telegram_id))[0] == core.Standing.STAFF
        assert (await core.standing(s, 424242))[0] == core.Standing.STRANGER


# --- settings ------------------------------------------------------------------------------


def test_parsing_times_quiet_hours_and_pause_dates() -> None:
    assert core.parse_times("8:00, 13.30 18") == ["08:00", "13:30", "18:00"]
    for bad, code in [
        ("", "times_format"),
        ("noon", "times_format"),
        ("25:00", "times_format"),
        ("8:00 08:00", "times_duplicate"),
    ]:
        with pytest.raises(core.InputError) as caught:
            core.parse_times(bad)
        assert caught.value.code == code
    assert core.parse_quiet_hours("22:00-07:00") == ("22:00", "07:00")
    assert core.parse_quiet_hours("22 bis 6.30") == ("22:00", "06:30")
    assert core.parse_quiet_hours("22 Uhr - 7 Uhr") == core.parse_quiet_hours("10pm-7am") == ("22:00", "07:00")
    assert core.parse_quiet_hours("²²-7") == ("22:00", "07:00")  # once a ValueError: "Something went wrong"
    assert core.parse_quiet_hours("22:00-24:00") == ("22:00", "00:00")
    # Emoji beside a time (an outside test's "von 23 bis 6 Uhr 😴" was refused with the format hint).
    assert core.parse_quiet_hours("von 23 bis 6 Uhr 😴") == ("23:00", "06:00")
    assert core.parse_quiet_hours("22:00-07:00 🌙") == core.parse_quiet_hours("22-7 ✌️") == ("22:00", "07:00")
    assert core.parse_times("⏰ 8:00, 18:00 🙂") == ["08:00", "18:00"]
    for bad in ("22:00", "22-22", "late-early", "1-2-3", "0:00-24:00"):
        with pytest.raises(core.InputError):
            core.parse_quiet_hours(bad)
    assert core.parse_pause_date("2026-06-20", TODAY) == date(2026, 6, 20)
    assert core.parse_pause_date("20.06.2026", TODAY) == date(2026, 6, 20)
    assert core.parse_pause_date("20.06.", TODAY) == date(2026, 6, 20)
    assert core.parse_pause_date("1.7.", TODAY) == date(2026, 7, 1)
    assert core.parse_pause_date("٢٠.٠٦.\u200b", TODAY) == date(2026, 6, 20)  # Arabic-Indic digits, a zero-width space
    for bad, code in [
        ("soon", "date_format"),
        ("31.02.2026", "date_format"),
        ("2026-06-09", "date_past"),
        ("2026-12-31", "date_far"),
        ("5.1.", "date_far"),
    ]:
        with pytest.raises(core.InputError) as caught:
            core.parse_pause_date(bad, TODAY)
        assert caught.value.code == code
    assert core.pause_until_for(7, TODAY) == date(2026, 6, 16), "a week from Wednesday: back on Wednesday"


def test_quiet_hours_for_a_patient() -> None:
    patient = Patient(alias="x")
    clinic = core.quiet_hours(patient, CLINIC_QUIET)
    assert clinic == QuietHours(time(21, 30), time(7, 30))
    assert clinic.contains("22:00") and clinic.contains("07:00") and not clinic.contains("07:30")
    patient.quiet_start, patient.quiet_end = "", ""
    assert core.quiet_hours(patient, CLINIC_QUIET) is None
    patient.quiet_start, patient.quiet_end = "13:00", "14:00"
    own = core.quiet_hours(patient, CLINIC_QUIET)
    assert own is not None and own.contains("13:30") and not QuietHours(time(13), time(14)).contains("22:00")


async def test_new_times_take_effect_from_the_next_slot(db: Database, clock: FakeClock, content: Content) -> None:
    patient = await programme_patient(db, clock, content)
    sender = FakeSender()
    engine = Dispatcher(db, clock, NO_QUIET, ClinicConfig(), sender)
    clock.set(berlin(TODAY, "09:00") + timedelta(seconds=5))
    await engine.tick()
    assert [m.slot for m in sender.sent] == ["09:00"]
    clock.set(berlin(TODAY, "09:30"))
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        with pytest.raises(core.InputError) as caught:
            await core.set_times(s, fresh, ["10:00", "14:00"], content=content, delivery=CLINIC_QUIET, now=clock.now())
        assert caught.value.code == "times_count" and caught.value.params == {"n": 3}
        with pytest.raises(core.InputError) as caught:
            await core.set_times(
                s, fresh, ["10:00", "14:00", "22:00"], content=content, delivery=CLINIC_QUIET, now=clock.now()
            )
        assert caught.value.code == "times_quiet"
        times = await core.set_times(
            s, fresh, ["10:00", "14:00", "19:00"], content=content, delivery=CLINIC_QUIET, now=clock.now()
        )
        await s.commit()
    assert times == ["10:00", "14:00", "19:00"]
    assert (await reload(db, patient)).session_times == "10:00,14:00,19:00"
    due = {r.local_time: r.next_due_at for r in await rules_of(db, patient) if r.active}
    tomorrow = TODAY + timedelta(days=1)
    assert due == {
        "10:00": berlin(tomorrow, "10:00"),  # today's first session was already reminded at 09:00
        "14:00": berlin(TODAY, "14:00"),
        "19:00": berlin(TODAY, "19:00"),
    }
    clock.set(berlin(TODAY, "10:00") + timedelta(seconds=5))
    await engine.tick()
    assert [m.slot for m in sender.sent] == ["09:00"], "no second first session today"


async def test_new_timezone_keeps_local_times(db: Database, clock: FakeClock, content: Content) -> None:
    patient = await programme_patient(db, clock, content)
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        with pytest.raises(core.InputError):
            await core.set_timezone(s, fresh, "Mars/Olympus", clock.now())
        await core.set_timezone(s, fresh, "America/New_York", clock.now())
        await s.commit()
    first = (await rules_of(db, patient))[0]
    assert first.next_due_at == datetime(2026, 6, 10, 13, 0, tzinfo=UTC), "09:00 in New York (UTC-4)"


async def test_quiet_hours_and_language(db: Database, clock: FakeClock) -> None:
    patient, _ = await make_patient(db, clock, times=())
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        core.set_quiet_hours(s, fresh, "22:00", "06:30", CLINIC_QUIET)
        core.set_language(s, fresh, "de")
        with pytest.raises(core.InputError):
            core.set_language(s, fresh, "fr")
        with pytest.raises(core.InputError):
            core.set_quiet_hours(s, fresh, "22:00", None, CLINIC_QUIET)
        await s.commit()
    stored = await reload(db, patient)
    assert (stored.quiet_start, stored.quiet_end, stored.language) == ("22:00", "06:30", "de")
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        core.set_quiet_hours(s, fresh, "", "", CLINIC_QUIET)
        await s.commit()
    assert core.quiet_hours(await reload(db, patient), CLINIC_QUIET) is None


async def test_quiet_hours_never_swallow_a_session(db: Database, clock: FakeClock) -> None:
    """As new times may not fall in the quiet hours, quiet hours may not cover a session time."""
    patient, _ = await make_patient(db, clock, times=(), session_times="07:00,18:00", quiet_start="", quiet_end="")
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        with pytest.raises(core.InputError) as own:
            core.set_quiet_hours(s, fresh, "20:00", "08:00", CLINIC_QUIET)
        assert own.value.code == "quiet_sessions"
        assert own.value.params == {"times": "07:00", "start": "20:00", "end": "08:00"}
        with pytest.raises(core.InputError) as clinic:  # the clinic's 21:30-07:30 covers 07:00 too
            core.set_quiet_hours(s, fresh, None, None, CLINIC_QUIET)
        assert clinic.value.params == {"times": "07:00", "start": "21:30", "end": "07:30"}
        assert (fresh.quiet_start, fresh.quiet_end) == ("", ""), "nothing changed"
        with pytest.raises(core.InputError) as both:
            core.set_quiet_hours(s, fresh, "17:00", "07:30", CLINIC_QUIET)
        assert both.value.params["times"] == "07:00, 18:00"
        core.set_quiet_hours(s, fresh, "20:00", "06:30", CLINIC_QUIET)  # clear of both sessions
        core.set_quiet_hours(s, fresh, None, None, NO_QUIET)  # a clinic without quiet hours
        await s.commit()
    stored = await reload(db, patient)
    assert (stored.quiet_start, stored.quiet_end) == (None, None)


# --- pause, resume, stop -----------------------------------------------------------------------


async def test_pause_skips_reminders_and_the_engine_resumes_after_the_date(db: Database, clock: FakeClock) -> None:
    patient, _ = await make_patient(db, clock, times=("09:00",))
    sender = FakeSender()
    engine = Dispatcher(db, clock, NO_QUIET, ClinicConfig(), sender)
    async with db.session() as s:
        queued = Delivery(
            key="held",
            kind="session",
            priority=3,
            patient_id=patient.id,
            chat_id=patient.telegram_id or 0,
            due_at=T0,
            not_before=T0 + timedelta(hours=1),
        )
        s.add(queued)
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        assert await core.pause(s, fresh, core.pause_until_for(3, TODAY), clock.now()) == core.PauseResult.PAUSED
        await s.commit()
    stored = await reload(db, patient)
    assert stored.status == PatientStatus.PAUSED and stored.paused_until == date(2026, 6, 12)
    async with db.session() as s:
        held = (await s.exec(select_models(Delivery).where(col(Delivery.key) == "held"))).one()
    assert held.status == DeliveryStatus.SKIPPED, "a reminder held back before the pause must not go out"
    for day in range(4):
        clock.set(berlin(TODAY + timedelta(days=day), "09:00") + timedelta(seconds=5))
        await engine.tick()
    assert [m.local_date for m in sender.sent] == [date(2026, 6, 13)]
    assert (await reload(db, patient)).status == PatientStatus.ACTIVE


async def test_resume_ends_a_pause_at_once(db: Database, clock: FakeClock, content: Content) -> None:
    patient, _ = await make_patient(db, clock, times=("09:00",))
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        await core.pause(s, fresh, TODAY + timedelta(days=10), clock.now())
        await s.commit()
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        assert await core.resume(s, fresh, content=content, now=clock.now()) == core.ResumeResult.RESUMED
        assert await core.resume(s, fresh, content=content, now=clock.now()) == core.ResumeResult.ALREADY_ACTIVE
        await s.commit()
    stored = await reload(db, patient)
    assert stored.status == PatientStatus.ACTIVE and stored.paused_until is None
    sender = FakeSender()
    clock.set(berlin(TODAY, "09:00") + timedelta(seconds=5))
    await Dispatcher(db, clock, NO_QUIET, ClinicConfig(), sender).tick()
    assert len(sender.sent) == 1


async def test_stop_switches_every_rule_off_and_resume_plans_again(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient = await programme_patient(db, clock, content)
    sender = FakeSender()
    engine = Dispatcher(db, clock, NO_QUIET, ClinicConfig(), sender)
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        await core.stop(s, fresh, clock.now())
        await s.commit()
    assert (await reload(db, patient)).status == PatientStatus.STOPPED
    async with db.session() as s:
        rules = (await s.exec(select_models(ReminderRule).where(col(ReminderRule.patient_id) == patient.id))).all()
    assert rules and all(not r.active and r.next_due_at is None for r in rules)
    clock.set(berlin(TODAY + timedelta(days=2), "20:00"))
    await engine.tick()
    assert sender.sent == [] and await engine.next_wakeup() is None
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        assert await core.resume(s, fresh, content=content, now=clock.now()) == core.ResumeResult.RESTARTED
        await s.commit()
    clock.set(berlin(TODAY + timedelta(days=3), "09:00") + timedelta(seconds=5))
    await engine.tick()
    assert [m.slot for m in sender.sent] == ["09:00"]


# --- today and progress --------------------------------------------------------------------------


async def test_today_and_progress(db: Database, clock: FakeClock, content: Content) -> None:
    patient = await programme_patient(db, clock, content)
    async with db.session() as s:
        s.add(ExerciseSession(patient_id=patient.id or 0, local_date=TODAY, slot="09:00", status="done"))
        s.add(
            ExerciseSession(
                patient_id=patient.id or 0, local_date=TODAY - timedelta(days=1), slot="09:00", status="done"
            )
        )
        await s.commit()
    clock.set(berlin(TODAY, "10:00"))
    async with db.session() as s:
        items = await core.today(s, patient, clock.now())
        progress = await core.progress(s, patient, clock.now())
    assert [(i.slot, i.status) for i in items] == [("09:00", "done"), ("13:00", "upcoming"), ("18:00", "upcoming")]
    assert progress.stats.streak_days == 2 and progress.day_after_surgery == 5
    assert progress.next_session == berlin(TODAY, "13:00")


# --- my data and deletion ----------------------------------------------------------------------------


def _python_type(column: Any) -> Any:
    kind = column.type
    kind = getattr(kind, "impl_instance", kind)  # UTCDateTime and other decorators
    try:
        return kind.python_type
    except NotImplementedError:
        return str


def _value(column: Any, tag: str) -> Any:
    python_type = _python_type(column)
    if python_type is bool:
        return True
    if python_type is int:
        return 7
    if python_type is float:
        return 1.5
    if python_type is datetime:
        return T0
    if python_type is date:
        return TODAY
    return f"{tag}-{column.name}-{uuid.uuid4().hex[:8]}"


async def fill(conn: Any, table: Table, patient_id: int, tag: str) -> Any:
    """Insert one row into table for the patient, every column set, parents made as needed; return its key."""
    values: dict[str, Any] = {}
    for column in table.c:
        fks = list(column.foreign_keys)
        if column.name == "patient_id":
            values[column.name] = patient_id
        elif fks:
            parent = fks[0].column.table
            if parent is table:  # a thread's parent (care_message.parent_id): the row starts one
                values[column.name] = None
            elif parent.name == "patient":
                values[column.name] = patient_id
            elif "patient_id" in parent.c:
                values[column.name] = await fill(conn, parent, patient_id, tag)
            else:  # staff: somebody else's row
                values[column.name] = await fill(conn, parent, patient_id, tag + "-staff")
        elif column.primary_key and column.autoincrement in (True, "auto") and python_type_is_int(column):
            continue
        elif column.name == "telegram_id":
            values[column.name] = 5_000_000 + int(uuid.uuid4().int % 1_000_000)
        else:
            values[column.name] = _value(column, tag)
    if [c.name for c in table.primary_key.columns] == ["patient_id"]:
        # One row per patient that the database makes itself (caseload_figures, by trigger): replaced.
        await conn.execute(delete(table).where(table.c.patient_id == patient_id))
    result = await conn.execute(insert(table).values(**values).returning(*table.primary_key.columns))
    return result.scalar_one()


def python_type_is_int(column: Any) -> bool:
    return _python_type(column) is int


async def populate(db: Database, patient_id: int, tag: str) -> None:
    async with db.session() as s:
        conn = await s.connection()
        for table in core.patient_tables():
            if table.name != "patient":
                await fill(conn, table, patient_id, tag)
        await s.commit()


async def counts(db: Database, patient_id: int) -> dict[str, int]:
    async with db.session() as s:
        conn = await s.connection()
        return {
            t.name: int(
                (
                    await conn.execute(select(func.count()).select_from(t).where(t.c.patient_id == patient_id))
                ).scalar_one()
            )
            for t in core.patient_tables()
        }


async def test_mydata_exports_every_table_that_references_the_patient(db: Database, clock: FakeClock) -> None:
    therapist = await make_staff(db, name="Dr Weiss")
    anna, _ = await make_patient(db, clock, times=(), therapist_id=therapist.id, surgery_date=TODAY)
    ben, _ = await make_patient(db, clock, times=())
    await populate(db, anna.id or 0, "anna")
    await populate(db, ben.id or 0, "ben")
    expected = await counts(db, anna.id or 0)
    async with db.session() as s:
        data = await core.export(s, anna, clock.now())
    tables_with_patient_id = {t.name for t in SQLModel.metadata.sorted_tables if "patient_id" in t.c}
    assert set(data["tables"]) == tables_with_patient_id
    for name, rows in data["tables"].items():
        assert len(rows) == expected[name] >= 1, name
        assert all(r.get("patient_id") == anna.id for r in rows), name
        assert not set(core.INTERNAL_COLUMNS.get(name, ())) & {k for r in rows for k in r}, name
    everything = str(data)
    assert "ben-" not in everything, "nothing of another patient"
    assert data["patient"]["alias"] == anna.alias and data["patient"]["surgery_date"] == TODAY.isoformat()
    assert data["patient"]["therapist"] == "Dr Weiss" and "id" not in data["patient"]
    assert "code" not in str(data["tables"]["invite"]), "invite codes are the clinic's secret"


async def test_mydata_says_in_the_patients_language_what_the_file_and_each_part_hold(
    db: Database, clock: FakeClock
) -> None:
    """/mydata's file was English keys only, for a German patient too. The keys stay the database's own (the
    same in every language, for a data-protection officer or a program to read and compare); a part first
    in the file says in the patient's language what the file is and what each part holds."""
    anna, _ = await make_patient(db, clock, times=(), language="de")
    await populate(db, anna.id or 0, "anna")
    async with db.session() as s:
        data = await core.export(s, anna, clock.now())
    assert list(data) == ["about", "exported_at", "patient", "tables"]
    about = data["about"]
    assert about["language"] == "de"
    assert about["text"].startswith("Alle Daten, die dieser Bot über Sie speichert")
    assert set(about["parts"]) == {"exported_at", "patient", "tables", *data["tables"]}
    assert about["parts"]["exercise_session"].startswith("Ihre Übungseinheiten: erledigt, teilweise oder ausgelassen")
    assert about["parts"]["exported_at"] == "Wann diese Datei erstellt wurde"
    assert "alias" in data["patient"] and "exercise_session" in data["tables"], "the keys stay as they were"
    async with db.session() as s:
        english = await core.export(s, anna.model_copy(update={"language": "en"}), clock.now())
    assert english["about"]["parts"]["exported_at"] == "When this file was made"


def test_every_table_that_references_a_patient_is_described_for_mydata() -> None:
    """A new table with a patient_id is exported by /mydata at once: it needs its words in ABOUT_TABLES."""
    assert {t.name for t in core.patient_tables()} == set(core.ABOUT_TABLES)


async def test_mydata_names_no_staff_member_by_their_internal_id(db: Database, clock: FakeClock) -> None:
    # Who on the staff wrote, read or acknowledged something is the clinic's, not the patient's: every
    # column that points at a staff member stays out (the own plan's created_by/updated_by did not).
    anna, _ = await make_patient(db, clock, times=())
    await populate(db, anna.id or 0, "anna")
    async with db.session() as s:
        data = await core.export(s, anna, clock.now())
    for table in core.patient_tables():
        staff_columns = {c.name for c in table.c if any(fk.column.table.name == "staff" for fk in c.foreign_keys)}
        rows = data["tables"].get(table.name, [])
        assert rows and not staff_columns & {k for r in rows for k in r}, table.name


async def test_delete_erases_every_table_and_tells_the_therapist(db: Database, clock: FakeClock) -> None:
    therapist = await make_staff(db, name="Dr Weiss")
    anna, _ = await make_patient(
        db, clock, times=("09:00",), therapist_id=therapist.id, surgery_date=TODAY, programme_id="lumbar-example"
    )
    ben, _ = await make_patient(db, clock, times=("09:00",))
    await populate(db, anna.id or 0, "anna")
    await populate(db, ben.id or 0, "ben")
    ben_before = await counts(db, ben.id or 0)
    async with db.session() as s:
        audit_before = len((await s.exec(select_models(AuditLog).where(col(AuditLog.patient_id) == anna.id))).all())
        fresh = await s.get(Patient, anna.id)
        assert fresh is not None
        await core.erase(s, fresh, now=clock.now(), clinic=ClinicConfig(), photo_dir=None)
        await s.commit()
    after = await counts(db, anna.id or 0)
    for name, n in after.items():
        if name == "patient":
            continue
        allowed = {"alert": 1, "delivery": 1, "audit_log": audit_before + 1}.get(name, 0)
        assert n == allowed, f"{name}: {n} rows left"
    async with db.session() as s:
        [alert] = (await s.exec(select_models(Alert).where(col(Alert.patient_id) == anna.id))).all()
        [delivery] = (await s.exec(select_models(Delivery).where(col(Delivery.patient_id) == anna.id))).all()
        tombstone = await s.get(Patient, anna.id)
        erased = (await s.exec(select_models(AuditLog).where(col(AuditLog.action) == core.ERASE_ACTION))).one()
    assert alert.kind == "data_deleted" and alert.detail == ""
    assert delivery.kind == Kind.ALERT and delivery.chat_id == therapist.telegram_id
    assert delivery.status == DeliveryStatus.QUEUED and anna.alias in delivery.body
    assert "anna-" not in delivery.body and "lumbar" not in delivery.body, "no health data in the notice"
    assert erased.patient_id == anna.id and erased.detail == ""
    assert tombstone is not None
    assert tombstone.telegram_id is None and tombstone.status == PatientStatus.STOPPED
    assert tombstone.surgery_date is None and tombstone.programme_id == "" and tombstone.session_times == ""
    assert tombstone.consent_at is None and tombstone.alias == anna.alias and tombstone.therapist_id == therapist.id
    assert await counts(db, ben.id or 0) == ben_before, "another patient's data is untouched"
    # Nothing can reach Anna again: no rules (above), no Telegram id to send to.
    async with db.session() as s:
        assert await core.find(s, anna.telegram_id or 0) is None


async def test_the_audit_log_kept_after_delete_holds_no_health_data(db: Database, clock: FakeClock) -> None:
    # The audit rows about the patient stay (who did what, when), but their details named the
    # kind of alert acknowledged ("crisis", "emergency"): health data the tombstone itself drops.
    therapist = await make_staff(db, name="Dr Weiss")
    anna, _ = await make_patient(db, clock, times=(), therapist_id=therapist.id)
    async with db.session() as s:
        fresh = await s.get(Patient, anna.id)
        assert fresh is not None
        alert = await alerts.raise_alert(
            s, fresh, kind="crisis", severity="emergency", detail="crisis words", now=clock.now(), clinic=ClinicConfig()
        )
        assert alert is not None and alert.id is not None
        await alerts.acknowledge(s, therapist, alert.id, clock.now())
        await s.commit()
        [acknowledged] = (
            await s.exec(select_models(AuditLog).where(col(AuditLog.action) == "alert.acknowledge"))
        ).all()
        assert "crisis" in acknowledged.detail  # before: the detail names the kind of alert
        await core.erase(s, fresh, now=clock.now(), clinic=ClinicConfig(), photo_dir=None)
        await s.commit()
    async with db.session() as s:
        kept = (await s.exec(select_models(AuditLog).where(col(AuditLog.patient_id) == anna.id))).all()
    assert {row.action for row in kept} >= {"alert.acknowledge", core.ERASE_ACTION}, "who did what and when stays"
    assert [row.detail for row in kept] == [""] * len(kept), "no detail about the deleted patient is kept"


async def test_a_deleted_patients_alert_ids_are_never_given_to_another_patients_alert(
    db: Database, clock: FakeClock
) -> None:
    # SQLite gives a new row the highest id + 1. Deleting a patient's newest alerts would hand their ids
    # to the next alerts, and an Acknowledge button still showing the old alert would acknowledge
    # another patient's emergency, unseen: it would then never escalate.
    therapist = await make_staff(db, name="Dr Weiss")
    anna, _ = await make_patient(db, clock, times=(), therapist_id=therapist.id, telegram_id=5101)
    ben, _ = await make_patient(db, clock, times=(), therapist_id=therapist.id, telegram_id=5102)
    clinic = ClinicConfig()
    async with db.session() as s:
        fresh_anna, fresh_ben = await s.get(Patient, anna.id), await s.get(Patient, ben.id)
        assert fresh_anna is not None and fresh_ben is not None
        raised = []
        for n, who in enumerate((fresh_ben, fresh_anna, fresh_anna)):
            made = await alerts.raise_alert(
                s, who, kind="crisis", severity="emergency", detail=f"about {who.alias} {n}",
                now=clock.now(), clinic=clinic,
            )  # fmt: skip
            raised.append(made)
        annas = [a.id for a in raised[1:] if a is not None]
        await s.commit()
        await core.erase(s, fresh_anna, now=clock.now(), clinic=clinic, photo_dir=None)
        await s.commit()
    async with db.session() as s:  # as the next update would: a session of its own
        fresh_ben = await s.get(Patient, ben.id)
        assert fresh_ben is not None
        later = await alerts.raise_alert(
            s, fresh_ben, kind="red_flag", severity="emergency", detail="saddle numbness", now=clock.now(),
            clinic=clinic,
        )  # fmt: skip
        await s.commit()
        assert later is not None and later.id is not None
        assert later.id > max(annas), "ids only rise"
        ids = (await s.exec(select_models(Alert.id))).all()
        assert not set(annas) & set(ids), "a deleted alert's id names no other alert"
        for old in annas:
            with pytest.raises(StaffError, match="no longer exists"):
                await alerts.acknowledge(s, therapist, old, clock.now())
        await s.refresh(later)
        assert later.acknowledged_at is None


async def test_stats_for_a_deleted_patient_are_empty(db: Database, clock: FakeClock) -> None:
    anna, _ = await make_patient(db, clock, times=())
    async with db.session() as s:
        s.add(ExerciseSession(patient_id=anna.id or 0, local_date=TODAY, slot="09:00", status="done"))
        await s.commit()
        fresh = await s.get(Patient, anna.id)
        assert fresh is not None
        await core.erase(s, fresh, now=clock.now(), clinic=replace(ClinicConfig(), alert_chat_id=None), photo_dir=None)
        await s.commit()
        st = await sessions.stats(s, fresh, clock.now())
    assert st.done_total == 0 and st.streak_days == 0


async def test_new_times_without_a_programme_move_the_existing_rules(
    db: Database, clock: FakeClock, content: Content
) -> None:
    patient, _ = await make_patient(db, clock, times=("09:00", "18:00"))
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        with pytest.raises(core.InputError) as caught:
            await core.set_times(s, fresh, ["10:00"], content=content, delivery=NO_QUIET, now=clock.now())
        assert caught.value.params == {"n": 2}
        await core.set_times(s, fresh, ["10:00", "19:00"], content=content, delivery=NO_QUIET, now=clock.now())
        await s.commit()
    rules = await rules_of(db, patient)
    assert [(r.local_time, r.active, r.next_due_at) for r in rules] == [
        ("10:00", True, berlin(TODAY, "10:00")),
        ("19:00", True, berlin(TODAY, "19:00")),
    ]


# --- typed answers awaited -------------------------------------------------------------------------


async def test_an_awaited_typed_answer_is_stored_expires_by_the_clock_and_is_erased(
    db: Database, clock: FakeClock
) -> None:
    patient, _ = await make_patient(db, clock, times=())
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        assert core.awaited_input(fresh, clock.now(), 15) is None
        core.expect_input(s, fresh, "times", clock.now())
        await s.commit()
    async with db.session() as s:  # a new session: what a restarted process sees
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None and fresh.awaiting_since == clock.now()
        assert core.awaited_input(fresh, clock.now() + timedelta(minutes=15), 15) == core.Awaited("times", False)
        assert core.awaited_input(fresh, clock.now() + timedelta(minutes=16), 15) == core.Awaited("times", True)
        exported = await core.export(s, fresh, clock.now())
        assert exported["patient"]["awaiting"] == "times"
        await core.erase(s, fresh, now=clock.now(), clinic=replace(ClinicConfig(), alert_chat_id=None), photo_dir=None)
        await s.commit()
    async with db.session() as s:
        gone = await s.get(Patient, patient.id)
        assert gone is not None and (gone.awaiting, gone.awaiting_since) == ("", None)
    with pytest.raises(ValueError):
        core.expect_input(s, gone, "banana", clock.now())


@pytest.mark.parametrize(
    ("kind", "text", "answer"),
    [
        ("times", "07:30, 12:30", True),
        ("times", "8:00 8:00", True),  # a duplicate is still an attempt at times
        ("times", "thank you", False),
        ("quiet", "22-7", True),
        ("quiet", "late", False),
        ("tz", "Berlin", True),
        ("tz", "my knee is fine", False),
        ("date", "20.06.2026", True),
        ("date", "2026-01-01", True),  # in the past, but a date
        ("date", "next week", False),
    ],
)
def test_what_reads_as_an_answer(kind: str, text: str, answer: bool) -> None:
    assert core.looks_like_answer(kind, text, TODAY) is answer


@pytest.mark.parametrize(
    ("text", "cancel"),
    [
        ("cancel", True),
        ("Cancel.", True),
        (" ABBRECHEN! ", True),
        ("Abbruch", True),
        ("abbrechen\u200b", True),
        ("cancel my 9:00 session", False),
        ("please do not cancel", False),
        ("halb acht", False),
        ("", False),
    ],
)
def test_only_a_word_for_leaving_the_question_cancels_it(text: str, cancel: bool) -> None:
    assert core.is_cancel(text) is cancel


async def test_the_evening_check_in_follows_new_session_times_without_a_second_one_today(
    db: Database, clock: FakeClock, content: Content
) -> None:
    """Check-ins come an hour after the last session (17:00-20:30); moving the sessions moves them."""
    from rehab_bot import checkin

    patient = await programme_patient(db, clock, content)
    async with db.session() as s:
        fresh = await s.get(Patient, patient.id)
        assert fresh is not None
        await checkin.schedule_for(s, fresh, content, clock.now())
        await s.commit()
    assert {r.local_time for r in await rules_of(db, patient, Kind.CHECKIN)} == {"19:00"}  # 18:00 + 1 h
    [motivation] = await rules_of(db, patient, Kind.MOTIVATION)
    assert motivation.local_time == "19:30"

    async def move_to(times: list[str]) -> None:
        async with db.session() as s:
            fresh = await s.get(Patient, patient.id)
            assert fresh is not None
            await core.set_times(s, fresh, times, content=content, delivery=NO_QUIET, now=clock.now())
            await s.commit()

    await move_to(["08:00", "12:00", "15:00"])  # 16:00 is before the earliest, 17:00
    checkins = [r for r in await rules_of(db, patient, Kind.CHECKIN) if r.active]
    assert checkins and {r.local_time for r in checkins} == {"17:00"}
    assert any(r.next_due_at == berlin(TODAY, "17:00") for r in checkins)
    assert [r.local_time for r in await rules_of(db, patient, Kind.MOTIVATION)] == ["17:30"]

    # Today's check-in goes out at 17:00; then the patient moves the last session later.
    sender = FakeSender()
    engine = Dispatcher(db, clock, NO_QUIET, ClinicConfig(), sender)
    clock.set(berlin(TODAY, "17:00") + timedelta(seconds=5))
    await engine.tick()
    assert [m.kind for m in sender.sent].count(Kind.CHECKIN.value) == 1
    await move_to(["09:00", "13:00", "19:30"])
    checkins = [r for r in await rules_of(db, patient, Kind.CHECKIN) if r.active]
    assert {r.local_time for r in checkins} == {"20:30"}  # 20:30 is the latest
    assert all(r.next_due_at is None or r.next_due_at > berlin(TODAY, "23:59") for r in checkins), "not twice today"
    clock.set(berlin(TODAY, "20:31"))
    await engine.tick()
    assert [m.kind for m in sender.sent].count(Kind.CHECKIN.value) == 1


def test_a_dash_before_the_first_time_or_after_the_last_is_no_time() -> None:
    """A dash joins two times ("08:00 – 13:00 – 18:00"); "-5, 13, 18" was read as 05:00, 13:00, 18:00 and
    answered "05:00 is in the quiet hours", about a time nobody typed."""
    from rehab_bot import schedule

    for typed, part in [("-5, 13, 18", "-5"), ("−5", "-5"), ("- 5", "- 5"), ("9, 13, 18-", "18-")]:
        with pytest.raises(schedule.TimesError) as caught:
            schedule.parse_times(typed)
        assert caught.value.part == part, typed
        with pytest.raises(core.InputError) as refused:
            core.parse_times(typed)
        assert refused.value.code == "times_format"
    assert schedule.parse_times("08:00 – 13:00 – 18:00") == ["08:00", "13:00", "18:00"]
    assert schedule.parse_times("-5, 13", skip_bad=True) == ["05:00", "13:00"]  # stored values, as before
    assert core.parse_quiet_hours("22:00-07:00") == ("22:00", "07:00")
