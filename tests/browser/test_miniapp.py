"""The patients' Mini App in Chromium at phone width, signed in by initData the test signs (miniapp_stub):
a session played to Done (and the chat's Done then records nothing twice), a symptom check with an urgent
red flag (the reply on screen, the staff alert at the fake Bot API within 60 s), another patient's session
refused, stale initData refused, axe-core clean."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from e2e.test_checkins import enrolled as checkin_patient
from e2e.test_enrolment import new_invite, next_text
from e2e.test_sessions import PLAYER_EXERCISES, PLAYER_PROGRAMME, WED, at, berlin, enrolled, player_bot, sessions_of
from factories import make_staff
from rig.telegram_server import FakeTelegram
from sqlmodel import select
from webrig import miniapp_web, web_url

from rehab_bot.models import Answer
from tests.browser.axe import serious
from tests.browser.miniapp_stub import DARK, calls, open_as

PROMISE = 60.0


async def called(page: Any, *call: str) -> None:
    """Wait until the page's script made this Telegram call (scripts run after the page shows)."""
    await page.wait_for_function(
        "call => window.__tg.calls.some(c => JSON.stringify(c) === JSON.stringify(call))", arg=list(call)
    )


def errors(page: Any) -> list[str]:
    """The console errors but the first page's 401: a Mini App page opened before sign-in is the sign-in page."""
    return [e for e in page.console_errors if "status of 401 (Unauthorized)" not in e]


async def test_a_session_played_to_done_in_the_mini_app_is_recorded_once(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    page = phone_page
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7310, programme_id="short", phase_id="all")
    user = tg.user(7310)
    await at(bot, berlin(WED, "09:00"))
    [reminder] = await user.wait_for()
    [row] = await sessions_of(bot, patient)
    await open_as(page, bot, 7310, f"/app/session/{row.id}")
    await page.get_by_role("heading", name="1/3 · Walking").wait_for()
    # One card at a time once the page's script has run (without it, every card shows).
    await page.get_by_role("heading", name="2/3 · Ankle pumps").wait_for(state="hidden", timeout=5000)
    assert await serious(page) == []
    await page.get_by_role("button", name="Next").click()
    card = page.locator("#card-2")
    await card.get_by_role("button", name="+1 repetition").click()
    await card.get_by_role("button", name="+1 repetition").click()
    assert await card.locator("[data-rep]").text_content() == "2"
    await page.get_by_role("button", name="Next").click()
    hold = page.locator("#card-3")
    await hold.get_by_role("button", name="Start the 5 s hold").click()
    await page.get_by_role("button", name="Back").click()
    await page.get_by_role("heading", name="2/3 · Ankle pumps").wait_for()
    await page.get_by_role("button", name="Next").click()
    await page.get_by_role("button", name="Next").click()
    await page.get_by_role("heading", name="How did it go?").wait_for()
    await called(page, "MainButton.show")
    assert await serious(page) == []
    await page.get_by_label("😓 Hard").check()
    await page.get_by_label("3", exact=True).check()
    await page.evaluate("() => window.__tg.press('MainButton')")  # Telegram's MainButton submits the form
    await page.get_by_text("✅ Logged: done.").wait_for()
    await called(page, "haptic", "success")
    await called(page, "BackButton.show")
    [row] = await sessions_of(bot, patient)
    assert (row.status, row.effort, row.pain) == ("done", "hard", 3)
    [edited] = await user.wait_for()
    assert edited.message_id == reminder.message_id and not edited.reply_markup
    await user.press_data(f"s:{row.id}:d", reminder.message_id)
    assert (await user.wait_for_answer()).text == "This button is no longer active."
    [row] = await sessions_of(bot, patient)
    assert (row.status, row.effort, row.pain) == ("done", "hard", 3)
    assert errors(page) == []


