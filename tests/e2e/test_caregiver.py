"""The caregiver seat end to end (issue 18): the real bot on the fake Bot API.

A patient invites a caregiver with /caregiver; the caregiver opens the link,
agrees, and from then on gets exactly what the patient allows, in their own
chat: after each permission change only those items, after removal nothing.
A caregiver answers a check-in on the patient's behalf (stored as proxy, the
red-flag rules the same). Their forged presses and commands naming the
patient's or another patient's data are refused; their /delete removes only
their own link; the patient's /delete removes every link and proxy answer.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from factories import make_staff
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import col, select
from test_checkins import enrolled as checkin_patient
from test_sessions import berlin
from test_sessions import enrolled as session_patient

from rehab_bot import alert as alerts
from rehab_bot import caregiver as core
from rehab_bot.bot import app as app_module
from rehab_bot.models import Alert, Answer, AuditLog, Caregiver, CheckIn, Delivery, ExerciseSession, Patient, Staff

WED = date(2026, 6, 10)
STALE = "This button is no longer active."
UNKNOWN = "I don't know that command. Type /help to see what I can do."  # a command that is not theirs
UNKNOWN_TEXT = "Please use the buttons below, or type /help."  # anything else nobody handled


async def run_jobs(bot: Any) -> None:
    """One run of the engine's job: clinic and care ticks, then a dispatcher tick."""
    await app_module.dispatch_job(bot.app)
    await bot.tick()


async def at(bot: Any, when: datetime) -> None:
    bot.clock.set(when)
    await run_jobs(bot)
    await run_jobs(bot)  # what went out in the first run is copied to caregivers in the second


def text_of(message: SentMessage) -> str:
    return message.text or message.caption or ""


async def invite_and_join(bot: Any, patient_user: FakeUser, caregiver: FakeUser) -> tuple[SentMessage, Caregiver]:
    """The patient makes a link with /caregiver; the caregiver opens it and agrees."""
    await patient_user.send("/caregiver")
    [menu] = await patient_user.wait_for(lambda m: "Caregivers" in (m.text or ""))
    assert "You have no caregiver yet." in (menu.text or "")
    await patient_user.press("➕ Invite a caregiver", menu)
    [invitation] = await patient_user.wait_for(lambda m: "t.me/" in (m.text or ""))
    found = re.search(r"https://t\.me/rehab_test_bot\?start=(cg[A-Za-z0-9_-]+)", invitation.text or "")
    assert found is not None, invitation.text
    assert "• urgent red flags (a symptom that needs urgent care)" in (invitation.text or "")
    await caregiver.send(f"/start {found.group(1)}")
    [consent] = await caregiver.wait_for(lambda m: "Do you agree?" in (m.text or ""))
    assert "Telegram account id and your first name" in (consent.text or "")
    await caregiver.press("✅ I agree", consent)
    [joined] = await caregiver.wait_for(lambda m: "You are now a caregiver" in (m.text or ""))
    assert "urgent red flags" in (joined.text or "") and "copy of each session reminder" not in (joined.text or "")
    await patient_user.wait_for(lambda m: "accepted your invitation" in (m.text or ""))
    async with bot.db.session() as session:
        [link] = (await session.exec(select(Caregiver))).all()
    assert link.name == caregiver.first_name and link.telegram_id == caregiver.user_id
    # The link works once.
    await tg_user_send(bot, 7499, f"/start {found.group(1)}", "already been used")
    return invitation, link


async def tg_user_send(bot: Any, user_id: int, text: str, expect: str) -> None:
    other = bot.tg.user(user_id)
    await other.send(text)
    await other.wait_for(lambda m: expect in (m.text or ""))


async def toggle(patient_user: FakeUser, menu: SentMessage, label: str) -> SentMessage:
    """Press one permission's button; the menu is edited to the new state."""
    button = next(b for b in menu.button_labels if label in b)
    await patient_user.press(button, menu)
    assert (await patient_user.wait_for_answer()).text == "✅ Saved."
    [edited] = await patient_user.wait_for(lambda m: m.message_id == menu.message_id and m.edited)
    return edited


async def caregiver_texts(caregiver: FakeUser, since: int) -> list[str]:
    await caregiver.expect_silence(0.3)
    return [text_of(m) for m in caregiver.messages[since:]]


