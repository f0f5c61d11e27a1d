"""Edited messages are not input: they never enrol, answer a question, run a command or store a note.

Telegram sends an ``edited_message`` update when a user edits an earlier
message. The bot answers each edit in a private chat with one line asking
for a new message (so a symptom added by editing is not silently lost) and
changes nothing. Both backends.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import select

from rehab_bot import invite as invites
from rehab_bot.models import Alert, Invite, Note, Patient, ReminderRule


async def new_invite(bot: Any, alias: str) -> Invite:
    async with bot.db.session() as session:
        made = await invites.create_patient_invite(
            session,
            bot.services.content,
            alias=alias,
            surgery_date=date(2026, 6, 1),
            programme_id="lumbar-example",
            now=bot.clock.now(),
            valid_days=14,
            timezone="Europe/Berlin",
            language="en",
        )
        await session.commit()
        return made.invite


async def snapshot(bot: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """Everything an invite link or an enrolment answer could change."""
    async with bot.db.session() as session:
        patients = [
            (p.id, p.telegram_id, p.enrol_step, p.status, p.consent_at, p.timezone, p.session_times, p.language)
            for p in (await session.exec(select(Patient))).all()
        ]
        invites_ = [(i.id, i.used_at, i.used_by) for i in (await session.exec(select(Invite))).all()]
        rules = [(r.id, r.next_due_at) for r in (await session.exec(select(ReminderRule))).all()]
    return sorted(patients), sorted(invites_), sorted(rules)


async def next_text(user: FakeUser) -> SentMessage:
    [message] = await user.wait_for(include_edits=False)
    return message


EDIT_NOTE = "I only read new messages, not edits, so I changed nothing."


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_bot(request: pytest.FixtureRequest, bot_factory: Any) -> Any:
    return await bot_factory(request.param)


async def test_an_edit_to_start_code_claims_no_invite(any_bot: Any, tg: FakeTelegram) -> None:
    bot = any_bot
    invite = await new_invite(bot, "P-EDIT-1")
    user = tg.user(4101, first_name="Anna", language_code="en")
    sent = await user.send("hello")
    await next_text(user)  # the usual pointer to /help
    before = await snapshot(bot)
    await user.edit(sent["message"]["message_id"], f"/start {invite.code}")
    reply = await next_text(user)
    assert reply.text.startswith(EDIT_NOTE) and "send it as a new message" in reply.text
    await user.expect_silence(0.3)
    assert await snapshot(bot) == before, "the edit changed nothing"
    # The same link sent as a new message works as always.
    await user.send(f"/start {invite.code}")
    consent = await next_text(user)
    assert consent.button_labels == ["Yes, I agree", "No, thank you", "🌐 Deutsch"]


@pytest.mark.slow
async def test_an_edit_never_continues_enrolment_nor_runs_commands(any_bot: Any, tg: FakeTelegram) -> None:
    bot = any_bot
    invite = await new_invite(bot, "P-EDIT-2")
    user = tg.user(4102, language_code="de")
    start = await user.send(f"/start {invite.code}")
    consent = await next_text(user)
    before = await snapshot(bot)
    for text in ("Ja", "/stop", "/delete", "/help", "Europe/Berlin"):
        await user.edit(start["message"]["message_id"], text)
        reply = await next_text(user)
        assert reply.text.startswith("Ich lese nur neue Nachrichten, keine Bearbeitungen"), reply.text
    await user.expect_silence(0.3)
    assert await snapshot(bot) == before
    await user.press("Ja, ich bin einverstanden", consent)  # the flow goes on where it was
    assert (await next_text(user)).text


async def test_an_edit_of_free_text_stores_nothing_and_runs_no_command(any_bot: Any, tg: FakeTelegram) -> None:
    bot = any_bot
    patient, _ = await make_patient(bot.db, bot.clock, telegram_id=4103, language="en")
    user = tg.user(4103, language_code="en")
    sent = await user.send("my wound is fine")
    await user.wait_for()  # whatever free text gets today
    user.mark_seen()
    await user.expect_silence(0.3)
    async with bot.db.session() as session:
        notes_before = len((await session.exec(select(Note))).all())
    for text in ("my wound is leaking and I have a fever", "/stop", "/pause"):
        await user.edit(sent["message"]["message_id"], text)
        reply = await next_text(user)
        assert reply.text.startswith(EDIT_NOTE)
    await user.expect_silence(0.3)
    async with bot.db.session() as session:
        assert len((await session.exec(select(Note))).all()) == notes_before
        stored = (await session.exec(select(Patient).where(Patient.id == patient.id))).one()
    assert stored.status == patient.status


@pytest.mark.parametrize(
    ("language", "edited", "help_starts"),
    [
        ("en", "I don't want to live anymore", "It sounds like you are going through a very hard time."),
        ("de", "Ich moechte nicht mehr leben", "Es klingt, als ginge es Ihnen gerade sehr schlecht."),
    ],
)
async def test_an_edit_with_crisis_words_gets_crisis_help_and_alerts_the_team(
    bot: Any, tg: FakeTelegram, language: str, edited: str, help_starts: str
) -> None:
    """An edit is no input, but crisis words in it are never ignored (docs/SAFETY.md: everything typed)."""
    therapist = await make_staff(bot.db, telegram_id=4199)
    patient, _ = await make_patient(bot.db, bot.clock, telegram_id=4104, language=language, therapist_id=therapist.id)
    user = tg.user(4104, language_code=language)
    sent = await user.send("ok")
    await user.wait_for()  # whatever free text gets today
    user.mark_seen()
    await user.edit(sent["message"]["message_id"], edited)
    reply = await next_text(user)
    assert reply.text.startswith(help_starts), reply.text
    assert bot.config.clinic.text("emergency_text", language).strip() in reply.text
    async with bot.db.session() as session:
        [note] = (await session.exec(select(Note).where(Note.patient_id == patient.id))).all()
        [alert] = (await session.exec(select(Alert).where(Alert.patient_id == patient.id))).all()
    assert note.crisis and note.text == edited
    assert (alert.kind, alert.severity) == ("crisis", "emergency")
