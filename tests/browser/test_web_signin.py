"""Signing in to the web app in Chromium: the one-time /dashboard link and the Mini App's signed initData."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from factories import make_patient, make_staff
from webrig import WEB, dashboard_link, init_data, web_url

from tests.browser.axe import serious


async def test_the_dashboard_link_signs_in_once_and_a_used_or_expired_link_is_refused(
    bot_factory: Any, page: Any, browser: Any
) -> None:
    bot = await bot_factory(web=WEB)
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    await make_patient(bot.db, bot.clock, alias="LWS-0001", therapist_id=doc.id)
    link = await dashboard_link(bot, 7002)

    await page.goto(link)
    assert await serious(page) == []
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/caseload")
    assert await page.get_by_role("heading", name="Caseload").is_visible()
    assert await page.locator("tr[data-patient='LWS-0001']").count() == 1

    other = await browser.new_context()
    again = await other.new_page()
    await again.goto(link)  # used: said at once, no Sign in button that would only then say so
    assert await again.get_by_role("button", name="Sign in").count() == 0
    assert await again.get_by_role("alert").inner_text() == (
        "This sign-in link has expired or was used already. Send /dashboard to the clinic's bot in Telegram "
        "for a new one."
    )
    await again.goto(web_url(bot) + "/caseload")
    assert await again.get_by_role("heading", name="Error 401").is_visible()

    late = await dashboard_link(bot, 7002)
    bot.clock.advance(timedelta(minutes=6))
    await again.goto(late)  # expired
    assert await again.get_by_role("button", name="Sign in").count() == 0
    assert await again.get_by_role("alert").is_visible()
    assert "/caseload" not in again.url
    await other.close()
    assert page.console_errors == []


async def test_the_mini_app_signs_in_with_signed_init_data_at_phone_width(bot_factory: Any, phone_page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=7002, language="de")
    data = init_data(7002, bot.clock.now(), lang="de")
    # Telegram opens the Mini App with the signed data in the fragment.
    await phone_page.goto(f"{web_url(bot)}/app#tgWebAppData={quote(data, safe='')}&tgWebAppVersion=8.0")
    await phone_page.wait_for_url("**/caseload")
    assert await phone_page.get_by_role("heading", name="Patientenliste").is_visible()
    assert await phone_page.evaluate("() => document.documentElement.lang") == "de"
    assert await phone_page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert await serious(phone_page) == []
    assert phone_page.console_errors == []


async def test_the_mini_app_refuses_forged_init_data(bot_factory: Any, phone_page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=7002)
    forged = init_data(7002, bot.clock.now(), token="987654321:AAE-another_bots_token_value_01234")
    await phone_page.goto(f"{web_url(bot)}/app#tgWebAppData={quote(forged, safe='')}")
    status = phone_page.locator("#miniapp-status")
    await status.filter(has_text="could not check who you are").wait_for()
    await phone_page.goto(f"{web_url(bot)}/caseload")
    assert await phone_page.get_by_role("heading", name="Error 401").is_visible()
