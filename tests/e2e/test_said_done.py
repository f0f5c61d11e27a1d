"""A session said done in words ("done", "erledigt", "ich bin fertig") end to end.

Typed words are no press: the free-text offer (send to the care team, save as a note) stays, and
while today's session waits for its answer it gains one line and one ✅ Done button that records
that session as the reminder's ✅ would. Nothing is recorded without the tap ("ich bin fertig" is
also "I am exhausted"); crisis words are still read first.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rig.telegram_server import FakeTelegram
from sqlmodel import col, select
from test_sessions import WED, at, berlin, enrolled, press_and_wait, sessions_of

from rehab_bot import session as core
from rehab_bot.bot.checkin import OFFER
from rehab_bot.bot.session import QUESTION_WAITING, SAID_AHEAD
from rehab_bot.i18n import t
from rehab_bot.models import Alert, Delivery, DeliveryStatus


@pytest.fixture
async def bot(bot_factory: Any) -> Any:
    return await bot_factory(delivery={"per_chat_interval": 0.02})


@pytest.mark.parametrize(("lang", "said"), [("en", "done"), ("de", "erledigt"), ("de", "Ich bin fertig")])
async def test_a_typed_done_offers_the_sessions_done_button_and_a_tap_records_it(
    bot: Any, tg: FakeTelegram, lang: str, said: str
) -> None:
    _ = lambda msgid, **kw: t(lang, msgid, **kw)  # noqa: E731
    patient = await enrolled(bot, 7601, lang=lang)
    user = tg.user(7601, language_code=lang)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    await at(bot, berlin(WED, "09:40"))

    await user.send(said)
    [offer] = await user.wait_for()
    line = _("If you finished your {slot} exercise session, tap ✅ Done to record it.", slot="09:00")
    assert (offer.text or "").startswith(line + "\n\n" + _(OFFER)), offer.text
    assert offer.reply_to_message_id is not None, "the offer quotes what the patient typed"
    send, note, no = _("✉️ Send to my care team"), _("Save as a note"), _("No, thanks")
    assert offer.button_labels == [_("✅ Done"), send, note, no]
    [es] = await sessions_of(bot, patient)
    assert es.status == core.Status.PENDING, "typed words record nothing"

    events = await press_and_wait(user, _("✅ Done"), 3, offer)  # the offer, the reminder, the next question
    [edited] = [m for m in events if m.message_id == offer.message_id]
    [question] = [m for m in events if m.message_id not in (offer.message_id, reminder.message_id)]
    logged = _("✅ Logged: done.") + " " + _("🔥 Your streak starts today.")
    assert (edited.text or "").startswith(logged + "\n\n" + _(OFFER)) and line not in (edited.text or "")
    assert edited.button_labels == [send, note, no], "what the patient typed can still be passed on"
    assert question.text == _("How hard did the exercises feel?")
    [es] = await sessions_of(bot, patient)
    assert es.status == core.Status.DONE and es.answered_at is not None
    [dropped] = [m for m in events if m.message_id == reminder.message_id]
    assert not dropped.has_inline_keyboard, "the reminder's buttons go: the session is answered"
    [pain_question] = await press_and_wait(user, _("😓 Hard"), 1)
    [thanks] = await press_and_wait(user, "3", 1, pain_question)
    assert thanks.text == _("Well done! 💪") + " " + _("Every session counts.")
    [es] = await sessions_of(bot, patient)
    assert (es.step, es.effort, es.pain) == (core.Step.CLOSED, "hard", 3)

    # Answered: the same words get the offer alone.
    user.mark_seen()
    await user.send(said)
    [again] = await user.wait_for()
    assert (again.text or "").startswith(_(OFFER)) and again.button_labels == [send, note, no]


async def test_the_reminders_own_done_first_makes_the_offers_button_stale_and_changes_nothing(
    bot: Any, tg: FakeTelegram
) -> None:
    patient = await enrolled(bot, 7602)
    user = tg.user(7602)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    await user.send("all done!")
    [offer] = await user.wait_for()
    assert offer.button_labels[0] == "✅ Done"
    await press_and_wait(user, "✅ Done", 2, reminder)  # the reminder's own button
    [es] = await sessions_of(bot, patient)
    answered = es.answered_at
    user.mark_seen()
    await user.press("✅ Done", offer)
    assert (await user.wait_for_answer()).text == "This button is no longer active."
    [edited] = await user.wait_for(lambda m: m.message_id == offer.message_id and m.edited)
    assert "✅ Done" not in edited.button_labels and "Save as a note" in edited.button_labels
    [es] = await sessions_of(bot, patient)
    assert es.status == core.Status.DONE and es.answered_at == answered


@pytest.mark.parametrize(("lang", "said"), [("en", "done"), ("de", "erledigt")])
async def test_done_typed_before_the_reminder_records_that_session_and_its_reminder_does_not_come(
    bot: Any, tg: FakeTelegram, lang: str, said: str
) -> None:
    """An outside test exercised early, typed "done" before the 18:00 reminder, and could record nothing."""
    _ = lambda msgid, **kw: t(lang, msgid, **kw)  # noqa: E731
    patient = await enrolled(bot, 7603, lang=lang, times=("18:00",))
    user = tg.user(7603, language_code=lang)
    await at(bot, berlin(WED, "09:00"))  # the 18:00 reminder has not gone out
    await user.send(said)
    [offer] = await user.wait_for()
    line = _(SAID_AHEAD, slot="18:00")
    assert (offer.text or "").startswith(line + "\n\n" + _(OFFER)), offer.text
    send, note, no = _("✉️ Send to my care team"), _("Save as a note"), _("No, thanks")
    assert offer.button_labels == [_("✅ Done"), send, note, no]
    assert offer.callback_data[0] == "sa:1800"
    assert await sessions_of(bot, patient) == [], "typed words record nothing"

    events = await press_and_wait(user, _("✅ Done"), 2, offer)  # the offer, the effort question
    [edited] = [m for m in events if m.message_id == offer.message_id]
    [question] = [m for m in events if m.message_id != offer.message_id]
    logged = _("✅ Logged: done.") + " " + _("🔥 Your streak starts today.")
    assert (edited.text or "").startswith(logged + "\n\n" + _(OFFER)) and line not in (edited.text or "")
    assert edited.button_labels == [send, note, no]
    assert question.text == _("How hard did the exercises feel?")
    [es] = await sessions_of(bot, patient)
    assert (es.local_date, es.slot, es.status) == (WED, "18:00", core.Status.DONE)
    [pain_question] = await press_and_wait(user, _("🙂 OK"), 1)
    await press_and_wait(user, "2", 1, pain_question)
    [es] = await sessions_of(bot, patient)
    assert (es.step, es.effort, es.pain) == (core.Step.CLOSED, "ok", 2)

    # 18:00: the reminder does not come (its delivery is recorded "superseded", not sent); Thursday's does.
    user.mark_seen()
    await at(bot, berlin(WED, "18:00"))
    await at(bot, berlin(WED, "18:05"))
    with pytest.raises(AssertionError):
        await user.wait_for(timeout=1.0)
    async with bot.db.session() as s:
        [delivery] = (await s.exec(select(Delivery).where(col(Delivery.patient_id) == patient.id))).all()
    assert (delivery.local_date, delivery.status, delivery.error) == (
        WED,
        DeliveryStatus.FAILED,
        "nothing to send: superseded",
    )
    await at(bot, berlin(WED + timedelta(days=1), "18:00"))
    [reminder] = await user.wait_for()
    assert _("✅ Done") in reminder.button_labels
    assert [(x.local_date, x.status) for x in await sessions_of(bot, patient)] == [
        (WED, core.Status.DONE),
        (WED + timedelta(days=1), core.Status.PENDING),
    ]


async def test_done_typed_before_the_reminder_then_the_reminder_first_makes_the_button_stale(
    bot: Any, tg: FakeTelegram
) -> None:
    patient = await enrolled(bot, 7607, times=("10:00",))
    user = tg.user(7607)
    await at(bot, berlin(WED, "09:30"))
    await user.send("did it")
    [offer] = await user.wait_for()
    assert offer.callback_data[0] == "sa:1000"
    await at(bot, berlin(WED, "10:00"))
    [reminder] = await user.wait_for(lambda m: m.message_id != offer.message_id)
    user.mark_seen()
    await user.press("✅ Done", offer)
    assert (await user.wait_for_answer()).text == "This button is no longer active."
    [edited] = await user.wait_for(lambda m: m.message_id == offer.message_id and m.edited)
    assert "✅ Done" not in edited.button_labels and "Save as a note" in edited.button_labels
    [es] = await sessions_of(bot, patient)
    assert es.status == core.Status.PENDING, "answered with the reminder's own buttons, not the stale one"
    assert "✅ Done" in reminder.button_labels


@pytest.mark.parametrize("data", ["sa:0900", "sa:18:00", "sa:x", "sa:99999"])
async def test_a_forged_early_done_changes_nothing(bot: Any, tg: FakeTelegram, data: str) -> None:
    patient = await enrolled(bot, 7608, times=("18:00",))
    user = tg.user(7608)
    await at(bot, berlin(WED, "09:00"))
    await user.send("done")
    [offer] = await user.wait_for()
    user.mark_seen()
    await user.press_data(data, offer.message_id)
    await user.wait_for_answer()
    assert await sessions_of(bot, patient) == []


@pytest.mark.parametrize("text", ["done", "fertig"])
async def test_without_a_session_waiting_or_ahead_a_typed_done_gets_the_offer_alone(
    bot: Any, tg: FakeTelegram, text: str
) -> None:
    await enrolled(bot, 7609, times=("09:00",))
    user = tg.user(7609)
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    await press_and_wait(user, "⏭ Skip", 2)  # answered; no session of today is left
    user.mark_seen()
    await user.send(text)
    [offer] = await user.wait_for()
    assert t("en", OFFER) in (offer.text or "") and "✅ Done" not in offer.button_labels
    assert "If you already did" not in (offer.text or "")


@pytest.mark.parametrize("text", ["not done yet", "ich bin total fertig", "done, but my back hurts a lot today"])
async def test_words_that_do_not_say_a_session_is_done_get_the_offer_alone(
    bot: Any, tg: FakeTelegram, text: str
) -> None:
    await enrolled(bot, 7604)
    user = tg.user(7604)
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    await user.send(text)
    [reply] = await user.wait_for()
    assert "✅ Done" not in reply.button_labels, reply.text


async def test_crisis_words_are_read_first(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 7605)
    user = tg.user(7605)
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    await user.send("done. I want to kill myself")
    [reply] = await user.wait_for()
    assert "✅ Done" not in reply.button_labels and t("en", OFFER) not in (reply.text or "")
    async with bot.db.session() as s:
        [alert] = (await s.exec(select(Alert))).all()
    assert alert.severity == "emergency"


def test_says_done_reads_short_messages_in_both_languages() -> None:
    for text in ("done", "Done!", "all done ✅", "I’m done", "did it", "finished", "erledigt", "fertig.",
                 "hab's geschafft", "ich bin mit den Übungen fertig", "Übungen gemacht",
                 # An outside test's phrasings, and one slip of the keyboard:
                 "did my exercises this morning", "completed my stretches", "just did my walk and exercises",
                 "hab meine übungen heut früh gemacht", "bin durch mit den Übungen", "Hab schon trainiert",
                 "doen", "erldigt", "finishd"):  # fmt: skip
        assert core.says_done(text), text
    for text in ("not done yet", "noch nicht fertig", "ich bin total fertig", "ok", "yes", "ja", "", "did not",
                 "done, but my back hurts a lot today", "gone", "none", "walk", "this morning", "dont"):  # fmt: skip
        assert not core.says_done(text), text


async def test_in_privacy_mode_the_offer_opens_the_session_where_it_is_recorded(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    public = "https://rehab.clinic.test"
    bot = await bot_factory(
        privacy={"health_data_in_chat": False}, web={"public_url": public}, delivery={"per_chat_interval": 0.02}
    )
    patient = await enrolled(bot, 7606)
    user = tg.user(7606)
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    await user.send("done")
    [offer] = await user.wait_for()
    assert (offer.text or "").startswith(
        "If you finished your 09:00 session, open it with ▶ Start and record it there."
    )
    [es] = await sessions_of(bot, patient)
    assert offer.buttons[0] == [("▶ Start", f"{public}/app/session/{es.id}")], offer.buttons
    assert not any(data.startswith(("sd:", "nt:c")) for data in offer.callback_data), "no answer through the chat"
    assert es.status == core.Status.PENDING


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_text_typed_under_a_session_question_is_told_to_tap_the_answer(
    bot: Any, tg: FakeTelegram, lang: str
) -> None:
    """An outside test typed "hard", then "9", under the effort and pain questions: the offer only, nothing
    recorded and nothing said about the question waiting above."""
    _ = lambda msgid, **kw: t(lang, msgid, **kw)  # noqa: E731
    patient = await enrolled(bot, 7611, lang=lang)
    user = tg.user(7611, language_code=lang)
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    await press_and_wait(user, _("✅ Done"), 2)
    waiting = _(QUESTION_WAITING, slot="09:00")
    for typed in ("hard", "9"):
        await user.send(typed)
        [offer] = await user.wait_for()
        assert (offer.text or "").startswith(waiting + "\n\n" + _(OFFER)), offer.text
    await press_and_wait(user, _("😓 Hard"), 1)
    await press_and_wait(user, "3", 1)
    [es] = await sessions_of(bot, patient)
    assert (es.effort, es.pain) == ("hard", 3)
    await user.send("thanks")  # answered: nothing waits
    [offer] = await user.wait_for()
    assert waiting not in (offer.text or "")


async def test_text_typed_under_the_why_of_a_skip_is_told_to_tap_the_answer(bot: Any, tg: FakeTelegram) -> None:
    await enrolled(bot, 7612)
    user = tg.user(7612)
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    await press_and_wait(user, "⏭ Skip", 2)  # the reminder closed, "What got in the way?" asked
    await user.send("I was busy")
    [offer] = await user.wait_for()
    assert (offer.text or "").startswith(t("en", QUESTION_WAITING, slot="09:00") + "\n\n" + t("en", OFFER))
