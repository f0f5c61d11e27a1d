"""Crisis wording and symptom words end to end, on the fake Bot API server.

A crisis message gets the crisis text at once and an emergency alert to the
therapist and the clinic's alert chat (the dispatch job runs for real, as in
test_redflags.py); an idiom does not; a symptom word gets the symptom check
one tap away, next to "save as a note".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from rig.telegram_server import FakeTelegram, SentMessage
from sqlmodel import col, select
from test_caregiver import invite_and_join
from test_checkins import enrolled, rows

from rehab_bot.bot import checkin as checkin_bot
from rehab_bot.i18n import t
from rehab_bot.models import Alert, CheckIn, CrisisQuestion, Delivery, Note, Staff

ALERT_CHAT = -100_778
POLL = 0.5
PROMISE = 60.0
THERAPIST = 5301
NOTE_OFFER = (
    "I cannot answer messages myself, but your care team can. "
    "Shall I send this to them, or save it as a note for your therapist?"
)


@pytest.fixture
async def live(bot_factory: Callable[..., Any], backend: str) -> Any:
    """A bot whose dispatch job runs every POLL seconds, with a clinic alert chat; SQLite and PostgreSQL."""
    return await bot_factory(backend, delivery={"poll_interval": POLL}, clinic={"alert_chat_id": ALERT_CHAT})


def crisis_alert(m: SentMessage) -> bool:
    return m.text is not None and "Possible crisis" in m.text


async def crisis_alerts_arrive(tg: FakeTelegram, started: float) -> tuple[SentMessage, SentMessage, float]:
    [to_therapist] = await tg.user(THERAPIST).wait_for(crisis_alert, timeout=PROMISE)
    [to_chat] = await tg.group(ALERT_CHAT, "Alerts").wait_for(crisis_alert, timeout=PROMISE)
    return to_therapist, to_chat, time.monotonic() - started


async def test_a_german_phrase_with_a_filler_word_is_a_crisis(live: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(live, 5310, therapist=THERAPIST, schedule=False, language="de")
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5310, language_code="de")
    started = time.monotonic()
    await user.send("Ich will wirklich nicht mehr leben.")  # "wirklich" inside "will nicht mehr leben"
    [help_now] = await user.wait_for(timeout=5)
    assert "TelefonSeelsorge" in help_now.text and "112" in help_now.text
    assert "Ihr Behandlungsteam wurde informiert." in help_now.text
    to_therapist, to_chat, delay = await crisis_alerts_arrive(tg, started)
    assert delay <= PROMISE
    assert f"EMERGENCY alert for {patient.alias}" in (to_chat.text or "")
    assert "wirklich nicht mehr leben" in (to_therapist.text or "")
    assert "words from the crisis list" in (to_therapist.text or "") and "answered Yes" not in (to_therapist.text or "")
    await user.expect_silence(1.0)  # no "save as a note?" offer on top
    [note] = await rows(live, Note)
    assert note.crisis


async def test_i_wish_i_was_not_here_is_a_crisis(live: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(live, 5311, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5311)
    started = time.monotonic()
    await user.send("I wish I wasn't here")
    [help_now] = await user.wait_for(timeout=5)
    assert "call 112 now" in help_now.text and "Your care team has been told." in help_now.text
    _, to_chat, delay = await crisis_alerts_arrive(tg, started)
    assert delay <= PROMISE and f"EMERGENCY alert for {patient.alias}" in (to_chat.text or "")
    [alert] = await rows(live, Alert)
    assert (alert.kind, alert.severity) == ("crisis", "emergency")


@pytest.mark.parametrize(
    ("text", "language", "told"),
    [
        ("I think I took way too many painkillers", "en", "call 112 now"),
        ("ich hab die ganze Packung Schmerztabletten geschluckt", "de", "112"),
    ],
)
async def test_an_overdose_in_plain_words_is_a_crisis(
    live: Any, tg: FakeTelegram, text: str, language: str, told: str
) -> None:
    # Before 2026-12-01 these got only the offer to keep a note for the therapist.
    patient = await enrolled(live, 5315, therapist=THERAPIST, schedule=False, language=language)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5315, language_code=language)
    started = time.monotonic()
    await user.send(text)
    [help_now] = await user.wait_for(timeout=5)
    assert told in help_now.text and NOTE_OFFER not in help_now.text
    _, to_chat, delay = await crisis_alerts_arrive(tg, started)
    assert delay <= PROMISE and f"EMERGENCY alert for {patient.alias}" in (to_chat.text or "")
    [note] = await rows(live, Note)
    assert note.crisis and note.text == text


async def test_this_pain_is_killing_me_is_no_crisis_but_offers_the_pain_check(live: Any, tg: FakeTelegram) -> None:
    await enrolled(live, 5312, therapist=THERAPIST, schedule=False)
    group = tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5312)
    await user.send("This pain is killing me")
    [offer] = await user.wait_for(timeout=5)
    assert "TelefonSeelsorge" not in offer.text and NOTE_OFFER in offer.text
    assert offer.button_labels == ["🩺 Pain", "✉️ Send to my care team", "Save as a note", "No, thanks"]
    await group.expect_silence(3 * POLL)
    await tg.user(THERAPIST).expect_silence(0.1)
    assert await rows(live, Alert) == [] and await rows(live, Note) == []
    await user.press("🩺 Pain")
    [question] = await user.wait_for(lambda m: "0" in m.button_labels, timeout=5)
    assert question.message_id != offer.message_id
    [checkin] = await rows(live, CheckIn)
    assert checkin.questionnaire_id == "pain"


async def test_a_symptom_word_offers_the_symptom_check_with_one_tap(live: Any, tg: FakeTelegram) -> None:
    await enrolled(live, 5313, therapist=THERAPIST, schedule=False)
    user = tg.user(5313)
    await user.send("my bladder feels strange")
    [offer] = await user.wait_for(timeout=5)
    assert t("en", "If this is about a symptom") in offer.text and NOTE_OFFER in offer.text
    assert offer.button_labels == [
        "🩺 Wound and symptom check",
        "✉️ Send to my care team",
        "Save as a note",
        "No, thanks",
    ]
    assert not await rows(live, CheckIn)
    await user.press("🩺 Wound and symptom check")
    [question, edited] = await user.wait_for(count=2, timeout=5)
    assert "have you noticed any of these?" in question.text and question.message_id != offer.message_id
    assert edited.message_id == offer.message_id and edited.button_labels == [
        "✉️ Send to my care team",
        "Save as a note",
        "No, thanks",
    ]
    [checkin] = await rows(live, CheckIn)
    assert (checkin.questionnaire_id, checkin.status) == ("symptoms", "open")
    # The message is not lost: it can still be kept as a note.
    await user.press("Save as a note", offer)
    [saved] = await user.wait_for(timeout=5)
    assert "Saved as a note" in saved.text
    async with live.db.session() as session:
        [note] = (await session.exec(select(Note))).all()
    assert (note.text, note.crisis) == ("my bladder feels strange", False)


async def test_a_german_symptom_word_offers_the_german_check(live: Any, tg: FakeTelegram) -> None:
    await enrolled(live, 5314, therapist=THERAPIST, schedule=False, language="de")
    user = tg.user(5314, language_code="de")
    await user.send("Meine Blase fühlt sich seit heute komisch an")
    [offer] = await user.wait_for(timeout=5)
    assert offer.text.startswith("Falls es um eine Beschwerde geht")
    assert offer.button_labels[0] == "🩺 Wunde und Beschwerden"
    await user.press("🩺 Wunde und Beschwerden")
    [question] = await user.wait_for(lambda m: "Ist Ihnen seit Ihrer letzten Abfrage" in (m.text or ""), timeout=5)
    assert question.message_id != offer.message_id


@pytest.mark.parametrize(
    "said", ["hab in die Hose gemacht ohne es zu merken", "Beim Abwischen spür ich untenrum gar nix mehr"]
)
async def test_german_bladder_and_saddle_words_reach_the_symptom_check(live: Any, tg: FakeTelegram, said: str) -> None:
    """An outside test: these got the crisis question, and after "Nein" only the note offer, with no check."""
    await enrolled(live, 5317, therapist=THERAPIST, schedule=False, language="de")
    user = tg.user(5317, language_code="de")
    await user.send(said)
    [first] = await user.wait_for(timeout=5)
    if "Nein" in first.button_labels:  # the crisis question first: No goes on to the offer
        user.mark_seen()
        await user.press("Nein", first)
        await user.wait_for(lambda m: "🩺 Wunde und Beschwerden" in m.button_labels, timeout=5)
    else:
        assert first.button_labels[0] == "🩺 Wunde und Beschwerden", (first.text, first.button_labels)


async def test_a_forged_check_button_starts_nothing(live: Any, tg: FakeTelegram) -> None:
    await enrolled(live, 5315, therapist=THERAPIST, schedule=False)
    user = tg.user(5315)
    await user.send("I have a fever")
    [offer] = await user.wait_for(timeout=5)
    assert offer.button_labels[0] == "🩺 Wound and symptom check"
    for data in ("sc:phq2", "sc:nope", "sc:"):  # not offered on this message, unknown, empty
        await user.press_data(data, offer.message_id)
        answer = await user.wait_for_answer()
        assert answer.text == "This button is no longer active."
    assert await rows(live, CheckIn) == []


async def test_crisis_wins_over_a_symptom_word(live: Any, tg: FakeTelegram) -> None:
    await enrolled(live, 5316, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5316)
    started = time.monotonic()
    await user.send("My wound is bleeding again and honestly I just want to die")
    [help_now] = await user.wait_for(timeout=5)
    assert "call 112 now" in help_now.text and not help_now.button_labels
    await crisis_alerts_arrive(tg, started)
    await user.expect_silence(1.0)  # no symptom-check offer on top
    [note] = await rows(live, Note)
    assert note.crisis


async def test_crisis_words_from_someone_not_enrolled_still_get_the_crisis_help(bot: Any, tg: FakeTelegram) -> None:
    """A stranger (expired invitation, deleted account) or a caregiver gets the numbers, not 'use the buttons'."""
    await enrolled(bot, 5320, therapist=THERAPIST, schedule=False)
    carer = tg.user(5322, language_code="en")
    await invite_and_join(bot, tg.user(5320), carer)
    carer.mark_seen()
    for user, text, lang, starts in (
        (tg.user(5321, language_code="de"), "Ich will mich umbringen", "de", "Es klingt, als ginge es Ihnen"),
        (carer, "I want to kill myself", "en", "It sounds like you are going through"),
    ):
        await user.send(text)
        [reply] = await user.wait_for(timeout=5)
        assert reply.text.startswith(starts), reply.text
        assert bot.config.clinic.text("emergency_text", lang).strip() in reply.text
        assert t(lang, "Your care team has been told.") not in reply.text
    assert await rows(bot, Note) == [] and await rows(bot, Alert) == []  # nobody's record to keep it in
    therapist = tg.user(THERAPIST)  # staff writing about a patient are no patient in crisis
    await therapist.send("She said she wants to die, I will call her")
    [answer] = await therapist.wait_for(timeout=5)
    assert not answer.text.startswith("It sounds like"), answer.text


async def test_the_crisis_text_is_sent_again_after_a_5xx_or_a_dropped_connection(live: Any, tg: FakeTelegram) -> None:
    """A reply lost to a 502 or a reset is tried again at once (twice at most): the crisis text
    is never the one message a passing Telegram fault takes from the patient."""
    from rig.telegram_server import reset, server_error

    await enrolled(live, 5331, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5331)
    gateway = tg.inject("sendMessage", chat_id=5331, error=server_error(502))
    dropped = tg.inject("sendMessage", chat_id=5331, error=reset())
    await user.send("I want to kill myself")
    [help_now] = await user.wait_for(timeout=10)
    assert "112" in (help_now.text or "") and "Your care team has been told." in (help_now.text or "")
    assert gateway.hits == 1 and dropped.hits == 1, "both faults happened, the third try arrived"
    failed = [c for c in tg.calls("sendMessage") if c.chat_id == 5331 and not c.ok]
    assert len(failed) == 2


async def test_a_crisis_text_telegram_refused_three_times_is_sent_by_the_engine(live: Any, tg: FakeTelegram) -> None:
    """All three tries of the reply fail: the engine sends the crisis text as soon as Telegram takes it,
    and nothing else answers the message (before, the note offer went out in its place)."""
    from rig.telegram_server import server_error

    await enrolled(live, 5332, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5332)
    outage = tg.inject("sendMessage", chat_id=5332, error=server_error(502), times=3)
    await user.send("I want to kill myself")
    [help_now] = await user.wait_for(timeout=10)  # the engine's run, POLL seconds apart
    assert outage.hits == 3
    assert "112" in (help_now.text or "") and "Your care team has been told." in (help_now.text or "")
    await user.expect_silence(3 * POLL)
    assert [m.text for m in user.messages] == [help_now.text], "the crisis text once, and nothing else"
    async with live.db.session() as session:
        [queued] = (await session.exec(select(Delivery).where(col(Delivery.chat_id) == 5332))).all()
    assert (queued.kind, queued.status) == ("safety", "sent")
    [note] = await rows(live, Note)
    assert note.crisis


QUESTION = "I want to be sure I understand you. Are you having thoughts of ending your life"


async def test_a_danger_word_gets_the_crisis_question_and_no_goes_on_to_the_note_offer(
    live: Any, tg: FakeTelegram
) -> None:
    await enrolled(live, 5320, therapist=THERAPIST, schedule=False)
    group = tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5320)
    sent = await user.send("took an extra painkiller last night, the pain was bad")
    [question] = await user.wait_for(timeout=5)
    assert question.text.startswith(QUESTION) and question.button_labels == ["Yes", "No"]
    assert question.reply_to_message_id == sent["message"]["message_id"]
    await user.press("No", question)
    [edited, offer] = await user.wait_for(count=2, timeout=5)
    assert edited.message_id == question.message_id and edited.text.endswith("✓ No") and not edited.buttons
    assert NOTE_OFFER in offer.text and offer.reply_to_message_id == sent["message"]["message_id"]
    # The message is not lost: the offer keeps it, as for any other message.
    await user.press("Save as a note", offer)
    await user.wait_for(lambda m: "Saved as a note" in (m.text or ""), timeout=5)
    [note] = await rows(live, Note)
    assert (note.text, note.crisis) == ("took an extra painkiller last night, the pain was bad", False)
    await group.expect_silence(3 * POLL)
    assert await rows(live, Alert) == []


@pytest.mark.parametrize(("lang", "said", "yes"), [("en", "i wnat to die", "Yes"), ("de", "will mich umbrigen", "Ja")])
async def test_a_mistyped_crisis_word_asks_and_yes_alerts(
    live: Any, tg: FakeTelegram, lang: str, said: str, yes: str
) -> None:
    """An outside test's "i wnat to die" and "will mich umbrigen" got the note offer alone: no question, no alert."""
    patient = await enrolled(live, 5322, therapist=THERAPIST, schedule=False, language=lang)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5322, language_code=lang)
    started = time.monotonic()
    await user.send(said)
    [question] = await user.wait_for(timeout=5)
    assert yes in question.button_labels, (question.text, question.button_labels)
    assert await rows(live, Alert) == [], "a slip asks; it does not alert by itself"
    await user.press(yes, question)
    await user.wait_for(count=2, timeout=5)
    _, to_chat, _ = await crisis_alerts_arrive(tg, started)
    assert f"EMERGENCY alert for {patient.alias}" in (to_chat.text or "")


