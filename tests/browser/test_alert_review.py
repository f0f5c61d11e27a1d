"""Alert accuracy in Chromium: acknowledge an alert on the alerts page, then "Needed action" / "No action needed"."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select, update
from web_seed import BEN, seed_clinic
from webrig import WEB, browser_sign_in, web_url

from rehab_bot.models import Alert, AlertReview, Patient, Staff
from tests.browser.axe import serious

WORDS = {
    "en": {
        "ack": "Acknowledge",
        "acked": "Acknowledged by Dr Ben.",
        "yes": "Needed action",
        "no": "No action needed",
        "recorded": "Reviewed: no action needed",
        "alerts": "Alerts",
    },
    "de": {
        "ack": "Bestätigen",
        "acked": "Bestätigt von Dr Ben.",
        "yes": "Handlungsbedarf",
        "no": "Kein Handlungsbedarf",
        "recorded": "Beurteilt: kein Handlungsbedarf",
        "alerts": "Warnungen",
    },
}


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_acknowledge_then_review_in_place_and_the_patient_page_shows_the_verdict(
    bot_factory: Any, page: Any, lang: str
) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=10, days=3)
    async with bot.db.session() as session:
        await session.exec(update(Staff).values(language=lang))
        await session.commit()
    words = WORDS[lang]
    await browser_sign_in(page, bot, BEN)
    await page.get_by_role("link", name=words["alerts"], exact=True).click()
    await page.wait_for_url("**/alerts")
    assert await page.get_by_role("button", name=words["yes"], exact=True).count() == 0  # nothing acknowledged yet
    first = page.locator("ul.alerts li").first
    alert_id = int((await first.get_attribute("id") or "").removeprefix("alert-"))
    await first.get_by_role("button", name=words["ack"]).click()
    done = page.locator(f"#alert-{alert_id}")
    await done.get_by_role("status").filter(has_text=words["acked"]).wait_for()
    assert await done.get_by_role("button", name=words["yes"], exact=True).is_visible()
    await done.get_by_role("button", name=words["no"], exact=True).click()
    await done.get_by_role("status").filter(has_text=words["recorded"]).wait_for()
    assert await done.get_by_role("button").count() == 0
    assert await serious(page) == []

    async with bot.db.session() as session:
        alert = await session.get(Alert, alert_id)
        [review] = (await session.exec(select(AlertReview).where(col(AlertReview.alert_id) == alert_id))).all()
        assert alert is not None and review.needed_action is False
        patient = await session.get(Patient, alert.patient_id)
    assert patient is not None
    await page.goto(f"{web_url(bot)}/patients/{patient.id}")
    verdict = page.locator(f"#verdict-{alert_id}")
    assert words["recorded"] + " (Dr Ben" in (await verdict.inner_text())
    assert await verdict.get_by_role("button").count() == 0
    assert await serious(page) == []
    assert page.console_errors == []


async def test_without_scripts_the_verdict_posts_and_the_page_says_what_was_recorded(
    bot_factory: Any, browser: Any
) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=10, days=3)
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        page.console_errors = []
        await browser_sign_in(page, bot, BEN)
        await page.goto(f"{web_url(bot)}/alerts")
        await page.get_by_role("button", name="Acknowledge").first.click()
        await page.get_by_role("status").filter(has_text="Acknowledged.").wait_for()
        await page.get_by_role("button", name="Needed action", exact=True).first.click()
        await page.get_by_role("status").filter(has_text="Recorded: needed action.").wait_for()
        assert await page.get_by_role("button", name="Needed action", exact=True).count() == 0
    finally:
        await context.close()


async def test_an_alerts_detail_keeps_its_lines_and_an_alias_is_never_split_on_a_phone(
    bot_factory: Any, phone_page: Any
) -> None:
    """An outside test read "Pain: 8. - 8 is at or above 7 [pain-critical] - 3.7 above ..." run together, and
    "P-2042" broken at its hyphen on a phone."""
    page = phone_page
    await page.set_viewport_size({"width": 320, "height": 640})
    bot = await bot_factory(web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    detail = "Pain: 8.\n- 8 is at or above 7 [pain-critical]\nRecent entries (oldest first): 3, 5, 8"
    async with bot.db.session() as session:
        alert = Alert(
            patient_id=clinic.patient_ids[0],
            severity="critical",
            kind="checkin",
            detail=detail,
            created_at=bot.clock.now(),
        )
        session.add(alert)
        await session.commit()
        await session.refresh(alert)
    await browser_sign_in(page, bot, BEN)
    await page.goto(f"{web_url(bot)}/alerts")
    shown = page.locator(f"#alert-{alert.id} .detail")
    assert (await shown.inner_text()).splitlines() == detail.splitlines()
    aliases = page.locator('.alert-item a[href^="/patients/"]')
    assert await aliases.count() > 0
    for i in range(await aliases.count()):
        assert await aliases.nth(i).evaluate("a => a.getClientRects().length") == 1, await aliases.nth(i).inner_text()
    assert await serious(page) == []
