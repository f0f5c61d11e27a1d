"""Admin pages in Chromium: staff (invite, role, remove), the audit log's filters, the content check."""

from __future__ import annotations

from typing import Any

from rig.telegram_server import FakeTelegram
from sqlmodel import col, select
from web_seed import ADMIN, BEN, CLEO, seed_clinic
from webrig import WEB, browser_sign_in, web_url

from rehab_bot.models import Alert, AuditLog, Invite, Patient, Staff
from tests.browser.axe import serious


async def test_staff_invite_role_and_removal(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=6, days=2)
    await browser_sign_in(page, bot, ADMIN)
    await page.get_by_role("link", name="Admin").click()
    await page.wait_for_url("**/admin/staff")
    assert await serious(page) == []

    await page.get_by_label("Name", exact=True).fill("Dr Dana")
    await page.locator("#invite-role").select_option("therapist")
    await page.get_by_role("button", name="Make an invitation link").click()
    link = await page.locator("#invite-link").inner_text()
    assert link.startswith("https://t.me/rehab_test_bot?start=")
    async with bot.db.session() as session:
        made = (await session.exec(select(Invite).where(col(Invite.kind) == "staff"))).one()
    assert made.staff_name == "Dr Dana" and link.endswith(made.code)

    await page.get_by_label("Role of Dr Cleo", exact=True).select_option("admin")
    await page.get_by_role("button", name="Save the role of Dr Cleo").click()
    await page.get_by_role("status").filter(has_text="The role is changed.").wait_for()
    async with bot.db.session() as session:
        ben = (await session.exec(select(Staff).where(col(Staff.telegram_id) == BEN))).one()
        bens_before = {p.id for p in (await session.exec(select(Patient).where(col(Patient.therapist_id) == ben.id)))}
        open_alerts = (await session.exec(select(Alert).where(col(Alert.acknowledged_at).is_(None)))).all()
    bens_alerts = [a for a in open_alerts if a.patient_id in bens_before]
    assert bens_before and bens_alerts

    # Removing is a page of its own: what goes to whom, a colleague chosen, a ticked box; not one click.
    await page.get_by_role("button", name="Remove Dr Ben").click()
    await page.wait_for_url("**/admin/staff/*/remove")
    assert await serious(page) == []
    said = await page.locator("#handover").inner_text()
    assert f"Their {len(bens_before)} patient(s) and those patients' {len(bens_alerts)} open alert(s)" in said
    await page.get_by_label("Hand their patients to").select_option(label="Dr Cleo (admin)")
    await page.get_by_role("button", name="Remove", exact=True).click()  # the box not ticked: nothing happens
    await page.get_by_role("alert").filter(has_text="tick the box").wait_for()
    async with bot.db.session() as session:
        assert (await session.get(Staff, ben.id)).active  # type: ignore[union-attr]
    await page.get_by_label("Hand their patients to").select_option(label="Dr Cleo (admin)")
    await page.get_by_label("Remove Dr Ben's access").check()
    await page.get_by_role("button", name="Remove", exact=True).click()
    await page.get_by_role("status").filter(has_text="now go to Dr Cleo").wait_for()
    async with bot.db.session() as session:
        rows = {s.telegram_id: s for s in (await session.exec(select(Staff))).all()}
        moved = {p.id for p in (await session.exec(select(Patient).where(col(Patient.therapist_id) == rows[CLEO].id)))}
        bens = (await session.exec(select(Patient).where(col(Patient.therapist_id) == rows[BEN].id))).all()
    assert rows[CLEO].role == "admin" and not rows[BEN].active and bens == [] and bens_before <= moved
    assert page.console_errors == []


