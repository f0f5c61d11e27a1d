"""The patients' Mini App over HTTP, on the real bot and the fake Bot API: the player records an outcome once
with the chat's buttons, check-in forms triage like the chat, and a patient reaches only their own data."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rig.telegram_server import FakeTelegram
from sqlmodel import select
from test_checkins import enrolled as checkin_patient
from test_sessions import WED, at, berlin, enrolled, player_bot, sessions_of
from webrig import client, csrf, init_data, miniapp_web, sign_in_initdata, web_url

from rehab_bot import checkin as checkin_core
from rehab_bot.bot import session as session_bot
from rehab_bot.models import Alert, Answer, CheckIn, Patient, PatientStatus


async def signed_in(bot: Any, browser: Any, telegram_id: int) -> None:
    response = await sign_in_initdata(browser, web_url(bot), init_data(telegram_id, bot.clock.now()))
    assert response.status == 200


async def test_a_session_finished_in_the_mini_app_is_recorded_once_and_the_chat_buttons_go(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7302, programme_id="short", phase_id="all")
    user = tg.user(7302)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    [row] = await sessions_of(bot, patient)
    base = web_url(bot)
    assert reminder.reply_markup["inline_keyboard"][0][0]["web_app"]["url"] == f"{base}/app/session/{row.id}"  # type: ignore[index]
    async with client() as browser:
        await signed_in(bot, browser, 7302)
        async with browser.get(f"{base}/app/session/{row.id}") as page:
            assert page.status == 200
            html = await page.text()
        assert html.count('class="app-card"') == 4  # three exercises and the finish form
        assert "Walking" in html and "Ankle pumps" in html
        async with browser.get(f"{base}/app/session/{row.id}/media/1") as media:
            assert media.status == 200 and await media.read() == b"GIF89a-walking"
        async with browser.get(f"{base}/app/session/{row.id}/media/3") as media:
            assert media.status == 404  # the third exercise has no media
        form = {"csrf_token": csrf(html), "outcome": "done", "effort": "hard", "pain": "3"}
        async with browser.post(f"{base}/app/session/{row.id}", data=form, allow_redirects=False) as done:
            assert done.status == 303
        async with browser.get(f"{base}/app/session/{row.id}") as page:
            assert "Logged: done." in await page.text()
        # The same form again (a second tap, another device): nothing changes.
        async with browser.post(f"{base}/app/session/{row.id}", data={**form, "pain": "7"}) as again:
            assert again.status == 200
    [edited] = await user.wait_for()
    assert edited.message_id == reminder.message_id and not edited.reply_markup, "the chat's buttons are gone"
    # The chat's Done, pressed on the old message afterwards: refused, nothing recorded twice.
    await user.press_data(f"s:{row.id}:d", reminder.message_id)
    answer = await user.wait_for_answer()
    assert answer.text == "This button is no longer active."
    [row] = await sessions_of(bot, patient)
    assert (row.status, row.effort, row.pain) == ("done", "hard", 3)
    await user.expect_silence()


async def test_the_chat_done_first_then_the_mini_app_records_nothing_more(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7303, programme_id="short", phase_id="all")
    user = tg.user(7303)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    [row] = await sessions_of(bot, patient)
    await user.press("✅ Done", reminder)
    await user.wait_for_answer()
    base = web_url(bot)
    async with client() as browser:
        await signed_in(bot, browser, 7303)
        async with browser.get(f"{base}/app/session/{row.id}") as page:
            html = await page.text()
        assert 'id="finish-form"' not in html and "Logged: done." in html
        form = {"csrf_token": csrf(html), "outcome": "partly", "pain": "9"}
        async with browser.post(f"{base}/app/session/{row.id}", data=form) as late:
            assert late.status == 200
    [row] = await sessions_of(bot, patient)
    assert (row.status, row.pain) == ("done", None)


@pytest.mark.parametrize("closed_by", ["skip", "midnight"])
async def test_finishing_a_session_closed_meanwhile_says_so_in_german(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, closed_by: str
) -> None:
    # The player was open when the session closed: skipped in the chat, or missed at the end of its day.
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7304, lang="de", programme_id="short", phase_id="all")
    user = tg.user(7304, language_code="de")
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    [row] = await sessions_of(bot, patient)
    base = web_url(bot)
    if closed_by == "midnight":
        bot.clock.set(berlin(WED, "23:50"))  # the page opened late in the evening
    async with client() as browser:
        await signed_in(bot, browser, 7304)
        async with browser.get(f"{base}/app/session/{row.id}") as page:
            html = await page.text()
        if closed_by == "skip":
            await user.press("⏭ Auslassen", reminder)
            await user.wait_for_answer()
        else:
            bot.clock.set(berlin(WED + timedelta(days=1), "00:10"))
            await session_bot.sweep(bot.app)
        form = {"csrf_token": csrf(html), "outcome": "done", "effort": "ok", "pain": "2"}
        async with browser.post(f"{base}/app/session/{row.id}", data=form) as late:
            assert late.status == 200
            text = await late.text()
    assert "Diese Einheit ist abgeschlossen." in text and "Diese Seite gibt es nicht" not in text
    [row] = await sessions_of(bot, patient)
    assert row.status == ("skipped" if closed_by == "skip" else "missed")


async def test_a_patient_reaches_only_their_own_sessions_check_ins_and_media(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    anna = await enrolled(bot, 7304, programme_id="short", phase_id="all")
    await enrolled(bot, 7305, programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [annas] = await sessions_of(bot, anna)
    base = web_url(bot)
    async with client() as browser:
        await signed_in(bot, browser, 7305)  # Ben
        for path in (f"/app/session/{annas.id}", f"/app/session/{annas.id}/media/1", "/app/session/999999"):
            async with browser.get(base + path) as page:
                assert page.status == 404, path
        async with browser.get(f"{base}/app/home") as page:
            html = await page.text()
        async with browser.post(
            f"{base}/app/session/{annas.id}", data={"csrf_token": csrf(html), "outcome": "done"}
        ) as forged:
            assert forged.status == 404
    [annas] = await sessions_of(bot, anna)
    assert annas.status == "pending"
    # Anna's check-in: Ben can neither open it nor answer it.
    async with bot.db.session() as s:
        row = await s.get(Patient, anna.id)
        assert row is not None
        [annas_checkin] = await checkin_core.start(s, row, bot.services.content, ["pain"], bot.clock.now())
        await s.commit()
    async with client() as browser:
        await signed_in(bot, browser, 7305)
        async with browser.get(f"{base}/app/checkin/{annas_checkin.id}") as page:
            assert page.status == 404
        async with browser.get(f"{base}/app/home") as page:
            html = await page.text()
        answer = {"csrf_token": csrf(html), "checkin": str(annas_checkin.id), "item": "0", "value": "9"}
        async with browser.post(f"{base}/app/checkin/{annas_checkin.id}", data=answer) as forged:
            assert forged.status == 404
    async with bot.db.session() as s:
        assert (await s.exec(select(Answer))).all() == []
    async with client() as stranger:
        async with stranger.get(f"{base}/app/session/{annas.id}") as page:
            assert page.status == 401
            assert 'id="miniapp-status"' in await page.text(), "the sign-in page, which signs in from Telegram"


async def test_the_mini_app_signs_in_to_the_page_telegram_opened_and_refuses_forged_or_stale_data(
    bot_factory: Any,
) -> None:
    bot = await bot_factory(web=miniapp_web())
    await checkin_patient(bot, 7306)
    base, now = web_url(bot), bot.clock.now()
    async with client() as browser:
        async with browser.get(f"{base}/app/progress") as page:
            html = await page.text()
        body = {"init_data": init_data(7306, now), "csrf_token": csrf(html), "next": "/app/progress"}
        async with browser.post(f"{base}/app/signin", data=body) as response:
            assert json.loads(await response.text()) == {"next": "/app/progress"}
    async with client() as browser:
        async with browser.get(f"{base}/app") as page:
            html = await page.text()
        body = {**body, "csrf_token": csrf(html), "next": "https://elsewhere.test/app/x"}
        async with browser.post(f"{base}/app/signin", data=body) as response:
            assert json.loads(await response.text()) == {"next": "/app/home"}
    async with client() as browser:
        stale = init_data(7306, now - timedelta(hours=2))
        assert (await sign_in_initdata(browser, base, stale)).status == 401
        forged = init_data(7306, now, token="987654321:AAE-another_bots_token_value_01234")
        assert (await sign_in_initdata(browser, base, forged)).status == 401
        async with browser.get(f"{base}/app/home", allow_redirects=False) as page:
            assert page.status == 401


async def test_a_symptom_check_in_the_mini_app_shows_the_red_flag_reply_and_alerts_the_therapist(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    bot = await bot_factory(web=miniapp_web())
    patient = await checkin_patient(bot, 7307, therapist=5001)
    base = web_url(bot)
    async with client() as browser:
        await signed_in(bot, browser, 7307)
        async with browser.get(f"{base}/app/home") as page:
            html = await page.text()
        for offered in ('value="pain"', 'value="mood"', 'value="symptoms"', 'value="phq2"', 'value="gad2"'):
            assert offered in html, offered
        async with browser.post(
            f"{base}/app/checkin", data={"csrf_token": csrf(html), "questionnaire": "symptoms"}, allow_redirects=False
        ) as started:
            assert started.status == 303
            form_url = base + started.headers["Location"]
        async with browser.get(form_url) as page:
            html = await page.text()
        assert "Wound and symptom check" in html and "chest pain" in html
        async with bot.db.session() as s:
            [checkin] = (await s.exec(select(CheckIn).where(CheckIn.patient_id == patient.id))).all()
        answer = {"csrf_token": csrf(html), "checkin": str(checkin.id), "item": "0", "value": "1"}
        async with browser.post(form_url, data=answer) as page:
            html = await page.text()
        assert "trouble controlling your bladder" in html  # the next question: bladder or bowel
        async with browser.post(form_url, data={**answer, "item": "1"}, allow_redirects=False) as flagged:
            assert flagged.headers["Location"] == "/app/result"
        async with browser.get(f"{base}/app/result") as page:
            html = await page.text()
        assert 'role="alert"' in html and "Your care team has been told." in html
        assert 'call <a href="tel:112">112</a>' in html.lower(), "the emergency number is one tap away"
    # The chat gets a neutral line that opens the result: no symptom, no answer.
    [notice] = await tg.user(7307).wait_for()
    assert notice.text == "Please open your check-in result now."
    assert notice.reply_markup == {
        "inline_keyboard": [[{"text": "Open my result", "web_app": {"url": f"{base}/app/result"}}]]
    }
    await bot.tick()
    [alert] = await tg.user(5001).wait_for(lambda m: patient.alias in (m.text or ""))
    assert "red flag" in alert.text.lower() or "emergency" in alert.text.lower()
    async with bot.db.session() as s:
        [row] = (await s.exec(select(Alert).where(Alert.patient_id == patient.id))).all()
    assert row.kind == "red_flag" and row.severity == "emergency"


def test_phone_numbers_in_the_clinic_texts_are_tel_links_and_nothing_else_is() -> None:
    from rehab_bot.web.app import phone_links

    said = phone_links("Call 112 now, or TelefonSeelsorge 0800 111 0 111; the clinic: +49 30 1234-567, (030) 12345.")
    assert said == (
        'Call <a href="tel:112">112</a> now, or TelefonSeelsorge <a href="tel:08001110111">0800 111 0 111</a>; '
        'the clinic: <a href="tel:+49301234567">+49 30 1234-567</a>, <a href="tel:03012345">(030) 12345</a>.'
    )
    # Times, decimals, short ranges, dates, numbers inside words: plain text.
    plain = "Mo-Fr 08:00-16:00, pain 0-10, 38,5 °C for 4-5 days, 8-16 Uhr, 2026-11-01, x112, 112x, 1.12"
    assert phone_links(plain) == plain
    # The text around a number is escaped; nothing but digits and + reaches the href.
    assert (
        phone_links('<b>"112"</b> & 110')
        == '&lt;b&gt;&#34;<a href="tel:112">112</a>&#34;&lt;/b&gt; &amp; <a href="tel:110">110</a>'
    )
    assert phone_links('112" onclick="x') == '<a href="tel:112">112</a>&#34; onclick=&#34;x'


async def test_pain_7_in_the_mini_app_shows_what_to_do_now_on_the_result_page(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    """A score rule's finding (pain 7 and above: contact the clinic today) is on the result page too.

    The page read only flagged answer options, so after pain 7 it said nothing needed action.
    """
    bot = await bot_factory(web=miniapp_web())
    patient = await checkin_patient(bot, 7308, therapist=5002)
    base = web_url(bot)
    async with client() as browser:
        await signed_in(bot, browser, 7308)
        async with browser.get(f"{base}/app/home") as page:
            html = await page.text()
        async with browser.post(
            f"{base}/app/checkin", data={"csrf_token": csrf(html), "questionnaire": "pain"}, allow_redirects=False
        ) as started:
            form_url = base + started.headers["Location"]
        async with browser.get(form_url) as page:
            html = await page.text()
        async with bot.db.session() as s:
            [checkin] = (await s.exec(select(CheckIn).where(CheckIn.patient_id == patient.id))).all()
        answer = {"csrf_token": csrf(html), "checkin": str(checkin.id), "item": "0", "value": "7"}
        async with browser.post(form_url, data=answer, allow_redirects=False) as flagged:
            assert flagged.headers["Location"] == "/app/result"
        async with browser.get(f"{base}/app/result") as page:
            html = await page.text()
        assert 'role="alert"' in html and "Your pain is high" in html and "Your care team has been told." in html
        assert "Nothing in your recent answers needs action now." not in html
    async with bot.db.session() as s:
        [row] = (await s.exec(select(Alert).where(Alert.patient_id == patient.id))).all()
    assert row.severity == "critical", "one alert: the page raised none"


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_psfs_says_what_0_and_10_mean_on_every_activity(
    bot_factory: Any, tg: FakeTelegram, lang: str
) -> None:
    """The PSFS showed 0-10 without its anchors (the pain scale had them): the patient had to guess what 10 meant."""
    low, high = {
        "en": ("0 = unable to perform the activity", "10 = able to perform it at the level before the problem"),
        "de": ("0 = Ich kann die Tätigkeit nicht ausführen", "10 = Ich kann sie so gut ausführen wie vor dem Problem"),
    }[lang]
    bot = await bot_factory(web=miniapp_web())
    patient = await checkin_patient(bot, 7322, therapist=5002, language=lang)
    base = web_url(bot)
    async with client() as browser:
        await signed_in(bot, browser, 7322)
        async with browser.get(f"{base}/app/home") as page:
            html = await page.text()
        async with browser.post(
            f"{base}/app/checkin", data={"csrf_token": csrf(html), "questionnaire": "psfs"}, allow_redirects=False
        ) as started:
            form_url = base + started.headers["Location"]
        async with bot.db.session() as s:
            [checkin] = (await s.exec(select(CheckIn).where(CheckIn.patient_id == patient.id))).all()
        for item in range(3):
            async with browser.get(form_url) as page:
                html = await page.text()
            assert 'class="app-anchors"' in html and low in html and high in html, item
            answer = {"csrf_token": csrf(html), "checkin": str(checkin.id), "item": str(item), "value": "5"}
            async with browser.post(form_url, data=answer, allow_redirects=False) as answered:
                assert answered.status == 303


async def test_a_red_flag_answer_sent_twice_leads_to_the_result_page_both_times(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    """A double tap on Telegram's MainButton sends the answer twice; on a slow network the browser shows the
    second response. That one (a duplicate) led to the next question, so the patient never saw what to do now
    (reproduced in Chromium: the first response held back 1 s, the second tap 150 ms after the first)."""
    bot = await bot_factory(web=miniapp_web())
    patient = await checkin_patient(bot, 7316, therapist=5002)
    base = web_url(bot)
    async with client() as browser:
        await signed_in(bot, browser, 7316)
        async with browser.get(f"{base}/app/home") as page:
            html = await page.text()
        token = csrf(html)
        for questionnaire, answers in (("symptoms", [("0", "1"), ("1", "1")]), ("pain", [("0", "8")])):
            async with browser.post(
                f"{base}/app/checkin", data={"csrf_token": token, "questionnaire": questionnaire}, allow_redirects=False
            ) as started:
                form_url = base + started.headers["Location"]
            checkin_id = form_url.rsplit("/", 1)[1]
            *before, (item, value) = answers
            for earlier, earlier_value in before:  # "any of these": yes
                data = {"csrf_token": token, "checkin": checkin_id, "item": earlier, "value": earlier_value}
                async with browser.post(form_url, data=data, allow_redirects=False) as answered:
                    assert answered.headers["Location"] == f"/app/checkin/{checkin_id}"
            data = {"csrf_token": token, "checkin": checkin_id, "item": item, "value": value}
            for tap in ("first", "second"):
                async with browser.post(form_url, data=data, allow_redirects=False) as flagged:
                    assert flagged.headers["Location"] == "/app/result", (questionnaire, tap)
        async with browser.get(f"{base}/app/result") as page:
            assert "Your pain is high" in await page.text()
    async with bot.db.session() as s:
        alerts = (await s.exec(select(Alert).where(Alert.patient_id == patient.id))).all()
    assert len(alerts) == 2, "one alert for each check-in, none for the second taps"


async def start_checkin(browser: Any, base: str, questionnaire: str) -> tuple[str, str, str]:
    """Start an on-demand check-in from the home page: its form's address, its id, and the CSRF token."""
    async with browser.get(f"{base}/app/home") as page:
        token = csrf(await page.text())
    async with browser.post(
        f"{base}/app/checkin", data={"csrf_token": token, "questionnaire": questionnaire}, allow_redirects=False
    ) as started:
        form_url = base + started.headers["Location"]
    return form_url, form_url.rsplit("/", 1)[1], token


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_a_second_window_answering_differently_is_told_the_answer_was_already_given(
    bot_factory: Any, tg: FakeTelegram, lang: str
) -> None:
    """Two windows on the same check-in: the second answer was dropped without a word, and its window showed
    the first one's outcome (here: thanks, the answers are saved) as if its own answer had been kept."""
    told = {
        "en": "This question of your check-in was already answered in another window: 3. That answer is kept",
        "de": "Diese Frage Ihrer Abfrage wurde bereits in einem anderen Fenster beantwortet: 3. Diese Antwort",
    }[lang]
    bot = await bot_factory(web=miniapp_web())
    await checkin_patient(bot, 7323 if lang == "en" else 7324, therapist=5002, language=lang)
    async with client() as browser:
        await signed_in(bot, browser, 7323 if lang == "en" else 7324)
        form_url, checkin_id, token = await start_checkin(browser, web_url(bot), "pain")
        for value in ("3", "5"):  # window A, then window B with the form A had
            data = {"csrf_token": token, "checkin": checkin_id, "item": "0", "value": value}
            async with browser.post(form_url, data=data) as page:
                html = await page.text()
            assert (told in html) == (value == "5"), value
        async with browser.get(form_url) as page:
            assert told not in await page.text(), "said once"
    async with bot.db.session() as s:
        [row] = (await s.exec(select(Answer).where(Answer.checkin_id == int(checkin_id)))).all()
    assert row.value == 3


