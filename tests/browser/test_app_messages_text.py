"""What a patient types in the Mini App's message form is sent, or shown back with a clear reason, never lost.

The form's textarea allows 3500 characters (message.MAX_TEXT) as the browser counts them: a line
break is one character there, but the browser sends it as two (CR LF). A message of exactly
3500 characters with line breaks must therefore be sent; one that is too long anyway (a
script or an older page) gets the page back with the reason and the text still in the box.
"""

from __future__ import annotations

from typing import Any

from e2e.test_checkins import enrolled
from rig.telegram_server import FakeTelegram
from webrig import miniapp_web

from rehab_bot import message as message_core
from tests.browser.miniapp_stub import open_as

PATIENT, THERAPIST = 7293, 7193


async def _bot(bot_factory: Any) -> Any:
    bot = await bot_factory(web=miniapp_web(), privacy={"health_data_in_chat": False})
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    return bot


async def test_a_message_as_long_as_the_box_allows_with_line_breaks_is_sent(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any
) -> None:
    bot = await _bot(bot_factory)
    page = phone_page
    await open_as(page, bot, PATIENT, "/app/messages")
    box = page.get_by_label("Your message")
    await box.wait_for()
    line = "My back hurts a bit more in the evening.\n"
    text = (line * (message_core.MAX_TEXT // len(line) + 1))[: message_core.MAX_TEXT]
    await box.fill(text)
    assert await box.evaluate("el => el.value.length") == message_core.MAX_TEXT  # what the box allows
    await page.get_by_role("button", name="Send to my care team").click()
    await page.get_by_text("Sent to your care team.").first.wait_for()


async def test_a_message_that_is_too_long_comes_back_with_the_reason_and_the_text(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any
) -> None:
    bot = await _bot(bot_factory)
    page = phone_page
    await open_as(page, bot, PATIENT, "/app/messages")
    box = page.get_by_label("Your message")
    await box.wait_for()
    text = "x" * (message_core.MAX_TEXT + 1)
    await box.evaluate("(el, text) => { el.removeAttribute('maxlength'); el.value = text; }", text)
    await page.get_by_role("button", name="Send to my care team").click()
    await page.get_by_text(f"at most {message_core.MAX_TEXT} characters").wait_for()
    assert await page.get_by_label("Your message").input_value() == text
