"""Care-team messages and caregivers, core rules on SQLite and PostgreSQL (the chat: tests/e2e/test_care.py).

Access to a patient's thread (rehab_bot/access.py) for every staff role, the
office-time escalation, photos kept private, and every way a caregiver link
can refuse: expired, used, a patient's or staff member's account, a second
patient, another patient's permissions, a removed link answering.
"""

from __future__ import annotations

import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import make_config, make_patient, make_staff
from sqlmodel import col, select

from rehab_bot import caregiver as caregivers
from rehab_bot import message as core
from rehab_bot import patient as patients
from rehab_bot import staff as staff_core
from rehab_bot.access import Forbidden, StaffError
from rehab_bot.clock import FakeClock
from rehab_bot.config import ClinicConfig
from rehab_bot.content import load_content
from rehab_bot.db import Database
from rehab_bot.models import AuditLog, CareMessage, CheckIn, Delivery, Kind, Patient, Staff
from rehab_bot.office_hours import parse_office_hours

CLINIC = ClinicConfig(name="Klinik Nord")
CONTENT = load_content(None)


async def setup(db: Database, clock: FakeClock) -> tuple[Staff, Staff, Staff, Staff, Patient, CareMessage]:
    admin = await make_staff(db, role="admin", name="Admin")
    owner = await make_staff(db, name="Dr Owner")
    colleague = await make_staff(db, name="Dr Colleague")
    gone = await make_staff(db, name="Dr Gone", active=False)
    patient, _ = await make_patient(db, clock, times=(), therapist_id=owner.id)
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        sent = await core.send(session, row, CLINIC, text="Is this normal?", now=clock.now(), chat_message_id=5)
        await session.commit()
    return admin, owner, colleague, gone, patient, sent.message


async def test_only_the_responsible_therapist_or_an_admin_may_answer(db: Database, clock: FakeClock) -> None:
    admin, owner, colleague, gone, patient, message = await setup(db, clock)
    assert message.id is not None
    async with db.session() as session:
        notices = (await session.exec(select(Delivery).where(col(Delivery.kind) == Kind.MESSAGE.value))).all()
        assert [(d.chat_id, d.staff_id) for d in notices] == [(owner.telegram_id, owner.id)], "the therapist only"
        for staff in (colleague, gone):
            with pytest.raises(StaffError):
                await core.reply(session, staff, message.id, "x", clock.now(), CLINIC)
            with pytest.raises(StaffError):
                await core.mark_read(session, staff, message.id, clock.now())
        assert len(await core.thread(session, colleague, patient, clock.now())) == 1, "colleagues may read"
        with pytest.raises(Forbidden):
            await core.thread(session, gone, patient, clock.now())
        with pytest.raises(StaffError, match="empty"):
            await core.reply(session, owner, message.id, "   ", clock.now(), CLINIC)
        answer = await core.reply(session, admin, message.id, "Yes, it is.", clock.now(), CLINIC)
        with pytest.raises(StaffError, match="patient's message"):
            await core.reply(session, owner, answer.id or 0, "again", clock.now(), CLINIC)
        await session.commit()
    async with db.session() as session:
        rows = (await session.exec(select(CareMessage).order_by(col(CareMessage.id)))).all()
        [to_patient] = (await session.exec(select(Delivery).where(col(Delivery.key) == f"cm{answer.id}"))).all()
        actions = [a.action for a in (await session.exec(select(AuditLog))).all()]
    assert rows[0].answered_at is not None and rows[0].read_by == admin.id
    assert to_patient.chat_id == patient.telegram_id and core.parse_payload(to_patient.payload) == (answer.id, 5)
    assert to_patient.body.startswith("💬 Admin, Klinik Nord:\n\nYes, it is.")
    assert actions.count(core.VIEW_THREAD) == 1 and actions.count(core.REPLY) == 1 and core.SEND in actions


