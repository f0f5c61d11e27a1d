"""Messages to the care team, end to end (issue 18): the real bot on the fake Bot API.

A patient's message reaches the therapist with Reply and Mark read; the reply
reaches the patient as a Telegram reply, labelled with the therapist's name
and the clinic; the patient answers it with Telegram's reply and the thread
goes on, in both chats. A photo goes the same way and is kept as a private
file. Outside office hours the patient is told when the clinic reads it,
with the emergency text; a message nobody answers goes to the admins once.
"""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from factories import has_exif, make_staff, photo
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import col, select
from test_checkins import enrolled

from rehab_bot import message as message_core
from rehab_bot.bot import app as app_module
from rehab_bot.models import AuditLog, CareMessage, Staff
from rehab_bot.office_hours import parse_office_hours

EMERGENCY = "If this is an emergency, call 112"
SENT = "✉️ Sent to your care team."


async def run_jobs(bot: Any) -> None:
    """One run of the engine's job: the clinic's and the care tick, then a dispatcher tick."""
    await app_module.dispatch_job(bot.app)
    await bot.tick()


async def rows(bot: Any) -> list[CareMessage]:
    async with bot.db.session() as session:
        return list((await session.exec(select(CareMessage).order_by(col(CareMessage.id)))).all())


def text_of(message: SentMessage) -> str:
    return message.text or message.caption or ""


@pytest.fixture
async def care_bot(bot_factory: Any, tmp_path: Path, backend: str) -> Any:
    return await bot_factory(
        backend, delivery={"per_chat_interval": 0.02}, care={"photo_dir": str(tmp_path / "photos")}
    )


async def test_a_message_is_answered_and_the_thread_goes_on_in_both_chats(care_bot: Any, tg: FakeTelegram) -> None:
    bot = care_bot
    patient = await enrolled(bot, 7201, therapist=7101, schedule=False)
    user, therapist = tg.user(7201), tg.user(7101)
    alias = patient.alias

    sent = await user.send("My knee feels stiff after the exercises")
    original = sent["message"]["message_id"]
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    assert offer.button_labels == ["✉️ Send to my care team", "Save as a note", "No, thanks"]
    assert offer.reply_to_message_id == original
    await user.press("✉️ Send to my care team", offer)
    [confirmed] = await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    assert EMERGENCY in (confirmed.text or "") and not confirmed.button_labels

    await run_jobs(bot)
    [notice] = await therapist.wait_for(lambda m: alias in text_of(m))
    assert text_of(notice) == f"💬 Message from {alias}:\n\nMy knee feels stiff after the exercises"
    assert notice.button_labels == ["↩️ Reply", "✓ Mark read"]

    # Reply: typed after pressing Reply.
    await therapist.press("↩️ Reply", notice)
    [prompt] = await therapist.wait_for(lambda m: "Type your reply" in (m.text or ""))
    await therapist.send("That is normal in week 1. Keep going gently.", reply_to=prompt.message_id)
    await therapist.wait_for(lambda m: "on its way" in (m.text or ""))
    await run_jobs(bot)
    [reply] = await user.wait_for(lambda m: "Keep going gently" in (m.text or ""))
    assert (reply.text or "").startswith("💬 Dr Test, Our clinic:")
    assert reply.reply_to_message_id == original, "the reply is a Telegram reply to the patient's message"

    # The patient answers the reply with Telegram's reply: straight to the care team, threaded.
    answered = await user.send("Thanks, it is better today", reply_to=reply.message_id)
    [ok] = await user.wait_for(lambda m: SENT in (m.text or ""))
    assert ok.reply_to_message_id == answered["message"]["message_id"]
    await run_jobs(bot)
    [second] = await therapist.wait_for(lambda m: "answered your team's reply" in text_of(m))
    assert "Thanks, it is better today" in text_of(second)
    assert second.reply_to_message_id == notice.message_id, "threaded under the first notice"

    # The therapist answers with Telegram's reply on the notice (no button needed).
    await therapist.send("Great, see you on Friday.", reply_to=second.message_id)
    await therapist.wait_for(lambda m: "on its way" in (m.text or ""))
    await run_jobs(bot)
    [last] = await user.wait_for(lambda m: "see you on Friday" in (m.text or ""))
    assert last.reply_to_message_id == answered["message"]["message_id"]

    messages = await rows(bot)
    assert [(m.direction, m.parent_id) for m in messages] == [
        ("in", None),
        ("out", messages[0].id),
        ("in", messages[1].id),
        ("out", messages[2].id),
    ]
    assert messages[1].chat_message_id == reply.message_id and messages[3].chat_message_id == last.message_id
    assert all(m.answered_at is not None for m in messages if m.direction == "in")
    async with bot.db.session() as session:
        actions = [a.action for a in (await session.exec(select(AuditLog).order_by(col(AuditLog.id)))).all()]
    assert actions.count(message_core.SEND) == 2 and actions.count(message_core.REPLY) == 2


