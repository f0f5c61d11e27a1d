"""The staff pages write dates, times and percentages as the reader's language does (rehab_bot.formats).

A German audit found ISO everywhere: "2026-12-01 19:12", "Woche ab 2026-09-14", "Pausiert bis
2026-…", "44%"; German staff expect "01.12.2026 19:12", "44 %". Machine forms (<time datetime>,
data-day, date inputs, CSV) stay ISO.
"""

from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta
from typing import Any

from sqlmodel import update
from web_seed import ADMIN, BEN, seed_clinic
from webrig import WEB, client, init_data, sign_in_initdata, web_url

from rehab_bot.models import Patient, Staff

ISO_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
GERMAN_DAY = r"\d{2}\.\d{2}\.\d{4}"


def visible(page: str) -> str:
    """The text a reader sees, plus the title tooltips (what a mouse shows); no other attributes."""
    titles = " ".join(re.findall(r'title="([^"]*)"', page))
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", body) + " " + titles)


async def test_german_staff_pages_have_no_iso_dates_and_german_percentages(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=6, days=20)
    first = clinic.patient_ids[0]
    async with bot.db.session() as session:
        await session.exec(update(Staff).values(language="de"))
        until = (bot.clock.now() + timedelta(days=3)).date()
        await session.exec(update(Patient).where(Patient.id == first).values(status="paused", paused_until=until))  # type: ignore[arg-type]
        await session.commit()
    base = web_url(bot)
    pages: dict[str, str] = {}
    raw: dict[str, str] = {}
    async with client() as browser:
        await sign_in_initdata(browser, base, init_data(ADMIN, bot.clock.now(), lang="de"))
        for path in ("/caseload?scope=all", f"/patients/{first}", "/alerts", "/admin/audit", "/admin/outcomes"):
            async with browser.get(base + path) as page:
                assert page.status == 200, path
                raw[path] = await page.text()
                pages[path] = visible(raw[path])
    for path, text in pages.items():
        assert not ISO_DAY.search(text), (path, ISO_DAY.findall(text)[:5])
    patient = pages[f"/patients/{first}"]
    assert "Woche ab" in patient and re.search(rf'<th scope="row">{GERMAN_DAY}</th>', raw[f"/patients/{first}"])
    assert f"Pausiert bis {until:%d.%m.%Y}" in patient
    # One German word for a session throughout ("Einheit"): the reminders line read "Sitzungserinnerungen".
    assert "Erinnerungen an die Einheiten:" in patient and "Sitzung" not in patient
    assert re.search(rf"{GERMAN_DAY} \d{{2}}:\d{{2}}", patient), "answers and notes with their time"
    assert re.search(r"Therapietreue 7 Tage: \d+\u00a0%", patient)
    assert re.search(r"\b\d+\u00a0%", pages["/caseload?scope=all"]) and not re.search(
        r"\d%", pages["/caseload?scope=all"]
    )
    assert re.search(rf"{GERMAN_DAY} \d{{2}}:\d{{2}}:\d{{2}}", pages["/admin/audit"])
    assert re.search(rf"{GERMAN_DAY} \d{{2}}:\d{{2}}", pages["/alerts"])
    assert re.search(rf"aufgenommen von {GERMAN_DAY} bis {GERMAN_DAY}\.", pages["/admin/outcomes"])


async def test_english_staff_pages_name_the_month_and_keep_the_24_hour_clock(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=2, days=20)
    base = web_url(bot)
    async with client() as browser:
        await sign_in_initdata(browser, base, init_data(BEN, bot.clock.now()))
        async with browser.get(f"{base}/patients/{clinic.patient_ids[0]}") as page:
            text = visible(await page.text())
    assert not ISO_DAY.search(text)
    assert re.search(r"\b\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}\b", text)
