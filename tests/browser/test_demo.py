"""`rehab-bot demo` in real Chromium: a visitor walks the demo as the patient and the therapist.

The demo runs in this process exactly as the command runs it (rehab_bot.demo.runner.serve: the
real Application and engine, the embedded fake Bot API, a seeded SQLite database in a temporary
folder); Chromium drives the page. The visitor opens the invitation, enrols (consent, time zone,
times), moves the clock to the first reminder, taps Done, answers the symptom check with a
red flag, and sees the patient told what to do now and the alert reach the therapist's chat;
the therapist acknowledges it, then opens the web dashboard from their side (one-time link).
The page is checked with axe-core at the start and at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rehab_bot.demo.runner import serve
from tests.browser.axe import serious

# Replies in one chat are paced at one message a second, as Telegram requires.
WAIT = 15_000


@pytest.fixture
async def demo_url(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    stop = asyncio.Event()
    urls: list[str] = []
    language = getattr(request, "param", "en")
    task = asyncio.create_task(serve(tmp_path, port=0, language=language, ready=urls.append, stop=stop))
    for _ in range(300):
        if urls or task.done():
            break
        await asyncio.sleep(0.1)
    if task.done():
        task.result()  # raises what went wrong
    assert urls, "the demo did not start within 30 s"
    try:
        yield urls[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def tap(chat: Any, label: str) -> None:
    """Tap the newest button with this label in a chat, once it is there."""
    button = chat.get_by_role("button", name=label, exact=True).last
    await button.wait_for(timeout=WAIT)
    await button.click()


async def bot_says(chat: Any, text: str) -> Any:
    """The newest bot message containing text, once it arrived."""
    message = chat.locator("li.msg.theirs", has_text=text).last
    await message.wait_for(timeout=WAIT)
    return message


async def test_a_visitor_enrols_gets_the_first_reminder_taps_done_and_a_red_flag_reaches_the_therapist(
    page: Any, demo_url: str, tmp_path: Path
) -> None:
    await page.goto(demo_url)
    assert await page.title() == "rehab-bot demo"
    patient = page.locator("#patient-chat")
    therapist = page.locator("#therapist-chat")
    assert "Monday" in await page.locator("#clock").inner_text() or await page.locator("#clock time").inner_text()
    # The seeded clinic: this morning's critical alert about P-2042 is in the therapist's chat.
    await bot_says(therapist, "CRITICAL alert for P-2042")
    assert await serious(page) == []

    # Enrol: the invitation link, consent, the clinic's time zone, the programme's times.
    await tap(page.locator("#patient-chat"), "Start")
    await bot_says(patient, "Do you agree?")
    await tap(patient, "Yes, I agree")
    consent = patient.locator("li.msg.theirs", has_text="Do you agree?").last
    await consent.locator(".edited").wait_for(timeout=WAIT)  # the consent message was edited ...
    assert await consent.locator("button").count() == 0  # ... and its buttons are gone
    await bot_says(patient, "Which time zone are you in?")
    await tap(patient, "Berlin – the clinic's time zone (now 08:40)")
    await bot_says(patient, "When would you like your reminders?")
    await tap(patient, "Suggested by your programme · 09:00, 13:00, 18:00")
    await bot_says(patient, "Your first reminder comes today at 09:00.")

    # The clock moves to the first reminder; Done.
    await page.get_by_role("button", name="Next reminder").click()
    await page.locator("#clock", has_text="09:00").wait_for(timeout=WAIT)
    reminder = await bot_says(patient, "Time for your exercise session (09:00).")
    labels = await reminder.get_by_role("button").all_inner_texts()
    assert labels == ["▶ Start", "✅ Done", "🌗 Partly", "⏭ Skip", "⏰ Snooze"]
    await tap(patient, "✅ Done")
    await reminder.get_by_text("Logged: done.").wait_for(timeout=WAIT)
    assert await reminder.locator(".edited").count() == 1

    # A red flag: the symptom check, one warning sign, the emergency question answered Yes.
    await page.get_by_label("Message (Patient P-2044)").fill("/checkin")
    await page.locator("#patient-chat + form").get_by_role("button", name="Send").click()
    await tap(patient, "Wound and symptom check")
    await tap(patient, "Yes, at least one")
    await bot_says(patient, "bladder or bowel")
    await tap(patient, "Yes")
    await bot_says(patient, "Call 112 now")
    alert = await bot_says(therapist, "EMERGENCY alert for P-2044")
    assert "bladder or bowel" in await alert.inner_text()
    assert await alert.get_by_role("button").all_inner_texts() == ["✅ Acknowledge"]

    # The therapist acknowledges it from their chat.
    await alert.get_by_role("button", name="✅ Acknowledge").click()
    await bot_says(therapist, "acknowledged")

    assert await serious(page) == []
    assert page.console_errors == []

    # The dashboard opens from the therapist's side: a one-time sign-in link, then the caseload.
    async with page.context.expect_page() as opened:
        await page.locator("#therapist-title").get_by_role("link", name="Dashboard", exact=True).click()
    dashboard = await opened.value
    await dashboard.locator("form[action='/signin'] button[type=submit]").click()
    await dashboard.wait_for_url("**/caseload", timeout=WAIT)
    for alias in ("P-2041", "P-2042", "P-2043", "P-2044"):
        await dashboard.get_by_text(alias, exact=True).first.wait_for(timeout=WAIT)
    await dashboard.go_back()
    await dashboard.go_back()  # the same link again: used once, refused as it opens (no Sign in button)
    await dashboard.reload()
    await dashboard.get_by_role("alert").wait_for(timeout=WAIT)
    assert await dashboard.locator("form[action='/signin'] button[type=submit]").count() == 0

    # The admin's pages too (staff, invitations, audit, reports): an outside tester could not reach them.
    async with page.context.expect_page() as opened:
        await page.locator("#therapist-title").get_by_role("link", name="Dashboard (admin)").click()
    admin = await opened.value
    await admin.locator("form[action='/signin'] button[type=submit]").click()
    await admin.wait_for_url("**/caseload", timeout=WAIT)
    await admin.get_by_role("link", name="Admin").click()
    await admin.wait_for_url("**/admin/staff", timeout=WAIT)
    await admin.get_by_role("heading", name="Open invitations").wait_for(timeout=WAIT)

    # Everything the demo wrote is in its folder: the database, private.
    assert (tmp_path / "demo.db").exists()
    assert (tmp_path / "demo.db").stat().st_mode & 0o077 == 0


async def test_a_focused_button_keeps_the_focus_when_the_chat_is_redrawn(page: Any, demo_url: str) -> None:
    """The chat polls every second and redraws itself when a message arrives: a keyboard user's focus
    on a button must survive that, or their Enter presses nothing (seen: a focused consent button lost
    between the Tab and the Enter)."""
    await page.goto(demo_url)
    await page.get_by_role("button", name="Start").click()
    patient = page.locator("#patient-chat")
    await bot_says(patient, "Do you agree?")
    agree = patient.get_by_role("button", name="Yes, I agree").last
    await agree.focus()
    drawn = await patient.locator("li.msg").count()
    # A full redraw as the polling makes it when the chat changed (its URL without `since`, so the page
    # sends it all; its swap), then Enter at once: no moment between the two may leave the focus on a
    # button htmx has not wired up yet (the page settles its chat in the same task as the swap).
    await page.evaluate(
        """() => new Promise((swapped) => {
          const log = document.getElementById("patient-log");
          document.addEventListener("htmx:afterSwap", swapped, {once: true});
          htmx.ajax("GET", "/chat/patient?lang=en", {target: log, swap: log.getAttribute("hx-swap")});
        })"""
    )
    assert await patient.locator("li.msg").count() == drawn
    assert await page.evaluate("() => document.activeElement.textContent.trim()") == "Yes, I agree"
    await page.keyboard.press("Enter")
    await bot_says(patient, "Which time zone are you in?")
    assert await page.evaluate("() => document.activeElement.id") == "patient-log"


@pytest.mark.parametrize("demo_url", ["de"], indirect=True)
async def test_the_german_page_at_phone_width_is_labelled_and_axe_clean(phone_page: Any, demo_url: str) -> None:
    await phone_page.goto(demo_url)
    assert await phone_page.locator("html").get_attribute("lang") == "de"
    assert await phone_page.title() == "rehab-bot-Demo"
    await phone_page.get_by_role("button", name="Starten").click()
    patient = phone_page.locator("#patient-chat")
    await bot_says(patient, "Sind Sie einverstanden?")
    # Keyboard only: Tab to the consent button, Enter; focus comes back to the chat, not the page's top.
    agree = patient.get_by_role("button", name="Ja, ich bin einverstanden")
    await agree.focus()
    await phone_page.keyboard.press("Enter")
    await bot_says(patient, "In welcher Zeitzone sind Sie?")
    assert await phone_page.evaluate("() => document.activeElement.id") == "patient-log"
    field = phone_page.get_by_label("Nachricht (Patient P-2044)")
    await field.focus()
    await phone_page.keyboard.type("/help")
    await phone_page.keyboard.press("Enter")  # the keyboard alone sends
    await patient.locator("li.msg.mine", has_text="/help").wait_for(timeout=WAIT)
    assert await phone_page.evaluate("() => document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
    assert await serious(phone_page) == []
    assert phone_page.console_errors == []


async def test_a_message_of_spaces_is_not_sent_and_the_console_stays_clean(page: Any, demo_url: str) -> None:
    """Spaces passed the field's `required`, the page refused them with a 400 and the browser logged
    the error; Telegram's own Send does nothing for them. The field now asks for a character."""
    await page.goto(demo_url)
    await page.get_by_role("button", name="Start").click()
    patient = page.locator("#patient-chat")
    await bot_says(patient, "Do you agree?")
    refused: list[int] = []
    page.on("response", lambda response: refused.append(response.status) if response.status >= 400 else None)
    field = page.get_by_label("Message (Patient P-2044)")
    await field.fill("   ")
    await field.press("Enter")
    await page.wait_for_timeout(500)
    assert await field.evaluate("(el) => el.validity.patternMismatch") is True
    assert refused == [] and page.console_errors == []
    assert await patient.locator("li.msg.mine").count() == 1  # only the /start
    await field.fill("  /help ")
    await field.press("Enter")
    await patient.locator("li.msg.mine", has_text="/help").wait_for(timeout=WAIT)
    assert refused == [] and page.console_errors == []


