"""Privacy mode's safety pages for a patient still enrolling: the symptom check and writing to the care team.

With ``[privacy] health_data_in_chat = false`` a symptom typed at enrolment's time zone or times step is
offered as the symptom check's form in the Mini App, next to "Write to my care team" (bot/checkin.py's
offer, patient.heard_elsewhere). The Mini App turned away everyone who had not finished enrolling ("Please
finish setting up..."), so the patient could not answer the check, never read its red-flag answer and the
clinic was never alerted. A patient who has agreed and is still enrolling now uses exactly those pages
(web/auth.py, "agreed"); every other page still says to finish setting up first, and a patient who has not
agreed gets nothing new.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from factories import make_staff
from rig.telegram_server import FakeTelegram, FakeUser, SentMessage
from sqlmodel import select
from test_enrolment import new_invite, next_text
from webrig import client, csrf, init_data, miniapp_web, web_url

from rehab_bot.models import Alert, CareMessage, CheckIn, Patient, PatientStatus

PATIENT, THERAPIST = 2031, 3031
FINISH = "Please finish setting up in the chat with the clinic's bot first, then open this app again."
PRIVACY = {"health_data_in_chat": False}


async def at_the_times_step(bot: Any, tg: FakeTelegram, alias: str, telegram_id: int = PATIENT) -> FakeUser:
    """A patient who opened the invitation, agreed and chose the time zone: asked for session times."""
    doc = await make_staff(bot.db, name="Dr Weber", telegram_id=THERAPIST)
    invite = await new_invite(bot, alias, therapist_id=doc.id)
    user = tg.user(telegram_id, language_code="en")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Yes, I agree")
    await next_text(user)
    await user.press("Berlin – the clinic's time zone (now 07:00)")
    await next_text(user)
    return user


def html_text(text: str) -> str:
    return text.replace("'", "&#39;")


def app_buttons(message: SentMessage) -> dict[str, str]:
    """The offer's Mini App buttons: label -> path."""
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return {b["text"]: urlsplit(b["web_app"]["url"]).path for row in rows for b in row if "web_app" in b}


async def open_in_app(browser: aiohttp.ClientSession, bot: Any, path: str, telegram_id: int = PATIENT) -> Any:
    """Open a Mini App page as Telegram does: the sign-in page (401) posts initData with the page's address."""
    base = web_url(bot)
    async with browser.get(base + path, allow_redirects=False) as page:
        assert page.status == 401, "a stranger's first request gets the sign-in page"
        html = await page.text()
    body = {"init_data": init_data(telegram_id, bot.clock.now()), "csrf_token": csrf(html), "next": path}
    async with browser.post(f"{base}/app/signin", data=body) as response:
        return response.status, json.loads(await response.text())


