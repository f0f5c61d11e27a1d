"""Security checks of the web app from outside, over HTTP: redirects stay on this site, sign-out ends a
session for every copy of its cookie, patients' photos lose their metadata, odd ids are no server error."""

from __future__ import annotations

from typing import Any

import pytest
from factories import make_patient, make_staff
from webrig import WEB, client, csrf, dashboard_link, sign_in_link, web_url

from rehab_bot.models import Alert


@pytest.mark.parametrize(
    "target", ["/%09/evil.example", "/%0d%0a/evil.example", "/%5C%5Cevil.example", "//evil.example"]
)
async def test_acknowledging_an_alert_never_redirects_to_another_site(bot_factory: Any, target: str) -> None:
    bot = await bot_factory(web=WEB)
    staff = await make_staff(bot.db, telegram_id=7002, role="admin")
    patient, _ = await make_patient(bot.db, bot.clock, alias="SEC-0001", telegram_id=7100)
    async with bot.db.session() as session:
        alert = Alert(
            patient_id=patient.id or 0, severity="urgent", kind="red_flag", created_at=bot.clock.now(), detail="x"
        )
        session.add(alert)
        await session.commit()
        alert_id = alert.id
    assert staff.id is not None
    base = web_url(bot)
    async with client() as browser:
        assert (await sign_in_link(browser, await dashboard_link(bot, 7002))).status == 303
        async with browser.get(f"{base}/alerts") as page:
            token = csrf(await page.text())
        async with browser.post(
            f"{base}/alerts/{alert_id}/ack?next={target}", headers={"X-CSRF-Token": token}, allow_redirects=False
        ) as response:
            assert response.status == 303
            location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
