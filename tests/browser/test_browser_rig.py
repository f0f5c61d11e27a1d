"""The browser rig itself: Chromium starts, and the axe check finds what it should."""

from __future__ import annotations

from typing import Any

from tests.browser.axe import serious

GOOD = """<!doctype html><html lang="en"><head><title>Good</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>
<h1>Sign in</h1><form><label for="alias">Alias</label><input id="alias" name="alias">
<button type="submit">Continue</button></form></main></body></html>"""

# An image without alt text and a button without a name: both serious or critical in axe.
BAD = """<!doctype html><html lang="en"><head><title>Bad</title></head><body><main>
<h1>Sign in</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><button></button></main></body></html>"""


async def test_axe_passes_a_labelled_page(page: Any) -> None:
    await page.set_content(GOOD)
    assert await serious(page) == []
    assert page.console_errors == []


async def test_axe_finds_an_unnamed_button_and_an_image_without_alt(page: Any) -> None:
    await page.set_content(BAD)
    found = await serious(page)
    assert any(line.startswith("button-name") for line in found), found
    assert any(line.startswith("image-alt") for line in found), found


async def test_phone_width_page_reports_its_viewport(phone_page: Any) -> None:
    await phone_page.set_content(GOOD)
    assert await phone_page.evaluate("() => window.innerWidth") == 390
