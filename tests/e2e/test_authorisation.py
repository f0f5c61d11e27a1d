"""Who may use the staff commands and buttons: strangers, patients, caregivers, therapists and admins.

Policy (README, "Staff access"): strangers, patients and patients' caregivers get exactly the
answer an unknown command or a stale button gets; a therapist sees and
changes their own patients, sees a colleague's patients read-only and cannot
change, export or acknowledge for them; staff invitations are for admins.
Every command and press looks the role up again in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram, FakeUser
from sqlmodel import col, select

from rehab_bot import caregiver as caregivers
from rehab_bot.models import Alert, AuditLog, CareMessage, Patient, PatientStatus, Staff

# A long scenario: `pytest -m "not slow"` leaves it out; .ci/run runs it.
pytestmark = pytest.mark.slow

COMMANDS = ["/patients", "/patients all", "/patient {alias}", "/alerts", "/invite", "/staffinvite", "/dashboard"]
NOT_YOURS = "is not your patient"
ADMIN_ONLY = "Only an admin can do this."


def CANCELLED(text: str) -> bool:
    return text in ("Cancelled; nothing was saved.", "Nothing to cancel.")


def STAFF_INVITE(text: str) -> bool:
    return text.startswith("New staff invitation") or text == ADMIN_ONLY


async def reply_to(user: FakeUser, text: str) -> str:
    """The bot's first reply to a message (callers check afterwards that no second one came)."""
    await user.send(text)
    [reply] = await user.wait_for()
    return reply.text or reply.caption or ""


async def say(user: FakeUser, text: str, until: Callable[[str], bool]) -> str:
    """Send text; return the first reply that matches (staff replies may come as several messages)."""
    await user.send(text)
    [reply] = await user.wait_for(lambda m: until(m.text or ""))
    return reply.text or ""


async def answer_to(user: FakeUser, data: str) -> str | None:
    """The callback answer to a press with this data on the user's latest message."""
    await user.press_data(data, user.last.message_id)
    answer = await user.wait_for_answer()
    return answer.text


def buttons(bot: Any, patient: Patient, alert: Alert, staff_id: int, message_id: int = 1) -> list[str]:
    pid = patient.id
    return [
        "st:pl:m:0",
        "st:pl:a:1",
        f"st:po:{pid}",
        f"st:pp:{pid}",
        f"st:pc:{pid}:lumbar-example",
        f"st:pt:{pid}",
        f"st:pz:{pid}",
        f"st:pd:{pid}:3",
        f"st:pr:{pid}",
        f"st:ec:{pid}",
        f"st:ef:{pid}",
        f"st:dc:{pid}",
        f"st:ak:{alert.id}",
        "st:sr:therapist",
        "st:x",
        "st:n",
        "st:ia",
        "st:is:lumbar",
        "st:ip:lumbar-example",
        f"st:it:{staff_id}",
        f"st:dy:{pid}",
        f"cm:r:{message_id}:{pid}",
        f"cm:k:{message_id}:{pid}",
    ]


async def setup(bot: Any) -> tuple[Staff, Staff, Staff, Patient, Alert]:
    admin = await make_staff(bot.db, role="admin", telegram_id=8001, name="Admin Ann")
    owner = await make_staff(bot.db, telegram_id=8002, name="Dr Owner")
    colleague = await make_staff(bot.db, telegram_id=8003, name="Dr Colleague")
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        alias="AUTH-01",
        telegram_id=8004,
        therapist_id=owner.id,
        programme_id="lumbar-example",
        surgery_date=date(2026, 6, 1),
        times=(),
    )
    async with bot.db.session() as session:
        alert = Alert(
            patient_id=patient.id or 0, severity="emergency", kind="red_flag", detail="x", created_at=bot.clock.now()
        )
        session.add(alert)
        # A message from the patient to the care team (the Reply and Mark read buttons name it).
        session.add(CareMessage(patient_id=patient.id or 0, direction="in", text="hello", created_at=bot.clock.now()))
        # The patient's caregiver (8006): a person linked to the patient, never staff.
        row = await session.get(Patient, patient.id)
        assert row is not None
        link = await caregivers.invite(session, row, bot.clock.now(), hours=1)
        await caregivers.open_link(session, link.code, 8006, "en", bot.clock.now())
        await caregivers.consent(session, link, "Carla", bot.clock.now())
        await session.commit()
        await session.refresh(alert)
    return admin, owner, colleague, patient, alert


async def snapshot(bot: Any, patient: Patient) -> tuple[Any, ...]:
    async with bot.db.session() as session:
        p = await session.get(Patient, patient.id)
        alerts = (await session.exec(select(Alert))).all()
        audit = (await session.exec(select(AuditLog))).all()
        messages = (await session.exec(select(CareMessage))).all()
    assert p is not None
    return (
        p.status,
        p.paused_until,
        p.programme_id,
        p.session_times,
        [a.acknowledged_at for a in alerts],
        len(audit),
        [(m.read_at, m.answered_at) for m in messages],
    )


