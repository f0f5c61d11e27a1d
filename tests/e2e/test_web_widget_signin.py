"""Staff sign in with the Telegram Login Widget when [web] login_widget is on; otherwise the routes are 404."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import col, select
from web_seed import BEN, seed_clinic
from webrig import WEB, client, web_url

from rehab_bot.models import AuditLog
from rehab_bot.web.login_widget import sign

PATIENT_TG = 1_500_001


def fields(user_id: int, auth_date: int, token: str) -> dict[str, str]:
    return sign({"id": str(user_id), "first_name": "Test", "auth_date": str(auth_date)}, token)


async def _post(browser: Any, base: str, data: dict[str, str]) -> Any:
    """Open the page Telegram sends the browser to, then press Sign in (the page's form)."""
    async with browser.get(f"{base}/signin/telegram", params=data) as page:
        assert page.status == 200
        html = await page.text()
    form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    assert {k: v for k, v in form.items() if k != "csrf_token"} == data  # exactly the fields Telegram sent
    return await browser.post(f"{base}/signin/telegram", data=form, allow_redirects=False)


async def test_staff_sign_in_with_the_widget_and_a_bad_or_stale_hash_is_refused(bot_factory: Any) -> None:
    bot = await bot_factory(web={**WEB, "login_widget": True})
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    base, now, token = web_url(bot), int(bot.clock.now().timestamp()), bot.config.telegram.token
    async with client() as browser:
        async with browser.get(f"{base}/signed-out") as page:
            assert "oauth.telegram.org/embed/" in await page.text()
            assert "frame-src 'self' https://oauth.telegram.org" in page.headers["Content-Security-Policy"]
        async with await _post(browser, base, {**fields(BEN, now, token), "first_name": "Forged"}) as refused:
            assert refused.status == 401
        async with await _post(browser, base, fields(BEN, now - 3601, token)) as stale:
            assert stale.status == 401
        async with await _post(browser, base, fields(PATIENT_TG, now, token)) as patient:
            assert patient.status == 403  # the dashboard is for staff
        async with await _post(browser, base, fields(BEN, now, token)) as response:
            assert response.status == 303 and response.headers["Location"] == "/caseload"
        async with browser.get(f"{base}/caseload") as page:
            assert page.status == 200
    async with bot.db.session() as session:
        rows = (await session.exec(select(AuditLog).where(col(AuditLog.action) == "web.signin"))).all()
    assert [(r.actor, r.detail) for r in rows] == [(f"web:{BEN}", "widget")]


async def test_without_the_option_there_is_no_widget(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=1, days=1)
    base, now = web_url(bot), int(bot.clock.now().timestamp())
    async with client() as browser:
        async with browser.get(f"{base}/signed-out") as page:
            assert "oauth.telegram.org" not in await page.text()
            assert "oauth.telegram.org" not in page.headers["Content-Security-Policy"]
        async with browser.get(f"{base}/signin/telegram", params=fields(BEN, now, bot.config.telegram.token)) as page:
            assert page.status == 404
