"""The clinic's programme templates in Chromium: listed, deleted by their author, not by a colleague."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from web_seed import BEN, CLEO, seed_clinic
from webrig import WEB, browser_sign_in

from rehab_bot.models import AuditLog, Patient, ProgrammePlan, Staff
from tests.browser.axe import serious


async def test_templates_listed_and_deleted_by_their_author(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    async with bot.db.session() as session:
        staff = {s.telegram_id: s for s in (await session.exec(select(Staff))).all()}
        session.add(ProgrammePlan(name="Lumbar week 1-6", based_on="lumbar-example", body="{}",
                                  created_by=staff[BEN].id, created_at=bot.clock.now()))  # fmt: skip
        session.add(ProgrammePlan(name="Cleo's own", body="{}", created_by=staff[CLEO].id, created_at=bot.clock.now()))
        await session.commit()
    async with bot.db.session() as session:
        [deleted_id] = (
            await session.exec(select(ProgrammePlan.id).where(ProgrammePlan.name == "Lumbar week 1-6"))
        ).all()
    await browser_sign_in(page, bot, BEN)
    await page.get_by_role("link", name="Templates").click()
    await page.wait_for_url("**/templates")
    assert await serious(page) == []
    assert await page.locator("#templates tbody tr th").all_inner_texts() == ["Cleo's own", "Lumbar week 1-6"]
    assert await page.get_by_role("button", name="Delete template Cleo's own").count() == 0  # a colleague's
    # Delete asks first, on a page of its own; Cancel keeps the template.
    await page.get_by_role("button", name="Delete template Lumbar week 1-6").click()
    await page.wait_for_url(f"**/templates/{deleted_id}/delete")
    assert "there is no undo" in await page.locator("main").inner_text()
    assert await serious(page) == []
    await page.get_by_role("link", name="Cancel").click()
    await page.wait_for_url("**/templates")
    assert await page.locator("#templates tbody tr th").all_inner_texts() == ["Cleo's own", "Lumbar week 1-6"]
    # A colleague's template has no Delete page for Ben.
    async with bot.db.session() as session:
        [cleos_id] = (await session.exec(select(ProgrammePlan.id).where(ProgrammePlan.name == "Cleo's own"))).all()
    assert (await page.request.get(f"{page.url.split('/templates')[0]}/templates/{cleos_id}/delete")).status == 403
    # A bare POST (one click of an old list, a forged form) deletes nothing: it leads to the page that asks.
    base, token = page.url.split("/templates")[0], await page.locator("meta[name=csrf-token]").get_attribute("content")
    asked = await page.request.post(f"{base}/templates/{deleted_id}/delete", headers={"X-CSRF-Token": token or ""})
    assert asked.status == 200 and asked.url.endswith(f"/templates/{deleted_id}/delete")
    async with bot.db.session() as session:
        assert await session.get(ProgrammePlan, deleted_id) is not None
    await page.get_by_role("button", name="Delete template Lumbar week 1-6").click()
    await page.get_by_role("button", name="Delete the template").click()
    await page.get_by_role("status").filter(has_text="The template is deleted.").wait_for()
    assert await page.locator("#templates tbody tr th").all_inner_texts() == ["Cleo's own"]
    # The same delete again (a second click that arrived late, a stale tab): said on the list, not a 404.
    gone = await page.request.post(
        f"{page.url.split('/templates')[0]}/templates/{deleted_id}/delete",
        form={"confirm": "y"},
        headers={"X-CSRF-Token": await page.locator("meta[name=csrf-token]").get_attribute("content") or ""},
    )
    assert gone.status == 200 and gone.url.endswith("/templates")
    assert "That template no longer exists." in await gone.text()
    async with bot.db.session() as session:
        logged = (await session.exec(select(AuditLog).where(col(AuditLog.action) == "template.delete"))).all()
    assert [(r.staff_id, r.actor) for r in logged] == [(staff[BEN].id, f"web:{BEN}")]
    assert page.console_errors == []


async def test_a_template_saved_again_under_its_name_is_not_listed_twice(bot_factory: Any, page: Any) -> None:
    """'Save as a clinic template' with a name already used made a second template of that name, and the
    builder's 'Begin with' listed 'Template: Fusion' twice with no way to tell them apart. The same plan
    again (a second click) is the template already saved; another plan under that name is refused, saying
    what to do, with the draft and the name kept."""
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    async with bot.db.session() as session:
        [patient_id] = (await session.exec(select(Patient.id).order_by(col(Patient.id)).limit(1))).all()
    await browser_sign_in(page, bot, BEN)
    await page.goto(f"{page.url.split('/caseload')[0]}/patients/{patient_id}/programme")
    name = page.get_by_label("Template name")

    async def save_as(typed: str) -> str:
        await name.fill(typed)
        async with page.expect_response("**/programme/template") as answer:
            await page.get_by_role("button", name="Save as a clinic template").click()
        await (await answer.value).finished()
        return await page.locator("#builder").inner_text()

    assert "Saved as a clinic template." in await save_as("Fusion")
    # The same name as the list shows it, the same plan (a second click): the template saved already.
    assert "Saved as a clinic template." in await save_as(" fusion ")
    sets = page.locator("input[name='phases-0-sessions-0-items-0-sets']")
    await sets.fill("3")
    said = await save_as("Fusion")
    assert "A template named 'Fusion' already exists with another plan" in said, said
    assert "Saved as a clinic template." not in said
    assert await sets.input_value() == "3" and await name.input_value() == "Fusion", "what was typed is kept"
    async with bot.db.session() as session:
        names = (await session.exec(select(ProgrammePlan.name).where(col(ProgrammePlan.patient_id).is_(None)))).all()
    assert names == ["Fusion"]
    await page.reload()
    begin = await page.locator("#start option").all_inner_texts()
    assert begin.count("Template: Fusion") == 1, begin
    assert page.console_errors == []
