"""Outcome scores as charts with the MCID marked: the staff patient page and the patient's Mini App progress."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from web_seed import BEN, seed_clinic
from webrig import WEB, browser_open_miniapp, browser_sign_in, miniapp_web, web_url

from rehab_bot.models import CheckIn, Patient
from tests.browser.axe import serious
from tests.browser.test_patient_page import ben_patient


async def add_psfs(bot: Any, patient: Patient, scores: dict[int, float]) -> None:
    """Completed PSFS check-ins on these days after surgery."""
    assert patient.surgery_date is not None and patient.id is not None
    async with bot.db.session() as session:
        for day, score in scores.items():
            local = patient.surgery_date + timedelta(days=day)
            session.add(
                CheckIn(
                    patient_id=patient.id,
                    questionnaire_id="psfs",
                    status="complete",
                    score=score,
                    local_date=local,
                    completed_at=bot.clock.now() - timedelta(days=1),
                )
            )
        await session.commit()


async def test_patient_page_charts_the_psfs_with_its_mcid_mark(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=6, days=45)
    patient = await ben_patient(bot)
    await add_psfs(bot, patient, {1: 3.0, 14: 4.0, 42: 5.5})
    await browser_sign_in(page, bot, BEN)
    await page.goto(f"{web_url(bot)}/patients/{patient.id}")
    psfs = page.locator("figure.outcome[data-measure=psfs]")
    await psfs.locator("[data-outcome=psfs] canvas").wait_for()
    text = await psfs.locator("figcaption").inner_text()
    assert "Baseline 3 on day 1." in text
    assert "Meaningful improvement: 5 or higher (at least 2 points; Stratford et al. 1995" in text
    assert "Latest score 5.5 on day 42: meaningful improvement reached." in text
    assert await psfs.locator(".mcid").get_attribute("data-reached") == "yes"
    # The mark is drawn: the chart's legend names the score and the mark (uPlot's series labels).
    legend = await psfs.locator(".u-legend").inner_text()
    assert "Patient-Specific Functional Scale" in legend and "Meaningful improvement" in legend
    # Its first entry is the day, in the page's words (uPlot's default label was the English "Value").
    assert "Day after surgery" in legend and "Value" not in legend
    assert await serious(page) == []
    assert page.console_errors == []


async def test_the_patient_sees_the_same_chart_in_the_mini_app(bot_factory: Any, phone_page: Any) -> None:
    bot = await bot_factory(web=miniapp_web())
    await seed_clinic(bot.db, bot.clock.now(), patients=6, days=45)
    patient = await ben_patient(bot)
    await add_psfs(bot, patient, {2: 5.0, 42: 6.0})
    await browser_open_miniapp(phone_page, bot, patient.telegram_id or 0, lang=patient.language)
    await phone_page.goto(f"{web_url(bot)}/app/progress")
    psfs = phone_page.locator("figure.outcome[data-measure=psfs]")
    await psfs.locator("[data-outcome=psfs] canvas").wait_for()
    assert await psfs.locator(".mcid").get_attribute("data-reached") == "no"  # 1 point: below the MCID of 2
    assert await serious(phone_page) == []
    assert phone_page.console_errors == []