async def test_the_patient_answers_the_teams_reply_with_the_reply_arrow_and_the_thread_goes_on(
    page: Any, demo_url: str
) -> None:
    """The team's reply tells the patient to "reply to this message (swipe it left or tap Reply)", and the
    page had no way to: every text went out as a new message. ↩ under a message answers it, as Telegram's
    Reply does; the answer reaches the therapist as part of the thread, and both chats show what it answers."""
    await page.goto(demo_url)
    patient, therapist = page.locator("#patient-chat"), page.locator("#therapist-chat")
    await tap(patient, "Start")
    await tap(patient, "Yes, I agree")
    await tap(patient, "Berlin – the clinic's time zone (now 08:40)")
    await tap(patient, "Suggested by your programme · 09:00, 13:00, 18:00")
    await bot_says(patient, "Your first reminder comes today at 09:00.")
    field = page.get_by_label("Message (Patient P-2044)")
    await field.fill("Can I take a shower yet?")
    await field.press("Enter")
    await tap(patient, "✉️ Send to my care team")
    await bot_says(therapist, "Can I take a shower yet?")
    await tap(therapist, "↩️ Reply")
    await bot_says(therapist, "Type your reply to P-2044")
    await page.get_by_label("Message (Therapist Alex Physio)").fill("Yes, cover the wound.")
    await page.get_by_label("Message (Therapist Alex Physio)").press("Enter")
    answer = await bot_says(patient, "Yes, cover the wound.")
    assert "Can I take a shower yet?" in await answer.locator(".quote").inner_text()

    await answer.get_by_role("link", name="Reply").click()
    replying = page.locator("section.phone", has=patient).locator(".replying")
    assert "Yes, cover the wound." in await replying.inner_text()
    assert await page.evaluate("() => document.activeElement.id") == "patient-text"
    await page.keyboard.type("Thank you! And a bath?")
    await page.keyboard.press("Enter")
    thread = await bot_says(therapist, "answered your team's reply")
    assert "Thank you! And a bath?" in await thread.inner_text()
    mine = patient.locator("li.msg.mine", has_text="And a bath?")
    assert "Yes, cover the wound." in await mine.locator(".quote").inner_text()
    assert await replying.is_hidden(), "sent: the next message is a new one again"
    assert await serious(page) == []
    assert page.console_errors == []