@pytest.mark.slow  # a long scenario: a caregiver from invitation to removal
async def test_a_caregiver_gets_exactly_what_is_allowed_and_nothing_after_removal(
    bot_factory: Any, tg: FakeTelegram, backend: str
) -> None:
    bot = await bot_factory(backend, delivery={"per_chat_interval": 0.02})
    await make_staff(bot.db, role="admin", telegram_id=7309, name="Admin Ada")
    patient = await session_patient(bot, 7301, times=("09:00",))
    user, carer = tg.user(7301), tg.user(7401, first_name="Maria")
    invitation, link = await invite_and_join(bot, user, carer)
    seen = len(carer.messages)

    # Allowed: emergencies only (the default). A reminder goes out: no copy.
    await at(bot, berlin(WED, "09:00"))
    await user.wait_for()
    assert await caregiver_texts(carer, seen) == []

    # The patient turns on reminder copies: the next reminder comes with one copy.
    menu = await toggle(user, invitation, "copy of each session reminder")
    assert "✅ a copy of each session reminder" in menu.button_labels
    await at(bot, berlin(WED + timedelta(days=1), "09:00"))
    assert await caregiver_texts(carer, seen) == ["🔔 Copy of a reminder: it is time for the 09:00 exercise session."]
    seen = len(carer.messages)

    # Two sessions in a row missed: nothing until "missed" is on, then one message.
    async with bot.db.session() as session:
        for row in (await session.exec(select(ExerciseSession))).all():
            row.status = "missed"
            session.add(row)
        await session.commit()
    await run_jobs(bot)
    assert await caregiver_texts(carer, seen) == []
    menu = await toggle(user, menu, "two sessions in a row")
    await run_jobs(bot)
    await run_jobs(bot)
    assert await caregiver_texts(carer, seen) == [
        "The last two exercise sessions were missed. A kind word may help to get back on track."
    ]
    seen = len(carer.messages)

    # An emergency red flag (allowed by default): one message; an urgent ("high") one: none.
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        for severity, key in (("emergency", "e1"), ("high", "h1")):
            await alerts.raise_alert(
                session, row, kind="red_flag", severity=severity, detail="x", now=bot.clock.now(),
                clinic=bot.config.clinic, key=key,
            )  # fmt: skip
        await session.commit()
    await run_jobs(bot)
    assert await caregiver_texts(carer, seen) == [
        "🚨 A symptom was reported that needs urgent care; the clinic has been told. "
        "Please check in with the person you support now."
    ]
    seen = len(carer.messages)

    # Reminders and missed off, weekly on: Friday's reminder brings no copy; Sunday 18:00 brings the week.
    menu = await toggle(user, menu, "copy of each session reminder")
    menu = await toggle(user, menu, "two sessions in a row")
    menu = await toggle(user, menu, "weekly progress")
    await at(bot, berlin(WED + timedelta(days=2), "09:00"))
    assert await caregiver_texts(carer, seen) == []
    await at(bot, berlin(WED + timedelta(days=4), "18:00"))
    weekly = await caregiver_texts(carer, seen)
    assert len(weekly) == 1 and weekly[0].startswith("📈 Weekly progress:")
    await at(bot, berlin(WED + timedelta(days=4), "19:00"))
    assert len(await caregiver_texts(carer, seen)) == 1, "once a week"
    seen = len(carer.messages)

    # The patient removes the caregiver: at once, nothing more of any kind.
    menu = await toggle(user, menu, "copy of each session reminder")
    await user.press("🗑 Remove this caregiver", menu)
    [ask] = await user.wait_for(lambda m: m.edited and "Remove Maria?" in (m.text or ""))
    await user.press("🗑 Yes, remove", ask)
    await user.wait_for(lambda m: m.edited and "Maria is no longer your caregiver." in (m.text or ""))
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        await alerts.raise_alert(
            session, row, kind="red_flag", severity="emergency", detail="y", now=bot.clock.now(),
            clinic=bot.config.clinic, key="e2",
        )  # fmt: skip
        await session.commit()
    await at(bot, berlin(WED + timedelta(days=5), "09:00"))
    await at(bot, berlin(WED + timedelta(days=11), "18:00"))
    assert await caregiver_texts(carer, seen) == []
    # The old buttons and commands do nothing for them now.
    carer.mark_seen()
    await carer.send("/checkin")
    [answer] = await carer.wait_for()
    assert "invitation link from your clinic" in (answer.text or "")
    async with bot.db.session() as session:
        removed = await session.get(Caregiver, link.id)
        actions = [a.action for a in (await session.exec(select(AuditLog).order_by(col(AuditLog.id)))).all()]
    assert removed is not None and removed.removed_at is not None and removed.telegram_id is None
    assert actions.count(core.PERMISSION) == 6 and core.JOIN in actions and core.REMOVE in actions


