"""The patient page's message thread in Chromium (issue 18): a reply from the dashboard reaches the
patient in Telegram, labelled and threaded; a colleague sees the thread read-only and a forged
reply is refused; the caregivers list with Remove; axe finds nothing serious."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from factories import make_patient, make_staff
from PIL import Image
from rig.telegram_server import FakeTelegram
from sqlmodel import col, select
from web_seed import BEN, CLEO
from webrig import WEB, browser_sign_in, web_url

from rehab_bot import caregiver as caregiver_core
from rehab_bot import message as message_core
from rehab_bot.bot import app as app_module
from rehab_bot.config import photo_dir
from rehab_bot.models import Caregiver, CareMessage, Patient
from tests.browser.axe import serious

PATIENT = 7281
SENT = "✉️ Sent to your care team."


async def run_jobs(bot: Any) -> None:
    await app_module.dispatch_job(bot.app)
    await bot.tick()


async def test_a_reply_from_the_dashboard_reaches_the_patient_threaded(
    bot_factory: Any, tg: FakeTelegram, page: Any, phone_page: Any, tmp_path: Path
) -> None:
    bot = await bot_factory(web=WEB, delivery={"per_chat_interval": 0.02}, care={"photo_dir": str(tmp_path / "p")})
    ben = await make_staff(bot.db, telegram_id=BEN, name="Dr Ben")
    await make_staff(bot.db, telegram_id=CLEO, name="Dr Cleo")
    patient, _ = await make_patient(
        bot.db, bot.clock, times=(), telegram_id=PATIENT, therapist_id=ben.id, consent_at=bot.clock.now()
    )
    user = tg.user(PATIENT)
    sent = await user.send("Is the swelling normal?")
    original = sent["message"]["message_id"]
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        name = message_core.store_photo(photo_dir(bot.config), b"\xff\xd8not-a-real-jpeg", 10_000)
        await message_core.send(session, row, bot.config.clinic, text="", now=bot.clock.now(), photo_path=name)
        link = await caregiver_core.invite(session, row, bot.clock.now(), hours=24)
        await caregiver_core.open_link(session, link.code, 7481, "en", bot.clock.now())
        await caregiver_core.consent(session, link, "Maria", bot.clock.now())
        await session.commit()
        first = (await session.exec(select(CareMessage).order_by(col(CareMessage.id)))).first()
    assert first is not None

    # Dr Ben (the therapist) replies from the patient page.
    await browser_sign_in(page, bot, BEN)
    await page.goto(f"{web_url(bot)}/patients/{patient.id}")
    thread = page.locator("ol.thread")
    assert "Is the swelling normal?" in await thread.inner_text()
    assert await page.locator(f"#message-{first.id} mark").inner_text() == "unread"
    assert await page.get_by_role("img", name=f"Photo from {patient.alias}").count() == 1
    assert await serious(page) == []
    await page.locator(f"#message-{first.id} summary").click()
    await page.get_by_label(f"Your reply to {patient.alias}").first.fill("Yes, in week 1. Keep the leg up.")
    await page.locator(f"#message-{first.id}").get_by_role("button", name="Send reply").click()
    await page.wait_for_url(f"**/patients/{patient.id}")
    assert await page.get_by_role("status").inner_text() == "Your reply is on its way to the patient."
    assert "Dr Ben" in await page.locator("ol.thread li.msg-out").inner_text()
    assert await serious(page) == []

    await run_jobs(bot)
    [reply] = await user.wait_for(lambda m: "Keep the leg up" in (m.text or ""))
    assert (reply.text or "").startswith("💬 Dr Ben, Our clinic:")
    assert reply.reply_to_message_id == original, "threaded: a Telegram reply to the patient's message"

    # Dr Cleo (a colleague) sees the thread and the caregiver, no Reply / Mark read / Remove; a forged reply is 403.
    await browser_sign_in(phone_page, bot, CLEO)
    await phone_page.goto(f"{web_url(bot)}/patients/{patient.id}")
    assert "Keep the leg up" in await phone_page.locator("ol.thread").inner_text()
    assert "Maria" in await phone_page.locator("ul.caregivers").inner_text()
    for label in ("Send reply", "Mark read", "Remove"):
        assert await phone_page.get_by_role("button", name=label).count() == 0, label
    assert await serious(phone_page) == []
    assert phone_page.console_errors == []
    token = await phone_page.locator('meta[name="csrf-token"]').get_attribute("content")
    status = await phone_page.evaluate(
        """async ([path, token]) => (await fetch(path, {method: 'POST', body: 'text=forged',
            headers: {'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': token}})).status""",
        [f"/patients/{patient.id}/messages/{first.id}/reply", token],
    )
    assert status == 403
    assert [e for e in phone_page.console_errors if "403" not in e] == []  # the browser logs the refused fetch

    # Dr Ben removes the caregiver: gone from the page and from the bot at once.
    await page.locator("ul.caregivers").get_by_role("button", name="Remove").click()
    await page.wait_for_url(f"**/patients/{patient.id}")
    assert await page.get_by_text("No caregivers.").is_visible()
    async with bot.db.session() as session:
        gone = await session.get(Caregiver, link.id)
        assert gone is not None and gone.removed_at is not None
        assert await caregiver_core.active_link(session, 7481) is None
        replies = (await session.exec(select(CareMessage).where(col(CareMessage.direction) == "out"))).all()
    assert [r.text for r in replies] == ["Yes, in week 1. Keep the leg up."]
    assert page.console_errors == []


async def test_the_patient_writes_in_the_mini_app_in_privacy_mode(
    bot_factory: Any, tg: FakeTelegram, phone_page: Any, tmp_path: Path
) -> None:
    from webrig import browser_open_miniapp, miniapp_web

    bot = await bot_factory(
        web=miniapp_web(), privacy={"health_data_in_chat": False}, care={"photo_dir": str(tmp_path / "p")}
    )
    ben = await make_staff(bot.db, telegram_id=BEN, name="Dr Ben")
    await make_patient(
        bot.db, bot.clock, times=(), telegram_id=PATIENT, therapist_id=ben.id, consent_at=bot.clock.now()
    )
    await browser_open_miniapp(phone_page, bot, PATIENT)
    await phone_page.get_by_role("link", name="Write to your care team and read their replies").click()
    await phone_page.wait_for_url("**/app/messages")
    assert await serious(phone_page) == []
    await phone_page.get_by_label("Your message").fill("The wound itches a bit.")
    photo = tmp_path / "wound.jpg"
    Image.new("RGB", (24, 16), (200, 120, 90)).save(photo, "JPEG")  # a real one: uploads are re-encoded
    await phone_page.get_by_label("A photo (optional)").set_input_files(str(photo))
    await phone_page.get_by_role("button", name="Send to my care team").click()
    await phone_page.get_by_role("status").first.wait_for()
    assert "The wound itches a bit." in await phone_page.locator("ol.thread").inner_text()
    assert await serious(phone_page) == []
    assert phone_page.console_errors == []
    async with bot.db.session() as session:
        [stored] = (await session.exec(select(CareMessage))).all()
    assert (
        stored.text == "The wound itches a bit."
        and stored.photo_bytes == (tmp_path / "p" / stored.photo_path).stat().st_size
    )