async def test_an_enrolling_patient_answers_the_symptom_check_in_the_mini_app_and_the_clinic_is_alerted(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    bot = await bot_factory(web=miniapp_web(), privacy=PRIVACY)
    user = await at_the_times_step(bot, tg, "P-140")
    await user.send("I can't feel my legs")
    offer = await next_text(user)
    buttons = app_buttons(offer)
    [check] = [path for label, path in buttons.items() if label.startswith("🩺")]
    assert check.startswith("/app/checkin/") and "/app/messages" in buttons.values(), offer.reply_markup

    base = web_url(bot)
    async with client() as browser:
        status, body = await open_in_app(browser, bot, check)
        assert (status, body) == (200, {"next": check}), "the Mini App turned the enrolling patient away"
        async with browser.get(base + check) as page:
            assert page.status == 200
            html = await page.text()
        assert "Wound and symptom check" in html and "chest pain" in html
        assert 'href="/app/home"' not in html, "no way to pages the patient may not open yet"
        async with bot.db.session() as s:
            patient = (await s.exec(select(Patient).where(Patient.alias == "P-140"))).one()
            [checkin] = (await s.exec(select(CheckIn).where(CheckIn.patient_id == patient.id))).all()
        assert patient.status == PatientStatus.ENROLLING
        answer = {"csrf_token": csrf(html), "checkin": str(checkin.id), "item": "0", "value": "1"}
        async with browser.post(base + check, data=answer) as page:
            html = await page.text()
        assert "trouble controlling your bladder" in html
        async with browser.post(base + check, data={**answer, "item": "1"}, allow_redirects=False) as flagged:
            assert flagged.headers["Location"] == "/app/result"
        async with browser.get(f"{base}/app/result") as page:
            assert page.status == 200
            html = await page.text()
        assert 'role="alert"' in html and "Your care team has been told." in html
        assert 'call <a href="tel:112">112</a>' in html.lower(), "what to do now, the number one tap away"

        # Every other page still says to finish setting up first, each request checked afresh.
        for path in ("/app/home", "/app/progress", "/app/mydata", "/app/delete", "/app/session/1", "/me"):
            async with browser.get(base + path, allow_redirects=False) as page:
                assert page.status == 403, path
                assert html_text(FINISH) in await page.text(), path
        async with browser.post(
            f"{base}/app/delete", data={"confirm": "yes", "csrf_token": csrf(html)}, allow_redirects=False
        ) as page:
            assert page.status == 403
        async with browser.post(
            f"{base}/app/checkin", data={"questionnaire": "mood", "csrf_token": csrf(html)}, allow_redirects=False
        ) as page:
            assert page.status == 400, "only the symptom checks, no other questionnaire, before enrolment ends"

        # The chat gets the neutral line that opens the result; the therapist gets the alert.
        [notice] = await user.wait_for(lambda m: m.text == "Please open your check-in result now.")
        assert app_buttons(notice) == {"Open my result": "/app/result"}
        async with bot.db.session() as s:
            [alert] = (await s.exec(select(Alert))).all()
        assert (alert.patient_id, alert.kind, alert.severity) == (patient.id, "red_flag", "emergency")
        await bot.tick()
        await tg.user(THERAPIST).wait_for(lambda m: "P-140" in (m.text or ""))

        # The times question is still open; once enrolled, the same session reaches every page.
        await user.send("08:00, 13:00, 18:00")
        summary = await next_text(user)
        assert summary.text.startswith("✅ All set! Here is your plan:"), summary.text
        async with browser.get(f"{base}/app/progress", allow_redirects=False) as page:
            assert page.status == 200


async def test_an_enrolling_patient_writes_to_the_care_team_in_the_mini_app(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(web=miniapp_web(), privacy=PRIVACY)
    user = await at_the_times_step(bot, tg, "P-141")
    await user.send("My wound is red and leaking")
    offer = await next_text(user)
    assert "/app/messages" in app_buttons(offer).values(), offer.reply_markup

    base = web_url(bot)
    async with client() as browser:
        assert await open_in_app(browser, bot, "/app/messages") == (200, {"next": "/app/messages"})
        async with browser.get(f"{base}/app/messages") as page:
            assert page.status == 200
            html = await page.text()
        assert 'href="/app/home"' not in html and 'href="/app/progress"' not in html
        form = {"csrf_token": csrf(html), "text": "The wound is red and leaking since last night"}
        async with browser.post(f"{base}/app/messages", data=form) as page:
            html = await page.text()
        assert "Sent to your care team." in html and "since last night" in html
        # The symptom word offers its check on the page; it opens for the enrolling patient too.
        assert 'name="questionnaire" value="symptoms"' in html
        async with browser.post(
            f"{base}/app/checkin", data={"questionnaire": "symptoms", "csrf_token": csrf(html)}, allow_redirects=False
        ) as started:
            assert started.status == 303 and started.headers["Location"].startswith("/app/checkin/")
        # A word of danger asks the crisis question; Yes alerts the clinic with the crisis text.
        async with browser.post(f"{base}/app/messages", data={**form, "text": "I took an extra pill"}) as page:
            html = await page.text()
        assert 'action="/app/messages/crisis"' in html
        message_id = html.split('name="message" value="', 1)[1].split('"', 1)[0]
        crisis = {"csrf_token": csrf(html), "message": message_id, "answer": "yes"}
        async with browser.post(f"{base}/app/messages/crisis", data=crisis) as page:
            assert 'role="alert"' in await page.text()
    async with bot.db.session() as s:
        sent = (await s.exec(select(CareMessage))).all()
        alerts = (await s.exec(select(Alert))).all()
    assert [m.text for m in sent if m.direction == "in"][:1] == ["The wound is red and leaking since last night"]
    assert [(a.kind, a.severity) for a in alerts] == [("crisis", "emergency")]


async def test_a_patient_who_has_not_agreed_gets_no_mini_app_page(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(web=miniapp_web(), privacy=PRIVACY)
    doc = await make_staff(bot.db, name="Dr Weber", telegram_id=THERAPIST)
    invite = await new_invite(bot, "P-142", therapist_id=doc.id)
    user = tg.user(PATIENT, language_code="en")
    await user.send(f"/start {invite.code}")
    await next_text(user)  # the consent question, not answered
    for path in ("/app/messages", "/app/result", "/app/checkin/1", "/app/home"):
        async with client() as browser:
            assert await open_in_app(browser, bot, path) == (403, {"error": FINISH}), path


async def test_an_enrolling_patients_sign_in_to_any_other_page_says_to_finish_setting_up(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    bot = await bot_factory(web=miniapp_web(), privacy=PRIVACY)
    await at_the_times_step(bot, tg, "P-143")
    for path in ("/app/home", "/app/progress", "/app/mydata", "/app/delete", "/app/nothing", "https://x.test/app/a"):
        async with client() as browser:
            base = web_url(bot)
            async with browser.get(f"{base}/app") as page:
                html = await page.text()
            body = {"init_data": init_data(PATIENT, bot.clock.now()), "csrf_token": csrf(html), "next": path}
            async with browser.post(f"{base}/app/signin", data=body) as response:
                assert (response.status, json.loads(await response.text())) == (403, {"error": FINISH}), path
            async with browser.get(f"{base}/app/messages", allow_redirects=False) as page:
                assert page.status == 401, "refused at sign-in: no session"
