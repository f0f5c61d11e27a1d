"""No alert goes nowhere (issue 21): routing, reassignment, urgent escalation, a clinic without staff.

Like test_redflags.py, these bots run the real dispatch job at a short poll
interval: an alert reaches a staff chat only because the job sent it, and each
test holds the delay to the 60 s the clinic is promised, by checking the
messages each staff chat received.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from factories import make_patient, make_staff
from rig.telegram_server import FakeTelegram, SentMessage
from sqlmodel import select
from test_checkins import enrolled
from webrig import WEB, client, csrf, init_data, sign_in_initdata, web_url

from rehab_bot import alert as alerts
from rehab_bot import staff as staff_core
from rehab_bot.bot import app as app_module
from rehab_bot.bot import checkin as checkin_bot
from rehab_bot.bot.app import stop_app
from rehab_bot.models import Alert, Patient
from rehab_bot.office_hours import parse_office_hours

POLL = 0.5
PROMISE = 60.0


def about(marker: str) -> Callable[[SentMessage], bool]:
    return lambda m: m.text is not None and marker in m.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _symptom_check_yes_to_bladder(user: Any) -> None:
    await user.send("/checkin")
    await user.wait_for()
    await user.press("Wound and symptom check")
    await user.wait_for()
    await user.press("Yes, at least one")
    await user.wait_for(about("bladder or bowel"))
    await user.press("Yes")


@pytest.mark.slow
async def test_a_patient_without_a_therapist_alerts_every_admin_at_once(
    bot_factory: Callable[..., Any], tg: FakeTelegram, backend: str
) -> None:
    live = await bot_factory(backend, delivery={"poll_interval": POLL})
    first_admin = await make_staff(live.db, role="admin", telegram_id=9101, name="Admin One")
    await make_staff(live.db, role="admin", telegram_id=9102, name="Admin Two", timezone="America/New_York")
    await make_staff(live.db, telegram_id=9103, name="Dr Other")  # not responsible: not told
    await make_staff(live.db, role="admin", telegram_id=9104, name="Gone", active=False)
    patient = await enrolled(live, 9201, schedule=False)
    assert patient.therapist_id is None
    one, two, other, gone = tg.user(9101), tg.user(9102), tg.user(9103), tg.user(9104)
    user = tg.user(9201)

    started = time.monotonic()
    await user.send("I want to kill myself")
    [help_now] = await user.wait_for(timeout=5)
    assert "Your care team has been told." in (help_now.text or "")
    crisis = [
        (await admin.wait_for(about("Possible crisis"), timeout=PROMISE))[0] for admin in (one, two)
    ]  # fmt: skip
    assert time.monotonic() - started <= PROMISE
    for message in crisis:
        assert f"EMERGENCY alert for {patient.alias}" in (message.text or "")
        assert "Why you get this: no responsible therapist." in (message.text or "")
        assert message.button_labels == ["✅ Acknowledge"]
    assert "CEST" in (crisis[0].text or "") and "EDT" in (crisis[1].text or ""), "each reader's own zone"

    started = time.monotonic()
    await _symptom_check_yes_to_bladder(user)
    [instructions] = await user.wait_for(about("Call 112 now"))
    assert "Your care team has been told." in (instructions.text or "")
    for admin in (one, two):
        [red_flag] = await admin.wait_for(about("Red flag"), timeout=PROMISE)
        assert f"EMERGENCY alert for {patient.alias}" in (red_flag.text or "")
        assert "no responsible therapist" in (red_flag.text or "")
    assert time.monotonic() - started <= PROMISE
    await other.expect_silence(0.5)
    assert not other.messages and not gone.messages

    # One tap acknowledges; the role is rechecked; a second press says who did it.
    async with live.db.session() as session:
        crisis_id = (await session.exec(select(Alert.id).where(Alert.kind == "crisis"))).one()
    await one.press("✅ Acknowledge", crisis[0])
    assert (await one.wait_for_answer()).text == "Acknowledged."
    [edited] = await one.wait_for(about("Acknowledged by Admin One"))
    assert edited.message_id == crisis[0].message_id
    # The Acknowledge button is gone; the optional alert-accuracy verdict replaces it (tests/e2e/test_alert_review.py).
    assert edited.callback_data == [f"st:rv:{crisis_id}:1", f"st:rv:{crisis_id}:0"]
    assert "Possible crisis" in (edited.text or ""), "the alert keeps its text"
    await two.press("✅ Acknowledge", crisis[1])
    assert (await two.wait_for_answer()).text == "Already acknowledged by Admin One."
    async with live.db.session() as session:
        crisis_alert = (await session.exec(select(Alert).where(Alert.kind == "crisis"))).one()
    assert crisis_alert.acknowledged_by == first_admin.id
    # /alerts and /patient show times in the reader's zone and answers in plain words.
    await one.send("/alerts")
    [listing] = await one.wait_for(about("Open alerts for all patients"))
    assert "red_flag · 2026-06-10 07:00 CEST" in (listing.text or "")
    await one.send(f"/patient {patient.alias}")
    # (The chart is drawn first, with matplotlib: allow for a machine busy with other tests, as test_caregiver does.)
    [detail] = await one.wait_for(about(f"{patient.alias} — active"), timeout=20)
    text = detail.text or ""
    assert "10 June, 07:00 CEST New trouble controlling your bladder or bowel" in text and "symptoms/" not in text
    # Callback data is never trusted: forged ids are answered, not obeyed.
    for forged, answer in (
        ("st:aa:99999999999", "This button is no longer active."),
        ("st:aa:-1", "This button is no longer active."),
        ("st:aa:x", "This button is no longer active."),
        ("st:aa:424242", "This alert no longer exists."),
    ):
        await two.press_data(forged, crisis[1].message_id)
        assert (await two.wait_for_answer()).text == answer, forged
    # The role is rechecked on every press: a removed admin's press is a stale button.
    async with live.db.session() as session:
        removed = await staff_core.remove_staff(session, telegram_id=9102, now=live.clock.now())
        await session.commit()
    assert removed.new_owner is None
    [red_flag_two] = [m for m in two.messages if "Red flag" in (m.text or "")]
    await two.press("✅ Acknowledge", red_flag_two)
    assert (await two.wait_for_answer()).text == "This button is no longer active."
    async with live.db.session() as session:
        red_flag_alert = (await session.exec(select(Alert).where(Alert.kind == "red_flag"))).one()
    assert red_flag_alert.acknowledged_at is None


async def test_a_removed_therapists_patients_go_to_an_admin_who_is_told(
    bot_factory: Callable[..., Any], tg: FakeTelegram, backend: str
) -> None:
    live = await bot_factory(backend, delivery={"poll_interval": POLL})
    admin = await make_staff(live.db, role="admin", telegram_id=9301, name="Admin Ada")
    leaving = await make_staff(live.db, telegram_id=9302, name="Dr Leaving")
    colleague = await make_staff(live.db, telegram_id=9303, name="Dr Stays")
    moved, _ = await make_patient(live.db, live.clock, alias="MOV-1", therapist_id=leaving.id, telegram_id=9401)
    await make_patient(live.db, live.clock, alias="MOV-2", therapist_id=leaving.id, times=())
    kept, _ = await make_patient(live.db, live.clock, alias="KEEP-1", therapist_id=colleague.id, times=())
    boss = tg.user(9301)

    # The therapist is deactivated behind the bot's back (an old removal): the admins get the alert at once.
    started = time.monotonic()
    async with live.db.session() as session:
        row = await session.get(type(leaving), leaving.id)
        assert row is not None
        row.active = False
        session.add(row)
        p = await session.get(Patient, moved.id)
        assert p is not None
        await alerts.raise_alert(
            session, p, kind="red_flag", severity="emergency", detail="numb saddle", now=live.clock.now(),
            clinic=live.config.clinic,
        )  # fmt: skip
        row.active = True  # active again for the removal below
        session.add(row)
        await session.commit()
    [first] = await boss.wait_for(about("numb saddle"), timeout=PROMISE)
    assert "no responsible therapist (theirs was removed)" in (first.text or "")
    assert time.monotonic() - started <= PROMISE

    # Removing the therapist (the core behind `rehab-bot staff remove`) hands their patients to the admin.
    started = time.monotonic()
    async with live.db.session() as session:
        removal = await staff_core.remove_staff(session, telegram_id=9302, now=live.clock.now())
        await session.commit()
    assert removal.new_owner is not None and removal.new_owner.id == admin.id
    [told] = await boss.wait_for(about("Dr Leaving was removed"), timeout=PROMISE)
    assert time.monotonic() - started <= PROMISE
    assert "MOV-1, MOV-2" in (told.text or "") and "KEEP-1" not in (told.text or "")
    async with live.db.session() as session:
        assert (await session.get(Patient, moved.id)).therapist_id == admin.id  # type: ignore[union-attr]
        assert (await session.get(Patient, kept.id)).therapist_id == colleague.id  # type: ignore[union-attr]
        p = await session.get(Patient, moved.id)
        assert p is not None
        await alerts.raise_alert(
            session, p, kind="crisis", severity="emergency", detail="after handover", now=live.clock.now(),
            clinic=live.config.clinic,
        )  # fmt: skip
        await session.commit()
    [after] = await boss.wait_for(about("after handover"), timeout=PROMISE)
    assert "Why you get this" not in (after.text or ""), "the admin is now the responsible therapist"


async def test_an_urgent_alert_escalates_after_its_own_setting_in_office_hours(
    bot_factory: Callable[..., Any], tg: FakeTelegram, backend: str
) -> None:
    live = await bot_factory(
        backend,
        staff={"escalation_minutes": 5, "urgent_escalation_minutes": 120},
        clinic={"office_hours": parse_office_hours({"mon-fri": "08:00-17:00"})},
    )
    await make_staff(live.db, role="admin", telegram_id=9501, name="Admin Ute")
    doc = await make_staff(live.db, telegram_id=9502, name="Dr Urgent")
    patient, _ = await make_patient(live.db, live.clock, alias="URG-1", therapist_id=doc.id, times=())
    boss, therapist = tg.user(9501), tg.user(9502)
    # Friday 12 June 2026, 16:00 in Berlin (14:00 UTC): one office hour left this week.
    live.clock.set(datetime(2026, 6, 12, 14, 0, tzinfo=UTC))
    async with live.db.session() as session:
        p = await session.get(Patient, patient.id)
        assert p is not None
        await alerts.raise_alert(
            session, p, kind="red_flag", severity="critical", detail="calf swollen", now=live.clock.now(),
            clinic=live.config.clinic,
        )  # fmt: skip
        await session.commit()

    async def at(when: datetime) -> None:
        live.clock.set(when)
        await app_module.dispatch_job(live.app)
        await live.tick()

    await at(live.clock.now())
    [alert] = await therapist.wait_for(about("calf swollen"))
    assert "CRITICAL alert for URG-1" in (alert.text or "") and "Raised 2026-06-12 16:00 CEST." in (alert.text or "")
    await at(datetime(2026, 6, 12, 14, 6, tzinfo=UTC))  # past escalation_minutes: an emergency would go now
    await at(datetime(2026, 6, 14, 20, 0, tzinfo=UTC))  # Sunday evening: the weekend does not count
    await at(datetime(2026, 6, 15, 6, 59, tzinfo=UTC))  # Monday 08:59: 119 office minutes
    await boss.expect_silence(0.3)
    assert not boss.messages
    started = time.monotonic()
    await at(datetime(2026, 6, 15, 7, 0, tzinfo=UTC))  # Monday 09:00: 120 office minutes
    [escalation] = await boss.wait_for(about("ESCALATION"), timeout=PROMISE)
    assert time.monotonic() - started <= PROMISE
    text = escalation.text or ""
    assert "critical alert for URG-1" in text and "120 minutes of office hours" in text and "Dr Urgent" in text
    assert "Raised 2026-06-12 16:00 CEST" in text and escalation.button_labels == ["✅ Acknowledge"]
    assert not any("ESCALATION" in t for t in therapist.texts())
    await at(datetime(2026, 6, 16, 7, 0, tzinfo=UTC))
    await boss.expect_silence(0.3)
    assert sum("ESCALATION" in t for t in boss.texts()) == 1, "once only"
    # Pressing Acknowledge on the escalation acknowledges the alert.
    await boss.press("✅ Acknowledge", escalation)
    assert (await boss.wait_for_answer()).text == "Acknowledged."


async def test_a_clinic_without_staff_still_answers_the_patient_logs_the_error_and_reports_it(
    bot_factory: Callable[..., Any], tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    port = _free_port()
    live = await bot_factory(delivery={"poll_interval": POLL}, http={"listen": f"127.0.0.1:{port}"})
    startup_errors = [r for r in caplog.records if r.levelno == logging.ERROR and "cannot reach anyone" in r.message]
    assert len(startup_errors) == 1, "once per start"
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
        body = json.loads(await resp.text())
    assert body["alerts"] is False and resp.status == 200

    await enrolled(live, 9601, schedule=False)
    user = tg.user(9601)
    started = time.monotonic()
    await user.send("I want to kill myself")
    [help_now] = await user.wait_for(timeout=5)
    assert time.monotonic() - started < 5
    assert "112" in (help_now.text or "") and "Your care team has been told." not in (help_now.text or "")
    await _symptom_check_yes_to_bladder(user)
    [instructions] = await user.wait_for(about("Call 112 now"))
    assert "Your care team has been told." not in (instructions.text or "")
    per_alert = [r for r in caplog.records if r.levelno == logging.ERROR and "reaches nobody" in r.message]
    assert len(per_alert) == 2, "once per alert"
    assert all("9601" not in r.getMessage() for r in caplog.records), "no Telegram ids in the log"

    # With an admin added while the bot runs, /healthz says alerts reach someone again.
    await make_staff(live.db, role="admin", telegram_id=9602)
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
        assert json.loads(await resp.text())["alerts"] is True


async def test_the_inactivity_sweep_runs_within_a_minute_of_start(bot_factory: Any) -> None:
    bot = await bot_factory(delivery={"poll_interval": 1.0})  # as in production, not slowed down for a test
    [job] = bot.app.job_queue.get_jobs_by_name(checkin_bot.PERIODIC_JOB)
    first_run = job.next_t
    assert first_run is not None
    assert first_run - datetime.now(UTC) <= timedelta(seconds=60)
    assert job.job.trigger.interval >= timedelta(seconds=checkin_bot.PERIODIC_SECONDS)


@pytest.mark.slow
async def test_the_only_staff_member_is_the_default_therapist_of_a_chat_invitation(bot: Any, tg: FakeTelegram) -> None:
    solo = await make_staff(bot.db, telegram_id=9701, name="Dr Solo")
    doc = tg.user(9701)
    await doc.send("/invite")
    await doc.wait_for(about("step 1 of 5"))
    await doc.send("SOLO-1")
    await doc.wait_for(about("Step 2 of 5"))
    await doc.send("2026-06-03")
    await doc.wait_for(about("Step 3 of 5"))
    await doc.press("Lumbar")
    [step4] = await doc.wait_for(about("Step 4 of 5"))
    await doc.press(step4.button_labels[0], step4)
    [summary] = await doc.wait_for(about("Invitation for SOLO-1: surgery"))
    assert "therapist Dr Solo." in (summary.text or "")
    assert not any("Step 5 of 5" in t for t in doc.texts())
    async with bot.db.session() as session:
        invited = (await session.exec(select(Patient).where(Patient.alias == "SOLO-1"))).one()
    assert invited.therapist_id == solo.id


async def _press_in_group(tg: FakeTelegram, user_id: int, message: SentMessage, label: str) -> Any:
    """A member of a group presses a button on the bot's message there; returns the bot's answer."""
    user = tg.user(user_id)
    [data] = [d for text, d in (b for row in message.buttons for b in row) if text == label]
    query = tg._new_query(user)
    user.last_query_id = query
    callback = {"id": query, "from": user.user_json(), "message": tg._message_json(message), "data": data}
    await tg.push_update({"callback_query": {**callback, "chat_instance": str(message.chat_id)}})
    return await user.wait_for_answer()


async def _saddle_numbness_alert(bot: Any, patient: Patient) -> Alert:
    """An emergency red-flag alert about the patient, raised in the core as a check-in would."""
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        raised = await alerts.raise_alert(
            session, row, kind="red_flag", severity="emergency", detail="numb saddle area",
            now=bot.clock.now(), clinic=bot.config.clinic,
        )  # fmt: skip
        await session.commit()
    assert raised is not None
    return raised


async def test_staff_acknowledge_an_alert_in_the_clinics_alert_chat(bot_factory: Any, tg: FakeTelegram) -> None:
    alert_chat = -100_4242
    bot = await bot_factory(clinic={"alert_chat_id": alert_chat})
    doc = await make_staff(bot.db, telegram_id=9801, name="Dr Chat")
    await make_staff(bot.db, telegram_id=9802, name="Dr Colleague")
    patient, _ = await make_patient(bot.db, bot.clock, therapist_id=doc.id, telegram_id=9803)
    group = tg.group(alert_chat, "Alerts", supergroup=True)
    raised = await _saddle_numbness_alert(bot, patient)
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    [posted] = await group.wait_for(about("EMERGENCY alert"))
    assert posted.button_labels == ["✅ Acknowledge"]

    # Access is checked as in a private chat: a stranger's press reveals nothing, a colleague may not.
    assert (await _press_in_group(tg, 9899, posted, "✅ Acknowledge")).text == "This button is no longer active."
    colleague = await _press_in_group(tg, 9802, posted, "✅ Acknowledge")
    assert colleague.text is not None and "is not your patient" in colleague.text
    answer = await _press_in_group(tg, 9801, posted, "✅ Acknowledge")
    assert answer.text == "Acknowledged."
    [edited] = await group.wait_for(about("Acknowledged by Dr Chat"))
    assert edited.message_id == posted.message_id and "numb saddle area" in (edited.text or "")
    assert (await _press_in_group(tg, 9801, edited, "Needed action")).text == "Recorded: needed action."
    async with bot.db.session() as session:
        acknowledged = await session.get(Alert, raised.id)
    assert acknowledged is not None and acknowledged.acknowledged_by == doc.id
    assert not any("only in a private chat" in text for text in group.texts()), "the alert chat is the clinic's own"


async def test_an_alert_follows_the_alert_chat_when_telegram_upgrades_it_to_a_supergroup(
    bot_factory: Any, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram upgrades a group to a supergroup (it grew, or an admin made its history visible) and gives
    it a new id: a send to the configured id is refused with migrate_to_chat_id. The alert must reach the
    group under its new id, and the operator be told which id to configure, not fail at INFO level."""
    alert_chat, upgraded = -4243, -100_4243
    bot = await bot_factory(clinic={"alert_chat_id": alert_chat})
    doc = await make_staff(bot.db, telegram_id=9811, name="Dr Group")
    patient, _ = await make_patient(bot.db, bot.clock, therapist_id=doc.id, telegram_id=9813)
    tg.group(alert_chat, "Alerts")
    group = tg.migrate_group(alert_chat, upgraded)
    await _saddle_numbness_alert(bot, patient)
    caplog.set_level(logging.WARNING, logger="rehab_bot")
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    [posted] = await group.wait_for(about("EMERGENCY alert"))
    assert "numb saddle area" in (posted.text or "")
    assert any(str(upgraded) in r.getMessage() and r.levelno >= logging.WARNING for r in caplog.records)