async def join(bot: Any, patient: Patient, telegram_id: int, name: str = "Carl") -> Caregiver:
    """A caregiver linked through the core (the link flow is tested above)."""
    now = bot.clock.now()
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        link = await core.invite(session, row, now, hours=24)
        opened = await core.open_link(session, link.code, telegram_id, "en", now)
        assert opened.outcome == core.Outcome.ASK_CONSENT
        await core.consent(session, link, name, now)
        await session.commit()
        await session.refresh(link)
    return link


async def test_a_caregiver_answers_a_check_in_as_proxy_under_the_same_red_flag_rules(
    bot: Any, tg: FakeTelegram
) -> None:
    patient = await checkin_patient(bot, 7311, therapist=7319)
    link = await join(bot, patient, 7411)
    carer, therapist, user = tg.user(7411), tg.user(7319), tg.user(7311)
    await carer.send("/checkin")
    [menu] = await carer.wait_for(lambda m: "fill in for them" in (m.text or ""))
    await carer.press("Wound and symptom check", menu)
    [question] = await carer.wait_for(lambda m: m.edited and "On behalf of the person you support" in text_of(m))
    assert all(data.startswith("cp:") for data in question.callback_data)
    await carer.press("Yes, at least one", question)
    await carer.wait_for(lambda m: "bladder or bowel" in text_of(m))
    await carer.press("Yes", carer.last)
    [advice] = await carer.wait_for(lambda m: "112" in text_of(m) and not m.edited)
    assert "Your care team has been told." in text_of(advice)
    # The question closes after the advice: the edit is paced behind it (one message a second per chat).
    [closed] = await carer.wait_for(lambda m: m.edited and "Thank you! Your answers are saved." in text_of(m))
    assert closed.message_id == question.message_id and "follow the instructions in my message below" in text_of(closed)
    async with bot.db.session() as session:
        answers = (await session.exec(select(Answer).order_by(col(Answer.id)))).all()
        [alert] = (await session.exec(select(Alert))).all()
    assert [a.item_id for a in answers][:2] == ["any", "bladder"] or len(answers) >= 2
    assert all(a.proxy and a.caregiver_id == link.id for a in answers)
    assert alert.severity == "emergency" and core.PROXY_NOTE in alert.detail
    await run_jobs(bot)
    [told] = await therapist.wait_for(lambda m: "EMERGENCY alert" in text_of(m))
    assert core.PROXY_NOTE in text_of(told)
    await run_jobs(bot)
    await carer.expect_silence(0.3)
    assert not any("🚨" in text_of(m) for m in carer.messages), "they were told what to do at once"
    assert not any("bladder" in text_of(m) for m in user.messages), "the patient's own chat is left alone"
    # Staff see proxy answers as such.
    await therapist.send(f"/patient {patient.alias}")
    # (The chart is drawn first: allow for a slow machine.)
    [detail] = await therapist.wait_for(lambda m: (m.text or "").startswith(f"{patient.alias} — "), timeout=20)
    assert "(answered by a caregiver)" in (detail.text or "")