async def test_an_answer_to_the_team_reaches_them_while_a_settings_question_is_open(
    care_bot: Any, tg: FakeTelegram
) -> None:
    """A Telegram reply to the team's message is for the team, even with the Times question open."""
    bot = care_bot
    patient = await enrolled(bot, 7205, therapist=7105, schedule=False)
    user, therapist = tg.user(7205), tg.user(7105)
    await user.send("My knee feels stiff")
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    await run_jobs(bot)
    [notice] = await therapist.wait_for(lambda m: patient.alias in text_of(m))
    await therapist.send("How bad is it, 0 to 10?", reply_to=notice.message_id)
    await therapist.wait_for(lambda m: "on its way" in (m.text or ""))
    await run_jobs(bot)
    [reply] = await user.wait_for(lambda m: "How bad is it" in (m.text or ""))

    await user.send("/settings")
    [menu] = await user.wait_for(lambda m: "Your settings" in (m.text or ""))
    await user.press("🕒 Times", menu)
    await user.wait_for(lambda m: "Send your new session times" in (m.text or ""))
    await user.send("About a 6, worse at night", reply_to=reply.message_id)
    [ok] = await user.wait_for()
    assert SENT in (ok.text or ""), ok.text
    assert [m.text for m in await rows(bot)][-1] == "About a 6, worse at night"


