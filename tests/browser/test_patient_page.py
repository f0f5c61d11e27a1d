"""The patient page and the alerts inbox in Chromium: record, charts, answers, notes, acknowledge, changes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select, update
from web_seed import BEN, CLEO, seed_clinic
from webrig import WEB, browser_sign_in, web_url

from rehab_bot.models import Alert, AuditLog, Note, Patient, Staff
from rehab_bot.schedule import local_date
from tests.browser.axe import serious

SCRIPT = '<script>document.title="owned";window.owned=1</script><img src=x onerror="window.owned=2">'


async def ben_patient(bot: Any, *, with_alert: bool = True) -> Patient:
    """One of Dr Ben's patients with an open alert (the seed gives one to every fifth patient)."""
    async with bot.db.session() as session:
        patients = (await session.exec(select(Patient).order_by(col(Patient.id)))).all()
        alerted = {a.patient_id for a in (await session.exec(select(Alert))).all()}
    ben = await bot_staff_id(bot, BEN)
    return next(p for p in patients if p.therapist_id == ben and (p.id in alerted) == with_alert)


async def bot_staff_id(bot: Any, telegram_id: int) -> int:
    from rehab_bot.models import Staff

    async with bot.db.session() as session:
        row = (await session.exec(select(Staff).where(col(Staff.telegram_id) == telegram_id))).one()
    return int(row.id or 0)


async def test_patient_page_shows_the_record_and_a_script_in_a_note_stays_text(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=10, days=40)
    patient = await ben_patient(bot)
    async with bot.db.session() as session:
        session.add(Note(patient_id=patient.id or 0, text=SCRIPT, created_at=bot.clock.now() - timedelta(hours=1)))
        await session.commit()
    await browser_sign_in(page, bot, BEN)
    await page.get_by_role("link", name=patient.alias).click()
    await page.wait_for_url(f"**/patients/{patient.id}")
    assert await page.get_by_role("heading", name=patient.alias, exact=True).is_visible()
    # The note is shown as the text it is: no script ran, no element was made from it.
    assert SCRIPT in await page.locator("ul.notes").inner_text()
    assert await page.evaluate("() => window.owned") is None
    assert await page.title() != "owned"
    # Calendar: the weeks since enrolment (40 days ago), days with their kind; charts drawn by uPlot.
    today, enrolled = local_date(patient, bot.clock.now()), local_date(patient, bot.clock.now() - timedelta(days=40))
    weeks = (today - timedelta(days=today.weekday()) - (enrolled - timedelta(days=enrolled.weekday()))).days // 7 + 1
    assert await page.locator("#calendar tbody tr").count() == weeks < 12
    assert await page.locator("#calendar td.before").count() == enrolled.weekday()
    assert (
        await page.locator("#calendar caption").inner_text()
        == f"Exercise sessions since enrolment on {enrolled.day} {enrolled:%b %Y}"
    )
    kinds = set(await page.locator("#calendar td[data-kind]").evaluate_all("tds => tds.map(t => t.dataset.kind)"))
    assert {"done", "partly"} <= kinds
    await page.locator("[data-chart=pain] canvas").wait_for()
    assert await page.locator("[data-chart=mood] canvas").count() == 1
    # The charts' time axis writes a day as the page's language does, not uPlot's US "5/2".
    may_2 = datetime(2026, 5, 2, 12, tzinfo=UTC).timestamp()
    labels = await page.evaluate("(t) => window.rehabChartTimeLabels([t], 30 * 86400)", may_2)
    assert labels == ["2 May"]
    answers = await page.locator("#h-answers + ul li").all_inner_texts()
    assert answers and not any("pain/pain" in a or "mood/mood" in a for a in answers)  # the question in words
    assert await serious(page) == []
    assert page.console_errors == []


async def test_acknowledge_pause_resume_discharge_and_download(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=10, days=10)
    patient = await ben_patient(bot)
    await browser_sign_in(page, bot, BEN)
    await page.goto(f"{web_url(bot)}/patients/{patient.id}")
    await page.get_by_role("button", name=f"Acknowledge the alert for {patient.alias}").click()
    await page.get_by_role("status").filter(has_text="Acknowledged by Dr Ben.").wait_for()
    async with bot.db.session() as session:
        alert = (await session.exec(select(Alert).where(col(Alert.patient_id) == patient.id))).one()
    assert alert.acknowledged_at == bot.clock.now()

    await page.get_by_label("Pause reminders for").select_option("7")
    await page.get_by_role("button", name="Pause", exact=True).click()
    await page.get_by_role("status").filter(has_text="Reminders are paused.").wait_for()
    await page.get_by_role("button", name="Resume reminders").click()
    await page.get_by_role("status").filter(has_text="Reminders are on again.").wait_for()
    await page.get_by_role("button", name="Discharge").click()  # not confirmed: nothing happens
    await page.get_by_role("status").filter(has_text="Tick the box").wait_for()
    async with page.expect_download() as fhir:
        await page.get_by_role("link", name="FHIR R4 (JSON)").click()
    assert (await fhir.value).suggested_filename.endswith("-fhir.json")
    await page.get_by_label("End this patient's care (no more reminders)").check()
    await page.get_by_role("button", name="Discharge").click()
    await page.get_by_role("status").filter(has_text="discharged").wait_for()
    async with bot.db.session() as session:
        rows = (await session.exec(select(AuditLog).where(col(AuditLog.patient_id) == patient.id))).all()
    # The acknowledgement swaps its row in place (htmx); every other change reloads the page.
    # Each view of the page also shows (and audits) the patient's message thread.
    assert [r.action for r in rows if r.actor == f"web:{BEN}"] == [
        "view.patient",
        "view.thread",
        "alert.acknowledge",
        "change.pause",
        "view.patient",
        "view.thread",
        "change.resume",
        "view.patient",
        "view.thread",
        "view.patient",
        "view.thread",
        "export",
        "change.discharge",
        "view.patient",
        "view.thread",
    ]
    assert page.console_errors == []


