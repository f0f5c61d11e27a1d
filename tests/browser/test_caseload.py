"""The caseload page in Chromium: filters (htmx), scope, sorting, CSRF, accessibility at two widths."""

from __future__ import annotations

from typing import Any

from factories import make_patient, make_staff
from sqlmodel import update
from web_seed import BEN, seed_clinic
from webrig import WEB, browser_sign_in, web_url

from rehab_bot.models import Alert, PatientStatus, Staff
from tests.browser.axe import serious


async def seed(bot: Any) -> None:
    """Dr Ben (7002) has three patients, Dr Cleo (7003) one; one unreachable each, one open alert."""
    doc = await make_staff(bot.db, telegram_id=7002, name="Dr Ben")
    colleague = await make_staff(bot.db, telegram_id=7003, name="Dr Cleo")
    now = bot.clock.now()
    await make_patient(bot.db, bot.clock, alias="LWS-0001", therapist_id=doc.id, created_at=now, consent_at=now)
    await make_patient(
        bot.db, bot.clock, alias="LWS-0002", therapist_id=doc.id, status=PatientStatus.UNREACHABLE, created_at=now
    )
    alerted, _ = await make_patient(
        bot.db, bot.clock, alias="LWS-0003", therapist_id=doc.id, created_at=now, consent_at=now
    )
    await make_patient(
        bot.db, bot.clock, alias="HWS-0004", therapist_id=colleague.id, status=PatientStatus.UNREACHABLE, created_at=now
    )
    async with bot.db.session() as session:
        assert alerted.id is not None
        session.add(Alert(patient_id=alerted.id, severity="urgent", kind="red_flag", detail="fever", created_at=now))
        await session.commit()


async def shown(page: Any) -> list[str]:
    return [
        str(alias)
        for alias in await page.locator("#caseload tbody tr").evaluate_all("rows => rows.map(r => r.dataset.patient)")
    ]


async def until_shown(page: Any, expected: list[str]) -> None:
    await page.wait_for_function(
        "(want) => JSON.stringify([...document.querySelectorAll('#caseload tbody tr')]"
        ".map(r => r.dataset.patient)) === JSON.stringify(want)",
        arg=expected,
    )


async def test_caseload_filters_scope_and_sort(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed(bot)
    await browser_sign_in(page, bot, 7002)
    assert await shown(page) == ["LWS-0001", "LWS-0002", "LWS-0003"]  # a therapist starts with their own
    assert await serious(page) == []

    await page.get_by_role("checkbox", name="At risk").check()
    await until_shown(page, ["LWS-0002"])
    assert "risk=y" in page.url  # the filter is in the address (htmx push), so reload and back keep it
    assert await page.locator("#caseload-count").inner_text() == "1 of 3 patients shown"

    await page.get_by_label("Show").select_option("all")
    await until_shown(page, ["HWS-0004", "LWS-0002"])
    assert await page.locator("tr[data-patient='HWS-0004'] small").first.inner_text() == "Dr Cleo"

    await page.get_by_role("checkbox", name="At risk").uncheck()
    await page.get_by_role("checkbox", name="Open alerts").check()
    await until_shown(page, ["LWS-0003"])

    await page.get_by_role("checkbox", name="Open alerts").uncheck()
    await until_shown(page, ["HWS-0004", "LWS-0001", "LWS-0002", "LWS-0003"])
    # Column headers sort (a plain link: works without scripts too); again reverses.
    await page.get_by_role("link", name="Risk").click()
    await page.wait_for_url("**sort=risk**")
    assert (await shown(page))[-2:] == ["HWS-0004", "LWS-0002"]
    assert await page.locator("th[aria-sort]").inner_text() == "Risk"
    await page.get_by_role("link", name="Patient").click()
    await page.wait_for_url("**sort=alias**")
    await page.get_by_role("link", name="Patient").click()
    await page.wait_for_url("**desc=y**")
    assert await shown(page) == ["LWS-0003", "LWS-0002", "LWS-0001", "HWS-0004"]
    assert await serious(page) == []
    assert page.console_errors == []


async def test_a_post_without_the_csrf_token_is_refused_and_with_it_accepted(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed(bot)
    await browser_sign_in(page, bot, 7002)
    status = await page.evaluate("async () => (await fetch('/signout', {method: 'POST'})).status")
    assert status == 403
    forged = await page.evaluate(
        "async () => (await fetch('/signout', {method: 'POST', headers: {'X-CSRF-Token': '20991231000000##00'}}))"
        ".status"
    )
    assert forged == 403
    await page.reload()
    assert await page.get_by_role("heading", name="Caseload").is_visible()  # still signed in
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/signed-out")
    await page.goto(web_url(bot) + "/caseload")
    assert await page.get_by_role("heading", name="Error 401").is_visible()


async def test_caseload_at_phone_width_is_usable_and_accessible(bot_factory: Any, phone_page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed(bot)
    await browser_sign_in(phone_page, bot, 7002)
    assert await phone_page.evaluate("() => document.documentElement.scrollWidth") <= 390
    # Keyboard: the skip link is the first stop and leads to the content.
    await phone_page.keyboard.press("Tab")
    assert await phone_page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    await phone_page.keyboard.press("Enter")
    assert await phone_page.evaluate("() => document.activeElement.id") == "main"
    await phone_page.get_by_role("checkbox", name="At risk").check()
    await until_shown(phone_page, ["LWS-0002"])
    assert await serious(phone_page) == []
    assert phone_page.console_errors == []


async def test_on_a_tablet_the_triage_columns_are_on_screen_without_scrolling(
    bot_factory: Any, tablet_page: Any
) -> None:
    """At 768x1024 the German caseload table was 1086 px wide in a 700 px column: risk and open alerts,
    what a therapist triages by, were off-screen right. They follow the patient's name now; the rest
    of the table may scroll in its region."""
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=12, days=30)
    async with bot.db.session() as session:
        await session.exec(update(Staff).values(language="de"))
        await session.commit()
    await browser_sign_in(tablet_page, bot, BEN)
    page = tablet_page
    headers = await page.locator("#caseload thead th").all_inner_texts()
    assert headers[:3] == ["Patient/in", "Risiko", "Offene Warnungen"], headers
    width = await page.evaluate("() => document.documentElement.clientWidth")
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= width
    for column, name in ((2, "Risiko"), (3, "Offene Warnungen")):
        header = await page.locator(f"#caseload thead th:nth-child({column})").bounding_box()
        assert header is not None and header["x"] >= 0 and header["x"] + header["width"] <= width, (name, header)
        cells = page.locator(f"#caseload tbody tr > :nth-child({column})")
        for box in [await cells.nth(n).bounding_box() for n in range(await cells.count())]:
            assert box is not None and box["x"] + box["width"] <= width, (name, box, width)
    lines = await page.locator("#caseload tbody th a").evaluate_all(
        "links => links.map(a => a.getClientRects().length)"
    )
    assert set(lines) == {1}, "an alias on one line, never 'LWS-' above '0001'"
    assert await serious(page) == []


async def test_on_a_desktop_an_alias_stays_on_one_line(bot_factory: Any, page: Any) -> None:
    """With risk beside the name the desktop table shrinks its columns to their words, and broke
    'LWS-0001' at its hyphen."""
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=12, days=30)
    await browser_sign_in(page, bot, BEN)
    lines = await page.locator("#caseload tbody th a").evaluate_all(
        "links => links.map(a => a.getClientRects().length)"
    )
    assert set(lines) == {1}, lines