async def test_audit_log_filters_and_content_check(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=6, days=2)
    await browser_sign_in(page, bot, BEN)  # Ben's sign-in and caseload view are in the log
    await page.goto(web_url(bot) + "/patients/1")
    await page.context.clear_cookies()
    await browser_sign_in(page, bot, ADMIN)
    await page.goto(web_url(bot) + "/admin/audit")
    assert await serious(page) == []
    await page.get_by_label("Staff member").select_option(label="Dr Ben")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**staff=**")
    actions = await page.locator("#audit tbody tr td:nth-child(3)").all_inner_texts()
    # Opening a patient's page records the page and the message thread shown on it (newest first).
    assert actions == ["view.thread", "view.patient", "view.patients", "web.signin", "web.link"]
    await page.get_by_label("Patient", exact=True).fill("LWS-0001")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**patient=LWS-0001**")
    patient_rows = await page.locator("#audit tbody tr td:nth-child(3)").all_inner_texts()
    assert patient_rows == ["view.thread", "view.patient"]
    await page.get_by_role("link", name="Content check").click()
    await page.wait_for_url("**/admin/content")
    assert (await page.locator("#content-ok").inner_text()).startswith("Content OK:")
    assert await serious(page) == []
    assert page.console_errors == []


async def test_a_therapist_cannot_open_the_admin_pages(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    await browser_sign_in(page, bot, BEN)
    assert await page.get_by_role("link", name="Admin").count() == 0
    response = await page.goto(web_url(bot) + "/admin/staff")
    assert response is not None and response.status == 403
    assert await page.get_by_role("heading", name="Error 403").is_visible()


async def test_audit_log_filtered_to_the_last_day_a_date_field_takes(bot_factory: Any, page: Any) -> None:
    """'To 31.12.9999' (a date field's last day: no end) lists the log; it was a bare 500 (the day after overflowed)."""
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    await browser_sign_in(page, bot, ADMIN)
    await page.goto(web_url(bot) + "/admin/audit")
    await page.get_by_label("From").fill("2000-01-01")
    await page.get_by_label("To").fill("9999-12-31")
    async with page.expect_navigation() as shown:
        await page.get_by_role("button", name="Filter").click()
    response = await shown.value
    assert response is not None and response.status == 200
    assert await page.get_by_label("To").input_value() == "9999-12-31", "what was typed is kept"
    actions = await page.locator("#audit tbody tr td:nth-child(3)").all_inner_texts()
    assert "web.signin" in actions
    assert page.console_errors == []


async def test_a_member_removed_meanwhile_is_said_so_not_a_404(bot_factory: Any, page: Any) -> None:
    """The staff page open while another admin (or the command line) removed Dr Ben, or the Remove form sent
    twice: Remove and Save role led to 'Error 404: There is no such page.' Now the staff page says he was
    removed already and that nothing changed."""
    from rehab_bot import staff as staff_core

    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=4, days=1)
    await browser_sign_in(page, bot, ADMIN)
    await page.goto(web_url(bot) + "/admin/staff")
    other = await page.context.new_page()  # a second tab with the same list
    await other.goto(web_url(bot) + "/admin/staff")
    async with bot.db.session() as session:  # meanwhile, elsewhere
        await staff_core.remove_staff(session, telegram_id=BEN, now=bot.clock.now(), reassign_to=str(CLEO))
        await session.commit()
    said = "Dr Ben was already removed; nothing changed."
    await page.get_by_label("Role of Dr Ben", exact=True).select_option("admin")
    async with page.expect_navigation() as shown:
        await page.get_by_role("button", name="Save the role of Dr Ben").click()
    assert (await shown.value).status == 200  # type: ignore[union-attr]
    await page.get_by_role("status").filter(has_text=said).wait_for()
    async with other.expect_navigation() as shown:
        await other.get_by_role("button", name="Remove Dr Ben").click()
    assert (await shown.value).status == 200  # type: ignore[union-attr]
    assert other.url.endswith("/admin/staff")
    await other.get_by_role("status").filter(has_text=said).wait_for()
    async with bot.db.session() as session:
        ben = (await session.exec(select(Staff).where(col(Staff.telegram_id) == BEN))).one()
    assert (ben.active, ben.role) == (False, "therapist"), "nothing changed"
    assert page.console_errors == []