async def test_strangers_and_patients_get_the_unknown_answer_to_everything(bot: Any, tg: FakeTelegram) -> None:
    admin, _, _, patient, alert = await setup(bot)
    before = await snapshot(bot, patient)
    for user in (tg.user(8005), tg.user(8004), tg.user(8006)):  # a stranger, the patient, their caregiver
        unknown = await reply_to(user, "/nosuchcommand")
        for command in COMMANDS:
            said = await reply_to(user, command.format(alias=patient.alias))
            assert said == unknown, f"{user.user_id} {command}: {said}"
        assert not any("/patients" in t or "staff" in t.lower() for t in user.texts())
        forged = await answer_to(user, "zz:1:forged")
        for data in buttons(bot, patient, alert, admin.id or 0):
            assert await answer_to(user, data) == forged, f"{user.user_id} pressed {data}"
        await user.expect_silence(1.2)  # Telegram spaces messages to a chat by a second
        assert len(user.messages) == 1 + len(COMMANDS), "one answer per command, nothing more"
    assert await snapshot(bot, patient) == before, "nothing changed and nothing was recorded"


async def test_therapists_and_admins_walk_the_matrix(bot: Any, tg: FakeTelegram) -> None:
    admin_row, owner_row, colleague_row, patient, alert = await setup(bot)
    admin, owner, colleague = tg.user(8001), tg.user(8002), tg.user(8003)
    alias = patient.alias

    # Commands.
    for user in (admin, owner, colleague):
        said = await say(user, "/patients", lambda t: "patients: " in t)
        assert said.startswith("All patients: 1" if user is admin else "Your patients: ")
        assert (await say(user, "/patients all", lambda t: "patients: " in t)).startswith("All patients: 1")
        detail = await say(user, f"/patient {alias}", lambda t: t.startswith(f"{alias} — active"))
        assert ("Read-only: patient of Dr Owner" in detail) == (user is colleague)
        assert bool(user.last.callback_data) == (user is not colleague), "colleagues get no change buttons"
        said = await say(user, "/alerts", lambda t: "alerts for" in t)
        if user is colleague:
            assert said == "No open alerts for your patients."
        else:
            assert said.startswith("Open alerts for") and "AUTH-01" in said
            assert user.last.callback_data == [f"st:ak:{alert.id}"]
        assert "step 1 of 5" in await say(user, "/invite", lambda t: "invitation" in t)
        assert await say(user, "/cancel", CANCELLED) == "Cancelled; nothing was saved."
        said = await say(user, "/staffinvite", STAFF_INVITE)
        if user is admin:
            assert said == "New staff invitation: which role?"
            assert await say(user, "/cancel", CANCELLED) == "Cancelled; nothing was saved."
        else:
            assert said == ADMIN_ONLY

    # Buttons: the colleague may look but not touch.
    pid = patient.id
    changes = [f"st:pp:{pid}", f"st:pc:{pid}:lumbar-example", f"st:pt:{pid}", f"st:pz:{pid}", f"st:pd:{pid}:3"]
    changes += [f"st:pr:{pid}", f"st:ec:{pid}", f"st:ef:{pid}", f"st:dc:{pid}", f"st:ak:{alert.id}", f"st:dy:{pid}"]
    async with bot.db.session() as session:
        [message] = (await session.exec(select(CareMessage))).all()
    changes += [f"cm:r:{message.id}:{pid}", f"cm:k:{message.id}:{pid}"]  # replying and marking read change the record
    before = await snapshot(bot, patient)
    for data in changes:
        answer = await answer_to(colleague, data)
        assert answer is not None and NOT_YOURS in answer, (data, answer)
    assert (await answer_to(colleague, "st:sr:therapist")) == ADMIN_ONLY
    assert (await answer_to(owner, "st:sr:therapist")) == ADMIN_ONLY
    after = await snapshot(bot, patient)
    assert after[:5] == before[:5], "the colleague changed nothing"
    for data in ("st:pl:m:0", "st:pl:a:0", f"st:po:{pid}"):
        assert (await answer_to(colleague, data)) is None, data

    for user in (owner, admin):
        assert (await answer_to(user, f"st:pp:{pid}")) is None
        await user.wait_for(lambda m: "Choose the new one" in (m.text or ""))
        assert (await answer_to(user, f"st:pc:{pid}:lumbar-example")) == (
            "No change: the patient is on this programme already."
        )
        assert (await answer_to(user, f"st:pt:{pid}")) is None
        assert await say(user, "/cancel", CANCELLED) == "Cancelled; nothing was saved."
        assert (await answer_to(user, f"st:pz:{pid}")) is None
        assert (await answer_to(user, f"st:pd:{pid}:3")) == "Paused."
        assert (await answer_to(user, f"st:pr:{pid}")) == "Resumed."
        assert (await answer_to(user, f"st:ec:{pid}")) == "Export on its way."
        assert (await answer_to(user, f"st:ef:{pid}")) == "Export on its way."
        docs = await user.wait_for(lambda m: m.document is not None, count=2)
        assert [(d.document.filename or "")[-4:] for d in docs if d.document] == [".zip", "json"]
        assert (await answer_to(user, f"st:dc:{pid}")) is None
        await user.wait_for(lambda m: "Discharge AUTH-01?" in (m.text or ""))
        assert (await answer_to(user, "st:n")) == "No change."
        for stale in ("st:x", "st:ia", "st:is:lumbar", "st:ip:lumbar-example", f"st:it:{owner_row.id}"):
            assert (await answer_to(user, stale)) in ("Nothing to cancel.", "This step is no longer active."), stale
    assert (await answer_to(owner, f"cm:k:{message.id}:{pid}")) == "Marked read."
    assert (await answer_to(admin, f"cm:k:{message.id}:{pid}")) == "Already marked read by Dr Owner."
    assert (await answer_to(admin, f"cm:r:{message.id}:{pid}")) is None
    await admin.wait_for(lambda m: "Type your reply to AUTH-01" in (m.text or ""))
    assert await say(admin, "/cancel", CANCELLED) == "Cancelled; nothing was saved."
    assert (await answer_to(owner, f"st:ak:{alert.id}")) == "Acknowledged."
    assert (await answer_to(admin, f"st:ak:{alert.id}")) == "Already acknowledged by Dr Owner."
    assert (await answer_to(admin, "st:sr:therapist")) == "This step is no longer active."
    assert (await answer_to(admin, f"st:dy:{pid}")) == "Discharged."
    assert (await answer_to(owner, f"st:dy:{pid}")) == "Already discharged."

    # Every staff action is in the audit log; the refusals are not.
    async with bot.db.session() as session:
        rows = (await session.exec(select(AuditLog).order_by(col(AuditLog.id)))).all()
    by = {s.id: [r.action for r in rows if r.staff_id == s.id] for s in (admin_row, owner_row, colleague_row)}
    assert set(by[colleague_row.id]) == {"view.patients", "view.patient", "view.alerts"}
    for staff_id in (owner_row.id, admin_row.id):
        assert {"view.patients", "view.patient", "view.alerts", "change.pause", "change.resume", "export"} <= set(
            by[staff_id]
        )
    assert by[owner_row.id].count("export") == 2 and "alert.acknowledge" in by[owner_row.id]
    assert by[admin_row.id][-1] == "change.discharge" and "alert.acknowledge" not in by[admin_row.id]
    assert all(r.staff_id is not None for r in rows if not r.action.startswith("caregiver."))
    assert "message.read" in by[owner_row.id] and "message.read" not in by[admin_row.id]