async def test_a_red_flag_sent_from_a_second_window_still_leads_to_the_result_page(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    """Window A answered "No" to bladder trouble, window B "Yes": B's answer is not kept, but it is a red flag
    the patient reported, so the clinic is alerted (once, however often B sends it) and the patient is told
    what to do now, that the care team knows, and that the answer kept is A's; the other way round, A's
    red flag stays on the result page (checkin.findings_of_answer)."""
    bot = await bot_factory(web=miniapp_web())
    patient = await checkin_patient(bot, 7325, therapist=5002)
    base = web_url(bot)
    async with client() as browser:
        await signed_in(bot, browser, 7325)
        form_url, checkin_id, token = await start_checkin(browser, base, "symptoms")
        answer = {"csrf_token": token, "checkin": checkin_id}
        for item, value in (("0", "1"), ("1", "0")):  # window A: some symptom; not the bladder
            async with browser.post(form_url, data={**answer, "item": item, "value": value}, allow_redirects=False):
                pass
        for _ in range(2):  # window B, and its MainButton tapped twice
            async with browser.post(form_url, data={**answer, "item": "1", "value": "1"}, allow_redirects=False) as b:
                assert b.headers["Location"] == "/app/result"
        async with browser.get(f"{base}/app/result") as page:
            html = await page.text()
        assert "already answered in another window: No." in html
        assert 'role="alert"' in html and "Your care team has been told." in html
        assert 'call <a href="tel:112">112</a>' in html.lower(), "the emergency number is one tap away"
        async with bot.db.session() as s:
            [flag] = (await s.exec(select(Alert).where(Alert.patient_id == patient.id))).all()
            kept = (await s.exec(select(Answer).where(Answer.checkin_id == int(checkin_id)))).all()
        assert flag.severity == "emergency" and checkin_core.ANSWERED_AGAIN_NOTE in flag.detail
        assert {a.item_id: a.value for a in kept} == {"any": 1, "bladder": 0}, "A's answers are kept"
        # Pain 8 in window A (a score rule: contact the clinic today), 2 in window B: B sees A's result, and why.
        form_url, checkin_id, token = await start_checkin(browser, base, "pain")
        for value in ("8", "2"):
            data = {"csrf_token": token, "checkin": checkin_id, "item": "0", "value": value}
            async with browser.post(form_url, data=data, allow_redirects=False) as answered:
                assert answered.headers["Location"] == "/app/result", value
        async with browser.get(f"{base}/app/result") as page:
            html = await page.text()
        assert "already answered in another window: 8." in html and "Your pain is high" in html
    async with bot.db.session() as s:
        alerts = (await s.exec(select(Alert).where(Alert.patient_id == patient.id))).all()
    assert sorted(a.severity for a in alerts) == ["critical", "emergency"], "pain 8's alert; none for pain 2"


async def test_a_check_in_that_closed_unanswered_says_so_not_that_the_answers_are_saved(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    """A check-in form opened or answered after the check-in ran out of time (expires_hours) says it closed.

    The page said "Thank you, your answers are saved." though nothing had been answered or saved.
    """
    bot = await bot_factory(web=miniapp_web())
    patient = await checkin_patient(bot, 7309, therapist=5002, language="de")
    base = web_url(bot)
    async with client() as browser:
        await signed_in(bot, browser, 7309)
        async with browser.get(f"{base}/app/home") as page:
            html = await page.text()
        async with browser.post(
            f"{base}/app/checkin", data={"csrf_token": csrf(html), "questionnaire": "pain"}, allow_redirects=False
        ) as started:
            form_url = base + started.headers["Location"]
        async with bot.db.session() as s:
            [checkin] = (await s.exec(select(CheckIn).where(CheckIn.patient_id == patient.id))).all()
        bot.clock.advance(timedelta(hours=13))  # the pain check-in closes after 12 hours
        await signed_in(bot, browser, 7309)  # the app opened again from the chat
        async with browser.get(form_url) as page:
            html = await page.text()
        answer = {"csrf_token": csrf(html), "checkin": str(checkin.id), "item": "0", "value": "3"}
        async with browser.post(form_url, data=answer) as late:
            assert late.status == 200
            after = await late.text()
    for text in (html, after):
        assert "Diese Abfrage ist geschlossen." in text and "Danke, Ihre Antworten sind gespeichert." not in text
    async with bot.db.session() as s:
        assert (await s.exec(select(Answer).where(Answer.patient_id == patient.id))).all() == []


async def test_my_data_and_delete_my_data_do_what_the_commands_do(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(web=miniapp_web())
    patient = await checkin_patient(bot, 7308)
    base = web_url(bot)
    async with client() as browser:
        await signed_in(bot, browser, 7308)
        async with browser.get(f"{base}/app/mydata") as download:
            data = json.loads(await download.text())
            assert download.headers["Content-Disposition"] == 'attachment; filename="my-data.json"'
        assert data["patient"]["alias"] == patient.alias
        async with browser.get(f"{base}/app/delete") as page:
            html = await page.text()
        async with browser.post(f"{base}/app/delete", data={"csrf_token": csrf(html), "confirm": "yes"}) as done:
            assert done.status == 200 and "Your data has been deleted" in await done.text()
        async with browser.get(f"{base}/app/home", allow_redirects=False) as page:
            assert page.status == 401
    async with bot.db.session() as s:
        tombstone = await s.get(Patient, patient.id)
        assert (await s.exec(select(CheckIn))).all() == []
    assert tombstone is not None and tombstone.telegram_id is None and tombstone.status == PatientStatus.STOPPED


async def test_an_enrolled_patients_chat_menu_button_opens_the_mini_app(bot_factory: Any, tg: FakeTelegram) -> None:
    from test_enrolment import new_invite, next_text

    web = miniapp_web()
    bot = await bot_factory(web=web)
    invite = await new_invite(bot, "P-300")
    user = tg.user(2301, language_code="de")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Ja, ich bin einverstanden")
    zones = await next_text(user)
    await user.press(zones.button_labels[0])
    times = await next_text(user)
    assert 2301 not in tg.menu_buttons, "no Mini App before the enrolment is finished"
    await user.press(times.button_labels[0])
    await next_text(user)
    for _ in range(50):
        if 2301 in tg.menu_buttons:
            break
        await asyncio.sleep(0.05)
    assert tg.menu_buttons[2301] == {
        "type": "web_app",
        "text": "Meine Reha",
        "web_app": {"url": web["public_url"] + "/app"},
    }
