"""Privacy mode ([privacy] health_data_in_chat = false) end to end: a simulated week through the fake Bot API.

One patient with a therapist, the built-in lumbar programme (three sessions a
day, daily check-ins, motivation) and pain and mood answers stored on the
clinic's server that would fill the motivational messages (pain improved,
halved, the weekly summary with pain and mood). During the week the patient
types a symptom into the chat, asks for /progress, /pain and /checkin, types
/pain 7 (recorded as in the form), an urgent red flag is raised for the
therapist, and the engine runs every due reminder, nudge, check-in and
motivation as its jobs would.

Proven: every request the bot made to Telegram in that week (texts, captions,
buttons, callback answers, to the patient and to the therapist) contains no
pain score, no mood, no symptom, no question of the pain, mood or symptom
check and none of the patient's free text; reminders and prompts are neutral
and open the Mini App (web_app buttons to [web] public_url); the typed
symptom was still triaged (the symptom form offered at once); the therapist's
alert names no symptom, only the dashboard.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram
from sqlmodel import col, select

from rehab_bot import alert as alerts
from rehab_bot import checkin as checkins
from rehab_bot import message as care_messages
from rehab_bot import programme
from rehab_bot.bot import session as session_bot
from rehab_bot.content import load_content, localize
from rehab_bot.models import Answer, CheckIn, Delivery, Kind, Patient, ReminderRule

BERLIN = ZoneInfo("Europe/Berlin")
MON = date(2026, 6, 15)
PUBLIC = "https://rehab.clinic.test"
CONTENT = load_content(None)
FREE_TEXT = "Since this morning I have tingling in my left foot"
ALERT_DETAIL = "New numbness in both legs (answer: yes)"


def berlin(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=BERLIN).astimezone(UTC)


async def next_due(bot: Any) -> datetime | None:
    async with bot.db.session() as s:
        rows = await s.exec(
            select(ReminderRule.next_due_at).where(
                col(ReminderRule.active).is_(True), col(ReminderRule.next_due_at).is_not(None)
            )
        )
        dues = [d for d in rows.all() if d is not None]
    return min(dues) if dues else None


async def run_until(bot: Any, until: datetime) -> None:
    """Move the clock to until, ticking the engine at every due instant and sweeping at local midnights."""
    while True:
        now = bot.clock.now()
        due = await next_due(bot)
        midnight = datetime.combine(
            now.astimezone(BERLIN).date() + timedelta(days=1), time(0), tzinfo=BERLIN
        ).astimezone(UTC)
        stop = midnight if due is None else min(due, midnight)
        if stop > until:
            break
        bot.clock.set(max(stop, now + timedelta(seconds=1)))
        await bot.tick()
        await session_bot.sweep(bot.app)
    bot.clock.set(until)
    await bot.tick()
    await session_bot.sweep(bot.app)


def forbidden_texts() -> list[str]:
    """What must never reach Telegram: the free text and the alert's detail, and every question of the
    pain, mood and symptom checks (the questions name the symptoms), in both languages."""
    texts = [FREE_TEXT, "tingling", "left foot", ALERT_DETAIL, "numbness"]
    for qid in ("pain", "mood", "symptoms"):
        for item in CONTENT.questionnaires[qid].items:
            for lang in ("en", "de"):
                texts.append(localize(item.text, lang).strip())
    return [x for x in texts if x]


HEALTH_WORDS = re.compile(r"\bpain\b|schmerz|\bmood\b|stimmung|\d\s?/\s?10\b|\bof 10\b|\bnumb|\bweak", re.IGNORECASE)


def what_telegram_got(tg: FakeTelegram) -> list[str]:
    """Every parameter the bot sent to Telegram that a person can read (texts, captions, buttons, answers)."""
    out = []
    for request in tg.requests:
        if not request.method.lower().startswith(("send", "edit", "answercallbackquery", "copy", "forward")):
            continue
        params = {k: v for k, v in request.params.items() if k not in ("chat_id", "message_id")}
        out.append(f"{request.method} {json.dumps(params, ensure_ascii=False)}")
    return out


@pytest.mark.slow  # a long scenario: a week
async def test_a_week_in_privacy_mode_sends_no_health_data_through_telegram(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(
        privacy={"health_data_in_chat": False},
        web={"public_url": PUBLIC},
        delivery={"per_chat_interval": 0.02},
    )
    bot.clock.set(berlin(MON, "07:00"))
    therapist = await make_staff(bot.db, telegram_id=8801, name="Dr Privacy")
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=8802,
        language="en",
        programme_id="lumbar-example",
        surgery_date=MON - timedelta(days=20),
        phase_id="weeks-3-6",
        therapist_id=therapist.id,
        consent_at=berlin(MON - timedelta(days=14), "10:00"),
    )
    assert patient.id is not None
    async with bot.db.session() as s:
        stored = await s.get(Patient, patient.id)
        assert stored is not None
        await programme.schedule_sessions(s, stored, CONTENT, bot.clock.now())
        await checkins.schedule_for(s, stored, CONTENT, bot.clock.now())
        # Two weeks of pain (from 6 down to 2) and mood on the server: enough for every pain message.
        for n in range(14, 0, -1):
            day = MON - timedelta(days=n)
            for qid, score in (("pain", 6.0 if n > 7 else 2.0), ("mood", 4.0)):
                s.add(
                    CheckIn(
                        patient_id=patient.id,
                        questionnaire_id=qid,
                        status="complete",
                        started_at=berlin(day, "19:00"),
                        completed_at=berlin(day, "19:01"),
                        score=score,
                        local_date=day,
                    )
                )
        await s.commit()
    anna, doctor = tg.user(8802), tg.user(8801)

    # Monday to Wednesday noon.
    await run_until(bot, berlin(MON + timedelta(days=2), "12:10"))
    # The patient types a symptom: still triaged at once, the form one tap away, nothing echoed.
    anna.mark_seen()
    await anna.send(FREE_TEXT)
    [offer] = await anna.wait_for()
    [[form]] = offer.reply_markup["inline_keyboard"][:1]  # type: ignore[index]
    assert re.fullmatch(rf"{PUBLIC}/app/checkin/\d+", form["web_app"]["url"])
    # A message for the care team is written in the Mini App: the offer opens it, and sends nothing itself.
    offered = [b for row in offer.reply_markup["inline_keyboard"] for b in row]  # type: ignore[index]
    assert {"url": f"{PUBLIC}/app/messages"} in [b.get("web_app") for b in offered]
    assert "nt:c" not in [b.get("callback_data") for b in offered]
    # A photo sent into the chat is not taken for the care team either: the app is offered.
    anna.mark_seen()
    await anna.send_photo(b"\xff\xd8wound-photo")
    [photo_offer] = await anna.wait_for()
    [[to_app]] = photo_offer.reply_markup["inline_keyboard"]  # type: ignore[index]
    assert to_app["web_app"]["url"] == f"{PUBLIC}/app/messages"
    # So is a photo sent "as a file".
    anna.mark_seen()
    await anna.send_document(b"\xff\xd8\xff wound-photo", filename="wound.jpg", mime_type="image/jpeg")
    [file_offer] = await anna.wait_for()
    [[to_app]] = file_offer.reply_markup["inline_keyboard"]  # type: ignore[index]
    assert to_app["web_app"]["url"] == f"{PUBLIC}/app/messages"
    # A message written in the Mini App reaches the therapist's chat as a neutral notice only.
    async with bot.db.session() as s:
        stored = await s.get(Patient, patient.id)
        assert stored is not None
        await care_messages.send(s, stored, bot.config.clinic, text=FREE_TEXT, now=bot.clock.now())
        await s.commit()
    doctor.mark_seen()
    await bot.tick()
    [notice] = await doctor.wait_for()
    assert notice.text == f"✉️ New message from {patient.alias}. Open the dashboard to read it."
    # The commands that would show or ask health data point to the app instead (one message each).
    for command in ("/progress", "/pain", "/checkin"):
        anna.mark_seen()
        await anna.send(command)
        replies = await anna.wait_for()
        assert any(
            b.get("web_app", {}).get("url", "").startswith(PUBLIC + "/app")
            for m in replies
            for row in (m.reply_markup or {}).get("inline_keyboard", [])
            for b in row
        ), command
    # An urgent red flag, raised on the server (as the Mini App's check-in will): the therapist is told.
    async with bot.db.session() as s:
        stored = await s.get(Patient, patient.id)
        assert stored is not None
        raised = await alerts.raise_alert(
            s,
            stored,
            kind="red_flag",
            severity="high",
            detail=ALERT_DETAIL,
            now=bot.clock.now(),
            clinic=bot.config.clinic,
        )
        await s.commit()
    assert raised is not None
    doctor.mark_seen()
    await bot.tick()
    [alert_message] = await doctor.wait_for()
    assert alert_message.text == f"⚠️ HIGH alert for {patient.alias}. Open the dashboard to see it."
    assert alert_message.button_labels, "the Acknowledge button stays"
    # A number typed after /pain is recorded as the form would record it, and not repeated in the chat.
    anna.mark_seen()
    await anna.send("/pain 7")
    typed = await anna.wait_for(count=2)
    assert [m.text for m in typed] == ["Please open your check-in result now.", "Thank you! Your answers are saved."]
    async with bot.db.session() as s:
        [pain] = (await s.exec(select(Answer).where(col(Answer.patient_id) == patient.id))).all()
    assert (pain.item_id, pain.value) == ("pain", 7)
    # The rest of the week.
    await run_until(bot, berlin(MON + timedelta(days=7), "08:00"))
    # The therapist's list names no figure, and one patient in the chat is only a link to the dashboard.
    doctor.mark_seen()
    await doctor.send("/patients")
    [listing] = await doctor.wait_for()
    assert patient.alias in (listing.text or "") and "adherence 7d" not in (listing.text or "")
    # The therapist looks at the patient in the chat: only a link to the dashboard, no answers or chart.
    doctor.mark_seen()
    await doctor.send(f"/patient {patient.alias}")
    [detail] = await doctor.wait_for()
    assert detail.method == "sendMessage" and "dashboard" in (detail.text or "")
    [[dashboard]] = detail.reply_markup["inline_keyboard"]  # type: ignore[index]
    assert dashboard["url"] == f"{PUBLIC}/patients/{patient.id}"
    # An export pressed anyway (an old or forged button) is refused: exports come from the dashboard.
    await doctor.press_data(f"st:ec:{patient.id}", detail.message_id)
    refused = await doctor.wait_for_answer()
    assert "dashboard" in (refused.text or "")
    # The patient's /mydata: a button into the Mini App instead of a file with their answers.
    anna.mark_seen()
    await anna.send("/mydata")
    [mine] = await anna.wait_for()
    assert mine.method == "sendMessage", "no document through Telegram"
    [[opener]] = mine.reply_markup["inline_keyboard"]  # type: ignore[index]
    assert opener["web_app"]["url"] == f"{PUBLIC}/app/mydata"
    assert not [r for r in tg.requests if r.method in ("sendDocument", "sendPhoto")], "no file, no chart"

    seen = what_telegram_got(tg)
    sent_to_anna = [m for m in anna.messages if m.method.startswith("send")]
    reminders = [m for m in sent_to_anna if (m.text or "").startswith("Time for your session (")]
    prompts = [m for m in sent_to_anna if m.text == "Time for your check-in."]
    assert len(reminders) >= 14 and len(prompts) >= 6, (len(reminders), len(prompts))
    for m in reminders + prompts:
        [[button]] = m.params["reply_markup"]["inline_keyboard"]  # as sent (a nudge or the sweep drops it later)
        assert button["web_app"]["url"].startswith(PUBLIC + "/app"), "only the button that opens the Mini App"
    async with bot.db.session() as s:
        motivation = (await s.exec(select(Delivery).where(col(Delivery.kind) == Kind.MOTIVATION.value))).all()
    assert motivation, "the motivation rule ran"
    for line in seen:
        assert not HEALTH_WORDS.search(line), line
        for text in forbidden_texts():
            assert text.lower() not in line.lower(), (text, line)