async def test_a_second_tap_on_a_keyboard_whose_first_is_answered_changes_nothing(page: Any, demo_url: str) -> None:
    """A quick second tap on the same keyboard ("Yes, I agree", then "No, thank you") was sent while the first
    was on its way; arriving after the bot had removed the keyboard, the page answered 409 and the browser
    logged it. A keyboard now sends one press at a time (the second tap is dropped, as Telegram takes one
    answer to a keyboard), and a press on a button that is gone changes nothing (tests/test_demo.py). The
    first press's answer is held back until the second tap is made."""
    await page.goto(demo_url)
    patient = page.locator("#patient-chat")
    await tap(patient, "Start")
    await bot_says(patient, "Do you agree?")
    refused: list[int] = []
    page.on("response", lambda response: refused.append(response.status) if response.status >= 400 else None)
    answered, presses = asyncio.Event(), 0

    async def hold_the_first_answer(route: Any) -> None:
        nonlocal presses
        presses += 1
        response = await route.fetch()  # the page has answered: the bot took the press
        if presses == 1:
            answered.set()
            await asyncio.sleep(1.5)
        await route.fulfill(response=response)

    await page.route("**/chat/patient/press*", hold_the_first_answer)
    await patient.get_by_role("button", name="Yes, I agree", exact=True).last.click()
    await asyncio.wait_for(answered.wait(), 10)
    await patient.get_by_role("button", name="No, thank you", exact=True).last.click()  # still drawn: held back
    await bot_says(patient, "Which time zone are you in?")
    await page.wait_for_timeout(2_000)
    assert await patient.locator("li.msg.theirs", has_text="Which time zone are you in?").count() == 1
    assert await patient.locator("li.msg.theirs", has_text="Do you agree?").last.locator(".edited").count() == 1
    assert presses == 1, "the second tap was sent while the first was on its way"
    assert refused == [] and page.console_errors == []