async def test_a_message_escalates_after_working_hours_once(db: Database, clock: FakeClock) -> None:
    config = make_config(
        db.url,
        clinic={"office_hours": parse_office_hours({"mon-fri": "08:00-17:00"})},
        care={"escalate_after_hours": 4.0},
    )
    clock.set(datetime(2026, 6, 12, 13, 0, tzinfo=UTC))  # Friday 15:00 in Berlin: two office hours left
    admin, owner, _, _, _, message = await setup(db, clock)
    assert core.reply_due(message, config) == datetime(2026, 6, 15, 8, 0, tzinfo=UTC)  # Monday 10:00
    async with db.session() as session:
        assert await core.escalate_unanswered(session, datetime(2026, 6, 15, 7, 59, tzinfo=UTC), config) == []
        assert await core.escalate_unanswered(session, datetime(2026, 6, 15, 8, 0, tzinfo=UTC), config) == [message.id]
        assert await core.escalate_unanswered(session, datetime(2026, 6, 16, 8, 0, tzinfo=UTC), config) == []
        await session.commit()
        escalations = (await session.exec(select(Delivery).where(col(Delivery.key).like("%:esc:%")))).all()
    assert [d.chat_id for d in escalations] == [admin.telegram_id]
    assert "no reply for 4 working hours (responsible: Dr Owner)" in escalations[0].body
    # Read in time: never escalates.
    async with db.session() as session:
        row = await session.get(Patient, message.patient_id)
        assert row is not None
        other = await core.send(session, row, config.clinic, text="later", now=clock.now())
        await core.mark_read(session, owner, other.message.id or 0, clock.now())
        assert await core.escalate_unanswered(session, clock.now() + timedelta(days=30), config) == []


async def test_each_admin_reads_an_unanswered_message_in_their_language(db: Database, clock: FakeClock) -> None:
    """The escalation of a message nobody answered, like every staff text, is in its reader's language (its
    hours as that language writes them), and its payload carries that language for its Reply / Mark read
    buttons; the patient's words stay as written. It was English for every admin."""
    config = make_config(db.url, care={"escalate_after_hours": 1.5})
    german = await make_staff(db, role="admin", name="Dr Berta", language="de", telegram_id=71)
    english = await make_staff(db, role="admin", name="Dr Alan", telegram_id=72)
    patient, _ = await make_patient(db, clock, alias="ESC-1", times=(), therapist_id=None)
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        sent = await core.send(session, row, config.clinic, text="Knie steif", now=clock.now())
        assert await core.escalate_unanswered(session, clock.now() + timedelta(hours=2), config) == [sent.message.id]
        await session.commit()
        escalations = (await session.exec(select(Delivery).where(col(Delivery.key).like("%:esc:%")))).all()
    by_chat = {d.chat_id: d for d in escalations}
    assert by_chat[german.telegram_id].body == (
        "⏰ UNBEANTWORTET: Eine Nachricht von ESC-1 hat seit 1,5 Arbeitsstunden keine Antwort "
        "(zuständig: keine Therapeutin, kein Therapeut zugewiesen).\n\nKnie steif"
    )
    assert by_chat[english.telegram_id].body == (
        "⏰ UNANSWERED: a message from ESC-1 has had no reply for 1.5 working hours "
        "(responsible: no therapist assigned).\n\nKnie steif"
    )
    assert staff_core.payload_language(by_chat[german.telegram_id].payload) == "de"
    assert staff_core.payload_language(by_chat[english.telegram_id].payload) == "en"
    assert core.escalation_text(sent.message, patient, None, config, "de").startswith("⏰ UNBEANTWORTET")


