"""Screenshots of the patients' Mini App at phone width (390 px), light and dark Telegram themes.

    python docs/screenshots/miniapp.py        # writes docs/screenshots/app-<page>-phone.png

The web app runs as the bot serves it (rehab_bot.web.app.WebServer) on a temporary SQLite database
with one patient (lumbar programme, day 5 after surgery, ten days of pain and mood answers and
sessions), at a fixed clock, with the built-in content; the first exercise gets an illustration
(drawn here with matplotlib) so the card shows its media. Chromium is Debian's (/usr/bin/chromium, or
REHAB_BOT_CHROMIUM) driven by Playwright, with Telegram's script replaced by the browser tests' stub
(tests/browser/miniapp_stub.py), whose initData is signed here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for path in (REPO, REPO / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from factories import TEST_TOKEN  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402
from webrig import init_data  # noqa: E402

from rehab_bot import checkin  # noqa: E402
from rehab_bot.clock import FakeClock  # noqa: E402
from rehab_bot.config import Config, TelegramConfig, WebConfig  # noqa: E402
from rehab_bot.content import load_content  # noqa: E402
from rehab_bot.db import Database  # noqa: E402
from rehab_bot.models import ExerciseSession, Patient, PatientStatus  # noqa: E402
from rehab_bot.web.app import WebServer  # noqa: E402
from rehab_bot.web.context import WebContext  # noqa: E402
from tests.browser.miniapp_stub import DARK, LIGHT, STUB  # noqa: E402

NOW = datetime(2026, 6, 10, 7, 30, tzinfo=UTC)  # 09:30 in Berlin
TODAY = date(2026, 6, 10)
CHROMIUM = os.environ.get("REHAB_BOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
TELEGRAM_ID = 7400
DEFAULT_EXERCISES = REPO / "rehab_bot" / "content" / "defaults" / "exercises.toml"


def illustration(path: Path) -> None:
    """A simple drawing of a person walking (the clinic's own photo or video goes here)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 2.5), dpi=100)
    ax = fig.add_subplot()
    ax.set_xlim(0, 8)
    ax.set_ylim(0, 5)
    ax.axis("off")
    ax.plot([0, 8], [0.4, 0.4], color="#888", lw=2)
    ax.add_patch(__import__("matplotlib.patches", fromlist=["Circle"]).Circle((4, 4.1), 0.45, color="#2471a3"))
    for xs, ys in (([4, 4], [3.6, 2]), ([4, 3.2], [2, 0.5]), ([4, 4.9], [2, 0.5]), ([3.2, 4, 4.8], [2.4, 3.3, 2.5])):
        ax.plot(xs, ys, color="#2471a3", lw=5, solid_capstyle="round")
    fig.savefig(path)


async def seed(db: Database, content_dir: Path) -> tuple[int, int, int]:
    """The patient, today's session, ten days of answers; returns (session id, pain check-in id, symptoms id)."""
    content = load_content(content_dir)
    async with db.session() as session:
        patient = Patient(
            alias="LWS-0042",
            telegram_id=TELEGRAM_ID,
            language="en",
            status=PatientStatus.ACTIVE.value,
            surgery_date=TODAY - timedelta(days=5),
            programme_id="lumbar-example",
            phase_id="weeks-1-2",
            consent_at=NOW - timedelta(days=12),
            created_at=NOW - timedelta(days=12),
        )
        session.add(patient)
        await session.flush()
        assert patient.id is not None
        for back in range(10, 0, -1):
            day = TODAY - timedelta(days=back)
            at = datetime(day.year, day.month, day.day, 17, 0, tzinfo=UTC)
            opened = await checkin.start(session, patient, content, ["pain", "mood"], at, local_date=day)
            values = (2 + back % 2, min(5, 2 + (10 - back) // 3))  # pain 2-3, mood rising
            for row, value in zip(opened, values, strict=True):
                assert row.id is not None
                await checkin.answer(session, patient, content, Config().clinic, row.id, 0, value, at)
            status = "missed" if back == 6 else ("partly" if back == 3 else "done")
            session.add(
                ExerciseSession(patient_id=patient.id, local_date=day, slot="09:00", status=status, step="closed")
            )
        today = ExerciseSession(patient_id=patient.id, local_date=TODAY, slot="09:00", status="pending")
        session.add(today)
        [pain] = await checkin.start(session, patient, content, ["pain"], NOW)
        [symptoms] = await checkin.start(session, patient, content, ["symptoms"], NOW)
        await session.commit()
        assert today.id is not None and pain.id is not None and symptoms.id is not None
        return today.id, pain.id, symptoms.id


def stub_with(script: str) -> Any:
    async def stub(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/javascript", body=script)

    return stub


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        content_dir = Path(tmp) / "content"
        content_dir.mkdir()
        illustration(content_dir / "walking.png")
        defaults = DEFAULT_EXERCISES
        walking = next(
            block for block in defaults.read_text(encoding="utf-8").split("[[exercise]]") if 'id = "walking"' in block
        )
        (content_dir / "exercises.toml").write_text(
            f'[[exercise]]{walking.rstrip()}\nmedia = "walking.png"\nmedia_kind = "photo"\n', encoding="utf-8"
        )
        db = Database(f"sqlite+aiosqlite:///{tmp}/screens.db")
        await db.upgrade()
        session_id, pain_id, symptoms_id = await seed(db, content_dir)
        config = replace(
            Config(), telegram=TelegramConfig(token=TEST_TOKEN), web=WebConfig(listen="127.0.0.1:0", secret="s" * 40)
        )
        ctx = WebContext(
            config=config, db=db, clock=FakeClock(NOW), content=load_content(content_dir), secret=b"s" * 40
        )
        server = WebServer(ctx, "127.0.0.1", 0)
        await server.start()
        base = server.base_url
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                for scheme, theme in (("light", LIGHT), ("dark", DARK)):
                    context = await browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=2)
                    page = await context.new_page()
                    script = STUB % {
                        "init_data": repr(init_data(TELEGRAM_ID, NOW)).replace("'", '"'),
                        "scheme": f'"{scheme}"',
                        "theme": str(theme).replace("'", '"'),
                    }

                    await page.route("**/static/vendor/telegram/telegram-web-app.js*", stub_with(script))
                    suffix = "" if scheme == "light" else "-dark"

                    async def shot(name: str, page: object = page, suffix: str = suffix) -> None:
                        await page.screenshot(path=str(HERE / f"app-{name}{suffix}-phone.png"), full_page=True)  # type: ignore[attr-defined]

                    await page.goto(f"{base}/app/session/{session_id}")
                    await page.locator("#card-1 img").wait_for()
                    await shot("player")
                    if scheme == "light":
                        await page.get_by_role("button", name="Next").click()
                        await page.get_by_role("button", name="+1 repetition").click()
                        await shot("player-counter")
                        for _ in range(5):
                            await page.get_by_role("button", name="Next").click()
                        await shot("player-finish")
                    await page.goto(f"{base}/app/checkin/{pain_id}")
                    await shot("checkin")
                    if scheme == "light":
                        await page.goto(f"{base}/app/checkin/{symptoms_id}")
                        await shot("symptoms")
                        await page.goto(f"{base}/app/progress")
                        await page.locator("#progress-chart canvas").wait_for()
                        await shot("progress")
                        await page.goto(f"{base}/app/home")
                        await shot("home")
                    await context.close()
                await browser.close()
        finally:
            await server.stop()
            await db.dispose()
    print("screenshots in", HERE)


if __name__ == "__main__":
    asyncio.run(main())
