"""The outcomes report's HTML in real Chromium: no console errors, no serious axe-core violations, every table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from outcome_seed import END, START, seed

from rehab_bot import outcomes_report
from rehab_bot.content import load_content
from tests.browser.axe import serious


async def test_outcomes_report_renders_cleanly_in_chromium(
    page: Any, phone_page: Any, database_factory: Callable[..., Any], tmp_path: Path
) -> None:
    db = await database_factory("sqlite")
    await seed(db, 200)
    async with db.session() as s:
        report = await outcomes_report.build(s, load_content(None), START, END, datetime(2026, 7, 1, 8, tzinfo=UTC))
    path = tmp_path / "outcomes.html"
    path.write_text(outcomes_report.to_html(report), encoding="utf-8")
    for view in (page, phone_page):
        await view.goto(path.as_uri())
        assert await view.title() == f"Clinic outcomes {START} to {END}"
        captions = await view.locator("caption").all_inner_texts()
        assert captions == ["Enrolment", "Retention", "Adherence", "Outcome measures", "Alerts", "Experiments"]
        assert await view.locator("tbody tr").count() == len(report.rows)
        assert await serious(view) == []
        assert view.console_errors == []