async def test_yes_to_the_crisis_question_is_a_crisis_with_the_patients_words(live: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(live, 5321, therapist=THERAPIST, schedule=False, language="de")
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5321, language_code="de")
    started = time.monotonic()
    await user.send("hab meinem Bruder heute mein Testament gezeigt")
    [question] = await user.wait_for(timeout=5)
    assert question.text.startswith("Ich möchte sicher sein, dass ich Sie richtig verstehe.")
    assert question.button_labels == ["Ja", "Nein"]
    await user.press("Ja", question)
    [edited, help_now] = await user.wait_for(count=2, timeout=5)
    assert edited.text.endswith("✓ Ja") and not edited.buttons
    assert "TelefonSeelsorge" in help_now.text and "Ihr Behandlungsteam wurde informiert." in help_now.text
    to_therapist, to_chat, delay = await crisis_alerts_arrive(tg, started)
    assert delay <= PROMISE and f"EMERGENCY alert for {patient.alias}" in (to_chat.text or "")
    # The care team reads that the patient said Yes (an outside test found only "words from the crisis list").
    for told in (to_therapist.text or "", to_chat.text or ""):
        assert "The patient answered Yes to the crisis question" in told and "crisis list" not in told
        assert "«hab meinem Bruder heute mein Testament gezeigt»" in told
    [note] = await rows(live, Note)
    assert (note.text, note.crisis) == ("hab meinem Bruder heute mein Testament gezeigt", True)
    # The question answered, its buttons are gone: a second press changes nothing.
    await user.press_data("cz:y", message_id=question.message_id)
    assert (await user.wait_for_answer(timeout=5)).text == "Diese Schaltfläche ist nicht mehr aktiv."
    assert len(await rows(live, Alert)) == 1