async def test_a_caregivers_forged_presses_and_commands_are_refused(bot: Any, tg: FakeTelegram) -> None:
    patient = await checkin_patient(bot, 7321, therapist=7329, alias="CG-OWN")
    other = await checkin_patient(bot, 7322, alias="CG-OTHER")
    link = await join(bot, patient, 7421)
    carer = tg.user(7421)
    async with bot.db.session() as session:
        row = await session.get(Patient, other.id)
        assert row is not None and row.id is not None
        theirs = CheckIn(patient_id=row.id, questionnaire_id="pain", started_at=bot.clock.now())
        session.add(theirs)
        await session.commit()
        await session.refresh(theirs)
    before = await snapshot(bot)
    carer.mark_seen()
    unknown_answer = None
    for command in ("/patients", f"/patient {patient.alias}", f"/patient {other.alias}", "/alerts", "/invite"):
        await carer.send(command)
        [said] = await carer.wait_for()
        unknown_answer = unknown_answer or said.text
        assert said.text == UNKNOWN, (command, said.text)
    for command in ("/today", "/progress", "/settings", "/pause", "/caregiver", "/note x"):
        await carer.send(command)
        [said] = await carer.wait_for()
        assert "invitation link from your clinic" in (said.text or ""), (command, said.text)
    await carer.send("/checkin")
    [menu] = await carer.wait_for()
    forged = [
        f"cp:{theirs.id}:0:5",  # another patient's check-in
        f"ci:{theirs.id}:0:5",  # the patient's own answer prefix
        "cs:nosuch",
        f"cg:t:{link.id}:0",  # the patient's permission switch
        f"cg:rm:{link.id}",
        f"cg:ry:{link.id}",
        "cg:new",
        f"st:po:{patient.id}",
        "pt:del:yes:0",
        "cm:r:1:1",
        "cm:k:1:1",
        "nt:c",
    ]
    for data in forged:
        await carer.press_data(data, menu.message_id)
        answer = await carer.wait_for_answer()
        assert answer.text == STALE, (data, answer.text)
    await carer.expect_silence(0.3)
    assert await snapshot(bot) == before, "nothing changed"
    # /mydata: only what the bot keeps about the caregiver.
    await carer.send("/mydata")
    [doc] = await carer.wait_for(lambda m: m.document is not None)
    assert doc.document is not None and doc.document.data is not None
    body = doc.document.data.decode()
    assert "Carl" in body and patient.alias not in body and "pain" not in body


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_a_caregivers_mydata_file_starts_with_what_it_holds_in_their_language(
    bot: Any, tg: FakeTelegram, lang: str
) -> None:
    # The patient's /mydata file starts with an 'about' part in their language; the caregiver's had none.
    patient = await checkin_patient(bot, 7351, therapist=7359)
    now = bot.clock.now()
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        link = await core.invite(session, row, now, hours=24)
        await core.open_link(session, link.code, 7451, lang, now)
        await core.consent(session, link, "Carla", now)
        await session.commit()
    carer = tg.user(7451, language_code=lang)
    await carer.send("/mydata")
    [doc] = await carer.wait_for(lambda m: m.document is not None)
    assert doc.document is not None and doc.document.data is not None
    data = json.loads(doc.document.data)
    assert list(data) == ["about", "telegram_id", "name", "language", "consent_at", "permissions"]
    about = data["about"]
    assert about["language"] == lang and set(about["parts"]) == set(data) - {"about"}
    expected = {
        "en": ("All the data this bot keeps about you as a caregiver", "What the person you support lets you"),
        "de": ("Alle Daten, die dieser Bot über Sie als vertraute Person", "Was die Person, die Sie unterstützen"),
    }[lang]
    assert about["text"].startswith(expected[0]), about["text"]
    assert about["parts"]["permissions"].startswith(expected[1]), about["parts"]["permissions"]
    assert data["name"] == "Carla" and patient.alias not in doc.document.data.decode()


async def snapshot(bot: Any) -> tuple[Any, ...]:
    async with bot.db.session() as session:
        rows = (await session.exec(select(Caregiver))).all()
        links = [(c.reminders, c.missed, c.emergencies, c.weekly, c.removed_at) for c in rows]
        answers = len((await session.exec(select(Answer))).all())
        checkins = len((await session.exec(select(CheckIn))).all())
    return links, answers, checkins


async def test_the_caregivers_delete_removes_only_their_link_and_the_patients_delete_removes_all(
    bot: Any, tg: FakeTelegram
) -> None:
    patient = await checkin_patient(bot, 7331, therapist=7339)
    first = await join(bot, patient, 7431, "Ina")
    second = await join(bot, patient, 7432, "Jon")
    async with bot.db.session() as session:
        checkin = CheckIn(patient_id=patient.id or 0, questionnaire_id="pain", started_at=bot.clock.now())
        session.add(checkin)
        await session.flush()
        session.add(
            Answer(checkin_id=checkin.id or 0, patient_id=patient.id or 0, item_id="pain", value=3, proxy=True,
                   caregiver_id=first.id, answered_at=bot.clock.now())
        )  # fmt: skip
        await session.commit()
    ina, user = tg.user(7431), tg.user(7331)
    await ina.send("/delete")
    [ask] = await ina.wait_for(lambda m: "Delete?" in (m.text or ""))
    await ina.press("🗑 Yes, delete my link", ask)
    await ina.wait_for(lambda m: m.edited and "have been deleted" in (m.text or ""))
    async with bot.db.session() as session:
        left = (await session.exec(select(Caregiver))).all()
        [answer] = (await session.exec(select(Answer))).all()
        kept = await session.get(Patient, patient.id)
    assert [c.name for c in left] == ["Jon"], "only her own link"
    assert answer.proxy and answer.caregiver_id is None, "the patient's answer stays, still marked as proxy"
    assert kept is not None and kept.telegram_id == 7331

    # The patient's /delete takes every link and proxy answer with it.
    await user.send("/delete")
    [confirm] = await user.wait_for(lambda m: "Delete everything?" in (m.text or ""))
    await user.press("🗑 Yes, delete everything", confirm)
    await user.wait_for(lambda m: m.edited and "has been deleted" in (m.text or ""))
    async with bot.db.session() as session:
        assert (await session.exec(select(Caregiver))).all() == []
        assert (await session.exec(select(Answer))).all() == []
    assert second.id is not None