async def test_a_tapped_button_keeps_aa_contrast_in_telegrams_dark_theme(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    """The player's Next, tapped on a small phone in Telegram's dark theme, stays hovered and focused.

    Pico's dark scheme lightened it to #017fc0 there: white on it is 4.38:1, below AA (axe-core's color-contrast).
    """
    page = phone_page
    await page.set_viewport_size({"width": 320, "height": 568})
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7315, lang="de", programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [row] = await sessions_of(bot, patient)
    await open_as(page, bot, 7315, f"/app/session/{row.id}", lang="de", dark=True)
    await page.get_by_role("heading", name="1/3 · Gehen").wait_for()
    await page.get_by_role("button", name="Weiter").tap()
    await page.get_by_role("heading", name="2/3 · Fußwippen").wait_for()
    await page.wait_for_timeout(300)  # past Pico's 0.2 s colour transition
    assert await serious(page) == []
    assert await page.evaluate("() => document.documentElement.scrollWidth") == 320, "nothing wider than the phone"


async def test_a_reload_mid_session_keeps_the_card_on_screen(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    """Reloaded at the third card (the Mini App menu's Reload), the player
    started again at the first: the patient had to find their place among the cards again."""
    page = phone_page
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7317, programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [row] = await sessions_of(bot, patient)
    await open_as(page, bot, 7317, f"/app/session/{row.id}")
    await page.get_by_role("heading", name="1/3 · Walking").wait_for()
    await page.get_by_role("button", name="Next").click()
    await page.get_by_role("button", name="Next").click()
    await page.get_by_role("heading", name="3/3 · Thigh tightening").wait_for()
    await page.reload()
    await page.get_by_role("heading", name="3/3 · Thigh tightening").wait_for()
    await page.get_by_role("heading", name="1/3 · Walking").wait_for(state="hidden")
    assert await page.locator("[data-position]").text_content() == "3 / 4"
    # Opened afresh (a new tab, as the chat's Start opens the app anew) it starts at the first card.
    other = await page.context.new_page()
    await other.goto(page.url)
    await other.get_by_role("heading", name="1/3 · Walking").wait_for()
    assert errors(page) == []


async def test_a_session_finished_in_another_tab_first_says_the_answers_sent_here_were_not_saved(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    """The session open in two tabs: saved in one as Erledigt, then in the other as Teilweise with pain 9.

    The second read only "✅ Eingetragen: erledigt." (not what it sent), its pain 9 silently dropped."""
    page = phone_page
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7321, lang="de", programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [row] = await sessions_of(bot, patient)
    await open_as(page, bot, 7321, f"/app/session/{row.id}", lang="de")
    await page.get_by_role("heading", name="1/3 · Gehen").wait_for()
    other = await page.context.new_page()
    await other.goto(page.url)
    await other.get_by_role("heading", name="1/3 · Gehen").wait_for()
    for tab in (page, other):
        for _ in range(3):
            await tab.get_by_role("button", name="Weiter").click()
    await page.get_by_role("button", name="Speichern").click()
    await page.get_by_text("✅ Eingetragen: erledigt.").wait_for()
    assert await page.locator("#recorded-elsewhere").count() == 0
    await other.get_by_label("🌗 Teilweise").check()
    await other.get_by_label("9", exact=True).check()
    await other.get_by_role("button", name="Speichern").click()
    await other.get_by_text("✅ Eingetragen: erledigt.").wait_for()
    notice = other.locator("#recorded-elsewhere")
    assert "nicht gespeichert" in (await notice.text_content() or "")
    [row] = await sessions_of(bot, patient)
    assert (row.status, row.pain) == ("done", None)
    await other.reload()  # said once
    await other.get_by_text("✅ Eingetragen: erledigt.").wait_for()
    assert await notice.count() == 0
    assert errors(page) == []


KEPT = "Ihre Antworten von vorhin sind wieder eingetragen. Tippen Sie auf Speichern, um sie einzutragen."


async def _to_the_finish_card_with_answers(page: Any, bot: Any, telegram_id: int, path: str) -> None:
    await open_as(page, bot, telegram_id, path, lang="de")
    await page.get_by_role("heading", name="1/3 · Gehen").wait_for()
    for _ in range(3):
        await page.get_by_role("button", name="Weiter").click()
    await page.get_by_role("heading", name="Wie ist es gelaufen?").wait_for()
    assert not await page.locator("#answers-kept").is_visible(), "nothing to fill in yet"
    await page.get_by_label("🌗 Teilweise").check()
    await page.get_by_label("4", exact=True).check()


async def _answers_kept(page: Any) -> None:
    await page.locator("#answers-kept").wait_for()
    assert await page.locator("#answers-kept").text_content() == KEPT
    await page.get_by_role("heading", name="Wie ist es gelaufen?").wait_for()  # on the finish card
    assert await page.get_by_label("🌗 Teilweise").is_checked()
    assert await page.get_by_label("4", exact=True).is_checked()


# Minutes pass on the bot's clock only: the sign-in page's guard against signing in to one page twice within
# 10 s (app.js, a browser that withholds the cookie) would take the test's quick second sign-in for a loop.
_PAST_THE_SIGN_IN_GUARD = """() => Object.keys(sessionStorage).filter(k => k.startsWith('rehab-signin:'))
    .forEach(k => sessionStorage.setItem(k, '0'))"""


async def _stored(page: Any) -> list[str]:
    return list(await page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('rehab-finish:'))"))


async def test_finish_answers_saved_after_the_web_session_ended_are_filled_in_again(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    """A 40-minute session (no request meanwhile: past [web] idle_minutes, 30), then Speichern.

    The Save came back as the sign-in page, which opened the player again at a blank finish card:
    Teilweise and pain 4 were gone, and a patient who tapped Speichern again recorded "done"."""
    page = phone_page
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7323, lang="de", programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [row] = await sessions_of(bot, patient)
    path = f"/app/session/{row.id}"
    await _to_the_finish_card_with_answers(page, bot, 7323, path)
    bot.clock.advance(timedelta(minutes=40))
    await page.evaluate(_PAST_THE_SIGN_IN_GUARD)
    await page.get_by_role("button", name="Speichern").click()
    await _answers_kept(page)  # signed in again with initData, the page opened again
    [row] = await sessions_of(bot, patient)
    assert row.status == "pending", "nothing is recorded without the patient's Save"
    await page.get_by_role("button", name="Speichern").click()
    await page.get_by_text("🌗 Eingetragen: teilweise erledigt.").wait_for()
    await called(page, "BackButton.show")  # the recorded page's script has run (it is deferred)
    [row] = await sessions_of(bot, patient)
    assert (row.status, row.pain) == ("partly", 4)
    assert await _stored(page) == [], "kept only until the session shows as recorded"
    assert errors(page) == []


async def test_finish_answers_outlive_reopening_the_player_from_the_chat(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    """Saved more than an hour after the player opened: Telegram's initData is too old to sign in with, so
    the patient reopens the player from the chat (a new webview); the answers are there, on the finish card."""
    page = phone_page
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7324, lang="de", programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [row] = await sessions_of(bot, patient)
    path = f"/app/session/{row.id}"
    await _to_the_finish_card_with_answers(page, bot, 7324, path)
    bot.clock.advance(timedelta(minutes=70))
    async with page.expect_response("**/app/signin") as signin:
        await page.get_by_role("button", name="Speichern").click()
    assert (await signin.value).status == 401
    reopened = await page.context.new_page()
    await open_as(reopened, bot, 7324, path, lang="de")
    await _answers_kept(reopened)
    await reopened.get_by_role("button", name="Speichern").click()
    await reopened.get_by_text("🌗 Eingetragen: teilweise erledigt.").wait_for()
    await called(reopened, "BackButton.show")  # the recorded page's script has run (it is deferred)
    [row] = await sessions_of(bot, patient)
    assert (row.status, row.pain) == ("partly", 4)
    assert await _stored(reopened) == [], "kept only until the session shows as recorded"


async def test_next_opens_a_long_card_at_its_top(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    """Next tapped below a long card opened the next long card where the page had been scrolled to, part-way down."""
    page = phone_page
    long = " ".join(["Keep your back straight and breathe calmly."] * 30)
    exercises = PLAYER_EXERCISES.replace(
        '"Pull both feet up towards you, then point them away."',
        '"Pull both feet up towards you, then point them away. {long}"',
    )
    (tmp_path / "walk.gif").write_bytes(b"GIF89a-walking")
    (tmp_path / "pump.jpg").write_bytes(b"\xff\xd8fake-jpeg-ankle-pumps")
    (tmp_path / "exercises.toml").write_text(exercises.replace("{long}", long), encoding="utf-8")
    (tmp_path / "programmes.toml").write_text(PLAYER_PROGRAMME, encoding="utf-8")
    bot = await bot_factory(content={"dir": tmp_path}, web=miniapp_web())
    patient = await enrolled(bot, 7319, programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [row] = await sessions_of(bot, patient)
    await open_as(page, bot, 7319, f"/app/session/{row.id}")
    await page.get_by_role("heading", name="1/3 · Walking").wait_for()
    await page.get_by_role("button", name="Next").click()  # scrolled down to Next, below the long text
    heading = page.get_by_role("heading", name="2/3 · Ankle pumps")
    await heading.wait_for()
    top = await page.locator("#card-2").evaluate("e => e.getBoundingClientRect().top")
    assert 0 <= top < 50, f"the card starts {top}px from the top of the screen"
    assert await heading.evaluate("e => e === document.activeElement")
    assert errors(page) == []


async def test_the_hold_timer_stops_off_its_card_and_is_announced_at_start_and_end_only(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    """The hold timer ran on behind another card, and its <output> (a live region) was read out every second."""
    page = phone_page
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7320, programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [row] = await sessions_of(bot, patient)
    await open_as(page, bot, 7320, f"/app/session/{row.id}")
    await page.get_by_role("button", name="Next").click()
    await page.get_by_role("button", name="Next").click()
    hold = page.locator("#card-3")
    left, said = hold.locator("[data-timer-left]"), hold.locator("[data-timer-said]")
    assert await left.get_attribute("aria-live") == "off"
    assert await said.get_attribute("role") == "status"
    await hold.get_by_role("button", name="Start the 5 s hold").click()
    assert await said.text_content() == "Hold for 5 s."
    await page.wait_for_function("() => document.querySelector('#card-3 [data-timer-left]').textContent === '3 s'")
    assert await said.text_content() == "Hold for 5 s.", "not a word each second"
    await page.get_by_role("button", name="Back").click()
    await page.get_by_role("button", name="Next").click()
    await page.wait_for_timeout(3500)  # past where the hold would have ended
    assert (await left.text_content(), await said.text_content()) == ("5 s", ""), "stopped and reset"
    await hold.get_by_role("button", name="Start the 5 s hold").click()
    await said.get_by_text("Hold done.").wait_for(state="attached", timeout=8000)
    assert await left.text_content() == "0 s"
    assert errors(page) == []


async def test_the_repetition_counter_says_when_all_sets_are_done(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    """After the last repetition of the last set the counter stood still and said nothing."""
    page = phone_page
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    patient = await enrolled(bot, 7321, programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [row] = await sessions_of(bot, patient)
    await open_as(page, bot, 7321, f"/app/session/{row.id}")
    await page.get_by_role("button", name="Next").click()
    card = page.locator("#card-2")  # 2 sets of 20
    add = card.get_by_role("button", name="+1 repetition")
    for _ in range(39):
        await add.click()
    assert await card.get_by_text("All 2 sets done").is_hidden()
    await add.click()
    await card.get_by_text("All 2 sets done").wait_for()
    await add.click()
    assert (await card.locator("[data-rep]").text_content(), await card.locator("[data-set]").text_content()) == (
        "20",
        "2",
    )
    assert await card.get_by_text("All 2 sets done").is_visible()


@pytest.mark.parametrize("lang", ["en", "de", "fr"])
async def test_a_telegram_user_the_clinic_does_not_know_is_told_how_to_join_in_their_language(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any, lang: str
) -> None:
    """A stranger opening the Mini App read "This app could not check who you are", in the clinic's language:
    Telegram had vouched for them; they are simply no patient yet. French is no language of the app: the
    clinic's (English) it is."""
    page = phone_page
    bot = await bot_factory(web=miniapp_web())
    async with page.expect_response("**/app/signin") as signin:
        await open_as(page, bot, 7326, "/app", lang=lang)
    assert (await signin.value).status == 403
    title, told = {
        "de": ("Die App der Klinik wird geöffnet", "bitten Sie die Klinik um Ihren Einladungslink"),
    }.get(lang, ("Opening the clinic's app", "ask the clinic for your invitation link"))
    status = page.locator("#miniapp-status")
    await status.filter(has_text=told).wait_for()
    assert "could not check who you are" not in (await status.text_content() or "")
    assert await page.get_by_role("heading", name=title).is_visible()
    assert await page.evaluate("() => document.documentElement.lang") == ("de" if lang == "de" else "en")
    assert await serious(page) == []


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two computed colours ("rgb(r, g, b)")."""

    def luminance(colour: str) -> float:
        channels = [int(part) / 255 for part in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3]]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("dark", [False, True])
async def test_an_unchecked_answer_ring_stands_out_from_the_page(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any, dark: bool
) -> None:
    """An answer's radio button is seen by its ring alone until it is chosen: WCAG 1.4.11 asks 3:1 against the page.

    Pico drew it at 1.5:1 on white and 1.3:1 on Telegram's dark #212121 (axe-core does not check this).
    """
    page = phone_page
    bot = await bot_factory(web=miniapp_web())
    await checkin_patient(bot, 7318, therapist=5001, language="de")
    await open_as(page, bot, 7318, "/app/home", lang="de", dark=dark)
    await page.get_by_role("button", name="Schmerzen").click()
    ring = page.get_by_label("3", exact=True)
    await ring.wait_for()
    await page.wait_for_timeout(300)  # past Pico's 0.2 s colour transition
    border = await ring.evaluate("e => getComputedStyle(e).borderTopColor")
    background = await page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert contrast(border, background) >= 3, (border, background)


async def test_an_urgent_red_flag_in_the_symptom_check_shows_the_reply_and_alerts_the_therapist(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any
) -> None:
    page = phone_page
    bot = await bot_factory(web=miniapp_web(), delivery={"poll_interval": 0.5})  # the real dispatch job, no tick()
    patient = await checkin_patient(bot, 7311, therapist=5001, language="de")
    await open_as(page, bot, 7311, "/app/home", lang="de", dark=True)
    await page.get_by_role("button", name="Wunde und Beschwerden").click()
    await page.get_by_role("heading", name="Wunde und Beschwerden").wait_for()
    assert await serious(page) == []
    await page.get_by_label("Ja").check()
    await page.get_by_role("button", name="Weiter").click()
    # The emergency signs first, then calf pain: answer No until the calf question, which is urgent.
    for _ in range(10):
        question = await page.locator(".app-question").text_content() or ""
        if "Wade" in question:
            break
        await page.get_by_label("Nein").check()
        await page.get_by_role("button", name="Weiter").click()
        await page.wait_for_load_state()
    started = time.monotonic()
    await page.get_by_label("Ja").check()
    await page.get_by_role("button", name="Weiter").click()
    await page.wait_for_url("**/app/result")
    reply = page.get_by_role("alert")
    assert "Ihr Behandlungsteam wurde informiert." in (await reply.text_content() or "")
    # "... rufen Sie die 112.": the emergency number is a link that calls it.
    call = reply.get_by_role("link", name="112", exact=True)
    assert await call.get_attribute("href") == "tel:112"
    await called(page, "haptic", "warning")
    assert await serious(page) == []
    [alert] = await tg.user(5001).wait_for(lambda m: patient.alias in (m.text or ""), timeout=PROMISE)
    delay = time.monotonic() - started
    assert delay < PROMISE and "red flag" in (alert.text or "").lower(), (delay, alert.text)
    print(f"staff alert {delay:.2f} s after the answer")
    assert errors(page) == []


async def test_an_answer_sent_after_the_session_went_idle_signs_in_again_and_asks_the_question_again(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any
) -> None:
    """The patient left the check-in open for longer than [web] idle_minutes (30), then tapped Weiter.

    The page said "Error 401: Please sign in: send /dashboard to the clinic's bot" (the staff's way in),
    in the clinic's language; now the form's page signs in again with Telegram's initData and asks again.
    """
    page = phone_page
    bot = await bot_factory(web=miniapp_web())
    patient = await checkin_patient(bot, 7314, therapist=5001, language="de")
    await open_as(page, bot, 7314, "/app/home", lang="de")
    await page.get_by_role("button", name="Schmerzen").click()
    await page.get_by_role("heading", name="Schmerzen").wait_for()
    form_url = page.url
    bot.clock.advance(timedelta(minutes=31))
    await page.get_by_label("3", exact=True).check()
    await page.get_by_role("button", name="Weiter").click()
    await page.wait_for_url(form_url)
    await page.get_by_role("heading", name="Schmerzen").wait_for()  # signed in again, the question again
    assert "/dashboard" not in (await page.locator("main").text_content() or "")
    await page.get_by_label("3", exact=True).check()
    await page.get_by_role("button", name="Weiter").click()
    await page.get_by_text("Danke, Ihre Antworten sind gespeichert.").wait_for()
    async with bot.db.session() as s:
        [answer] = (await s.exec(select(Answer).where(Answer.patient_id == patient.id))).all()
    assert answer.value == 3
    assert errors(page) == []


async def test_another_patients_session_and_stale_init_data_are_refused(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, phone_page: Any
) -> None:
    page = phone_page
    bot = await player_bot(bot_factory, tmp_path, web=miniapp_web())
    anna = await enrolled(bot, 7312, programme_id="short", phase_id="all")
    await enrolled(bot, 7313, programme_id="short", phase_id="all")
    await at(bot, berlin(WED, "09:00"))
    [annas] = await sessions_of(bot, anna)
    # Stale initData (two hours old): the sign-in is refused and the page says to reopen the app.
    async with page.expect_response("**/app/signin") as signin:
        await open_as(page, bot, 7313, f"/app/session/{annas.id}", at=bot.clock.now() - timedelta(hours=2))
    assert (await signin.value).status == 401
    await page.get_by_text("could not check who you are").wait_for()
    # Ben, signed in, opens Anna's session: refused, kindly and in his language (it said "Error 404: There is
    # no such page.", with no way back), and nothing of hers on the page.
    await page.context.clear_cookies()
    async with page.expect_response(lambda r: r.url.endswith(f"/app/session/{annas.id}") and r.status == 404):
        await open_as(page, bot, 7313, f"/app/session/{annas.id}")
    await page.get_by_role("heading", name="This page cannot be shown").wait_for()
    main = await page.locator("main").text_content() or ""
    assert "Your own sessions and check-ins are on today's page." in main
    assert "404" not in main and "Walking" not in main and "09:00" not in main
    await page.get_by_role("link", name="Back to today").click()
    await page.get_by_role("heading", name="Your rehab").wait_for()
    assert await serious(page) == []
    [annas] = await sessions_of(bot, anna)
    assert annas.status == "pending"


async def test_telegrams_dark_theme_is_on_the_page_before_its_body_is_drawn(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any
) -> None:
    """No flash of the browser's own scheme: the theme is set in <head>, before the body exists.

    Set later (by a deferred script), the page showed the light scheme first, and Pico's colour
    transitions ran for 0.2 s from its link colours to the dark scheme's, below AA contrast meanwhile.
    """
    page = phone_page
    await page.add_init_script(
        """
        new MutationObserver((records, observer) => {
          if (document.body) {
            window.__themeAtBody = document.documentElement.getAttribute("data-theme");
            window.__telegramAtBody = document.documentElement.classList.contains("in-telegram");
            observer.disconnect();
          }
        }).observe(document, {childList: true, subtree: true});
        """
    )
    bot = await bot_factory(web=miniapp_web())
    await checkin_patient(bot, 7312, therapist=5001, language="en")
    await open_as(page, bot, 7312, "/app/home", dark=True)
    await page.get_by_role("heading", name="Your rehab").wait_for()  # past the sign-in page, which navigates here
    assert await page.evaluate("() => [window.__themeAtBody, window.__telegramAtBody]") == ["dark", True]


async def test_a_theme_change_in_telegram_recolours_the_open_page(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any
) -> None:
    page = phone_page
    bot = await bot_factory(web=miniapp_web())
    await checkin_patient(bot, 7313, therapist=5001, language="en")
    await open_as(page, bot, 7313, "/app/home")
    await page.get_by_role("heading", name="Your rehab").wait_for()  # past the sign-in page, which navigates here
    colours = "() => [document.documentElement.dataset.theme, getComputedStyle(document.body).backgroundColor]"
    assert await page.evaluate(colours) == ["light", "rgb(255, 255, 255)"]
    await page.evaluate(
        """dark => {
          Telegram.WebApp.colorScheme = "dark";
          Telegram.WebApp.themeParams = dark;
          window.__tg.emit("themeChanged");
        }""",
        DARK,
    )
    await page.wait_for_function("() => document.documentElement.dataset.theme === 'dark'")
    await page.wait_for_function("() => getComputedStyle(document.body).backgroundColor === 'rgb(33, 33, 33)'")
    assert await serious(page) == []


async def at_the_times_step(bot: Any, tg: FakeTelegram, alias: str, telegram_id: int, therapist: int) -> Any:
    """A patient who opened the invitation, agreed and chose the time zone: asked for session times."""
    doc = await make_staff(bot.db, name="Dr Weber", telegram_id=therapist)
    invite = await new_invite(bot, alias, therapist_id=doc.id)
    user = tg.user(telegram_id, language_code="en")
    await user.send(f"/start {invite.code}")
    await next_text(user)
    await user.press("Yes, I agree")
    zone = await next_text(user)
    await user.press(next(label for label in zone.button_labels if label.startswith("Berlin")))
    await next_text(user)
    return user


async def test_a_patient_still_enrolling_answers_the_symptom_check_the_chat_offered_in_privacy_mode(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any
) -> None:
    """Privacy mode: 'I can't feel my legs' typed at enrolment's times step offers the symptom check in the
    Mini App. The app said "Please finish setting up..." to everyone not yet enrolled, so the check could not
    be answered; now a patient who has agreed answers it, reads the red-flag reply and the therapist is
    alerted. No way (the menu, the BackButton, "Back to today") leads to the pages that are not theirs yet."""
    page = phone_page
    bot = await bot_factory(web=miniapp_web(), privacy={"health_data_in_chat": False}, delivery={"poll_interval": 0.5})
    user = await at_the_times_step(bot, tg, "P-150", 7330, 5001)
    await user.send("I can't feel my legs")
    [offer] = await user.wait_for(include_edits=False)
    [form] = [
        urlsplit(b["web_app"]["url"]).path
        for row in (offer.reply_markup or {})["inline_keyboard"]
        for b in row
        if "web_app" in b and b["text"].startswith("🩺")
    ]
    await open_as(page, bot, 7330, form)
    await page.get_by_role("heading", name="Wound and symptom check").wait_for()
    assert await page.get_by_role("link", name="Today").count() == 0
    assert await serious(page) == []
    started = time.monotonic()
    await page.get_by_label("Yes, at least one").check()
    await page.get_by_role("button", name="Next").click()
    await page.locator(".app-question", has_text="bladder or bowel").wait_for()
    await page.get_by_label("Yes").check()
    await page.get_by_role("button", name="Next").click()
    await page.wait_for_url("**/app/result")
    reply = page.get_by_role("alert")
    assert "Your care team has been told." in (await reply.text_content() or "")
    assert await reply.get_by_role("link", name="112", exact=True).first.get_attribute("href") == "tel:112"
    await called(page, "haptic", "warning")
    assert await page.get_by_role("link", name="Back to today").count() == 0
    assert ["BackButton.show"] not in await calls(page)
    assert await serious(page) == []
    [alert] = await tg.user(5001).wait_for(lambda m: "P-150" in (m.text or ""), timeout=PROMISE)
    # Privacy mode: the staff chat names no symptom, only the alert and the dashboard.
    assert time.monotonic() - started < PROMISE and "emergency alert" in (alert.text or "").lower(), alert.text
    assert errors(page) == []
    # Today's page is not theirs yet: it says to finish setting up, as the app always did.
    assert (await page.goto(web_url(bot) + "/app/home")).status == 403
    await page.get_by_text("Please finish setting up in the chat with the clinic's bot first").wait_for()