async def test_an_everyday_message_gets_no_crisis_question(live: Any, tg: FakeTelegram) -> None:
    await enrolled(live, 5322, therapist=THERAPIST, schedule=False)
    user = tg.user(5322)
    await user.send("the pain between my shoulder blades is better, it disappeared after the walk")
    [offer] = await user.wait_for(timeout=5)
    assert NOTE_OFFER in offer.text and QUESTION not in offer.text


@pytest.mark.parametrize("typed", ["ja", "Ja, manchmal.", "vielleicht"])
async def test_a_typed_yes_to_the_crisis_question_is_a_crisis_as_the_button_is(
    live: Any, tg: FakeTelegram, typed: str
) -> None:
    """An outside test typed "ja" under the question instead of tapping Ja: the bot offered to send "ja" to
    the care team as a note; no crisis text, no alert, and the question stayed open."""
    patient = await enrolled(live, 5323, therapist=THERAPIST, schedule=False, language="de")
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5323, language_code="de")
    started = time.monotonic()
    await user.send("hab meinem Bruder heute mein Testament gezeigt")
    [question] = await user.wait_for(timeout=5)
    assert question.button_labels == ["Ja", "Nein"]
    await user.send(typed)
    [edited, help_now] = await user.wait_for(count=2, timeout=5)
    assert edited.message_id == question.message_id and edited.text.endswith("✓ Ja") and not edited.buttons
    assert "TelefonSeelsorge" in help_now.text and "Ihr Behandlungsteam wurde informiert." in help_now.text
    _, to_chat, delay = await crisis_alerts_arrive(tg, started)
    assert delay <= PROMISE and f"EMERGENCY alert for {patient.alias}" in (to_chat.text or "")
    [note] = await rows(live, Note)
    assert (note.text, note.crisis) == ("hab meinem Bruder heute mein Testament gezeigt", True)
    # Answered: a later "ja", or the question's old button, does nothing more.
    await user.press_data("cz:y", message_id=question.message_id)
    assert (await user.wait_for_answer(timeout=5)).text == "Diese Schaltfläche ist nicht mehr aktiv."
    assert len(await rows(live, Alert)) == 1


