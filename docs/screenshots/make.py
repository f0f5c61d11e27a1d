"""Screenshots of every web page at phone (390 px) and desktop (1280 px) width, from the tests' data.

    python docs/screenshots/make.py            # writes docs/screenshots/<page>-<phone|desktop>.png

The web app runs as the bot serves it (rehab_bot.web.app.WebServer) on a temporary SQLite database
filled by tests/web_seed.py (the data the browser tests use: 24 patients, 40 days each), at a
fixed clock. Chromium is Debian's (/usr/bin/chromium, or REHAB_BOT_CHROMIUM) driven by Playwright,
as in tests/browser/. Staff sign in with a one-time link, the patient with signed Mini App initData.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for path in (REPO, REPO / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from factories import TEST_TOKEN  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402
from sqlmodel import col, select  # noqa: E402
from web_seed import ADMIN, BEN, seed_clinic  # noqa: E402
from webrig import init_data  # noqa: E402

from rehab_bot import signin  # noqa: E402
from rehab_bot.clock import FakeClock  # noqa: E402
from rehab_bot.config import Config, TelegramConfig, WebConfig  # noqa: E402
from rehab_bot.content import load_content  # noqa: E402
from rehab_bot.db import Database  # noqa: E402
from rehab_bot.models import Alert, Patient, ProgrammePlan, Staff  # noqa: E402
from rehab_bot.web.app import WebServer  # noqa: E402
from rehab_bot.web.context import WebContext  # noqa: E402

NOW = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
CHROMIUM = os.environ.get("REHAB_BOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


async def link(db: Database, base: str, telegram_id: int) -> str:
    async with db.session() as session:
        staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).one()
        token = await signin.create_link_token(session, staff, NOW)
        await session.commit()
    return f"{base}/signin?token={token}"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/screens.db")
        await db.upgrade()
        await seed_clinic(db, NOW, patients=24, days=40)
        async with db.session() as session:
            patient = (await session.exec(select(Patient).where(col(Patient.alias) == "LWS-0005"))).one()
            alerted = (await session.exec(select(Alert))).first()
            ben = (await session.exec(select(Staff).where(col(Staff.telegram_id) == BEN))).one()
            for name, based_on in (("Lumbar weeks 1-6, gentle", "lumbar-example"), ("Walking plan", "")):
                session.add(
                    ProgrammePlan(
                        name=name, based_on=based_on, body="{}", created_by=ben.id, created_at=NOW, updated_at=NOW
                    )
                )
            await session.commit()
        config = replace(
            Config(), telegram=TelegramConfig(token=TEST_TOKEN), web=WebConfig(listen="127.0.0.1:0", secret="s" * 40)
        )
        ctx = WebContext(
            config=config,
            db=db,
            clock=FakeClock(NOW),
            content=load_content(None),
            secret=b"s" * 40,
            bot_username="rehab_clinic_bot",
        )
        server = WebServer(ctx, "127.0.0.1", 0)
        await server.start()
        base = server.base_url
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                for size, viewport in SIZES.items():
                    mobile = size == "phone"
                    page = await (
                        await browser.new_context(
                            viewport=viewport, is_mobile=mobile, device_scale_factor=2 if mobile else 1
                        )
                    ).new_page()

                    async def shot(name: str, page: object = page, size: str = size) -> None:
                        await page.screenshot(path=str(HERE / f"{name}-{size}.png"), full_page=True)  # type: ignore[attr-defined]

                    await page.goto(await link(db, base, BEN))
                    await shot("signin")
                    await page.locator("form[action='/signin'] button").click()
                    await page.wait_for_url("**/caseload")
                    await shot("caseload")
                    await page.get_by_role("checkbox", name="At risk").check()
                    await page.wait_for_url("**risk=y**")
                    await page.wait_for_timeout(300)
                    await shot("caseload-at-risk")
                    await page.goto(f"{base}/patients/{patient.id}")
                    await page.locator("[data-chart=pain] canvas").wait_for()
                    await shot("patient")
                    await page.goto(f"{base}/patients/{patient.id}/programme")
                    await shot("builder")
                    await page.goto(f"{base}/exercises")
                    await shot("exercises")
                    await page.goto(f"{base}/exercises/new")
                    await shot("exercise-new")
                    await page.goto(f"{base}/alerts")
                    await shot("alerts")
                    await page.goto(f"{base}/templates")
                    await shot("templates")
                    await page.context.clear_cookies()
                    await page.goto(await link(db, base, ADMIN))
                    await page.locator("form[action='/signin'] button").click()
                    await page.wait_for_url("**/caseload")
                    await page.goto(f"{base}/admin/staff")
                    await shot("admin-staff")
                    await page.goto(f"{base}/admin/audit")
                    await shot("admin-audit")
                    await page.goto(f"{base}/admin/content")
                    await shot("admin-content")
                    await page.goto(f"{base}/admin/outcomes")
                    await shot("admin-outcomes")
                    await page.goto(f"{base}/admin/experiments")
                    await shot("admin-experiments")
                    await page.context.clear_cookies()
                    data = init_data(patient.telegram_id or 0, NOW, lang="de")
                    await page.goto(f"{base}/app#tgWebAppData={quote(data, safe='')}")
                    await page.wait_for_url("**/app/home")  # the Mini App signs a patient in to Today
                    await shot("patient-miniapp")
                    await page.context.clear_cookies()
                    await page.goto(f"{base}/caseload")
                    await shot("signed-out")
                    await page.context.close()
                await browser.close()
        finally:
            await server.stop()
            await db.dispose()
        assert alerted is not None
    print(f"wrote {len(list(HERE.glob('*.png')))} screenshots to {HERE}")


if __name__ == "__main__":
    asyncio.run(main())
