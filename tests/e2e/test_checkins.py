"""Check-ins end to end: scheduled questionnaires as one-tap flows, /pain, /checkin, notes, motivation, /progress."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram
from sqlmodel import select

from rehab_bot import checkin as core
from rehab_bot.models import Alert, Answer, CheckIn, Delivery, MotivationLog, Note, Patient, Staff

EVENING = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)  # 19:00 in Berlin: the default check-in time
SURGERY = date(2026, 6, 9)  # day 1 after surgery on 10 June


async def enrolled(
    bot: Any, telegram_id: int, *, therapist: int | None = None, schedule: bool = True, **kw: Any
) -> Patient:
    """An active patient (day 1 after surgery) with their check-in rules, and their therapist (made once)."""
    therapist_id = None
    if therapist is not None:
        async with bot.db.session() as session:
            known = (await session.exec(select(Staff).where(Staff.telegram_id == therapist))).first()
        staff = known or await make_staff(bot.db, telegram_id=therapist)
        therapist_id = staff.id
    kw.setdefault("surgery_date", SURGERY)
    kw.setdefault("created_at", bot.clock.now())
    kw.setdefault("consent_at", bot.clock.now())
    patient, _ = await make_patient(
        bot.db, bot.clock, times=(), telegram_id=telegram_id, therapist_id=therapist_id, **kw
    )
    if schedule:
        async with bot.db.session() as session:
            row = await session.get(Patient, patient.id)
            assert row is not None
            await core.schedule_for(session, row, bot.services.content, bot.clock.now())
            await session.commit()
    return patient


async def rows(bot: Any, model: Any) -> list[Any]:
    async with bot.db.session() as session:
        return list((await session.exec(select(model).order_by(model.id))).all())


async def press_and_wait(user: Any, label: str, *, count: int = 1) -> list[Any]:
    await user.press(label)
    return await user.wait_for(count=count)


async def test_the_evening_check_in_is_one_tap_per_question_and_saves_as_it_goes(bot: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(bot, 4101)
    user = tg.user(4101)
    bot.clock.set(EVENING + timedelta(seconds=2))
    await bot.tick()
    [message] = await user.wait_for()
    assert "Check-in: Pain (1/3)" in message.text and "0 = no pain\n10 = the worst pain" in message.text
    assert message.button_labels == [str(n) for n in range(11)]
    assert all(len(data) <= 64 for data in message.callback_data)

    [edited] = await press_and_wait(user, "4")
    assert edited.message_id == message.message_id, "the same message moves on"
    assert "Mood (2/3)" in edited.text and edited.button_labels == ["😞 1", "🙁 2", "😐 3", "🙂 4", "😄 5"]
    assert user.callback_answers[-1].text == "Saved."
    [edited] = await press_and_wait(user, "🙂 4")
    assert "Wound and symptom check (3/3)" in edited.text and "38 °C" in edited.text
    [done] = await press_and_wait(user, "No, none of these")
    assert "Thank you! Your answers are saved." in done.text and not done.has_inline_keyboard
    checkins = await rows(bot, CheckIn)
    assert [(c.questionnaire_id, c.status, c.score) for c in checkins] == [
        ("pain", "complete", 4.0),
        ("mood", "complete", 4.0),
        ("symptoms", "complete", 0.0),
    ]
    assert all(c.message_id == message.message_id and c.delivery_id is not None for c in checkins)
    answers = await rows(bot, Answer)
    assert [(a.item_id, a.value) for a in answers] == [("pain", 4), ("mood", 4), ("any", 0)]
    assert not await rows(bot, Alert)
    # A second press on the finished message changes nothing.
    await user.press_data(message.callback_data[0] if message.callback_data else "ci:1:0:9", message.message_id)
    answer = await user.wait_for_answer()
    assert answer.text in ("Already saved.", "This button is no longer active.")
    assert len(await rows(bot, Answer)) == 3 and patient.id is not None


async def test_a_german_patient_gets_the_check_in_in_german(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4102, language="de")
    user = tg.user(4102, language_code="de")
    bot.clock.set(EVENING + timedelta(seconds=2))
    await bot.tick()
    [message] = await user.wait_for()
    assert "Abfrage: Schmerzen (1/3)" in message.text and "0 = keine Schmerzen" in message.text
    [edited] = await press_and_wait(user, "2")
    assert "Stimmung" in edited.text
    assert user.callback_answers[-1].text == "Gespeichert."


async def test_a_partial_check_in_is_kept_and_closes_after_its_hours(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4103)
    user = tg.user(4103)
    bot.clock.set(EVENING + timedelta(seconds=2))
    await bot.tick()
    [message] = await user.wait_for()
    await press_and_wait(user, "6")
    bot.clock.advance(timedelta(hours=12))
    [closed] = await press_and_wait(user, "😐 3")
    assert "This check-in has closed. The answers you gave are kept." in closed.text and "/pain" in closed.text
    assert not closed.has_inline_keyboard
    assert user.callback_answers[-1].text == "This check-in has closed."
    checkins = await rows(bot, CheckIn)
    assert [(c.questionnaire_id, c.status, c.score) for c in checkins] == [
        ("pain", "complete", 6.0),
        ("mood", "expired", None),
        ("symptoms", "expired", None),
    ]
    assert [(a.item_id, a.value) for a in await rows(bot, Answer)] == [("pain", 6)]
    assert message.message_id == closed.message_id


async def test_pain_can_be_recorded_several_times_a_day(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4104, schedule=False)
    user = tg.user(4104)
    for value in ("3", "4"):
        await user.send("/pain")
        [question] = await user.wait_for()
        assert "Check-in: Pain" in question.text and "(1/" not in question.text
        [saved] = await press_and_wait(user, value)
        assert "Thank you!" in saved.text and "✓ Pain" in saved.text
        bot.clock.advance(timedelta(hours=3))
    checkins = await rows(bot, CheckIn)
    assert [(c.questionnaire_id, c.status, c.score, c.delivery_id) for c in checkins] == [
        ("pain", "complete", 3.0, None),
        ("pain", "complete", 4.0, None),
    ]


async def test_pain_typed_after_the_command_is_recorded_as_its_button_would_be(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4112, schedule=False)
    await enrolled(bot, 4113, schedule=False)
    tapping, typing = tg.user(4112), tg.user(4113)
    await tapping.send("/pain")
    await tapping.wait_for()
    tapped = await press_and_wait(tapping, "7", count=2)  # the advice for high pain, then the question's edit
    await typing.send("/pain 7")
    typed = await typing.wait_for(count=2)
    assert [m.text for m in typed] == [m.text for m in tapped]
    assert "Your pain is high" in typed[0].text and "Thank you!" in typed[1].text and "✓ Pain" in typed[1].text
    assert not typed[1].has_inline_keyboard
    checkins = await rows(bot, CheckIn)
    assert [(c.questionnaire_id, c.status, c.score) for c in checkins] == [("pain", "complete", 7.0)] * 2
    assert [(a.item_id, a.value) for a in await rows(bot, Answer)] == [("pain", 7)] * 2
    alerts = await rows(bot, Alert)
    assert [(a.kind, a.severity, a.detail) for a in alerts[1:]] == [(a.kind, a.severity, a.detail) for a in alerts[:1]]
    assert len(alerts) == 2 and alerts[0].severity == "critical"
    # No-break spaces, the bot's name and a full-width digit are read as typed from a phone; 0 is on the scale.
    await typing.send("/pain@rehab_test_bot\u00a0０")
    [saved] = await typing.wait_for()
    assert "Thank you!" in saved.text
    assert [a.value for a in await rows(bot, Answer)] == [7, 7, 0]


async def test_pain_typed_in_privacy_mode_is_recorded_and_not_repeated(bot_factory: Any, tg: FakeTelegram) -> None:
    # With [privacy] health_data_in_chat = false, /pain 7 only opened the form: the 7 was lost.
    public = "https://rehab.clinic.test"
    bot = await bot_factory(privacy={"health_data_in_chat": False}, web={"public_url": public})
    await enrolled(bot, 4116, schedule=False)
    user = tg.user(4116)
    await user.send("/pain 7")
    typed = await user.wait_for(count=2)
    # Recorded as its button (or the form) would record it: the same score, the same alert.
    checkins = await rows(bot, CheckIn)
    assert [(c.questionnaire_id, c.status, c.score) for c in checkins] == [("pain", "complete", 7.0)]
    assert [(a.item_id, a.value) for a in await rows(bot, Answer)] == [("pain", 7)]
    assert [a.severity for a in await rows(bot, Alert)] == ["critical"]
    # In privacy mode's words: the advice is the result in the Mini App; no figure, no check named.
    assert [m.text for m in typed] == ["Please open your check-in result now.", "Thank you! Your answers are saved."]
    assert typed[0].reply_markup == {
        "inline_keyboard": [[{"text": "Open my result", "web_app": {"url": f"{public}/app/result"}}]]
    }
    assert not typed[1].reply_markup
    # A number off the scale saves nothing and says so; the form asks the question instead.
    user.mark_seen()
    await user.send("/pain 11")
    [retry] = await user.wait_for()
    assert (
        retry.text
        == "I could not read a whole number from 0 to 10 there, so nothing was saved. Please answer in the form."
    )
    [[form]] = retry.reply_markup["inline_keyboard"]  # type: ignore[index]
    assert re.fullmatch(rf"{public}/app/checkin/\d+", form["web_app"]["url"])
    assert len(await rows(bot, Answer)) == 1
    for message in [*typed, retry]:
        assert not re.search(r"\b(7|11)\b|pain", message.text or "", re.IGNORECASE), message.text
    # In German too.
    await enrolled(bot, 4117, schedule=False, language="de")
    german = tg.user(4117, language_code="de")
    await german.send("/pain 2")
    [saved] = await german.wait_for()
    assert saved.text == "Vielen Dank! Ihre Antworten sind gespeichert."
    await german.send("/pain zwei")
    [retry] = await german.wait_for()
    assert "keine ganze Zahl von 0 bis 10 erkennen" in (retry.text or "")
    assert [a.value for a in await rows(bot, Answer)] == [7, 2]


@pytest.mark.parametrize("typed", ["11", "-1", "7.5", "seven", "7 or 8"])
async def test_pain_typed_off_the_scale_is_explained_and_asked_again(bot: Any, tg: FakeTelegram, typed: str) -> None:
    await enrolled(bot, 4114, schedule=False)
    user = tg.user(4114)
    await user.send(f"/pain {typed}")
    [question] = await user.wait_for()
    assert "whole number from 0 to 10 after /pain, for example /pain 7" in question.text
    assert "How strong is your pain right now?" in question.text
    assert question.button_labels == [str(n) for n in range(11)]
    assert not await rows(bot, Answer)
    [saved] = await press_and_wait(user, "3")
    assert "Thank you!" in saved.text
    assert [(a.item_id, a.value) for a in await rows(bot, Answer)] == [("pain", 3)]


async def test_pain_typed_in_german(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4115, schedule=False, language="de")
    user = tg.user(4115, language_code="de")
    await user.send("/pain zehn")
    [question] = await user.wait_for()
    assert "ganze Zahl von 0 bis 10 hinter /pain, zum Beispiel /pain 7" in question.text
    assert "0 = keine Schmerzen" in question.text
    await user.send("/pain 2")
    [saved] = await user.wait_for()
    assert "✓ Schmerzen" in saved.text
    assert [(a.item_id, a.value) for a in await rows(bot, Answer)] == [("pain", 2)]


async def test_checkin_resumes_an_open_one_or_offers_a_menu(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4105, schedule=False)
    user = tg.user(4105)
    await user.send("/checkin")
    [menu] = await user.wait_for()
    assert "No check-in is waiting" in menu.text
    assert menu.button_labels == [
        "Pain",
        "Mood",
        "Wound and symptom check",
        "PHQ-2: mood over the last 2 weeks",
        "GAD-2: worry over the last 2 weeks",
        "Patient-Specific Functional Scale",
    ], "every questionnaire the programme allows, the mood screens and the outcome measure included"
    [question] = await press_and_wait(user, "Wound and symptom check")
    assert question.message_id == menu.message_id and "have you noticed any of these" in question.text
    await user.send("/checkin")
    [again] = await user.wait_for()
    assert "have you noticed any of these" in again.text and again.message_id != menu.message_id
    [done] = await press_and_wait(user, "No, none of these")
    assert "✓ Wound and symptom check" in done.text


async def test_forged_and_foreign_buttons_change_nothing(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4106, schedule=False)
    await enrolled(bot, 4107, schedule=False)
    owner, other = tg.user(4106), tg.user(4107)
    await owner.send("/pain")
    [question] = await owner.wait_for()
    data = question.callback_data[7]
    await other.send("/help")
    await other.wait_for()
    await other.press_data(data, message_id=other.last.message_id)
    assert (await other.wait_for_answer()).text == "This button is no longer active."
    await owner.press_data("ci:99999:0:3", question.message_id)
    assert (await owner.wait_for_answer()).text == "This button is no longer active."
    await owner.press_data("ci:x:y", question.message_id)
    assert (await owner.wait_for_answer()).text == "This button is no longer active."
    assert not await rows(bot, Answer)


@pytest.mark.slow
async def test_free_text_is_offered_as_a_note_and_note_saves_it(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4108, schedule=False)
    user = tg.user(4108)
    await user.send("My left knee feels stiff in the mornings.")
    [offer] = await user.wait_for()
    assert "save it as a note for your therapist?" in offer.text
    assert offer.reply_to_message_id is not None
    [saved] = await press_and_wait(user, "Save as a note")
    assert (
        "Saved as a note for your therapist" in saved.text
        and bot.config.clinic.text("emergency_text", "en") in saved.text
    )
    await user.send("Never mind this one")
    await user.wait_for()
    [declined] = await press_and_wait(user, "No, thanks")
    assert declined.text == "OK, not saved."
    await user.send("/note The walking aid squeaks")
    [reply] = await user.wait_for()
    assert "Saved as a note" in reply.text
    await user.send("/note")
    [prompt] = await user.wait_for()
    assert "Please type your note" in prompt.text
    await user.send("Can we talk about driving?", reply_to=prompt.message_id)
    [reply] = await user.wait_for()
    assert "Saved as a note" in reply.text
    notes = await rows(bot, Note)
    assert [(n.text, n.crisis) for n in notes] == [
        ("My left knee feels stiff in the mornings.", False),
        ("The walking aid squeaks", False),
        ("Can we talk about driving?", False),
    ]


async def test_strangers_text_still_gets_the_friendly_pointer(bot: Any, tg: FakeTelegram) -> None:
    user = tg.user(4109)
    await user.send("hello?")
    [reply] = await user.wait_for()
    assert "you need an invitation link from your clinic" in reply.text
    await user.send("/pain")
    [reply] = await user.wait_for()
    assert "invitation" in reply.text
    assert not await rows(bot, Note)


async def test_motivation_goes_out_through_the_engine_at_most_once_a_day(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4110)
    user = tg.user(4110)
    bot.clock.set(EVENING + timedelta(minutes=30, seconds=2))  # 19:30: the check-in, then motivation
    await bot.tick()
    messages = await user.wait_for(count=2, timeout=10)
    assert "Check-in: Pain" in messages[0].text
    assert messages[1].text.startswith("Welcome aboard!")
    logs = await rows(bot, MotivationLog)
    assert [(m.message_key, m.local_date) for m in logs] == [("welcome", date(2026, 6, 10))]
    # Next evening nothing new applies: the check-in comes, no motivational message.
    bot.clock.advance(timedelta(days=1))
    await bot.tick()
    [checkin_msg] = await user.wait_for(timeout=10)
    assert "Check-in" in checkin_msg.text
    await user.expect_silence(1.2)
    motivation_rows = [d for d in await rows(bot, Delivery) if d.kind == "motivation"]
    assert [d.status for d in motivation_rows] == ["sent", "failed"]
    assert len(await rows(bot, MotivationLog)) == 1


@pytest.mark.slow
async def test_progress_shows_the_chart_with_its_words(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 4111, schedule=False)
    user = tg.user(4111)
    for value in ("4", "3", "2"):
        await user.send("/pain")
        await user.wait_for()
        await press_and_wait(user, value)
        bot.clock.advance(timedelta(days=1))
    await user.send("/progress")
    messages = await user.wait_for(lambda m: m.photo is not None, timeout=15)
    [chart] = messages
    assert chart.photo is not None and chart.photo.data is not None and chart.photo.data[:4] == b"\x89PNG"
    from rehab_bot.report import png_size

    assert png_size(chart.photo.data) == (800, 500)
    assert chart.caption is not None and "Last pain entry: 2.0" in chart.caption
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("language", "check", "some_signs", "typed", "yes", "hint", "told_call"),
    [
        ("en", "Wound and symptom check", "Yes, at least one", "yes", "Yes", "still waiting", "Call 112 now"),
        ("de", "Wunde und Beschwerden", "Ja, mindestens eines", "Ja", "Ja", "wartet noch", "112"),
    ],
)
async def test_an_answer_typed_instead_of_tapped_points_back_to_the_open_question(
    bot: Any,
    tg: FakeTelegram,
    language: str,
    check: str,
    some_signs: str,
    typed: str,
    yes: str,
    hint: str,
    told_call: str,
) -> None:
    """'yes' typed to the bladder question is no answer: the patient is told and the question comes again."""
    await enrolled(bot, 4190, therapist=4191, schedule=False, language=language)
    user = tg.user(4190, language_code=language)
    await user.send("/checkin")
    await user.wait_for()
    await press_and_wait(user, check)
    [bladder] = await press_and_wait(user, some_signs)
    assert bladder.button_labels == [yes, "No" if language == "en" else "Nein"]
    user.mark_seen()
    await user.send(typed)
    offer, again = await user.wait_for(count=2)
    assert hint in offer.text, offer.text
    assert again.message_id != bladder.message_id and again.text == bladder.text
    assert again.button_labels == bladder.button_labels
    await user.press(yes, again)
    [advice] = await user.wait_for(lambda m: told_call in (m.text or ""))
    assert advice.chat_id == 4190
    [alert] = await rows(bot, Alert)
    assert (alert.kind, alert.severity) == ("red_flag", "emergency")


async def test_forged_answer_and_note_presses_are_refused_and_change_no_message(bot: Any, tg: FakeTelegram) -> None:
    """Huge ids in a forged answer, and a note button pressed on a message that has none, are stale presses."""
    await enrolled(bot, 4192, schedule=False, language="de")
    user = tg.user(4192, language_code="de")
    await user.send("/checkin")
    [menu] = await user.wait_for()
    user.mark_seen()
    for data in ("ci:99999999999999999999:0:1", "ci:1:99999999999999999999:1", "nt:s", "nt:x"):
        await user.press_data(data, menu.message_id)
        assert (await user.wait_for_answer()).text == "Diese Schaltfläche ist nicht mehr aktiv.", data
    await user.expect_silence(0.5)
    with pytest.raises(AssertionError):  # no "something went wrong", no edit of the menu
        await user.wait_for(timeout=0.1)
    assert tg.message(4192, menu.message_id).text == menu.text
    assert tg.message(4192, menu.message_id).button_labels == menu.button_labels


FORGED_DIGITS = [
    *("ci:²:1:0", "ci:1:١:0", "ci:1:1:³", "cp:²:1:0"),
    *("s:²:done", "pt:pause:²", "le:a:intro:²", "cg:remove:²"),
]


@pytest.mark.parametrize("data", FORGED_DIGITS)
async def test_forged_button_data_with_other_digits_gets_a_quiet_answer(
    bot: Any, tg: FakeTelegram, caplog: pytest.LogCaptureFixture, data: str
) -> None:
    # "²".isdigit() is true but int("²") fails: such data once ended in "Something went wrong".
    await enrolled(bot, 4190, therapist=4191)
    user = tg.user(4190)
    await user.send("/help")
    [help_text] = await user.wait_for()
    await user.press_data(data, message_id=help_text.message_id)
    await user.wait_for_answer(timeout=5)
    await user.expect_silence(0.3)
    assert not any(r.levelno >= 40 for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert not any("Something went wrong" in (m.text or "") for m in user.messages)


async def test_a_therapists_forged_care_button_with_other_digits_gets_a_quiet_answer(
    bot: Any, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    await enrolled(bot, 4192, therapist=4193)
    therapist = tg.user(4193)
    await therapist.send("/help")
    [shown] = await therapist.wait_for()
    await therapist.press_data("cm:r:²", message_id=shown.message_id)
    await therapist.wait_for_answer(timeout=5)
    assert not any(r.levelno >= 40 for r in caplog.records)
    assert not any("Something went wrong" in (m.text or "") for m in therapist.messages)