async def test_a_typed_no_goes_on_to_the_offer_and_other_words_are_read_as_any_message(
    live: Any, tg: FakeTelegram
) -> None:
    await enrolled(live, 5324, therapist=THERAPIST, schedule=False)
    group = tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5324)
    sent = await user.send("took an extra painkiller last night, the pain was bad")
    [question] = await user.wait_for(timeout=5)
    await user.send("the weather is nice today")  # neither yes nor no: the usual offer, the question stays
    [offer] = await user.wait_for(timeout=5)
    assert NOTE_OFFER in offer.text and offer.message_id != question.message_id
    await user.send("No, not at all")
    [edited, offer] = await user.wait_for(count=2, timeout=5)
    assert edited.message_id == question.message_id and edited.text.endswith("✓ No") and not edited.buttons
    assert NOTE_OFFER in offer.text and offer.reply_to_message_id == sent["message"]["message_id"]
    await group.expect_silence(3 * POLL)
    assert await rows(live, Alert) == []


async def test_a_typed_yes_long_after_the_question_answers_it_only_as_a_telegram_reply(
    live: Any, tg: FakeTelegram
) -> None:
    """An hour on, a bare "yes" may answer something else; one sent as a reply to the question still answers it."""
    await enrolled(live, 5325, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5325)
    await user.send("took an extra painkiller last night, the pain was bad")
    [question] = await user.wait_for(timeout=5)
    live.clock.advance(timedelta(minutes=61))
    await user.send("yes")
    [offer] = await user.wait_for(timeout=5)
    assert NOTE_OFFER in offer.text and await rows(live, Alert) == []
    await user.send("yes", reply_to=question.message_id)
    [edited, help_now] = await user.wait_for(count=2, timeout=5)
    assert edited.message_id == question.message_id and edited.text.endswith("✓ Yes")
    assert "Your care team has been told." in help_now.text
    assert len(await rows(live, Alert)) == 1
    [note] = await rows(live, Note)
    assert (note.text, note.crisis) == ("took an extra painkiller last night, the pain was bad", True)