async def test_open_staff_invitations_are_listed_and_a_withdrawn_link_no_longer_works(
    bot_factory: Any, page: Any, tg: FakeTelegram
) -> None:
    """An admin could not see the invitations made and not yet used, nor take one back (a link sent to
    the wrong person, a colleague who will not start)."""
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    await browser_sign_in(page, bot, ADMIN)
    await page.goto(web_url(bot) + "/admin/staff")
    assert "No open invitations" in await page.locator("main").inner_text()
    for name in ("Dr Dana", "Dr Emil"):
        await page.get_by_label("Name", exact=True).fill(name)
        await page.locator("#invite-role").select_option("therapist")
        await page.get_by_role("button", name="Make an invitation link").click()
        await page.locator("#invite-link").wait_for()
    listed = page.locator("#invites tbody tr")
    assert await listed.count() == 2
    newest = await listed.nth(0).inner_text()
    assert newest.startswith("Dr Emil") and "therapist" in newest and "Admin" in newest
    async with bot.db.session() as session:
        made = {i.staff_name: i for i in (await session.exec(select(Invite).where(col(Invite.kind) == "staff")))}
    assert f"https://t.me/rehab_test_bot?start={made['Dr Dana'].code}" in await listed.nth(1).inner_text()
    assert await serious(page) == []

    await page.get_by_role("button", name="Withdraw the invitation for Dr Dana").click()
    await page.get_by_role("status").filter(has_text="The invitation for Dr Dana is withdrawn").wait_for()
    assert await listed.count() == 1 and (await listed.nth(0).inner_text()).startswith("Dr Emil")
    async with bot.db.session() as session:
        logged = (await session.exec(select(AuditLog).where(col(AuditLog.action) == "staff_invite.withdraw"))).all()
    assert [(r.actor, r.detail) for r in logged] == [(f"web:{ADMIN}", f"invite {made['Dr Dana'].id} therapist")]

    # The withdrawn link, opened in Telegram, registers nobody.
    dana = tg.user(7077)
    await dana.send(f"/start {made['Dr Dana'].code}")
    [told] = await dana.wait_for(timeout=5)
    assert told.text.startswith("Your clinic has withdrawn this invitation, so it cannot be used.")
    async with bot.db.session() as session:
        assert (await session.exec(select(Staff).where(col(Staff.telegram_id) == 7077))).first() is None

    # Withdrawn again from a page opened before (another admin, a second tab): said so, nothing changes.
    await page.evaluate(
        """id => { const f = document.querySelector('#invites form');
                  f.action = '/admin/staff/invites/' + id + '/withdraw'; f.submit(); }""",
        made["Dr Dana"].id,
    )
    await page.get_by_role("status").filter(has_text="That invitation is no longer open").wait_for()
    assert await listed.count() == 1
    assert page.console_errors == []


async def test_an_open_invitations_withdraw_button_is_on_screen_at_phone_width_in_german(
    bot_factory: Any, phone_page: Any
) -> None:
    """At 390 px the table scrolled sideways and "Zurückziehen" was off-screen (an outside test)."""
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    async with bot.db.session() as session:
        admin = (await session.exec(select(Staff).where(col(Staff.telegram_id) == ADMIN))).one()
        admin.language = "de"
        session.add(admin)
        await session.commit()
    await browser_sign_in(phone_page, bot, ADMIN)
    await phone_page.goto(web_url(bot) + "/admin/staff")
    await phone_page.get_by_label("Name", exact=True).fill("Dr. Dana Beispiel-Langername")
    await phone_page.get_by_role("button", name="Einladungslink erstellen").click()
    await phone_page.locator("#invite-link").wait_for()
    button = phone_page.get_by_role("button", name="Zurückziehen: Einladung für Dr. Dana Beispiel-Langername")
    # The table's start in view, not scrolled sideways: the button is on screen as the page opens.
    await phone_page.evaluate("document.querySelector('#invites').scrollIntoView({block: 'center', inline: 'start'})")
    assert await phone_page.evaluate("document.querySelector('#invites').parentElement.scrollLeft") == 0
    box = await button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert await serious(phone_page) == []
    await button.click()
    await (
        phone_page.get_by_role("status")
        .filter(
            has_text="Einladung für Dr. Dana Beispiel-Langername ist zurückgezogen: ihr Link funktioniert nicht mehr."
        )
        .wait_for()
    )
    assert phone_page.console_errors == []