async def test_a_photo_round_trips_and_is_kept_private(
    care_bot: Any, tg: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = care_bot
    patient = await enrolled(bot, 7202, therapist=7102, schedule=False)
    user, therapist = tg.user(7202), tg.user(7102)
    jpeg = b"\xff\xd8wound-photo" + bytes(range(200))

    await user.send_photo(jpeg)
    [offer] = await user.wait_for(lambda m: "photo" in (m.text or ""))
    assert offer.text == "Shall I send this photo to your care team?"
    await user.press("✉️ Send to my care team", offer)
    await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    [stored] = await rows(bot)
    path = tmp_path / "photos" / stored.photo_path
    assert path.read_bytes() == jpeg and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stored.photo_bytes == len(jpeg)

    await run_jobs(bot)
    [notice] = await therapist.wait_for(lambda m: m.photo is not None)
    assert notice.method == "sendPhoto" and notice.photo is not None and notice.photo.data == jpeg
    assert notice.caption == f"📷 Photo from {patient.alias}." and notice.button_labels == ["↩️ Reply", "✓ Mark read"]
    await therapist.press("✓ Mark read", notice)
    assert (await therapist.wait_for_answer()).text == "Marked read."
    [marked] = await therapist.wait_for(lambda m: m.edited and "Read by Dr Test" in text_of(m))
    assert not marked.button_labels
    await therapist.press_data(f"cm:k:{stored.id}:{stored.patient_id}", notice.message_id)
    assert (await therapist.wait_for_answer()).text == "Already marked read by Dr Test."

    # The therapist's reply threads under the photo; the patient answers with another photo.
    async with bot.db.session() as session:
        staff = (await session.exec(select(Staff))).first()
        assert staff is not None and stored.id is not None
        await message_core.reply(
            session, staff, stored.id, "Looks fine. Keep it dry.", bot.clock.now(), bot.config.clinic
        )
        await session.commit()
    await run_jobs(bot)
    [reply] = await user.wait_for(lambda m: "Keep it dry" in (m.text or ""))
    assert reply.reply_to_message_id == stored.chat_message_id
    await user.send_photo(b"\xff\xd8second", caption="Today it looks like this", reply_to=reply.message_id)
    await user.wait_for(lambda m: SENT in (m.text or ""))
    await run_jobs(bot)
    [again] = await therapist.wait_for(lambda m: m.photo is not None and "Today it looks" in text_of(m))
    assert again.photo is not None and again.photo.data == b"\xff\xd8second"

    # Our own log lines at every level (the libraries' DEBUG output is silenced in production: rehab_bot/logs.py).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("rehab_bot"))
    assert "care message" in logged
    assert stored.photo_path not in logged and "Keep it dry" not in logged and "Today it looks" not in logged


async def test_a_photo_over_the_limit_is_refused(bot_factory: Any, tg: FakeTelegram, tmp_path: Path) -> None:
    bot = await bot_factory(care={"photo_dir": str(tmp_path / "photos"), "photo_max_bytes": 10_000})
    await enrolled(bot, 7203, therapist=7103, schedule=False)
    user = tg.user(7203)
    await user.send_photo(b"\xff\xd8" + b"x" * 20_000)
    [offer] = await user.wait_for(lambda m: "photo" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    [refused] = await user.wait_for(lambda m: "too large" in (m.text or ""))
    assert refused.text == "This photo is too large (at most 0.01 MB). Please send a smaller one."
    assert await rows(bot) == [] and not (tmp_path / "photos").exists()


async def test_a_german_patient_reads_when_the_clinic_opens_as_german_writes_a_date(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    bot = await bot_factory(
        delivery={"per_chat_interval": 0.02}, clinic={"office_hours": parse_office_hours({"mon-fri": "08:00-17:00"})}
    )
    await enrolled(bot, 7206, therapist=7106, schedule=False, language="de")
    user = tg.user(7206, language_code="de")
    bot.clock.set(datetime(2026, 6, 12, 16, 0, tzinfo=UTC))  # Friday 18:00 in Berlin: closed until Monday 08:00
    await user.send("Darf ich schwimmen?")
    [offer] = await user.wait_for(lambda m: "Behandlungsteam" in (m.text or ""))
    await user.press("✉️ An mein Behandlungsteam senden", offer)
    [notice] = await user.wait_for(lambda m: m.edited and "gesendet" in (m.text or ""))
    assert "Ihre Nachricht wird ab Montag, 15. Juni, 08:00 gelesen." in (notice.text or ""), notice.text


async def test_out_of_hours_notice_and_one_escalation(bot_factory: Any, tg: FakeTelegram, backend: str) -> None:
    bot = await bot_factory(
        backend,
        delivery={"per_chat_interval": 0.02},
        clinic={"office_hours": parse_office_hours({"mon-fri": "08:00-17:00"})},
        care={"escalate_after_hours": 2},
    )
    await make_staff(bot.db, role="admin", telegram_id=7109, name="Admin Ann")
    patient = await enrolled(bot, 7204, therapist=7104, schedule=False)
    user, therapist, admin = tg.user(7204), tg.user(7104), tg.user(7109)
    # Friday 12 June 2026, 18:00 in Berlin: closed until Monday 08:00.
    bot.clock.set(datetime(2026, 6, 12, 16, 0, tzinfo=UTC))
    await user.send("Can I swim?")
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    [notice] = await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    assert "The clinic is closed now: your message will be read from Monday, 15 June, 08:00." in (notice.text or "")
    assert EMERGENCY in (notice.text or "")
    await run_jobs(bot)
    await therapist.wait_for(lambda m: "Can I swim?" in text_of(m))

    async def at(when: datetime) -> None:
        bot.clock.set(when)
        await run_jobs(bot)

    await at(datetime(2026, 6, 14, 20, 0, tzinfo=UTC))  # the weekend does not count
    await at(datetime(2026, 6, 15, 7, 59, tzinfo=UTC))  # Monday 09:59: 119 working minutes
    await admin.expect_silence(0.3)
    assert not any("UNANSWERED" in text_of(m) for m in admin.messages)
    await at(datetime(2026, 6, 15, 8, 0, tzinfo=UTC))  # Monday 10:00: two working hours
    [escalation] = await admin.wait_for(lambda m: "UNANSWERED" in text_of(m))
    assert f"a message from {patient.alias} has had no reply for 2 working hours" in text_of(escalation)
    assert "Can I swim?" in text_of(escalation) and escalation.button_labels == ["↩️ Reply", "✓ Mark read"]
    await at(datetime(2026, 6, 16, 8, 0, tzinfo=UTC))
    await admin.expect_silence(0.3)
    assert sum("UNANSWERED" in text_of(m) for m in admin.messages) == 1, "once only"
    assert not any("UNANSWERED" in text_of(m) for m in therapist.messages)
    # The admin answers from the escalation itself.
    await admin.send("Yes, from week 6 on.", reply_to=escalation.message_id)
    await admin.wait_for(lambda m: "on its way" in (m.text or ""))
    await run_jobs(bot)
    [answer] = await user.wait_for(lambda m: "week 6" in (m.text or ""))
    assert (answer.text or "").startswith("💬 Admin Ann, Our clinic:")


async def test_a_message_read_in_time_does_not_escalate(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(delivery={"per_chat_interval": 0.02}, care={"escalate_after_hours": 1})
    await make_staff(bot.db, role="admin", telegram_id=7119, name="Admin Bo")
    await enrolled(bot, 7205, therapist=7105, schedule=False)
    user, therapist, admin = tg.user(7205), tg.user(7105), tg.user(7119)
    await user.send("Small question about my plan")
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    # Stored once the patient sees it sent; a tick before that had nothing to send (failed once in CI).
    await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    await run_jobs(bot)
    [notice] = await therapist.wait_for(lambda m: "Small question" in text_of(m))
    await therapist.press("✓ Mark read", notice)
    await therapist.wait_for_answer()
    bot.clock.set(bot.clock.now().replace(hour=bot.clock.now().hour + 3))
    await run_jobs(bot)
    await admin.expect_silence(0.3)
    assert not admin.messages


async def test_a_double_tap_on_send_sends_the_message_once(care_bot: Any, tg: FakeTelegram) -> None:
    bot = care_bot
    patient = await enrolled(bot, 7205, therapist=7105, schedule=False)
    user, therapist = tg.user(7205), tg.user(7105)
    await user.send("My knee feels stiff after the exercises")
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    # Both taps reach the bot before the offer loses its buttons.
    await user.press_data(offer.callback_data[0], offer.message_id)
    await user.press_data(offer.callback_data[0], offer.message_id)
    await tg.wait_until(lambda: len(user.callback_answers) == 2, timeout=5, what="both answers")
    assert sorted(a.text or "" for a in user.callback_answers) == ["", "This button is no longer active."]
    assert len(await rows(bot)) == 1
    await run_jobs(bot)
    await therapist.wait_for(lambda m: patient.alias in text_of(m))
    await therapist.expect_silence(0.3)
    assert len([m for m in therapist.messages if patient.alias in text_of(m)]) == 1


async def sent_to_the_team(bot: Any, user: FakeUser, therapist: FakeUser, text: str) -> SentMessage:
    """A newly enrolled patient writes, taps Send to my care team; the therapist's notice of it."""
    patient = await enrolled(bot, user.user_id, therapist=therapist.user_id, schedule=False)
    await user.send(text)
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    await run_jobs(bot)
    [notice] = await therapist.wait_for(lambda m: patient.alias in text_of(m))
    return notice


async def test_a_telegram_reply_to_the_notice_of_a_patient_who_deleted_their_data_is_refused_in_words(
    care_bot: Any, tg: FakeTelegram
) -> None:
    bot = care_bot
    user, therapist = tg.user(7206), tg.user(7106)
    notice = await sent_to_the_team(bot, user, therapist, "My knee feels stiff after the exercises")
    await user.send("/delete")
    [confirm] = await user.wait_for(lambda m: "Delete everything?" in (m.text or ""))
    await user.press("🗑 Yes, delete everything", confirm)
    await user.wait_for(lambda m: "has been deleted" in (m.text or ""))
    therapist.mark_seen()
    await therapist.send("Keep going gently.", reply_to=notice.message_id)
    [answer] = await therapist.wait_for(lambda m: not m.edited)
    assert answer.text == "This message no longer exists."
    assert await rows(bot) == []


async def test_a_photo_as_the_therapists_reply_is_not_passed_on_and_they_are_told(
    care_bot: Any, tg: FakeTelegram
) -> None:
    bot = care_bot
    user, therapist = tg.user(7231), tg.user(7131)
    notice = await sent_to_the_team(bot, user, therapist, "Is this swelling normal?")
    # A Telegram reply to the notice with a photo, then with a sticker after pressing Reply.
    await therapist.send_photo(caption="Like this picture", reply_to=notice.message_id)
    [told] = await therapist.wait_for(lambda m: "nothing was sent" in (m.text or ""))
    assert told.text == "Only a text reply reaches the patient, so nothing was sent. Please write your answer as text."
    await therapist.press("↩️ Reply", notice)
    [prompt] = await therapist.wait_for(lambda m: "Type your reply" in (m.text or ""))
    await therapist.send_sticker()
    await therapist.wait_for(lambda m: "nothing was sent" in (m.text or ""))
    await run_jobs(bot)
    assert not any("Like this picture" in text_of(m) for m in user.messages)
    assert [row.direction for row in await rows(bot)] == ["in"], "no reply stored"
    # The Reply is still open for the text.
    await therapist.send("Yes, that is normal in week 2.", reply_to=prompt.message_id)
    await therapist.wait_for(lambda m: "on its way" in (m.text or ""))


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_a_voice_message_is_answered_with_a_request_to_type_it(bot: Any, tg: FakeTelegram, lang: str) -> None:
    # It got "Please use the buttons below, or type /help": the patient never learnt the bot cannot hear it.
    await enrolled(bot, 7351, therapist=7352, language=lang)
    user = tg.user(7351, language_code=lang)
    sent = await user.send_voice()
    [reply] = await user.wait_for()
    assert reply.reply_to_message_id == sent["message"]["message_id"]
    expected = {
        "en": ("I cannot listen to voice or video messages. Please type your message instead", "call 112"),
        "de": ("Sprach- und Videonachrichten kann ich nicht anhören.", "die 112"),
    }[lang]
    assert reply.text.startswith(expected[0]) and expected[1] in reply.text
    await user.expect_silence(0.3)
    # A video (of a limp, a swelling) is no more seen than a voice message is heard.
    media = tg._register_file("video", "walk.mp4", "video/mp4", b"fake mp4")
    video = {"file_id": media.file_id, "file_unique_id": media.file_unique_id, "width": 640, "height": 480}
    await user._post({"video": {**video, "duration": 5}})
    [about_video] = await user.wait_for()
    assert about_video.text.startswith(expected[0]) and expected[1] in about_video.text, about_video.text
    # A stranger's voice message still gets the usual answer.
    stranger = tg.user(7353)
    await stranger.send_voice()
    [other] = await stranger.wait_for()
    assert "voice" not in other.text


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_a_file_is_answered_with_a_request_to_send_a_photo_as_a_photo(
    bot: Any, tg: FakeTelegram, lang: str
) -> None:
    # A file got "Please use the buttons below, or type /help" (no buttons were there): the patient never
    # learnt that nothing reached the care team. (A JPEG or PNG sent as a file is a photo: see below.)
    await enrolled(bot, 7361, therapist=7362, language=lang)
    user = tg.user(7361, language_code=lang)
    sent = await user.send_document(b"\x00\x00\x00\x1cftypheic", filename="wound.heic", mime_type="image/heic")
    [reply] = await user.wait_for()
    assert reply.reply_to_message_id == sent["message"]["message_id"]
    expected = {
        "en": ("I cannot pass on files. To show your care team a photo, please send it as a photo", "call 112"),
        "de": ("Dateien kann ich nicht weitergeben. Um Ihrem Behandlungsteam ein Foto zu zeigen", "die 112"),
    }[lang]
    assert reply.text.startswith(expected[0]) and expected[1] in reply.text, reply.text
    await user.expect_silence(0.3)


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_a_sticker_a_location_or_a_contact_is_answered_with_what_the_bot_reads(
    bot: Any, tg: FakeTelegram, lang: str
) -> None:
    # They got "Please use the buttons below, or type /help" with no buttons below: now the patient learns
    # what the bot can read and how to reach the care team, with the emergency text (it may be urgent).
    await enrolled(bot, 7371, therapist=7372, language=lang)
    user = tg.user(7371, language_code=lang)
    expected = {
        "en": ("I can read typed messages and photos", "type your message", "call 112"),
        "de": ("Ich kann geschriebene Nachrichten und Fotos lesen", "schreiben Sie Ihre Nachricht", "die 112"),
    }[lang]
    for send in (user.send_sticker, lambda: user.share_location(52.52, 13.40), user.send_contact):
        sent = await send()
        [reply] = await user.wait_for()
        assert reply.reply_to_message_id == sent["message"]["message_id"]
        assert reply.text.startswith(expected[0]), reply.text
        assert expected[1] in reply.text and expected[2] in reply.text, reply.text
        assert "buttons below" not in reply.text and "Schaltflächen unten" not in reply.text
    await user.expect_silence(0.3)
    # A stranger's sticker still gets the usual answer.
    stranger = tg.user(7373)
    await stranger.send_sticker()
    [other] = await stranger.wait_for()
    assert not other.text.startswith("I can read typed messages"), other.text


async def test_a_photo_sent_as_a_file_goes_to_the_care_team_like_a_photo(
    care_bot: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    # A JPEG or PNG sent "as a file" was answered with how to send a photo and never reached the care team.
    # It is a photo: offered, stored and shown to the therapist the same way, without the file's EXIF
    # (Telegram strips it from a photo, not from a file: the phone's GPS position would reach the clinic).
    bot = care_bot
    patient = await enrolled(bot, 7363, therapist=7364, schedule=False)
    user, therapist = tg.user(7363), tg.user(7364)
    jpeg = photo("JPEG", gps=True)
    assert has_exif(jpeg)
    sent = await user.send_document(jpeg, filename="wound.jpg", mime_type="image/jpeg", caption="Day 5")
    [offer] = await user.wait_for()
    assert offer.text == "Shall I send this photo to your care team?", offer.text
    assert offer.reply_to_message_id == sent["message"]["message_id"]
    await user.press("✉️ Send to my care team", offer)
    await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    [stored] = await rows(bot)
    kept = (tmp_path / "photos" / stored.photo_path).read_bytes()
    assert kept.startswith(b"\xff\xd8\xff") and not has_exif(kept) and b"PhoneMaker" not in kept
    assert stored.text == "Day 5" and stored.photo_bytes == len(kept) and stored.photo_file_id == ""
    await run_jobs(bot)
    [notice] = await therapist.wait_for(lambda m: m.photo is not None)
    assert notice.method == "sendPhoto" and notice.photo is not None and notice.photo.data == kept
    assert notice.caption == f"📷 Photo from {patient.alias}:\n\nDay 5"

    # A PNG too; one over [care] photo_max_bytes gets the photo's answer.
    await user.send_document(photo("PNG"), filename="wound.png", mime_type="image/png")
    [offer] = await user.wait_for(lambda m: "photo" in (m.text or "") and not m.edited)
    await user.press("✉️ Send to my care team", offer)
    await user.wait_for(lambda m: m.edited and SENT in (m.text or "") and m.message_id == offer.message_id)
    assert len(await rows(bot)) == 2


async def test_a_photo_file_over_the_limit_is_refused_like_a_photo(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    bot = await bot_factory(care={"photo_dir": str(tmp_path / "photos"), "photo_max_bytes": 10_000})
    await enrolled(bot, 7367, therapist=7368, schedule=False)
    user = tg.user(7367)
    await user.send_document(photo("PNG", size=(400, 400)) + b"\x00" * 20_000, "big.png", "image/png")
    [offer] = await user.wait_for(lambda m: "photo" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    [refused] = await user.wait_for(lambda m: "too large" in (m.text or ""))
    assert refused.text == "This photo is too large (at most 0.01 MB). Please send a smaller one."
    assert await rows(bot) == [] and not (tmp_path / "photos").exists()


async def test_a_photo_file_answering_the_teams_reply_reaches_them(care_bot: Any, tg: FakeTelegram) -> None:
    # A Telegram reply to the care team's message with a photo sent "as a file" goes to the team, as a photo does.
    bot = care_bot
    user, therapist = tg.user(7365), tg.user(7366)
    notice = await sent_to_the_team(bot, user, therapist, "The scar itches")
    [stored] = await rows(bot)
    async with bot.db.session() as session:
        staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) == 7366))).one()
        assert stored.id is not None
        await message_core.reply(
            session, staff, stored.id, "Please send a picture.", bot.clock.now(), bot.config.clinic
        )
        await session.commit()
    await run_jobs(bot)
    [reply] = await user.wait_for(lambda m: "send a picture" in (m.text or ""))
    media = tg._register_file("document", "scar.png", "image/png", photo("PNG"))
    await user._post({"document": tg._media_json(media)}, reply.message_id)
    await user.wait_for(lambda m: SENT in (m.text or ""))
    await run_jobs(bot)
    [again] = await therapist.wait_for(lambda m: m.photo is not None and m.message_id > notice.message_id)
    assert again.caption is not None and "answered your team's reply" in again.caption


async def test_the_buttons_and_replies_of_a_deleted_patients_notice_never_reach_another_patients_message(
    care_bot: Any, tg: FakeTelegram
) -> None:
    """SQLite gives a new row the highest id + 1: once A deletes their data, B's next message takes the id of
    A's last one. A's old notice (its Reply and Mark read, a Telegram reply to it) must not act on B's."""
    bot = care_bot
    user_a, user_b, therapist = tg.user(7241), tg.user(7242), tg.user(7141)
    notice_a = await sent_to_the_team(bot, user_a, therapist, "My knee feels stiff after the exercises")
    [row_a] = await rows(bot)
    await user_a.send("/delete")
    [confirm] = await user_a.wait_for(lambda m: "Delete everything?" in (m.text or ""))
    await user_a.press("🗑 Yes, delete everything", confirm)
    await user_a.wait_for(lambda m: "has been deleted" in (m.text or ""))
    await sent_to_the_team(bot, user_b, therapist, "Is this swelling normal?")
    [row_b] = await rows(bot)
    if bot.db.dialect == "sqlite":
        assert row_b.id == row_a.id  # the reuse this test guards against; PostgreSQL never reuses an id

    for label in ("✓ Mark read", "↩️ Reply"):
        await therapist.press(label, notice_a)
        assert (await therapist.wait_for_answer()).text == "This message no longer exists."
    therapist.mark_seen()
    await therapist.send("Keep going gently.", reply_to=notice_a.message_id)
    [answer] = await therapist.wait_for(lambda m: not m.edited)
    assert answer.text == "This message no longer exists."
    [row_b] = await rows(bot)
    assert row_b.read_at is None  # still waiting for the team
    assert [m for m in user_b.messages if "Keep going gently" in text_of(m)] == []


async def test_a_german_therapist_reads_marks_read_and_answers_a_message_in_german(
    care_bot: Any, tg: FakeTelegram
) -> None:
    """Staff text follows Staff.language: the notice, its buttons, the Mark read answers and edit, the
    Reply prompt and its confirmation are German for a German therapist (the patient's words as written)."""
    bot = care_bot
    await make_staff(bot.db, telegram_id=7141, name="Dr Berta", language="de")
    user, therapist = tg.user(7241), tg.user(7141, language_code="de")
    notice = await sent_to_the_team(bot, user, therapist, "My knee feels stiff after the exercises")
    alias = text_of(notice).split(":")[0].removeprefix("💬 Nachricht von ")
    assert text_of(notice) == f"💬 Nachricht von {alias}:\n\nMy knee feels stiff after the exercises"
    assert notice.button_labels == ["↩️ Antworten", "✓ Als gelesen markieren"]

    await therapist.press("↩️ Antworten", notice)
    [prompt] = await therapist.wait_for(lambda m: alias in (m.text or "") and "/cancel" in (m.text or ""))
    assert prompt.text == (
        f"Schreiben Sie Ihre Antwort an {alias}; sie wird so gesendet, wie Sie sie schreiben, "
        "mit Ihrem Namen unterzeichnet. /cancel bricht ab."
    )
    await therapist.send("Das ist in Woche 1 normal.", reply_to=prompt.message_id)
    [sent] = await therapist.wait_for(lambda m: "unterwegs" in (m.text or ""))
    assert sent.text == f"✅ Antwort an {alias} ist unterwegs."

    # A second message: marked read, in German; a second press says who did.
    await user.send("Und heute?")
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    await run_jobs(bot)
    [second] = await therapist.wait_for(lambda m: "Und heute?" in text_of(m))
    assert text_of(second) == f"💬 Nachricht von {alias}:\n\nUnd heute?"
    assert second.button_labels == ["↩️ Antworten", "✓ Als gelesen markieren"]
    mark = [data for data in second.callback_data if data.startswith("cm:k:")]
    await therapist.press("✓ Als gelesen markieren", second)
    assert (await therapist.wait_for_answer()).text == "Als gelesen markiert."
    [edited] = await therapist.wait_for(lambda m: m.edited and "Gelesen von" in text_of(m))
    assert text_of(edited).startswith(f"💬 Nachricht von {alias}:\n\nUnd heute?\n\n✓ Gelesen von Dr Berta, ")
    assert not edited.button_labels
    await therapist.press_data(mark[0], second.message_id)
    assert (await therapist.wait_for_answer()).text == "Bereits von Dr Berta als gelesen markiert."

    # Only text reaches the patient: said in German too.
    await therapist.send_photo(caption="So", reply_to=second.message_id)
    [told] = await therapist.wait_for(lambda m: "nichts gesendet" in (m.text or ""))
    assert told.text == (
        "Nur eine Textantwort erreicht die Patientin oder den Patienten, daher wurde nichts gesendet. "
        "Bitte schreiben Sie Ihre Antwort als Text."
    )


async def test_in_privacy_mode_a_german_therapist_gets_the_neutral_notice_in_german(
    bot_factory: Any, tg: FakeTelegram, backend: str
) -> None:
    bot = await bot_factory(backend, privacy={"health_data_in_chat": False}, delivery={"per_chat_interval": 0.02})
    await make_staff(bot.db, telegram_id=7142, name="Dr Berta", language="de")
    patient = await enrolled(bot, 7242, therapist=7142, schedule=False)
    async with bot.db.session() as session:
        await message_core.send(session, patient, bot.config.clinic, text="Hello", now=bot.clock.now())
        await session.commit()
    await run_jobs(bot)
    therapist = tg.user(7142, language_code="de")
    [notice] = await therapist.wait_for(lambda m: patient.alias in text_of(m))
    assert notice.text == f"✉️ Neue Nachricht von {patient.alias}. Öffnen Sie das Dashboard, um sie zu lesen."
    assert notice.button_labels == ["✓ Als gelesen markieren"]


async def test_a_reply_to_a_patient_who_stopped_all_messages_is_refused_and_says_why(
    care_bot: Any, tg: FakeTelegram
) -> None:
    """An outside test: after the patient's /stop the therapist's reply still went out ("on its way") and
    reached the patient, who had asked for no more messages."""
    bot = care_bot
    user, therapist = tg.user(7208), tg.user(7108)
    notice = await sent_to_the_team(bot, user, therapist, "My knee feels stiff after the exercises")
    await user.send("/stop")
    [confirm] = await user.wait_for(lambda m: any("stop all messages" in label for label in m.button_labels))
    await user.press(next(label for label in confirm.button_labels if "stop all messages" in label), confirm)
    await user.wait_for(lambda m: "/resume" in (m.text or ""))
    refused = "stopped all messages with /stop: nothing is sent to them until they send /resume."
    # With Telegram's reply on the notice, and with its Reply button.
    therapist.mark_seen()
    await therapist.send("Are you OK? Please call us.", reply_to=notice.message_id)
    [answer] = await therapist.wait_for(lambda m: not m.edited and refused in (m.text or ""))
    therapist.mark_seen()
    await therapist.press("↩️ Reply", notice)
    assert refused in ((await therapist.wait_for_answer()).text or "") or any(
        refused in text for text in therapist.texts()
    )
    user.mark_seen()
    await run_jobs(bot)
    await user.expect_silence(0.5)
    assert [r.direction for r in await rows(bot)] == ["in"], "nothing stored for the patient"
    assert answer.text is not None