async def test_a_therapist_sees_a_colleagues_patient_read_only_and_a_forged_edit_is_refused(
    bot_factory: Any, page: Any
) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=10, days=5)
    theirs = await ben_patient(bot)
    await browser_sign_in(page, bot, CLEO)
    await page.goto(f"{web_url(bot)}/patients/{theirs.id}")
    assert await page.get_by_text("A colleague's patient: you can view, but not change, them.").is_visible()
    assert await page.get_by_role("button", name="Pause").count() == 0
    assert await page.get_by_role("button", name="Discharge").count() == 0
    assert await page.locator("form[hx-post]").count() == 0  # no Acknowledge either
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    for path, body in [
        (f"/patients/{theirs.id}/pause", "days=7"),
        (f"/patients/{theirs.id}/discharge", "confirm=y"),
        (f"/alerts/{await alert_of(bot, theirs)}/ack", ""),
    ]:
        status = await page.evaluate(
            """async ([path, body, token]) => (await fetch(path, {method: 'POST', body: body,
                headers: {'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': token}})).status""",
            [path, body, token],
        )
        assert status == 403, path
    async with bot.db.session() as session:
        row = await session.get(Patient, theirs.id)
        alert = (await session.exec(select(Alert).where(col(Alert.patient_id) == theirs.id))).one()
    assert row is not None and row.status == theirs.status and alert.acknowledged_at is None


async def alert_of(bot: Any, patient: Patient) -> int:
    async with bot.db.session() as session:
        alert = (await session.exec(select(Alert).where(col(Alert.patient_id) == patient.id))).one()
    return int(alert.id or 0)


async def test_alerts_inbox_acknowledges_in_one_click(bot_factory: Any, phone_page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=20, days=3)
    await browser_sign_in(phone_page, bot, BEN)
    await phone_page.get_by_role("link", name="Alerts", exact=True).click()
    await phone_page.wait_for_url("**/alerts")
    items = phone_page.locator("ul.alerts li")
    count = await items.count()
    assert count >= 1
    first = phone_page.get_by_role("button", name="Acknowledge").first
    await first.click()
    await phone_page.get_by_role("status").filter(has_text="Acknowledged by Dr Ben.").wait_for()
    assert await phone_page.get_by_role("button", name="Acknowledge").count() == count - 1
    assert await serious(phone_page) == []
    assert await phone_page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert phone_page.console_errors == []


async def test_a_german_patient_page_writes_the_chart_days_in_german(bot_factory: Any, page: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=10, days=20)
    patient = await ben_patient(bot)
    async with bot.db.session() as session:
        await session.exec(update(Staff).values(language="de"))
        await session.commit()
    await browser_sign_in(page, bot, BEN)
    await page.goto(f"{web_url(bot)}/patients/{patient.id}")
    await page.locator("[data-chart=pain] canvas").wait_for()
    may_2 = datetime(2026, 5, 2, 12, tzinfo=UTC).timestamp()
    assert await page.evaluate("(t) => window.rehabChartTimeLabels([t], 30 * 86400)", may_2) == ["2. Mai"]
    [short] = await page.evaluate("(t) => window.rehabChartTimeLabels([t], 86400)", may_2)
    assert re.fullmatch(r"2\. Mai, \d{2}:\d{2}", short), short  # a chart of a day or two: the time too
    assert await page.evaluate("() => window.rehabChartNumberLabels([0, 2.5, 7.5, 10])") == ["0", "2,5", "7,5", "10"]
    assert page.console_errors == []


async def test_an_unexpected_failure_is_a_page_in_the_staff_members_language(
    bot_factory: Any, page: Any, monkeypatch: Any
) -> None:
    """A bug while a page was made showed aiohttp's bare English '500 Internal Server Error / Server got itself
    in trouble', without the menu; now a page in the staff member's language says what to do (and the error
    is logged with its traceback)."""
    from rehab_bot import patient_record

    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=3)
    async with bot.db.session() as session:
        await session.exec(update(Staff).values(language="de"))
        await session.commit()
    patient = await ben_patient(bot, with_alert=False)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(patient_record, "calendar", broken)
    await browser_sign_in(page, bot, BEN)
    response = await page.goto(f"{web_url(bot)}/patients/{patient.id}")
    assert response is not None and response.status == 500
    assert await page.get_by_role("heading", name="Fehler 500").is_visible()
    said = await page.locator("main").inner_text()
    assert "Etwas ist bei uns schiefgegangen" in said and "Server got itself in trouble" not in said
    assert await page.get_by_role("link", name="Patientenliste").is_visible(), "the menu is there"