@pytest.mark.parametrize("lang", ["de"])
async def test_the_invitation_speaks_german(bot: Any, tg: FakeTelegram, lang: str) -> None:
    await checkin_patient(bot, 7341, language=lang)
    user = tg.user(7341)
    await user.send("/caregiver")
    [menu] = await user.wait_for()
    assert "Angehörige" in (menu.text or "") and "➕ Vertraute Person einladen" in menu.button_labels
    await user.press("➕ Vertraute Person einladen", menu)
    [invitation] = await user.wait_for(lambda m: "t.me/" in (m.text or ""))
    assert "Senden Sie diesen Link" in (invitation.text or "") and "dringende Warnzeichen" in (invitation.text or "")
    assert "bis 13. Juni, 07:00:" in (invitation.text or ""), "a German date has a full stop after the day"
    code = re.search(r"start=(cg\S+)", invitation.text or "")
    assert code is not None
    carer = tg.user(7441, language_code="de")
    await carer.send(f"/start {code.group(1)}")
    [consent] = await carer.wait_for()
    assert "Sind Sie einverstanden?" in (consent.text or "")
    await carer.press("Nein, danke", consent)
    [declined] = await carer.wait_for(lambda m: m.edited)
    assert declined.text == "In Ordnung. Über Sie wurde nichts gespeichert."
    async with bot.db.session() as session:
        [link] = (await session.exec(select(Caregiver))).all()
    assert link.telegram_id is None and link.consent_at is None and link.name == ""


UNUSED = {  # an invitation nobody accepted yet: its label stands in lists and on buttons, never for a name
    "en": (
        "Invitation (not used yet)",
        "What the person you invite will get (tap to turn on or off):",
        "🗑 Withdraw the invitation",
        "Withdraw the invitation? The link will no longer work.",
        "The invitation is withdrawn: the link no longer works.",
    ),
    "de": (
        "Einladung (noch nicht verwendet)",
        "Was die eingeladene Person bekommen wird (zum Ein- oder Ausschalten tippen):",
        "🗑 Einladung zurückziehen",
        "Die Einladung zurückziehen? Der Link funktioniert dann nicht mehr.",
        "Die Einladung ist zurückgezogen: Der Link funktioniert nicht mehr.",
    ),
}


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_an_unused_invitation_is_spoken_of_as_an_invitation_not_as_a_name(
    bot: Any, tg: FakeTelegram, lang: str
) -> None:
    label, what, withdraw, ask, gone = UNUSED[lang]
    await checkin_patient(bot, 7343, language=lang)
    user = tg.user(7343)
    await user.send("/caregiver")
    [menu] = await user.wait_for()
    await user.press(menu.button_labels[-1], menu)  # invite
    [invitation] = await user.wait_for(lambda m: "t.me/" in (m.text or ""))
    assert (invitation.text or "").endswith(what) and label not in (invitation.text or ""), invitation.text
    await user.send("/caregiver")
    [menu] = await user.wait_for()
    assert f"• {label}" in (menu.text or "") and f"⚙️ {label}" in menu.button_labels, "a list item is its label"
    await user.press(f"⚙️ {label}", menu)
    [view] = await user.wait_for(lambda m: m.edited and m.message_id == menu.message_id)
    assert view.text == what and withdraw in view.button_labels, (view.text, view.button_labels)
    await user.press(withdraw, view)
    [confirm] = await user.wait_for(lambda m: m.edited and m.message_id == menu.message_id)
    assert confirm.text == ask
    await user.press(confirm.button_labels[0], confirm)
    [done] = await user.wait_for(lambda m: m.edited and m.message_id == menu.message_id)
    assert done.text == gone
    async with bot.db.session() as session:
        [link] = (await session.exec(select(Caregiver))).all()
    assert link.removed_at is not None


