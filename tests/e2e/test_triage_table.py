"""Every row of the triage table, end to end, in English and German.

For each path of answers in docs/SAFETY.md's triage table (read off the
content by rehab_bot.triage), a patient starts the symptom check with
/checkin, answers "no" to everything off the path and the path's answers on
it, and the test checks: the reply sent at once (its exact text, the level's
clinic text as configured: the emergency text, or the phone number and
hours), the check-in ending on an emergency, the staff alert with its
severity at the therapist and the clinic's alert chat within 60 s (the real
dispatch job sends it), and that every message was in the patient's language.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from language_check import foreign_sentences, leaks
from rig.telegram_server import FakeTelegram, SentMessage
from test_checkins import enrolled, rows
from test_redflags import ALERT_CHAT, POLL, PROMISE, THERAPIST, alerts_arrive

from rehab_bot import redflag, triage
from rehab_bot.checkin import next_item
from rehab_bot.config import ClinicConfig
from rehab_bot.content import Content, load_content, localize
from rehab_bot.content.checkins import Item, Questionnaire
from rehab_bot.i18n import t
from rehab_bot.models import Alert, Answer

CLINIC: dict[str, Any] = {
    "alert_chat_id": ALERT_CHAT,
    "name": "Example Spine Clinic",
    "phone": "+49 30 5550 100",
    "phone_hours": {"en": "weekdays from 8 am to 4 pm", "de": "werktags von 8 bis 16 Uhr"},
    "emergency_text": {
        "en": "In an emergency call 112 now, day or night.",
        "de": "Im Notfall rufen Sie jetzt die 112 an, Tag und Nacht.",
    },
}
ROWS = triage.answer_rows(load_content(None))


@pytest.fixture
async def live(bot_factory: Callable[..., Any]) -> Any:
    """The dispatch job runs every POLL seconds; the clinic has its own texts in both languages."""
    return await bot_factory(delivery={"poll_interval": POLL, "per_chat_interval": 0.05}, clinic=CLINIC)


def label(item: Item, value: int, lang: str) -> str:
    """The button a patient presses for this answer."""
    if item.yes_no:
        return t(lang, "Yes") if value else t(lang, "No")
    option = item.option(value)
    assert option is not None
    return localize(option.label, lang)


def asked(questionnaire: Questionnaire, values: dict[str, int]) -> Item | None:
    answers = {k: Answer(checkin_id=0, patient_id=0, item_id=k, value=v) for k, v in values.items()}
    return next_item(questionnaire, answers)


async def walk(
    user: Any, questionnaire: Questionnaire, wanted: dict[str, int], lang: str, *, stop_at: str | None = None
) -> tuple[SentMessage, dict[str, int]]:
    """/checkin, choose the questionnaire, then answer: the path's answers on it, "no" (0) off it.

    Stops before pressing the answer to `stop_at` (returns that question), or when the check-in is done.
    """
    await user.send("/checkin")
    [menu] = await user.wait_for()
    await user.press(localize(questionnaire.title, lang), menu)
    [question] = await user.wait_for()
    values: dict[str, int] = {}
    while (item := asked(questionnaire, values)) is not None:
        assert localize(item.text, lang).strip() in (question.text or ""), (item.id, question.text)
        gate = any(o.ends for o in item.options)
        value = 1 if gate else wanted.get(item.id, 0)
        if item.id == stop_at:
            return question, values
        await user.press(label(item, value, lang), question)
        values[item.id] = value
        [question] = await user.wait_for(lambda m, mid=question.message_id: m.message_id == mid)
    return question, values


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("row", ROWS, ids=[r.id.partition(":")[2] for r in ROWS])
async def test_every_row_of_the_triage_table(live: Any, tg: FakeTelegram, row: triage.Row, lang: str) -> None:
    content: Content = live.services.content
    clinic: ClinicConfig = live.config.clinic
    patient = await enrolled(live, 6100, therapist=THERAPIST, schedule=False, language=lang)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(6100, language_code=lang)
    questionnaire = content.questionnaires[row.questionnaire.id]
    wanted = {a.item.id: a.option.value for a in row.answers}
    deciding = row.deciding

    question, values = await walk(user, questionnaire, wanted, lang, stop_at=deciding.item.id)
    started = time.monotonic()
    await user.press(label(deciding.item, deciding.option.value, lang), question)
    [advice] = await user.wait_for(lambda m: m.message_id != question.message_id, include_edits=False)
    assert time.monotonic() - started < 5, "what to do now is a direct reply, not a queued message"
    assert row.severity is not None and row.reply is not None
    expected = redflag.reply_text(redflag.Finding(row.severity, (row.reply,), told_team=True), content, lang, clinic)
    assert advice.text == expected
    assert advice.text.startswith(content.text(row.reply, lang).strip())
    assert advice.text.endswith(t(lang, "Your care team has been told."))
    if row.level == "emergency":
        assert CLINIC["emergency_text"][lang] in advice.text
        [closed] = await user.wait_for(lambda m: m.message_id == question.message_id)
        assert t(lang, "Please follow the instructions in my message below.") in (closed.text or "")
        assert not closed.has_inline_keyboard, "an emergency ends the check-in"
    else:
        assert row.level == "urgent"
        assert CLINIC["phone"] in advice.text and CLINIC["phone_hours"][lang] in advice.text
        assert CLINIC["emergency_text"][lang] not in advice.text
        [following] = await user.wait_for(lambda m: m.message_id == question.message_id)
        values[deciding.item.id] = deciding.option.value
        while (item := asked(questionnaire, values)) is not None:  # the check goes on: "no" to the rest
            assert following.has_inline_keyboard
            await user.press(label(item, 0, lang), following)
            values[item.id] = 0
            [following] = await user.wait_for(lambda m: m.message_id == question.message_id)
        assert t(lang, "Thank you! Your answers are saved.") in (following.text or "")

    to_therapist, to_chat, delay = await alerts_arrive(tg, started, f"alert for {patient.alias}")
    print(f"TRIAGE {lang} {row.id} alert after {delay:.2f} s")  # pytest -s
    assert delay <= PROMISE
    for alert in (to_therapist, to_chat):
        assert f"{row.severity.upper()} alert for {patient.alias}" in (alert.text or "")
    [alert_row] = await rows(live, Alert)
    assert (alert_row.kind, alert_row.severity) == ("red_flag", row.severity)

    foreign = foreign_sentences(content, lang, (clinic,))
    assert not leaks([m.text or "" for m in user.messages], foreign)


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.slow
async def test_a_red_flag_in_quiet_hours_is_answered_and_alerted_at_once(
    bot_factory: Callable[..., Any], tg: FakeTelegram, lang: str
) -> None:
    from datetime import time as clock_time

    bot = await bot_factory(
        delivery={"poll_interval": POLL, "quiet_hours_start": clock_time(21, 30), "quiet_hours_end": clock_time(7, 30)},
        clinic=CLINIC,
    )
    bot.clock.set(datetime(2026, 6, 10, 22, 30, tzinfo=UTC))  # 00:30 in Berlin: the patient's quiet hours
    patient = await enrolled(bot, 6200, therapist=THERAPIST, schedule=False, language=lang)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(6200, language_code=lang)
    questionnaire = bot.services.content.questionnaires["symptoms"]
    question, _ = await walk(user, questionnaire, {"legs": 1, "legs_both": 1}, lang, stop_at="legs_both")
    started = time.monotonic()
    await user.press(label(questionnaire.item("legs_both"), 1, lang), question)  # type: ignore[arg-type]
    [advice] = await user.wait_for(lambda m: m.message_id != question.message_id, include_edits=False)
    assert CLINIC["emergency_text"][lang] in (advice.text or "")
    assert time.monotonic() - started < 5
    to_therapist, to_chat, delay = await alerts_arrive(tg, started, f"EMERGENCY alert for {patient.alias}")
    assert delay <= PROMISE, "alerts are never deferred by quiet hours"
    assert to_therapist.chat_id == THERAPIST and to_chat.chat_id == ALERT_CHAT


async def test_checkin_offers_the_mood_screens_on_demand(live: Any, tg: FakeTelegram) -> None:
    patient = await enrolled(live, 6300, therapist=THERAPIST, schedule=False, language="de")
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(6300, language_code="de")
    await user.send("/checkin")
    [menu] = await user.wait_for()
    content: Content = live.services.content
    assert localize(content.questionnaires["phq2"].title, "de") in menu.button_labels
    assert localize(content.questionnaires["gad2"].title, "de") in menu.button_labels
    await user.press("PHQ-2: Stimmung in den letzten 2 Wochen", menu)
    [first] = await user.wait_for()
    assert "Wenig Interesse oder Freude" in (first.text or "")
    await user.press("Beinahe jeden Tag", first)
    [second] = await user.wait_for(lambda m: m.message_id == first.message_id)
    started = time.monotonic()
    await user.press("An einzelnen Tagen", second)
    [advice] = await user.wait_for(lambda m: m.message_id != first.message_id, include_edits=False)
    assert "Niedergeschlagenheit ist nach einer Operation häufig" in (advice.text or "")
    assert CLINIC["phone"] in (advice.text or "") and CLINIC["phone_hours"]["de"] in (advice.text or "")
    to_therapist, _, delay = await alerts_arrive(tg, started, f"HIGH alert for {patient.alias}")
    assert delay <= PROMISE and "PHQ-2" in (to_therapist.text or "")


async def test_a_programme_can_switch_a_questionnaire_off_for_checkin(live: Any, tg: FakeTelegram) -> None:
    from dataclasses import replace

    content: Content = live.services.content
    patient = await enrolled(live, 6400, schedule=False)
    live.services.content = replace(
        content, programme_cadences={**content.programme_cadences, (patient.programme_id, "gad2"): []}
    )
    user = tg.user(6400)
    await user.send("/checkin")
    [menu] = await user.wait_for()
    assert "PHQ-2: mood over the last 2 weeks" in menu.button_labels
    assert "GAD-2: worry over the last 2 weeks" not in menu.button_labels


# --------------------------------------------------------------------------- the rules on scores and silence

RULE_SCENARIOS: dict[str, list[tuple[int, str, list[int]]]] = {
    # rule id: the entries, as (day, questionnaire, answer values); the last answer raises the rule.
    "pain-critical": [(0, "pain", [8])],
    "pain-rise-high": [(0, "pain", [3]), (0, "pain", [5])],
    "pain-rise-low": [(0, "pain", [4]), (0, "pain", [5])],
    "pain-above-baseline": [(0, "pain", [2]), (1, "pain", [3]), (2, "pain", [2]), (5, "pain", [6])],
    "pain-trend": [(0, "pain", [1]), (1, "pain", [2]), (2, "pain", [4])],
    "phq2-positive": [(0, "phq2", [2, 1])],
    "gad2-positive": [(0, "gad2", [2, 1])],
}
RULES = triage.rule_rows(load_content(None))


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("rule_row", RULES, ids=[r.rule.id for r in RULES])
async def test_every_rule_of_the_triage_table(live: Any, tg: FakeTelegram, rule_row: triage.RuleRow, lang: str) -> None:
    rule = rule_row.rule
    content: Content = live.services.content
    clinic: ClinicConfig = live.config.clinic
    patient = await enrolled(live, 6500, therapist=THERAPIST, schedule=False, language=lang)
    tg.group(ALERT_CHAT, "Alerts")
    user = tg.user(6500, language_code=lang)
    first = live.clock.now().date()
    if rule.kind == "inactive":
        from rehab_bot.bot import checkin as checkin_bot

        assert rule.hours is not None
        live.clock.advance(timedelta(hours=rule.hours))
        started = time.monotonic()
        assert await checkin_bot.run_periodic(live.app) == 1
        advice = None
    else:
        entries = RULE_SCENARIOS[rule.id]
        for n, (day, questionnaire_id, values) in enumerate(entries, 1):
            when = first + timedelta(days=day)
            live.clock.set(datetime(when.year, when.month, when.day, 17, n, tzinfo=UTC))
            questionnaire = content.questionnaires[questionnaire_id]
            await user.send("/checkin")
            [menu] = await user.wait_for()
            await user.press(localize(questionnaire.title, lang), menu)
            [question] = await user.wait_for(lambda m, mid=menu.message_id: m.message_id == mid)
            for k, (value, item) in enumerate(zip(values, questionnaire.items, strict=True), 1):
                started = time.monotonic()
                await user.press(label(item, value, lang), question)
                if n == len(entries) and k == len(values):
                    break  # the advice comes first, before the question's edit
                [question] = await user.wait_for(lambda m, mid=menu.message_id: m.message_id == mid)
        [advice] = await user.wait_for(
            lambda m: t(lang, "Your care team has been told.") in (m.text or ""), include_edits=False
        )
        texts = (rule.patient_text,) if rule.patient_text else ()
        expected = redflag.reply_text(
            redflag.Finding(rule.severity, texts, rule.message, told_team=True), content, lang, clinic
        )
        assert advice.text == expected
        if rule_row.level == "urgent":
            assert CLINIC["phone"] in expected and CLINIC["phone_hours"][lang] in expected
        else:
            assert expected == t(lang, "Your care team has been told."), "routine: no advice"
    to_therapist, to_chat, delay = await alerts_arrive(tg, started, f"alert for {patient.alias}")
    print(f"TRIAGE {lang} {rule.id} alert after {delay:.2f} s")  # pytest -s
    assert delay <= PROMISE
    for alert in (to_therapist, to_chat):
        assert f"{rule.severity.upper()} alert for {patient.alias}" in (alert.text or "")
    [alert_row] = await rows(live, Alert)
    assert alert_row.severity == rule.severity
    assert (f"rule '{rule.id}'" if rule.kind == "inactive" else f"[{rule.id}]") in alert_row.detail
    if advice is None:
        assert not [m for m in user.messages if m.text], "silence is not told off"
    foreign = foreign_sentences(content, lang, (clinic,))
    assert not leaks([m.text or "" for m in user.messages], foreign)