async def test_after_a_restart_alerts_go_to_the_upgraded_alert_chat_and_its_acknowledge_works(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    """The new id Telegram gave the alert chat is kept in the database: after a restart, before the
    configuration names it, a new alert goes straight there and Acknowledge there is read."""
    alert_chat, upgraded = -4244, -100_4244
    bot = await bot_factory(clinic={"alert_chat_id": alert_chat})
    doc = await make_staff(bot.db, telegram_id=9821, name="Dr Moved")
    patient, _ = await make_patient(bot.db, bot.clock, therapist_id=doc.id, telegram_id=9823)
    tg.group(alert_chat, "Alerts")
    group = tg.migrate_group(alert_chat, upgraded)
    await _saddle_numbness_alert(bot, patient)
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    await group.wait_for(about("EMERGENCY alert"))

    await stop_app(bot.app)
    bot.app = bot.build()
    await bot.start(bot.app)
    to_old = len([r for r in tg.requests if r.chat_id == alert_chat])
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        second = await alerts.raise_alert(
            session, row, kind="red_flag", severity="emergency", detail="leg weakness",
            now=bot.clock.now(), clinic=bot.config.clinic,
        )  # fmt: skip
        await session.commit()
    assert second is not None
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    [posted] = await group.wait_for(about("leg weakness"))
    assert len([r for r in tg.requests if r.chat_id == alert_chat]) == to_old, "straight to the new id"
    assert (await _press_in_group(tg, 9821, posted, "✅ Acknowledge")).text == "Acknowledged."
    async with bot.db.session() as session:
        acknowledged = await session.get(Alert, second.id)
    assert acknowledged is not None and acknowledged.acknowledged_by == doc.id
    assert not any("only in a private chat" in text for text in group.texts())


async def test_telegrams_notice_of_an_upgraded_alert_chat_is_kept_before_any_alert(
    bot_factory: Any, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram tells the bot of the upgrade in both chats; the first alert after it goes to the new id
    at once (no refused send), and the clinic's group is not told to use a private chat."""
    alert_chat, upgraded, other, other_new = -4245, -100_4245, -4246, -100_4246
    bot = await bot_factory(clinic={"alert_chat_id": alert_chat})
    doc = await make_staff(bot.db, telegram_id=9831, name="Dr Notice")
    patient, _ = await make_patient(bot.db, bot.clock, therapist_id=doc.id, telegram_id=9833)
    tg.group(alert_chat, "Alerts")
    tg.group(other, "Somebody else's group")
    group = tg.migrate_group(alert_chat, upgraded)
    tg.migrate_group(other, other_new)
    caplog.set_level(logging.WARNING, logger="rehab_bot")
    await tg.announce_migration(alert_chat, by_user_id=9831)
    await tg.announce_migration(other, by_user_id=9831)
    await bot.handled()
    moved = [r.getMessage() for r in caplog.records if "upgraded the alert chat" in r.getMessage()]
    assert len(moved) == 1 and f"alert_chat_id = {upgraded}" in moved[0]
    async with bot.db.session() as session:
        assert await alerts.alert_chat(session, bot.config.clinic) == upgraded
        assert not await alerts.is_alert_chat(session, bot.config.clinic, other_new), "only the alert chat"

    raised = await _saddle_numbness_alert(bot, patient)
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    [posted] = await group.wait_for(about("EMERGENCY alert"))
    assert not [r for r in tg.requests if r.chat_id == alert_chat], "no send to the old id"
    assert (await _press_in_group(tg, 9831, posted, "✅ Acknowledge")).text == "Acknowledged."
    async with bot.db.session() as session:
        acknowledged = await session.get(Alert, raised.id)
    assert acknowledged is not None and acknowledged.acknowledged_by == doc.id
    assert not any("only in a private chat" in text for text in group.texts())
    assert any("only in a private chat" in text for text in tg.group(other_new).texts()), "others are told"


async def test_without_an_admin_the_staff_an_alert_reaches_in_their_place_can_acknowledge_it(
    bot: Any, tg: FakeTelegram
) -> None:
    ben = await make_staff(bot.db, telegram_id=9901, name="Dr Ben")
    cleo = await make_staff(bot.db, telegram_id=9902, name="Dr Cleo")
    orphan, _ = await make_patient(bot.db, bot.clock, therapist_id=None, telegram_id=9903)
    bens, _ = await make_patient(bot.db, bot.clock, therapist_id=ben.id, telegram_id=9904)
    raised = []
    async with bot.db.session() as session:
        for patient in (orphan, bens):
            row = await session.get(Patient, patient.id)
            assert row is not None
            made = await alerts.raise_alert(
                session, row, kind="red_flag", severity="emergency", detail=f"about {row.alias}",
                now=bot.clock.now(), clinic=bot.config.clinic,
            )  # fmt: skip
            assert made is not None
            raised.append(made.id)
        await session.commit()
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    doc, colleague = tg.user(9901), tg.user(9902)
    [to_cleo] = await colleague.wait_for(about(f"EMERGENCY alert for {orphan.alias}"))
    assert "no admin either, so every staff member gets it" in (to_cleo.text or "")
    await colleague.send("/alerts")
    [listing] = await colleague.wait_for(about("Open alerts for your patients"))
    assert orphan.alias in (listing.text or "") and bens.alias not in (listing.text or "")
    await colleague.press("✅ Acknowledge", to_cleo)
    assert (await colleague.wait_for_answer()).text == "Acknowledged."
    await doc.press("✅ Acknowledge", (await doc.wait_for(about(f"EMERGENCY alert for {orphan.alias}")))[0])
    assert (await doc.wait_for_answer()).text == "Already acknowledged by Dr Cleo."

    # Ben's own patient's alert is his, until nobody acknowledges it: the escalation goes to everyone.
    await colleague.press_data(f"st:ak:{raised[1]}", listing.message_id)
    refused = await colleague.wait_for_answer()
    assert refused.text is not None and "is not your patient" in refused.text
    bot.clock.advance(timedelta(minutes=bot.config.staff.escalation_minutes))
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    [escalation] = await colleague.wait_for(about(f"ESCALATION: the emergency alert for {bens.alias}"))
    await colleague.press("✅ Acknowledge", escalation)
    assert (await colleague.wait_for_answer()).text == "Acknowledged."
    async with bot.db.session() as session:
        done = [await session.get(Alert, alert_id) for alert_id in raised]
    assert [a.acknowledged_by for a in done if a is not None] == [cleo.id, cleo.id]


async def _alert_in_both_chats(
    bot: Any, tg: FakeTelegram, alert_chat: int
) -> tuple[Any, Any, SentMessage, SentMessage]:
    """An emergency alert about Dr Both's patient, sent to Dr Both (German) and to the clinic's alert chat."""
    doc = await make_staff(bot.db, telegram_id=9841, name="Dr Both", language="de")
    patient, _ = await make_patient(bot.db, bot.clock, therapist_id=doc.id, telegram_id=9843)
    group = tg.group(alert_chat, "Alerts", supergroup=True)
    therapist = tg.user(9841)
    await _saddle_numbness_alert(bot, patient)
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    [in_group] = await group.wait_for(about("EMERGENCY alert"))
    [in_private] = await therapist.wait_for(about("NOTFALL"))
    assert in_group.button_labels == ["✅ Acknowledge"] and in_private.button_labels == ["✅ Bestätigen"]
    return group, therapist, in_group, in_private


async def test_acknowledged_in_one_chat_every_other_copy_says_so_and_loses_its_button(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    """Staff who did not press it see the alert is in hand: its copy in the alert chat says who acknowledged
    it and when, in the chat's language, without the button; the pressed copy gets the verdict buttons."""
    bot = await bot_factory(clinic={"alert_chat_id": -100_4251})
    group, therapist, in_group, in_private = await _alert_in_both_chats(bot, tg, -100_4251)
    await therapist.press("✅ Bestätigen", in_private)
    assert (await therapist.wait_for_answer()).text == "Bestätigt."
    [pressed] = await therapist.wait_for()
    assert "Bestätigt von Dr Both" in (pressed.text or "") and pressed.has_inline_keyboard  # the verdict buttons
    [other] = await group.wait_for()
    assert other.message_id == in_group.message_id and not other.has_inline_keyboard
    assert (other.text or "").startswith(in_group.text or "?") and "✅ Acknowledged by Dr Both, " in (other.text or "")


async def test_acknowledged_on_the_web_every_copy_in_telegram_says_so(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(clinic={"alert_chat_id": -100_4252}, web=WEB)
    group, therapist, in_group, in_private = await _alert_in_both_chats(bot, tg, -100_4252)
    async with client() as browser:
        signed = await sign_in_initdata(browser, web_url(bot), init_data(9841, bot.clock.now()))
        assert signed.status == 200
        async with browser.get(f"{web_url(bot)}/alerts") as page:
            token = csrf(await page.text())
        async with bot.db.session() as session:
            [alert] = (await session.exec(select(Alert))).all()
        async with browser.post(
            f"{web_url(bot)}/alerts/{alert.id}/ack", data={"csrf_token": token}, allow_redirects=False
        ) as acked:
            assert acked.status == 303
    [private_now] = await therapist.wait_for()
    [group_now] = await group.wait_for()
    assert private_now.message_id == in_private.message_id and not private_now.has_inline_keyboard
    assert "✅ Bestätigt von Dr Both, " in (private_now.text or "")  # the therapist's copy in German
    assert group_now.message_id == in_group.message_id and not group_now.has_inline_keyboard
    assert "✅ Acknowledged by Dr Both, " in (group_now.text or "")


async def test_in_privacy_mode_the_acknowledged_copies_still_name_no_symptom(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    bot = await bot_factory(clinic={"alert_chat_id": -100_4253}, privacy={"health_data_in_chat": False})
    doc = await make_staff(bot.db, telegram_id=9851, name="Dr Quiet")
    patient, _ = await make_patient(bot.db, bot.clock, therapist_id=doc.id, telegram_id=9853)
    group = tg.group(-100_4253, "Alerts", supergroup=True)
    therapist = tg.user(9851)
    await _saddle_numbness_alert(bot, patient)
    await app_module.dispatch_job(bot.app)
    await bot.tick()
    [in_group] = await group.wait_for()
    [in_private] = await therapist.wait_for()
    assert "numb" not in (in_group.text or "") + (in_private.text or "")
    await therapist.press("✅ Acknowledge", in_private)
    await therapist.wait_for_answer()
    [other] = await group.wait_for()
    assert other.message_id == in_group.message_id and "✅ Acknowledged by Dr Quiet, " in (other.text or "")
    assert "numb" not in (other.text or "") and (other.text or "").startswith(in_group.text or "?")


async def test_unanswered_crisis_questions_are_checked_every_minute(bot_factory: Any) -> None:
    """Hazard H12's residual: the team hears of an unanswered crisis question within a minute of
    [staff] crisis_question_minutes (the 5-minute periodic job made it up to 5)."""
    bot = await bot_factory(delivery={"poll_interval": 1.0})  # as in production
    [job] = bot.app.job_queue.get_jobs_by_name(checkin_bot.CRISIS_QUESTION_JOB)
    assert job.job.trigger.interval == timedelta(seconds=60)
    assert job.next_t is not None and job.next_t - datetime.now(UTC) <= timedelta(seconds=60)