async def test_a_caregivers_link_pasted_into_the_chat_works_as_a_tap(bot: Any, tg: FakeTelegram) -> None:
    await checkin_patient(bot, 7342)
    user = tg.user(7342)
    await user.send("/caregiver")
    [menu] = await user.wait_for()
    await user.press("➕ Invite a caregiver", menu)
    [invitation] = await user.wait_for(lambda m: "t.me/" in (m.text or ""))
    link = re.search(r"https://t\.me/\S+", invitation.text or "")
    assert link is not None
    carer = tg.user(7442)
    await carer.send(link.group(0))  # copied from the patient's message, not tapped
    [consent] = await carer.wait_for()
    assert "Do you agree?" in (consent.text or "") and "✅ I agree" in consent.button_labels


async def test_a_caregivers_typed_symptom_offers_the_check_for_the_patient(bot: Any, tg: FakeTelegram) -> None:
    patient = await checkin_patient(bot, 7331, therapist=7339, alias="CG-TEXT")
    await join(bot, patient, 7431)
    carer = tg.user(7431)
    # A symptom in plain words: the symptom check for the patient is one tap away.
    await carer.send("He can't feel his legs and can't pee")
    [reply] = await carer.wait_for(lambda m: "cannot pass on typed messages" in text_of(m))
    assert text_of(reply).startswith("If this is about a symptom, please answer the check for them")
    assert "112" in text_of(reply), "the clinic's emergency text is never left out"
    assert reply.callback_data == ["cs:symptoms"]
    assert UNKNOWN_TEXT not in text_of(reply)
    await carer.press(reply.button_labels[0], reply)
    [question] = await carer.wait_for(lambda m: m.edited and "On behalf of the person you support" in text_of(m))
    assert all(data.startswith("cp:") for data in question.callback_data)
    # Other text: told it is not passed on, pointed to /checkin, no button.
    await carer.send("Thanks for your help!")
    [plain] = await carer.wait_for(lambda m: "cannot pass on typed messages" in text_of(m) and not m.edited)
    assert plain.callback_data == [] and "/checkin" in text_of(plain)
    async with bot.db.session() as session:
        assert (await session.exec(select(Alert))).all() == []
    assert not any("legs" in text_of(m) for m in tg.user(7339).messages), "nothing is passed on"