def unanswered_alert(m: SentMessage) -> bool:
    return m.text is not None and "The crisis question was not answered." in m.text


async def test_a_crisis_question_nobody_answers_alerts_the_care_team(live: Any, tg: FakeTelegram) -> None:
    """Hazard H12: the question was asked because nothing in the message was clear enough to alert on; before,
    a patient who left it unanswered was heard by nobody. After [staff] crisis_question_minutes (30) the
    periodic check raises one critical alert with the message, to the therapist and the alert chat."""
    patient = await enrolled(live, 5326, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5326)
    await user.send("took an extra painkiller last night, the pain was bad")
    [question] = await user.wait_for(timeout=5)
    assert question.text.startswith(QUESTION)
    await user.send("the weather is nice today")  # neither yes nor no: the question stays open
    await user.wait_for(timeout=5)
    live.clock.advance(timedelta(minutes=29))
    assert await checkin_bot.run_periodic(live.app) == 0
    live.clock.advance(timedelta(minutes=1, seconds=30))
    assert await checkin_bot.run_crisis_questions(live.app) == 1  # the every-minute job's check
    [to_therapist] = await tg.user(THERAPIST).wait_for(unanswered_alert, timeout=PROMISE)
    [to_chat] = await tg.group(ALERT_CHAT, "Alerts").wait_for(unanswered_alert, timeout=PROMISE)
    for told in (to_therapist.text or "", to_chat.text or ""):
        assert f"CRITICAL alert for {patient.alias}" in told and "within 30 minutes" in told
        assert "«took an extra painkiller last night, the pain was bad»" in told
    [alert] = await rows(live, Alert)
    assert (alert.kind, alert.severity) == ("crisis_question", "critical")
    # One alert per question, however often the check runs; a late No raises nothing more.
    live.clock.advance(timedelta(minutes=10))
    assert await checkin_bot.run_periodic(live.app) == 0
    await user.press("No", question)
    await user.wait_for(count=2, timeout=5)
    assert await checkin_bot.run_periodic(live.app) == 0
    assert len(await rows(live, Alert)) == 1
    await user.expect_silence(0.5)  # the patient is not pressed further


