"""Every web page of the demo clinic, as a reviewer sweeps them: staff and patients, English and German,
at phone width (360x740) and desktop width (1280x800).

One demo clinic for the module (rehab_bot.demo.runner.Demo: the real Application, the web app, the seeded
staff and patients at different stages). The therapist opens the staff pages, the admin the admin pages
(one-time sign-in links, as /dashboard makes them); the patients open the Mini App's pages with initData
signed for the demo's bot (English-speaking P-2041, German-speaking P-2043). On every page, at both
widths: it answers, ``<html lang>`` is the reader's language, nothing is wider than the window (no
sideways scrolling), axe-core finds nothing serious or critical (nor a skipped heading level), and the console is clean.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlmodel import col, select

from rehab_bot import signin
from rehab_bot import staff as staff_core
from rehab_bot.demo import seed
from rehab_bot.demo.runner import DEMO_TOKEN, Demo
from rehab_bot.models import ExerciseSession, Patient
from rehab_bot.web.initdata import sign
from tests.browser.axe import BLOCKING, serious, violations

# Moderate axe rules checked besides the serious and critical ones: headings that skip a level
# confuse a screen reader's outline of the page.
ALSO_CHECKED = ("heading-order",)
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
STAFF_PAGES = (
    "/caseload",
    "/alerts",
    "/patients/{P-2042}",
    "/patients/{P-2043}",
    "/patients/{P-2042}/programme",
    "/exercises",
    "/exercises/new",
    "/templates",
)
ADMIN_PAGES = ("/admin/staff", "/admin/audit", "/admin/content", "/admin/outcomes", "/admin/experiments")
PATIENT_PAGES = ("/app/home", "/app/progress", "/app/messages", "/app/delete", "/app/result", "/app/session/{last}")
PATIENTS = {"en": 7_100_041, "de": 7_100_043}  # P-2041 speaks English, P-2043 German (rehab_bot/demo/seed.py)


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    running = Demo(Path(tmp_path_factory.mktemp("sweep")))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def base(demo: Demo) -> str:
    return str(demo.app.bot_data["services"].web.base_url)


async def ids(demo: Demo) -> dict[str, int]:
    """The patients' row ids by alias."""
    async with demo._db().session() as session:
        rows = (await session.exec(select(Patient))).all()
    return {row.alias: int(row.id or 0) for row in rows}


async def staff_link(demo: Demo, telegram_id: int, language: str) -> str:
    """A one-time sign-in link for this staff member, with their language set as /language sets it."""
    async with demo._db().session() as session:
        member = await staff_core.active_staff(session, telegram_id)
        assert member is not None
        member.language = language
        session.add(member)
        token = await signin.create_link_token(session, member, demo.clock.now())
        await session.commit()
    return f"{base(demo)}/signin?token={token}"


async def problems_of(page: Any, url: str, language: str) -> list[str]:
    """What is wrong with one page at the page's current width."""
    page.console_errors.clear()
    response = await page.goto(url)
    width = (await page.evaluate("() => innerWidth"), await page.evaluate("() => document.documentElement.scrollWidth"))
    where = f"{url} at {width[0]} px"
    found = []
    if response is None or response.status >= 400:
        found.append(f"{where}: status {response.status if response else None}")
    if (lang := await page.locator("html").get_attribute("lang")) != language:
        found.append(f"{where}: <html lang={lang!r}>, the reader's language is {language!r}")
    if width[1] > width[0]:
        found.append(f"{where}: the page is {width[1]} px wide (sideways scrolling)")
    for item in await violations(page):  # serious and critical ones, and a few moderate ones worth keeping away
        if item.get("impact") in BLOCKING or item["id"] in ALSO_CHECKED:
            targets = ", ".join(str(node.get("target")) for node in item.get("nodes", [])[:3])
            found.append(f"{where}: {item['id']} ({item['impact']}): {item['help']} at {targets}")
    found += [f"{where}: console: {line}" for line in page.console_errors]
    return found


async def sweep(page: Any, urls: list[str], language: str) -> list[str]:
    found = []
    for viewport in (PHONE, DESKTOP):
        await page.set_viewport_size(viewport)
        for url in urls:
            found += await problems_of(page, url, language)
    return found


@pytest.mark.parametrize(
    ("who", "language"), [("therapist", "en"), ("therapist", "de"), ("admin", "en"), ("admin", "de")]
)
async def test_every_staff_page_at_phone_and_desktop_width(page: Any, demo: Demo, who: str, language: str) -> None:
    telegram_id, paths = (seed.THERAPIST_ID, STAFF_PAGES) if who == "therapist" else (seed.ADMIN_ID, ADMIN_PAGES)
    await page.goto(await staff_link(demo, telegram_id, language))
    await page.locator("form[action='/signin'] button[type=submit]").click()
    await page.wait_for_url("**/caseload")
    aliases = await ids(demo)
    urls = [base(demo) + path.format_map({alias: row for alias, row in aliases.items()}) for path in paths]
    assert await sweep(page, urls, language) == []


@pytest.mark.parametrize("language", ["en", "de"])
async def test_every_mini_app_page_at_phone_and_desktop_width(page: Any, demo: Demo, language: str) -> None:
    telegram_id = PATIENTS[language]
    user = json.dumps({"id": telegram_id, "first_name": "Test", "language_code": language}, separators=(",", ":"))
    data = sign({"user": user, "auth_date": str(int(demo.clock.now().timestamp()))}, DEMO_TOKEN)
    await page.goto(f"{base(demo)}/app#tgWebAppData={quote(data, safe='')}&tgWebAppVersion=8.0")
    await page.wait_for_url(lambda url: not url.endswith("/app") and "/app#" not in url)
    async with demo._db().session() as session:
        patient = (await session.exec(select(Patient).where(col(Patient.telegram_id) == telegram_id))).one()
        last = (
            await session.exec(
                select(ExerciseSession)
                .where(col(ExerciseSession.patient_id) == patient.id)
                .order_by(col(ExerciseSession.id).desc())
            )
        ).first()
    assert last is not None
    urls = [base(demo) + path.replace("{last}", str(last.id)) for path in PATIENT_PAGES]
    assert await sweep(page, urls, language) == []


async def test_a_refused_exercise_names_the_field_in_the_readers_language_and_marks_it(page: Any, demo: Demo) -> None:
    """A German therapist's new exercise with a German name of spaces only: the problem is said in German
    with the field's label, and that field is marked invalid and described by it (was 'name.de: is empty',
    tied to no field)."""
    await page.goto(await staff_link(demo, seed.THERAPIST_ID, "de"))
    await page.locator("form[action='/signin'] button[type=submit]").click()
    await page.wait_for_url("**/caseload")
    await page.goto(base(demo) + "/exercises/new")
    await page.locator("#name-en").fill("Wall squat")
    await page.locator("#instructions-en").fill("Slide down the wall.")
    await page.locator("#name-de").fill("   ")
    await page.locator("#instructions-de").fill("An der Wand hinabgleiten.")
    await page.locator("#reps").fill("10")
    await page.get_by_role("button", name="Übung speichern").click()
    problem = page.get_by_role("alert")
    await problem.wait_for()
    assert await problem.inner_text() == "Name (Deutsch): ist leer"
    field = page.locator("#name-de")
    assert await field.get_attribute("aria-invalid") == "true"
    assert await field.get_attribute("aria-describedby") == "problem"
    assert await page.locator("#name-en").get_attribute("aria-invalid") is None
    assert await serious(page) == []
    assert page.console_errors == []
