"""The admin's Outcomes and Experiments pages in Chromium: the CLI's content, no patient named, axe clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from outcome_seed import END, START, seed
from sqlmodel import col, select
from web_seed import ADMIN, seed_clinic
from webrig import WEB, browser_sign_in, web_url

from rehab_bot import experiment, outcomes_report
from rehab_bot.models import AuditLog
from tests.browser.axe import serious


async def test_outcomes_page_shows_the_cli_report_and_its_csv(bot_factory: Any, page: Any, phone_page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    aliases = await seed(bot.db, 60)
    async with bot.db.session() as session:
        expected = await outcomes_report.build(session, bot.services.content, START, END, bot.clock.now())
    for view in (page, phone_page):
        await browser_sign_in(view, bot, ADMIN)
        await view.goto(f"{web_url(bot)}/admin")
        await view.get_by_role("link", name="Outcomes").click()
        await view.wait_for_url("**/admin/outcomes")
        await view.get_by_label("Enrolled from").fill(START.isoformat())
        await view.get_by_label("Enrolled to").fill(END.isoformat())
        await view.get_by_role("button", name="Show").click()
        await view.wait_for_url(f"**/admin/outcomes?from={START}&to={END}")
        captions = await view.locator("table.outcomes caption").all_inner_texts()
        assert captions == ["Enrolment", "Retention", "Adherence", "Outcome measures", "Alerts", "Experiments"]
        figures = await view.locator("table.outcomes tbody tr td:nth-child(2)").all_inner_texts()
        assert figures == [row.figure for row in expected.rows]
        html = await view.content()
        assert not any(alias in html for alias in aliases), "no patient is named"
        assert await serious(view) == []
        assert view.console_errors == []
    async with page.expect_download() as download:
        await page.get_by_role("link", name="Download as CSV").click()
    got = await download.value
    assert got.suggested_filename == f"outcomes-{START}-{END}.csv"
    assert Path(await got.path()).read_text(encoding="utf-8") == outcomes_report.to_csv(expected)
    async with bot.db.session() as session:
        rows = (await session.exec(select(AuditLog).where(col(AuditLog.action) == "view.outcomes"))).all()
    assert [r.detail for r in rows][-2:] == [f"page from={START} to={END}", f"csv from={START} to={END}"]


async def test_a_small_range_is_suppressed(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    await seed(bot.db, 60)
    await browser_sign_in(page, bot, ADMIN)
    await page.goto(f"{web_url(bot)}/admin/outcomes?from={START}&to={START}")  # a day: fewer than 5 patients
    retention = await page.locator("table.outcomes").nth(1).locator("tbody td:nth-child(2)").all_inner_texts()
    assert retention and set(retention) == {outcomes_report.SUPPRESSED}
    response = await page.goto(f"{web_url(bot)}/admin/outcomes?from={END}&to={START}")
    assert response is not None and response.status == 400


async def test_a_range_the_report_cannot_cover_is_explained_and_the_dates_kept(bot_factory: Any, page: Any) -> None:
    """Dates in the wrong order, more than 3 years, or an end before year 2: the page says what to change and
    keeps the dates typed (it was 'Error 400: The request could not be understood.', or a bare 500)."""
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    await browser_sign_in(page, bot, ADMIN)
    await page.goto(f"{web_url(bot)}/admin/outcomes")
    cases = [
        ("2026-06-01", "2026-01-01", "'Enrolled from' is after 'Enrolled to'"),
        ("2019-01-01", "2026-06-01", "at most 3 years"),
    ]
    for start, end, said in cases:
        await page.get_by_label("Enrolled from").fill(start)
        await page.get_by_label("Enrolled to").fill(end)
        async with page.expect_navigation() as shown:
            await page.get_by_role("button", name="Show").click()
        response = await shown.value
        assert response is not None and response.status == 400
        assert said in await page.get_by_role("alert").inner_text()
        assert await page.get_by_label("Enrolled from").input_value() == start, "what was typed is kept"
        assert await page.get_by_label("Enrolled to").input_value() == end
        assert await page.locator("table.outcomes").count() == 0
    response = await page.goto(f"{web_url(bot)}/admin/outcomes?to=0001-01-01")  # a year back from it: no such day
    assert response is not None and response.status == 200
    assert await page.get_by_label("Enrolled from").input_value() == "0001-01-01"
    assert await serious(page) == []
    refused = "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    assert [e for e in page.console_errors if e != refused] == [], "only Chromium's note of the refusals' status"


async def test_experiments_page_shows_each_experiment_with_its_estimate(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    await seed(bot.db, 60)
    content = bot.services.content
    async with bot.db.session() as session:
        expected = experiment.report_lines(await experiment.report(session, content, "nudge-or-not", bot.clock.now()))
    await browser_sign_in(page, bot, ADMIN)
    await page.goto(f"{web_url(bot)}/admin/experiments")
    ids = await page.locator("section.experiment").evaluate_all("(els) => els.map((e) => e.dataset.experiment)")
    assert ids == sorted(content.experiments)
    section = page.locator("section[data-experiment='nudge-or-not']")
    assert await section.locator(".state").inner_text() == "not running"
    assert await section.locator(".report-lines li").all_inner_texts() == [line.strip() for line in expected[1:]]
    assert any(line.startswith("Effect on the outcome's probability") and "95 % CI" in line for line in expected)
    framing = page.locator("section[data-experiment='nudge-framing'] .report-lines li")
    assert "Decision points: 0 (0 still inside their outcome window)" in await framing.all_inner_texts()
    assert await serious(page) == []
    assert page.console_errors == []