@pytest.mark.parametrize("answer", ["press No", "type no", "press Yes"])
async def test_a_crisis_question_answered_raises_no_unanswered_alert_later(
    live: Any, tg: FakeTelegram, answer: str
) -> None:
    await enrolled(live, 5327, therapist=THERAPIST, schedule=False)
    user = tg.user(5327)
    await user.send("took an extra painkiller last night, the pain was bad")
    [question] = await user.wait_for(timeout=5)
    if answer == "type no":
        await user.send("no")
    else:
        await user.press(answer.removeprefix("press "), question)
    await user.wait_for(count=2, timeout=5)
    live.clock.advance(timedelta(hours=2))
    assert await checkin_bot.run_periodic(live.app) == 0
    kinds = [a.kind for a in await rows(live, Alert)]
    assert kinds == (["crisis"] if answer == "press Yes" else [])
    [asked] = await rows(live, CrisisQuestion)
    assert asked.answered_at is not None and asked.alerted_at is None


async def test_the_unanswered_crisis_question_alert_reads_in_the_therapists_language(
    bot_factory: Callable[..., Any], backend: str, tg: FakeTelegram
) -> None:
    bot = await bot_factory(backend, delivery={"poll_interval": POLL}, staff={"crisis_question_minutes": 45})
    patient = await enrolled(bot, 5328, therapist=THERAPIST, schedule=False, language="de")
    async with bot.db.session() as db:
        [therapist] = (await db.exec(select(Staff).where(Staff.telegram_id == THERAPIST))).all()
        therapist.language = "de"
        db.add(therapist)
        await db.commit()
    user = tg.user(5328, language_code="de")
    await user.send("hab meinem Bruder heute mein Testament gezeigt")
    [question] = await user.wait_for(timeout=5)
    assert question.button_labels == ["Ja", "Nein"]
    bot.clock.advance(timedelta(minutes=44))
    assert await checkin_bot.run_periodic(bot.app) == 0
    bot.clock.advance(timedelta(minutes=1))
    assert await checkin_bot.run_periodic(bot.app) == 1
    [told] = await tg.user(THERAPIST).wait_for(
        lambda m: "Die Krisenfrage wurde nicht beantwortet." in (m.text or ""), timeout=PROMISE
    )
    assert patient.alias in (told.text or "") and "Innerhalb von 45 Minuten kam keine Antwort" in (told.text or "")
    assert "«hab meinem Bruder heute mein Testament gezeigt»" in (told.text or "")


async def test_a_therapists_reply_in_words_to_an_alert_is_told_it_was_not_sent(live: Any, tg: FakeTelegram) -> None:
    """An outside test answered a crisis alert with Telegram's reply ("will call you in 10 minutes") and got
    "use the buttons below": nothing reached the patient and nobody said so."""
    patient = await enrolled(live, 5323, therapist=THERAPIST, schedule=False)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(5323)
    await user.send("I want to kill myself")
    to_therapist, _, _ = await crisis_alerts_arrive(tg, time.monotonic())
    therapist = tg.user(THERAPIST)
    therapist.mark_seen()
    user.mark_seen()
    await therapist.send("Hi, this is Alex, I will call you in 10 minutes", reply_to=to_therapist.message_id)
    [answer] = await therapist.wait_for(timeout=5)
    assert answer.text == (
        f"Your text was not sent: an alert is not a message from {patient.alias}, so it cannot be answered here. "
        f"To reach {patient.alias}, call them, or answer one of their messages (/patient {patient.alias} shows them)."
    )
    await user.expect_silence(0.5)
