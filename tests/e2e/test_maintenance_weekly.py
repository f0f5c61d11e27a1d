"""The maintenance phase end to end: after the programme's last day, a weekly session and check-in.

A four-week programme with [programme.maintenance] (tests/data/maintenance):
the patient enrolled on its last day. The next morning's reminder moves them
into maintenance (the clinic's note, the maintenance exercises), the evening
brings the weekly check (pain and "how did this week go?"), whose pain
answer still raises the pain alert; the next session and check are a week
later, and /stop ends them. The weekly check carries a button to stop it
(confirmed, the same as /stop), also in privacy mode ([privacy]
health_data_in_chat = false), where the check is a form message that opens
the Mini App; a patient's own plan from the programme builder goes on into
the same maintenance phase at the plan's end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram, SentMessage
from sqlmodel import col, select
from webrig import WEB, client, dashboard_link, sign_in_link, web_url

from rehab_bot import plan as plan_core
from rehab_bot import programme
from rehab_bot.content import load_content
from rehab_bot.models import Alert, Kind, Patient, ReminderRule, Staff

DATA = Path(__file__).parent.parent / "data" / "maintenance"
CONTENT = load_content(DATA)
SURGERY = date(2026, 5, 14)
END = SURGERY + timedelta(days=27)  # Wednesday 10 June: the last day of the last phase


def berlin(day: date, hhmm: str, seconds: int = 1) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, seconds, tzinfo=UTC) - timedelta(hours=2)


async def test_the_weekly_session_and_check_follow_the_programme(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(content={"dir": DATA}, delivery={"per_chat_interval": 0.02}, web=WEB)
    bot.clock.set(berlin(END, "21:00"))
    doc = await make_staff(bot.db, telegram_id=7721, name="Dr Keep")
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=8721,
        programme_id="four-weeks",
        surgery_date=SURGERY,
        session_times="09:00,17:00",
        language="en",
        therapist_id=doc.id,
    )
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        await programme.on_enrolled(s, p, CONTENT, bot.clock.now())
        await s.commit()
    user = tg.user(8721)
    first = END + timedelta(days=1)
    bot.clock.set(berlin(first, "09:00"))
    await bot.tick()
    reminder = await user.next_message()
    assert "Keeping it up" in reminder.text and "Your programme is complete." in reminder.text
    user.mark_seen()
    bot.clock.set(berlin(first, "18:00", 30))
    await bot.tick()
    question = await user.next_message(lambda m: "How strong is your pain" in (m.text or ""))
    assert question.text
    await user.press("8")
    week = await user.next_message(lambda m: "How did this week go?" in (m.text or ""))
    assert week.text
    async with bot.db.session() as s:
        alerts = (await s.exec(select(Alert).where(Alert.patient_id == patient.id))).all()
        assert any(a.severity == "critical" for a in alerts), "the pain rule applies to the weekly check"
        rules = (
            await s.exec(
                select(ReminderRule).where(
                    ReminderRule.patient_id == patient.id,
                    col(ReminderRule.active).is_(True),
                    col(ReminderRule.kind).in_([Kind.SESSION.value, Kind.CHECKIN.value]),
                )
            )
        ).all()
        weekly = first + timedelta(days=7)
        due = [r for r in rules if r.next_due_at is not None]  # ended rules stay active with nothing due
        assert sorted((r.kind, r.next_local_date, r.every_n_days) for r in due) == [
            (Kind.CHECKIN.value, weekly, 7),
            (Kind.SESSION.value, weekly, 7),
        ]
    # A week later, at the patient's usual time: the next weekly session.
    bot.clock.set(berlin(first + timedelta(days=7), "09:00"))
    await bot.tick()
    again = await user.next_message(lambda m: (m.text or "").startswith("Time for your exercise session (09:00)."))
    assert "Keeping it up" in again.text and "Your programme is complete." not in again.text
    # The therapist sees the maintenance phase and its weekly reminder on the patient's page.
    link = await dashboard_link(bot, 7721)
    async with client() as browser:
        await sign_in_link(browser, link)
        async with browser.get(f"{web_url(bot)}/patients/{patient.id}") as page:
            html = await page.text()
    assert "Session reminders: 09:00 (every 7 days)</p>" in html
    assert 'id="maintenance"' in html
    # /stop (confirmed) ends them: nothing the week after.
    user.mark_seen()
    await user.send("/stop")
    await user.next_message(lambda m: (m.text or "").startswith("Stop all messages from this bot?"))
    await user.press("🛑 Yes, stop all messages")
    await nothing_on(bot, user, first + timedelta(days=14))


async def enrol(bot: Any, telegram_id: int, therapist_id: int | None, surgery: date = SURGERY) -> Patient:
    patient, _ = await make_patient(
        bot.db,
        bot.clock,
        times=(),
        telegram_id=telegram_id,
        programme_id="four-weeks",
        surgery_date=surgery,
        session_times="09:00,17:00",
        language="en",
        therapist_id=therapist_id,
    )
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        await programme.on_enrolled(s, p, CONTENT, bot.clock.now())
        await s.commit()
    return patient


async def status_of(bot: Any, patient: Patient) -> str:
    async with bot.db.session() as s:
        p = await s.get(Patient, patient.id)
        assert p is not None
        return p.status


def asked(message: SentMessage) -> bool:
    return (message.text or "").startswith("Stop the weekly messages (")


async def a_stale_confirmation_changes_nothing(bot: Any, user: Any, patient: Patient, offer: SentMessage) -> None:
    """The stop offer on `offer` asks first; a confirmation pressed too late changes nothing."""
    user.mark_seen()
    await user.press("🔕 Stop the weekly messages", offer)
    [late] = await user.wait_for(asked, include_edits=False)
    assert [[label for label, _ in row] for row in late.buttons] == [["🛑 Yes, stop"], ["Keep them"]]
    bot.clock.advance(timedelta(minutes=20))
    await user.press("🛑 Yes, stop", late)
    assert (await user.wait_for_answer()).text == "This button is no longer active."
    assert await status_of(bot, patient) == "active"


async def stop_confirmed(bot: Any, user: Any, patient: Patient, offer: SentMessage) -> tuple[int, str]:
    """The stop offer on `offer`, confirmed: the same as /stop. Returns the confirmation's message id and the
    callback data of its "Yes, stop" (the message loses its buttons when it is answered)."""
    await user.press("🔕 Stop the weekly messages", offer)
    [confirm] = await user.wait_for(asked, include_edits=False)
    yes = confirm.buttons[0][0][1]
    assert yes is not None and yes.startswith("pt:wk:yes:")
    await user.press("🛑 Yes, stop", confirm)
    done = await user.next_message(lambda m: "The weekly messages are stopped." in (m.text or ""))
    assert done.message_id == confirm.message_id and not done.buttons
    assert await status_of(bot, patient) == "stopped"
    return confirm.message_id, yes


async def nothing_on(bot: Any, user: Any, day: date) -> None:
    """Neither the weekly session (09:00) nor the weekly check (18:00) arrives on `day`."""
    await bot.handled()
    before = len(user.messages)
    bot.clock.set(berlin(day, "09:00"))
    await bot.tick()
    bot.clock.set(berlin(day, "18:00", 30))
    await bot.tick()
    await user.expect_silence(0.3)
    assert len(user.messages) == before, [m.text for m in user.messages[before:]]


async def test_the_weekly_check_offers_to_stop_it(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(content={"dir": DATA}, delivery={"per_chat_interval": 0.02})
    bot.clock.set(berlin(END, "21:00"))
    patient = await enrol(bot, 8722, None)
    user = tg.user(8722)
    first = END + timedelta(days=1)
    bot.clock.set(berlin(first, "18:00", 30))
    await bot.tick()
    question = await user.next_message(lambda m: "How strong is your pain" in (m.text or ""))
    assert question.buttons[-1] == [("🔕 Stop the weekly messages", "pt:wk")], "the weekly check offers to stop it"
    # A forged confirmation (not on the message) changes nothing and gets the friendly answer.
    await user.press_data("pt:wk:yes:99999999", question.message_id)
    assert (await user.wait_for_answer()).text == "This button is no longer active."
    assert await status_of(bot, patient) == "active"
    # Answering keeps the offer on the next question.
    await user.press("3", question)
    week = await user.next_message(lambda m: "How did this week go?" in (m.text or ""))
    assert week.buttons[-1] == [("🔕 Stop the weekly messages", "pt:wk")]
    # The offer asks first; "Keep them" keeps them.
    user.mark_seen()
    await user.press("🔕 Stop the weekly messages", week)
    [confirm] = await user.wait_for(asked, include_edits=False)
    assert [[label for label, _ in row] for row in confirm.buttons] == [["🛑 Yes, stop"], ["Keep them"]]
    await user.press("Keep them", confirm)
    kept = await user.next_message(lambda m: "Your messages continue as before." in (m.text or ""))
    assert kept.message_id == confirm.message_id and not kept.buttons
    assert await status_of(bot, patient) == "active"
    await a_stale_confirmation_changes_nothing(bot, user, patient, week)
    await stop_confirmed(bot, user, patient, week)
    await nothing_on(bot, user, first + timedelta(days=7))


async def test_in_privacy_mode_the_weekly_form_message_offers_to_stop_it(bot_factory: Any, tg: FakeTelegram) -> None:
    public = "https://rehab.clinic.test"
    bot = await bot_factory(
        content={"dir": DATA},
        privacy={"health_data_in_chat": False},
        web={"public_url": public},
        delivery={"per_chat_interval": 0.02},
    )
    bot.clock.set(berlin(END, "21:00"))
    patient = await enrol(bot, 8724, None)
    user = tg.user(8724)
    first = END + timedelta(days=1)
    bot.clock.set(berlin(first, "18:00", 30))
    await bot.tick()
    form = await user.next_message(lambda m: (m.text or "").startswith("Time for your check-in."))
    assert "pain" not in form.text.lower(), "privacy mode: no question in the chat"
    [[(open_label, url)], stop_row] = form.buttons
    assert open_label == "📝 Open the form" and url is not None and url.startswith(f"{public}/app/checkin/")
    assert stop_row == [("🔕 Stop the weekly messages", "pt:wk")], "the form message offers to stop the check"
    # A forged confirmation (not on the message) changes nothing and gets the friendly answer.
    await user.press_data("pt:wk:yes:99999999", form.message_id)
    assert (await user.wait_for_answer()).text == "This button is no longer active."
    assert await status_of(bot, patient) == "active"
    await a_stale_confirmation_changes_nothing(bot, user, patient, form)
    confirm_id, yes = await stop_confirmed(bot, user, patient, form)
    # The same confirmation pressed again (a double tap arriving late) changes nothing more.
    await user.press_data(yes, confirm_id)
    assert (await user.wait_for_answer()).text == "This button is no longer active."
    assert await status_of(bot, patient) == "stopped"
    await nothing_on(bot, user, first + timedelta(days=7))


async def test_an_own_plan_goes_on_into_maintenance_at_its_end(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(content={"dir": DATA}, delivery={"per_chat_interval": 0.02}, web=WEB)
    surgery = SURGERY + timedelta(days=7)
    plan_end = surgery + timedelta(days=20)  # a week before the content programme's end
    bot.clock.set(berlin(plan_end, "21:00"))
    doc = await make_staff(bot.db, telegram_id=7723, name="Dr Plan")
    patient = await enrol(bot, 8723, doc.id, surgery)
    raw = plan_core.from_programme(CONTENT.programmes["four-weeks"], CONTENT.exercises).model_dump()
    raw["phases"][0]["to_day"] = 20
    async with bot.db.session() as s:
        p, staff = await s.get(Patient, patient.id), await s.get(Staff, doc.id)
        assert p is not None and staff is not None
        await programme.save_own_plan(s, staff, p, raw, CONTENT, bot.clock.now(), quiet=None)
        await s.commit()
    user = tg.user(8723)
    first = plan_end + timedelta(days=1)
    bot.clock.set(berlin(first, "09:00"))
    await bot.tick()
    reminder = await user.next_message(lambda m: (m.text or "").startswith("Time for your exercise session"))
    assert "Keeping it up" in reminder.text and "Your programme is complete." in reminder.text
    bot.clock.set(berlin(first, "18:00", 30))
    await bot.tick()
    question = await user.next_message(lambda m: "How strong is your pain" in (m.text or ""))
    assert question.buttons[-1] == [("🔕 Stop the weekly messages", "pt:wk")]
    link = await dashboard_link(bot, 7723)
    async with client() as browser:
        await sign_in_link(browser, link)
        async with browser.get(f"{web_url(bot)}/patients/{patient.id}") as page:
            html = await page.text()
    assert 'id="maintenance"' in html and "Session reminders: 09:00 (every 7 days)</p>" in html