async def test_the_caregivers_delete_leaves_no_trace_of_their_account_in_the_delivery_queue(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    # "/delete deletes what this bot keeps about you": the copies sent to the caregiver were kept with
    # their Telegram account id (delivery.chat_id) after the link itself was gone.
    bot = await bot_factory(delivery={"per_chat_interval": 0.02})
    patient = await session_patient(bot, 7351, times=("09:00",))
    link = await join(bot, patient, 7451, "Rita")
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        await core.set_permission(session, row, link.id or 0, "reminders", True, bot.clock.now())
        await session.commit()
    carer = tg.user(7451)
    await at(bot, berlin(WED, "09:00"))
    await carer.wait_for(lambda m: "Copy of a reminder" in text_of(m))
    async with bot.db.session() as session:
        assert (await session.exec(select(Delivery).where(col(Delivery.chat_id) == 7451))).all()
    await carer.send("/delete")
    [ask] = await carer.wait_for(lambda m: "Delete?" in (m.text or ""))
    await carer.press("🗑 Yes, delete my link", ask)
    await carer.wait_for(lambda m: m.edited and "have been deleted" in (m.text or ""))
    async with bot.db.session() as session:
        left = (await session.exec(select(Delivery).where(col(Delivery.chat_id) == 7451))).all()
        kept = await session.get(Patient, patient.id)
    assert left == [], "nothing with the caregiver's Telegram account id is kept"
    assert kept is not None and kept.telegram_id == 7351, "the patient's own data stays"


async def test_a_caregivers_account_cannot_also_become_a_patient_or_staff(bot: Any, tg: FakeTelegram) -> None:
    # A caregiver's link refuses patients and staff; the other way round, a caregiver tapping a patient's
    # invitation was enrolled as that patient, and their /checkin then went on answering for the person
    # they support (the caregiver's handlers come first).
    from test_clinician import invite_patient

    from rehab_bot import invite as invites

    await make_staff(bot.db, role="admin", telegram_id=7368, name="Admin Ada")
    patient = await checkin_patient(bot, 7361, therapist=7369, alias="CG-SUPPORTED")
    await join(bot, patient, 7461, "Vera")
    carer, doc = tg.user(7461), tg.user(7369)
    link = await invite_patient(doc, "LWS-7461")
    async with bot.db.session() as session:
        staff_link = await invites.create_staff_invite(
            session, name="Vera", role="therapist", now=bot.clock.now(), valid_days=7
        )
        await session.commit()
    carer.mark_seen()
    for code in (link.split("start=", 1)[1], staff_link.code):
        await carer.send(f"/start {code}")
        [refused] = await carer.wait_for()
        assert "linked as a caregiver, so it cannot also be used as a patient or staff account" in text_of(refused)
    async with bot.db.session() as session:
        newcomer = (await session.exec(select(Patient).where(col(Patient.alias) == "LWS-7461"))).one()
        assert newcomer.telegram_id is None, "nothing was claimed"
    await carer.send("/checkin")
    [menu] = await carer.wait_for(lambda m: "fill in for them" in text_of(m))
    # Once the caregiver link is deleted, the same invitation enrols them.
    await carer.send("/delete")
    [ask] = await carer.wait_for(lambda m: "Delete?" in text_of(m))
    await carer.press("🗑 Yes, delete my link", ask)
    await carer.wait_for(lambda m: m.edited and "have been deleted" in text_of(m))
    await carer.send(f"/start {link.split('start=', 1)[1]}")
    await carer.wait_for(lambda m: "Do you agree?" in text_of(m))
    async with bot.db.session() as session:
        newcomer = (await session.exec(select(Patient).where(col(Patient.alias) == "LWS-7461"))).one()
    assert newcomer.telegram_id == 7461 and menu is not None


async def test_a_caregivers_account_is_refused_a_staff_invitation_in_german(bot: Any, tg: FakeTelegram) -> None:
    from rehab_bot import invite as invites

    patient = await checkin_patient(bot, 7362, alias="CG-DE")
    await join(bot, patient, 7462, "Uwe")
    async with bot.db.session() as session:
        made = await invites.create_staff_invite(session, name="Uwe", role="admin", now=bot.clock.now(), valid_days=7)
        await session.commit()
    carer = tg.user(7462, language_code="de")
    await carer.send(f"/start {made.code}")
    [refused] = await carer.wait_for()
    assert "als Angehörige oder Angehöriger verknüpft" in text_of(refused)


async def test_a_second_invitation_from_the_person_they_support_says_they_are_linked(
    bot: Any, tg: FakeTelegram
) -> None:
    # It said "You are already a caregiver for someone. One account can support one person.",
    # as if the patient who sent both links were somebody else.
    patient = await checkin_patient(bot, 7363)
    await join(bot, patient, 7463)
    user, carer = tg.user(7363), tg.user(7463)
    await user.send("/caregiver")
    [menu] = await user.wait_for(lambda m: "Caregivers" in text_of(m))
    await user.press("➕ Invite a caregiver", menu)
    [invitation] = await user.wait_for(lambda m: "t.me/" in text_of(m))
    found = re.search(r"start=(cg[A-Za-z0-9_-]+)", text_of(invitation))
    assert found is not None
    carer.mark_seen()
    await carer.send(f"/start {found.group(1)}")
    [said] = await carer.wait_for()
    assert said.text == "You are already linked as a caregiver. Send /checkin to answer a check-in for them."


async def invitation_code(user: FakeUser) -> str:
    """The patient's /caregiver → Invite: the link's code."""
    await user.send("/caregiver")
    [menu] = await user.wait_for(lambda m: "Caregivers" in text_of(m))
    await user.press("➕ Invite a caregiver", menu)
    [invitation] = await user.wait_for(lambda m: "t.me/" in text_of(m))
    found = re.search(r"start=(cg[A-Za-z0-9_-]+)", text_of(invitation))
    assert found is not None
    return found.group(1)


async def test_an_unanswered_caregiver_link_does_not_block_a_newer_one(bot: Any, tg: FakeTelegram) -> None:
    # The consent question of a first link shown and never answered: a second patient's link said
    # "You are already a caregiver for someone. One account can support one person." until "No, thanks".
    first = await checkin_patient(bot, 7364, alias="CG-FIRST")
    second = await checkin_patient(bot, 7365, alias="CG-SECOND")
    carer = tg.user(7464)
    first_code = await invitation_code(tg.user(7364))
    await carer.send(f"/start {first_code}")
    [old_consent] = await carer.wait_for(lambda m: "Do you agree?" in text_of(m))
    second_code = await invitation_code(tg.user(7365))
    await carer.send(f"/start {second_code}")
    [consent] = await carer.wait_for(lambda m: "Do you agree?" in text_of(m))
    # The first question's buttons are stale now; the newer one links.
    await carer.press("✅ I agree", old_consent)
    assert (await carer.wait_for_answer()).text == STALE
    await carer.press("✅ I agree", consent)
    await carer.wait_for(lambda m: "You are now a caregiver" in text_of(m))
    await tg.user(7365).wait_for(lambda m: "accepted your invitation" in text_of(m))
    async with bot.db.session() as session:
        links = {c.patient_id: c for c in (await session.exec(select(Caregiver))).all()}
    assert links[second.id].telegram_id == 7464 and links[second.id].consent_at is not None
    released = links[first.id]
    assert released.telegram_id is None and released.consent_at is None, "the unanswered link is released"
    # A confirmed caregiver is still told what they are linked to.
    carer.mark_seen()
    await carer.send(f"/start {first_code}")
    [said] = await carer.wait_for()
    assert said.text == "You are already a caregiver for someone. One account can support one person."


async def test_an_unanswered_caregiver_link_gives_way_to_a_patient_or_staff_invitation(
    bot: Any, tg: FakeTelegram
) -> None:
    # Someone who opened a caregiver link and left its consent question unanswered, then opened a
    # patient's or a staff invitation, was refused ("linked as a caregiver") though nothing bound them.
    from test_clinician import invite_patient

    from rehab_bot import invite as invites

    await make_staff(bot.db, role="admin", telegram_id=7378, name="Admin Ada")
    supported = await checkin_patient(bot, 7371, therapist=7379, alias="CG-WAITING")
    doc = tg.user(7379)
    patient_link = await invite_patient(doc, "LWS-7471")
    async with bot.db.session() as session:
        staff_invite = await invites.create_staff_invite(
            session, name="Sam", role="therapist", now=bot.clock.now(), valid_days=7
        )
        await session.commit()
    for user_id, code, welcome in (
        (7471, patient_link.split("start=", 1)[1], "Welcome!"),
        (7472, staff_invite.code, "You are now registered as clinic staff"),
    ):
        person = tg.user(user_id)
        await person.send(f"/start {await invitation_code(tg.user(7371))}")
        [pending] = await person.wait_for(lambda m: "Do you agree?" in text_of(m))
        await person.send(f"/start {code}")
        [welcomed] = await person.wait_for()
        assert welcome in text_of(welcomed), text_of(welcomed)
        # The caregiver question is stale: the link was given up, and it says so in the audit log.
        await person.press("✅ I agree", pending)
        assert (await person.wait_for_answer()).text == STALE
    async with bot.db.session() as session:
        links = (await session.exec(select(Caregiver).where(col(Caregiver.patient_id) == supported.id))).all()
        newcomer = (await session.exec(select(Patient).where(col(Patient.alias) == "LWS-7471"))).one()
        released = (await session.exec(select(AuditLog).where(col(AuditLog.action) == core.RELEASE))).all()
        staff_ids = (await session.exec(select(Staff.telegram_id))).all()
    assert all(link.telegram_id is None and link.consent_at is None for link in links), "nobody is bound"
    assert newcomer.telegram_id == 7471
    assert 7472 in staff_ids
    assert sorted(row.detail.split(" ")[1] for row in released) == ["for=patient_invite", "for=staff_invite"]
    assert all(row.patient_id == supported.id and row.actor == "caregiver" for row in released)


async def test_a_patient_opening_a_caregiver_link_is_refused_in_their_own_language(bot: Any, tg: FakeTelegram) -> None:
    """A patient who chose German in /settings, on an English Telegram, read the refusal in English."""
    await checkin_patient(bot, 7480, schedule=False)
    await checkin_patient(bot, 7481, schedule=False, language="de")
    anna, ben = tg.user(7480), tg.user(7481, language_code="en")
    await anna.send("/caregiver")
    [menu] = await anna.wait_for(lambda m: "Caregivers" in (m.text or ""))
    await anna.press("➕ Invite a caregiver", menu)
    [invitation] = await anna.wait_for(lambda m: "t.me/" in (m.text or ""))
    found = re.search(r"start=(cg[A-Za-z0-9_-]+)", invitation.text or "")
    assert found is not None
    await ben.send(f"/start {found.group(1)}")
    [refused] = await ben.wait_for()
    assert text_of(refused) == (
        "Sie nutzen diesen Bot als Patientin oder Patient und können deshalb hier nicht auch Angehörige begleiten."
    )
