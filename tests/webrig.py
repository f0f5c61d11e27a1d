"""Helpers for the web app's tests: a bot with the web app on, signed initData, a signed-in HTTP client.

- ``WEB``: the ``web=`` section for ``bot_factory`` (tests/e2e/conftest.py): the web app on
  127.0.0.1, a port of the system's choosing, a fixed secret. ``bot.services.web.base_url``
  is then its address (``web_url(bot)``).
- ``init_data(user_id, now)``: Mini App initData signed with the test bot's token, as Telegram
  would sign it (``rehab_bot.web.initdata.sign``).
- ``dashboard_link(bot, user)``: what /dashboard answers in that Telegram chat (the one-time link).
- ``client(bot)``: an aiohttp ClientSession with a cookie jar that keeps 127.0.0.1's cookies;
  ``csrf(html)`` reads the token from a page; ``sign_in_link`` / ``sign_in_initdata`` sign a
  client in the two ways a browser does.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import datetime
from typing import Any

import aiohttp
from factories import TEST_TOKEN

from rehab_bot.web.initdata import sign

WEB = {"listen": "127.0.0.1:0", "secret": "test-web-secret-0123456789-abcdefghijklmnop"}
_CSRF_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_LINK_RE = re.compile(r"(http://\S+/signin\?token=[\w-]+)")


def miniapp_web() -> dict[str, str]:
    """The web= section for Mini App tests: public_url is the app's own loopback address (http is allowed
    there), so the chat's Start buttons open pages a test (or Chromium) can load."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {**WEB, "listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}"}


def web_url(bot: Any) -> str:
    web = bot.services.web
    assert web is not None, "start the bot with web=WEB"
    return str(web.base_url)


def init_data(user_id: int, now: datetime, *, lang: str = "en", token: str = TEST_TOKEN, **extra: str) -> str:
    """initData as Telegram signs it for user_id at now."""
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps({"id": user_id, "first_name": "Test", "language_code": lang}, separators=(",", ":")),
        "auth_date": str(int(now.timestamp())),
        **extra,
    }
    return sign(fields, token)


async def dashboard_link(bot: Any, user_id: int) -> str:
    """Send /dashboard as this Telegram user; return the link of the bot's answer."""
    user = bot.tg.user(user_id)
    user.mark_seen()
    await user.send("/dashboard")
    [reply] = await user.wait_for(lambda m: "/signin?token=" in (m.text or ""))
    found = _LINK_RE.search(reply.text or "")
    assert found, reply.text
    return found.group(1)


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def csrf(html: str) -> str:
    found = _CSRF_RE.search(html)
    assert found, "no csrf-token meta on the page"
    return found.group(1)


async def sign_in_link(session: aiohttp.ClientSession, link: str) -> aiohttp.ClientResponse:
    """Open a /dashboard link and press Sign in, as a browser does."""
    async with session.get(link) as page:
        html = await page.text()
    token = link.split("token=", 1)[1]
    async with session.post(
        link.split("?", 1)[0], data={"token": token, "csrf_token": csrf(html)}, allow_redirects=False
    ) as response:
        await response.read()
        return response


async def sign_in_initdata(
    session: aiohttp.ClientSession, base: str, data: str, *, next_page: str = ""
) -> aiohttp.ClientResponse:
    """Open the Mini App page and post initData, as its script does (``next_page``: the page Telegram opened)."""
    async with session.get(f"{base}/app") as page:
        html = await page.text()
    body = {"init_data": data, "csrf_token": csrf(html), **({"next": next_page} if next_page else {})}
    async with session.post(f"{base}/app/signin", data=body) as response:
        await response.read()
        return response


async def browser_sign_in(page: Any, bot: Any, telegram_id: int) -> None:
    """Sign a Playwright page in as this staff member, the way staff do: /dashboard, open, Sign in."""
    await page.goto(await dashboard_link(bot, telegram_id))
    await page.locator("form[action='/signin'] button[type=submit]").click()
    await page.wait_for_url("**/caseload")


async def browser_open_miniapp(page: Any, bot: Any, telegram_id: int, *, lang: str = "en") -> None:
    """Open the Mini App in a Playwright page as Telegram does for this user (staff or patient)."""
    from urllib.parse import quote

    data = init_data(telegram_id, bot.clock.now(), lang=lang)
    await page.goto(f"{web_url(bot)}/app#tgWebAppData={quote(data, safe='')}&tgWebAppVersion=8.0")
    await page.wait_for_url(lambda url: not url.endswith("/app") and "/app#" not in url)