async def test_the_role_is_rechecked_on_every_command_and_press(bot: Any, tg: FakeTelegram) -> None:
    _, owner_row, _, patient, _ = await setup(bot)
    owner, stranger = tg.user(8002), tg.user(8009)
    await say(owner, f"/patient {patient.alias}", lambda t: t.startswith(patient.alias + " — "))
    detail = owner.last
    unknown = await reply_to(stranger, "/nosuchcommand")
    forged = await answer_to(stranger, "zz:forged")

    async with bot.db.session() as session:
        row = await session.get(Staff, owner_row.id)
        assert row is not None
        row.active = False
        session.add(row)
        await session.commit()
    assert await reply_to(owner, "/patients") == unknown
    await owner.press("Pause", detail)
    assert (await owner.wait_for_answer()).text == forged
    async with bot.db.session() as session:
        p = await session.get(Patient, patient.id)
    assert p is not None and p.status == PatientStatus.ACTIVE

    # Demoted from admin to therapist: the admin-only action goes at once.
    async with bot.db.session() as session:
        row = await session.get(Staff, owner_row.id)
        assert row is not None
        row.active, row.role = True, "admin"
        session.add(row)
        await session.commit()
    assert await say(owner, "/staffinvite", STAFF_INVITE) == "New staff invitation: which role?"
    role_prompt = owner.last
    async with bot.db.session() as session:
        row = await session.get(Staff, owner_row.id)
        assert row is not None
        row.role = "therapist"
        session.add(row)
        await session.commit()
    await owner.press("Admin", role_prompt)
    assert (await owner.wait_for_answer()).text == ADMIN_ONLY
