"""Alert accuracy from the staff web app: after acknowledging, "Needed action" / "No action needed".

The web app is a front end over rehab_bot.alert_review.review: one verdict per alert, the first stands
(a second post says what was recorded and changes nothing), only for an acknowledged alert, only by
staff who may change the patient (or who acknowledged it), rechecked on every request; with and
without htmx. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from factories import make_patient, make_staff
from sqlmodel import col, select, update
from webrig import WEB, client, csrf, init_data, sign_in_initdata, web_url

from rehab_bot.models import Alert, AlertReview, AuditLog, Patient, Staff

BEN, CLEO, ADMIN = 7811, 7812, 7813


def without_token(html: str) -> str:
    """A page without its CSRF token (WTForms' token names the second it was made)."""
    return re.sub(r"\d{14}##[0-9a-f]{40}", "TOKEN", html)


async def signed_in(bot: Any, telegram_id: int) -> tuple[aiohttp.ClientSession, str]:
    browser = client()
    response = await sign_in_initdata(browser, web_url(bot), init_data(telegram_id, bot.clock.now()))
    assert response.status == 200
    async with browser.get(f"{web_url(bot)}/alerts") as page:
        return browser, csrf(await page.text())


async def clinic(bot: Any) -> tuple[Patient, int, dict[str, Staff]]:
    staff = {
        "ben": await make_staff(bot.db, telegram_id=BEN, name="Dr Ben"),
        "cleo": await make_staff(bot.db, telegram_id=CLEO, name="Dr Cleo"),
        "admin": await make_staff(bot.db, role="admin", telegram_id=ADMIN, name="Admin Ada"),
    }
    patient, _ = await make_patient(bot.db, bot.clock, therapist_id=staff["ben"].id, alias="LWS-0042")
    return patient, await new_alert(bot, patient), staff


async def new_alert(bot: Any, patient: Patient) -> int:
    async with bot.db.session() as session:
        alert = Alert(
            patient_id=patient.id or 0, severity="urgent", kind="red_flag", detail="new numbness",
            created_at=bot.clock.now(),
        )  # fmt: skip
        session.add(alert)
        await session.commit()
        return int(alert.id or 0)


async def reviews(bot: Any) -> list[AlertReview]:
    async with bot.db.session() as session:
        return list((await session.exec(select(AlertReview).order_by(col(AlertReview.alert_id)))).all())


def review_forms(html: str) -> list[str]:
    return re.findall(r'action="/alerts/(\d+)/review', html)


async def post(browser: aiohttp.ClientSession, url: str, token: str, **data: str) -> aiohttp.ClientResponse:
    async with browser.post(url, data={"csrf_token": token, **data}, allow_redirects=False) as response:
        await response.read()
        return response


async def test_a_verdict_is_given_once_on_an_acknowledged_alert_without_scripts(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    patient, alert_id, staff = await clinic(bot)
    base = web_url(bot)
    ben, token = await signed_in(bot, BEN)
    async with ben:
        async with ben.get(f"{base}/alerts") as page:
            assert review_forms(await page.text()) == []  # open: Acknowledge only
        # Before the acknowledgement the verdict is refused (the core's words), and nothing is recorded.
        before = await post(ben, f"{base}/alerts/{alert_id}/review?next=/alerts", token, needed="yes")
        assert (before.status, before.headers["Location"]) == (303, "/alerts")
        async with ben.get(f"{base}/alerts") as page:
            assert "Acknowledge the alert first." in await page.text()
        assert await reviews(bot) == []

        acked = await post(ben, f"{base}/alerts/{alert_id}/ack?next=/alerts", token)
        assert acked.status == 303
        async with ben.get(f"{base}/alerts") as page:
            html = await page.text()
        assert "Acknowledged by you: did it need action?" in html and review_forms(html) == [str(alert_id)]
        assert 'name="needed" value="yes">Needed action<' in html
        assert 'value="no" class="secondary">No action needed<' in html

        # A bad verdict, an unknown alert: nothing recorded.
        assert (await post(ben, f"{base}/alerts/{alert_id}/review", token, needed="maybe")).status == 400
        assert (await post(ben, f"{base}/alerts/{alert_id}/review", token)).status == 400
        assert (await post(ben, f"{base}/alerts/424242/review", token, needed="yes")).status == 404
        # Without the CSRF token: refused like every other form.
        async with ben.post(f"{base}/alerts/{alert_id}/review", data={"needed": "yes"}) as forged:
            assert forged.status == 403 and "The form has expired" in await forged.text()
        assert await reviews(bot) == []

        back = f"/patients/{patient.id}"
        first = await post(ben, f"{base}/alerts/{alert_id}/review?next={back}", token, needed="yes")
        assert (first.status, first.headers["Location"]) == (303, back)
        async with ben.get(base + back) as page:
            html = await page.text()
        assert "Recorded: needed action." in html
        assert re.search(r"Reviewed: needed action \(Dr Ben, <time", html) and review_forms(html) == []
        async with ben.get(f"{base}/alerts") as page:
            assert review_forms(await page.text()) == []  # nothing left to review

        # Another tab, a double click: what was recorded, and nothing changes.
        again = await post(ben, f"{base}/alerts/{alert_id}/review?next=/alerts", token, needed="no")
        assert again.status == 303
        async with ben.get(f"{base}/alerts") as page:
            assert "Already recorded by Dr Ben: needed action. Nothing was changed." in await page.text()
    [review] = await reviews(bot)
    assert (review.alert_id, review.needed_action, review.staff_id) == (alert_id, True, staff["ben"].id)
    async with bot.db.session() as session:
        audited = (await session.exec(select(AuditLog).where(col(AuditLog.action) == "alert.review"))).all()
    assert [a.detail for a in audited] == [f"alert={alert_id} needed_action=yes"]


async def test_staff_without_rights_get_the_web_apps_refusal_rechecked_on_every_request(
    bot_factory: Any, backend: str
) -> None:
    bot = await bot_factory(backend, web=WEB)
    patient, alert_id, staff = await clinic(bot)
    base = web_url(bot)
    admin, admin_token = await signed_in(bot, ADMIN)
    cleo, cleo_token = await signed_in(bot, CLEO)
    ben, ben_token = await signed_in(bot, BEN)
    async with admin, cleo, ben:
        assert (await post(admin, f"{base}/alerts/{alert_id}/ack", admin_token)).status == 303
        # A colleague sees the patient read-only: no buttons, and a forged post is the app's 403 page.
        async with cleo.get(f"{base}/patients/{patient.id}") as page:
            assert review_forms(await page.text()) == []
        async with cleo.post(
            f"{base}/patients/{patient.id}/pause", data={"csrf_token": cleo_token, "days": "7"}
        ) as refused_elsewhere:
            assert refused_elsewhere.status == 403
            elsewhere = await refused_elsewhere.text()
        async with cleo.post(
            f"{base}/alerts/{alert_id}/review", data={"csrf_token": cleo_token, "needed": "no"}
        ) as refused:
            # The same refusal page; its form token carries the second it was made, so it is left out.
            assert refused.status == 403 and without_token(await refused.text()) == without_token(elsewhere)
        # The therapist may (the admin acknowledged it): the patient page offers the verdict.
        async with ben.get(f"{base}/patients/{patient.id}") as page:
            html = await page.text()
        assert review_forms(html) == [str(alert_id)] and "Acknowledged by Admin Ada." in html
        # Between that page and the click, the patient moves to Dr Cleo: the post is refused.
        async with bot.db.session() as session:
            await session.exec(update(Patient).values(therapist_id=staff["cleo"].id))
            await session.commit()
        async with ben.post(
            f"{base}/alerts/{alert_id}/review", data={"csrf_token": ben_token, "needed": "yes"}
        ) as refused:
            assert refused.status == 403
        assert await reviews(bot) == []
        # htmx: the verdict replaces the buttons; a second click says what stands.
        hx = {"HX-Request": "true", "X-CSRF-Token": cleo_token}
        async with cleo.post(f"{base}/alerts/{alert_id}/review", data={"needed": "no"}, headers=hx) as done:
            fragment = await done.text()
        assert done.status == 200 and fragment.lstrip().startswith(f'<div id="verdict-{alert_id}"')
        assert "Reviewed: no action needed (Dr Cleo" in fragment and "Recorded: no action needed." in fragment
        async with cleo.post(f"{base}/alerts/{alert_id}/review", data={"needed": "yes"}, headers=hx) as twice:
            fragment = await twice.text()
        assert "Already recorded by Dr Cleo: no action needed. Nothing was changed." in fragment
        assert review_forms(fragment) == []
    [review] = await reviews(bot)
    assert (review.needed_action, review.staff_id) == (False, staff["cleo"].id)


async def test_an_htmx_acknowledgement_offers_the_verdict_in_place(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    _, alert_id, _ = await clinic(bot)
    ben, token = await signed_in(bot, BEN)
    async with (
        ben,
        ben.post(
            f"{web_url(bot)}/alerts/{alert_id}/ack?next=/alerts", headers={"HX-Request": "true", "X-CSRF-Token": token}
        ) as done,
    ):
        fragment = await done.text()
    assert "Acknowledged by Dr Ben." in fragment and review_forms(fragment) == [str(alert_id)]
    assert f'hx-post="/alerts/{alert_id}/review?next=/alerts"' in fragment