async def test_photos_are_private_files_and_only_for_staff_who_may_see_the_patient(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    _, owner, colleague, gone, patient, _ = await setup(db, clock)
    folder = tmp_path / "photos"
    name = core.store_photo(folder, b"\xff\xd8jpeg", 1000)
    assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    with pytest.raises(core.PhotoTooLarge):
        core.store_photo(folder, b"x" * 1001, 1000)
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        sent = await core.send(session, row, CLINIC, text="", now=clock.now(), photo_path=name, photo_bytes=6)
        assert sent.message.id is not None
        assert await core.photo_for_staff(session, colleague, sent.message.id, folder, clock.now()) == b"\xff\xd8jpeg"
        with pytest.raises(Forbidden):
            await core.photo_for_staff(session, gone, sent.message.id, folder, clock.now())
        sent.message.photo_path = "../escape.jpg"
        assert core.photo_bytes(folder, sent.message) is None, "never a path outside the folder"
    assert owner.id is not None


async def test_reads_from_is_the_next_opening(clock: FakeClock) -> None:
    clinic = replace(CLINIC, office_hours=parse_office_hours({"mon-fri": "08:00-17:00"}))
    assert core.reads_from(clinic, datetime(2026, 6, 12, 10, 0, tzinfo=UTC)) is None  # Friday 12:00
    assert core.reads_from(clinic, datetime(2026, 6, 12, 16, 0, tzinfo=UTC)) == datetime(2026, 6, 15, 6, 0, tzinfo=UTC)
    assert core.reads_from(CLINIC, datetime(2026, 6, 13, 3, 0, tzinfo=UTC)) is None, "no hours: always open"


async def test_a_caregiver_link_refuses_everything_but_one_new_person(db: Database, clock: FakeClock) -> None:
    staff = await make_staff(db, name="Dr Link")
    patient, _ = await make_patient(db, clock, times=())
    second, _ = await make_patient(db, clock, times=())
    now = clock.now()
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        other = await session.get(Patient, second.id)
        assert row is not None and other is not None
        link = await caregivers.invite(session, row, now, hours=2)
        opened = await caregivers.open_link(session, link.code, patient.telegram_id or 0, "en", now)
        assert opened.outcome == caregivers.Outcome.IS_PATIENT
        opened = await caregivers.open_link(session, link.code, staff.telegram_id, "en", now)
        assert opened.outcome == caregivers.Outcome.IS_STAFF
        assert (await caregivers.open_link(session, "cgnosuch", 61, "en", now)).outcome == caregivers.Outcome.UNKNOWN
        assert (await caregivers.open_link(session, "notours", 61, "en", now)).outcome == caregivers.Outcome.UNKNOWN
        late = now + timedelta(hours=3)
        assert (await caregivers.open_link(session, link.code, 61, "en", late)).outcome == caregivers.Outcome.EXPIRED
        opened = await caregivers.open_link(session, link.code, 61, "de", now)
        assert opened.outcome == caregivers.Outcome.ASK_CONSENT
        assert (await caregivers.open_link(session, link.code, 62, "en", now)).outcome == caregivers.Outcome.USED
        assert caregivers.is_active(link) is False, "not before consent"
        await caregivers.consent(session, link, "Maria", now)
        assert caregivers.is_active(link)
        # One account supports one person.
        theirs = await caregivers.invite(session, other, now, hours=2)
        assert (await caregivers.open_link(session, theirs.code, 61, "en", now)).outcome == caregivers.Outcome.OTHER
        # Another patient cannot change or remove this link.
        with pytest.raises(caregivers.CaregiverError):
            await caregivers.set_permission(session, other, link.id or 0, "weekly", True, now)
        with pytest.raises(caregivers.CaregiverError):
            await caregivers.remove(session, other, link.id or 0, now)
        with pytest.raises(caregivers.CaregiverError):
            await caregivers.set_permission(session, row, link.id or 0, "everything", True, now)
        # A proxy answer for another patient's check-in is invalid and stores nothing.
        checkin = CheckIn(patient_id=other.id or 0, questionnaire_id="pain", started_at=now)
        session.add(checkin)
        await session.flush()
        result = await caregivers.proxy_answer(
            session, link, row, CONTENT, CLINIC, checkin.id or 0, 0, 3, now
        )  # fmt: skip
        assert result.status == "invalid"
        await caregivers.remove(session, row, link.id or 0, now)
        assert not caregivers.is_active(link) and link.telegram_id is None
        assert await caregivers.active_link(session, 61) is None
        await session.commit()


async def test_the_patients_delete_removes_their_photo_files(db: Database, clock: FakeClock, tmp_path: Path) -> None:
    _, _, _, _, patient, _ = await setup(db, clock)
    folder = tmp_path / "photos"
    name = core.store_photo(folder, b"\xff\xd8mine", 1000)
    kept = core.store_photo(folder, b"\xff\xd8someone else's", 1000)
    async with db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        await core.send(session, row, CLINIC, text="", now=clock.now(), photo_path=name)
        await session.commit()
        await patients.erase(session, row, now=clock.now(), clinic=CLINIC, photo_dir=folder)
        await session.commit()
        assert (await session.exec(select(CareMessage))).all() == []
    assert not (folder / name).exists() and (folder / kept).exists()


async def test_a_message_read_while_the_escalation_runs_is_not_escalated(db: Database, clock: FakeClock) -> None:
    """The therapist taps Mark read between the engine's look-up of unanswered messages and its claim of
    one: the claim sees the read and leaves the message alone (as an alert's claim sees an acknowledgement)."""
    config = make_config(db.url, care={"escalate_after_hours": 4.0})
    _, owner, _, _, _, message = await setup(db, clock)
    assert message.id is not None
    async with db.session() as session:
        look_up = session.exec
        read = False

        async def read_after_the_look_up(statement: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal read
            result = await look_up(statement, *args, **kwargs)
            if not read:  # the first statement is the look-up; the read commits before the claim
                read = True
                async with db.session() as other:
                    await core.mark_read(other, owner, message.id or 0, clock.now())
                    await other.commit()
            return result

        session.exec = read_after_the_look_up  # type: ignore[method-assign]
        assert await core.escalate_unanswered(session, clock.now() + timedelta(hours=5), config) == []
        await session.commit()
    async with db.session() as session:
        row = await session.get(CareMessage, message.id)
        assert row is not None and row.read_at is not None and row.escalated_at is None
        assert (await session.exec(select(Delivery).where(col(Delivery.key).like("%:esc:%")))).all() == []
