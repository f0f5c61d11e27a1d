"""What a patient types in the Mini App's message form is sent, or shown back with a clear reason, never lost.

The form's textarea allows 3500 characters (message.MAX_TEXT) as the browser counts them: a line
break is one character there, but the browser sends it as two (CR LF). A message of exactly
3500 characters with line breaks must therefore be sent; one that is too long anyway (a
script or an older page) gets the page back with the reason and the text still in the box.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from e2e.test_checkins import enrolled
from PIL import Image
from rig.telegram_server import FakeTelegram
from sqlmodel import select
from webrig import miniapp_web

from rehab_bot import message as message_core
from rehab_bot.models import CareMessage
from tests.browser.axe import serious
from tests.browser.miniapp_stub import open_as

PATIENT, THERAPIST = 7293, 7193


async def _bot(bot_factory: Any) -> Any:
    bot = await bot_factory(web=miniapp_web(), privacy={"health_data_in_chat": False})
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    return bot


async def message_box(page: Any, bot: Any) -> Any:
    """The patient's message box on /app/messages, opened in the Mini App."""
    await open_as(page, bot, PATIENT, "/app/messages")
    box = page.get_by_label("Your message")
    await box.wait_for()
    return box


async def test_a_message_as_long_as_the_box_allows_with_line_breaks_is_sent(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any
) -> None:
    bot = await _bot(bot_factory)
    page = phone_page
    box = await message_box(page, bot)
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
    box = await message_box(page, bot)
    text = "x" * (message_core.MAX_TEXT + 1)
    await box.evaluate("(el, text) => { el.removeAttribute('maxlength'); el.value = text; }", text)
    await page.get_by_role("button", name="Send to my care team").click()
    await page.get_by_text(f"at most {message_core.MAX_TEXT} characters").wait_for()
    assert await page.get_by_label("Your message").input_value() == text


async def test_a_photo_over_the_limit_is_refused_before_sending_and_the_text_stays(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any, tmp_path: Path
) -> None:
    """The page's script checks the chosen photo against [care] photo_max_bytes (the server's own limit,
    rendered into the form): nothing is sent, the reason is shown, the typed text stays in the box."""
    bot = await bot_factory(
        web=miniapp_web(),
        privacy={"health_data_in_chat": False},
        care={"photo_dir": str(tmp_path / "photos"), "photo_max_bytes": 10_000},
    )
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    page = phone_page
    box = await message_box(page, bot)
    await box.fill("The wound is red, see the photo")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    real = io.BytesIO()  # a real JPEG: the server re-encodes uploads, so what it keeps must decode
    Image.new("RGB", (24, 16), (200, 120, 90)).save(real, "JPEG")
    photo = {"name": "wound.jpg", "mimeType": "image/jpeg", "buffer": real.getvalue() + b"\x00" * 10_001}
    await page.get_by_label("A photo (optional)").set_input_files(photo)
    await page.get_by_role("button", name="Send to my care team").click()
    await page.get_by_text("This photo is too large (at most 0.01 MB).").wait_for()
    assert await page.get_by_label("Your message").input_value() == "The wound is red, see the photo"
    assert posts == [] and await message_rows(bot) == 0
    # A photo within the limit is sent with the text.
    small = {**photo, "buffer": real.getvalue()}
    await page.get_by_label("A photo (optional)").set_input_files(small)
    assert await page.get_by_text("This photo is too large").is_hidden()
    await page.get_by_role("button", name="Send to my care team").click()
    await page.get_by_text("Sent to your care team.").first.wait_for()
    assert await message_rows(bot) == 1


async def message_rows(bot: Any) -> int:
    async with bot.db.session() as session:
        return len((await session.exec(select(CareMessage))).all())


async def test_the_crisis_question_is_asked_and_yes_shows_the_crisis_text(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any
) -> None:
    bot = await _bot(bot_factory)
    page = phone_page
    box = await message_box(page, bot)
    await box.fill("I took an extra tablet last night")
    await page.get_by_role("button", name="Send to my care team").click()
    question = page.get_by_text("Are you having thoughts of ending your life")
    await question.wait_for()
    assert await serious(page) == []
    await page.get_by_role("button", name="Yes", exact=True).click()
    await page.get_by_role("alert").filter(has_text="112").wait_for()
    async with bot.db.session() as session:
        [sent] = (await session.exec(select(CareMessage))).all()
    assert sent.text == "I took an extra tablet last night"
