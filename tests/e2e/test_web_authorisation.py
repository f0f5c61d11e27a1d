"""Every route of the web app, for a stranger, a patient, the therapist, a colleague and an admin.

The matrix must name every route the app has: a new page without a line here fails
test_the_matrix_covers_every_route, so its access is decided on purpose.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, select
from web_seed import ADMIN, BEN, CLEO, seed_clinic
from webrig import WEB, client, init_data, sign_in_initdata, web_url

from rehab_bot import caregiver as caregiver_core
from rehab_bot import message as message_core
from rehab_bot.models import Alert, Patient, PatientStatus, ProgrammePlan, Staff

# Who may: "public" (everyone, never 401/403), "signed_in", "patient", "agreed" (a patient, or one who has agreed
# and is still enrolling: the symptom check, its result and the messages page), "staff" (colleagues included),
# "owner" (the patient's therapist and admins: colleagues 403), "admin".
MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/"): "public",
    ("GET", "/signin"): "public",
    ("POST", "/signin"): "public",
    ("GET", "/signin/telegram"): "public",  # the Login Widget: 404 unless [web] login_widget (off here)
    ("POST", "/signin/telegram"): "public",
    ("GET", "/app"): "public",
    ("POST", "/app/signin"): "public",
    ("GET", "/signed-out"): "public",
    ("POST", "/signout"): "signed_in",
    ("GET", "/me"): "patient",
    ("GET", "/caseload"): "staff",
    ("GET", "/alerts"): "staff",
    ("GET", "/patients/{id}"): "staff",
    ("POST", "/patients/{id}/pause"): "owner",
    ("POST", "/patients/{id}/resume"): "owner",
    ("POST", "/patients/{id}/discharge"): "owner",
    ("GET", "/patients/{id}/export/{fmt}"): "owner",
    ("POST", "/patients/{id}/messages/{mid}/reply"): "owner",  # the chat's Reply (rehab_bot.message.reply)
    ("POST", "/patients/{id}/messages/{mid}/read"): "owner",
    ("GET", "/patients/{id}/messages/{mid}/photo"): "staff",  # READ: a colleague may see it too, audited
    ("POST", "/patients/{id}/caregivers/{cid}/remove"): "owner",
    ("POST", "/alerts/{id}/ack"): "owner",
    ("POST", "/alerts/{id}/review"): "owner",  # alert accuracy (rehab_bot.alert_review): after /ack, sorted first
    ("GET", "/admin"): "admin",
    ("GET", "/admin/staff"): "admin",
    ("POST", "/admin/staff/invite"): "admin",
    ("POST", "/admin/staff/invites/{id}/withdraw"): "admin",  # an open staff invitation withdrawn
    ("POST", "/admin/staff/{id}/role"): "admin",
    ("GET", "/admin/staff/{id}/remove"): "admin",
    ("POST", "/admin/staff/{id}/remove"): "admin",
    ("GET", "/admin/audit"): "admin",
    ("GET", "/admin/content"): "admin",
    ("GET", "/admin/outcomes"): "admin",  # the clinic outcomes report (no patient named, groups < 5 suppressed)
    ("GET", "/admin/outcomes.csv"): "admin",
    ("GET", "/admin/experiments"): "admin",
    ("GET", "/exercises"): "staff",
    ("GET", "/exercises/new"): "staff",
    ("POST", "/exercises/new"): "staff",  # any staff member adds to the clinic's library
    ("GET", "/exercises/{id}"): "staff",
    ("POST", "/exercises/{id}"): "staff",
    ("GET", "/patients/{id}/programme"): "staff",  # a colleague may look at the plan
    ("POST", "/patients/{id}/programme/edit"): "staff",  # rows of a draft: nothing is saved
    ("POST", "/patients/{id}/programme/preview"): "staff",
    ("POST", "/patients/{id}/programme/save"): "owner",
    ("POST", "/patients/{id}/programme/template"): "staff",  # templates belong to the clinic
    ("GET", "/templates"): "staff",
    ("GET", "/templates/{id}/delete"): "owner",  # the page that asks before a template is deleted
    ("POST", "/templates/{id}/delete"): "owner",  # its author (the therapist here) or an admin: a colleague 403
    # The patient's Mini App: patients only; another patient's session or check-in is a 404 (tests/e2e/test_miniapp.py).
    ("GET", "/app/home"): "patient",
    ("GET", "/app/session/{id}"): "patient",
    ("POST", "/app/session/{id}"): "patient",
    ("GET", "/app/session/{id}/media/{n}"): "patient",
    ("POST", "/app/checkin"): "agreed",
    ("GET", "/app/checkin/{id}"): "agreed",
    ("POST", "/app/checkin/{id}"): "agreed",
    ("GET", "/app/result"): "agreed",
    ("GET", "/app/progress"): "patient",
    ("GET", "/app/mydata"): "patient",
    ("GET", "/app/delete"): "patient",
    ("POST", "/app/delete"): "patient",
    ("GET", "/app/messages"): "agreed",  # the patient's own thread only (rehab_bot.message.own_thread)
    ("POST", "/app/messages"): "agreed",  # without confirm=yes nothing is deleted (a 400 here)
    ("POST", "/app/messages/crisis"): "agreed",  # about the patient's own message only (message.own_message)
}
PATIENT_TG = 1_500_001  # LWS-0001, Dr Ben's patient (web_seed)
ENROLLING_TG = 1_500_901  # agreed, asked for session times: not enrolled yet
BODIES = {"pause": {"days": "7"}, "discharge": {"confirm": "y"}, "role": {"role": "therapist"}}
BODIES["invite"] = {"name": "New colleague", "role": "therapist"}
BODIES["reply"] = {"text": "A reply from the matrix test."}
BODIES["review"] = {"needed": "yes"}
CAREGIVER_TG = 1_600_001  # LWS-0001's caregiver: not a web user at all


def routes(bot: Any) -> set[tuple[str, str]]:
    found = set()
    for route in bot.services.web.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method == "HEAD" or path is None or path.startswith("/static"):
            continue
        found.add((route.method, re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    return found


def expected(who: str, actor: str) -> str:
    """ok (2xx/3xx, or 400 for a bad form), 401 or 403."""
    if who == "public":
        return "ok"
    if actor in ("stranger", "caregiver"):
        return "401"  # a caregiver's sign-in is refused (403): no session
    if who == "signed_in":
        return "ok"
    if who == "patient":
        return "ok" if actor == "patient" else "403"
    if who == "agreed":
        return "ok" if actor in ("patient", "enrolling") else "403"
    if actor in ("patient", "enrolling"):
        return "403"
    if who == "staff":
        return "ok"
    if who == "owner":
        return "ok" if actor in ("therapist", "admin") else "403"
    return "ok" if actor == "admin" else "403"  # admin


async def signed_in(bot: Any, actor: str) -> tuple[aiohttp.ClientSession, str]:
    session = client()
    ids = {"patient": PATIENT_TG, "enrolling": ENROLLING_TG, "therapist": BEN, "colleague": CLEO, "admin": ADMIN}
    telegram_id = ids.get(actor)
    if telegram_id is not None:
        # A patient still enrolling is signed in only for a page they may open (the messages page here).
        first = "/app/messages" if actor == "enrolling" else ""
        data = init_data(telegram_id, bot.clock.now())
        response = await sign_in_initdata(session, web_url(bot), data, next_page=first)
        assert response.status == 200, actor
    if actor == "caregiver":
        response = await sign_in_initdata(session, web_url(bot), init_data(CAREGIVER_TG, bot.clock.now()))
        assert response.status == 403, "the web app is for patients and staff, never a caregiver"
    async with session.get(f"{web_url(bot)}/signed-out") as page:
        token = re.search(r'name="csrf-token" content="([^"]+)"', await page.text())
    assert token is not None
    return session, token.group(1)


async def test_the_matrix_covers_every_route(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    assert routes(bot) == set(MATRIX)


@pytest.mark.slow  # the whole matrix: every route for seven kinds of visitor
@pytest.mark.parametrize("actor", ["stranger", "caregiver", "patient", "enrolling", "colleague", "therapist", "admin"])
async def test_every_route_for_every_kind_of_visitor(bot_factory: Any, actor: str) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=10, days=3)
    async with bot.db.session() as session:
        patient = (await session.exec(select(Patient).where(col(Patient.telegram_id) == PATIENT_TG))).one()
        alert = (await session.exec(select(Alert).where(col(Alert.patient_id) == patient.id))).first()
        if alert is None:
            alert = Alert(patient_id=patient.id or 0, severity="urgent", kind="red_flag", created_at=bot.clock.now())
            session.add(alert)
            await session.commit()
        cleo = (await session.exec(select(Staff).where(col(Staff.telegram_id) == CLEO))).one()
        ben = (await session.exec(select(Staff).where(col(Staff.telegram_id) == BEN))).one()
        template = ProgrammePlan(name="Matrix template", body="{}", created_by=ben.id, created_at=bot.clock.now())
        session.add(template)
        sent = await message_core.send(session, patient, bot.config.clinic, text="Matrix", now=bot.clock.now())
        link = await caregiver_core.invite(session, patient, bot.clock.now(), hours=24)
        await caregiver_core.open_link(session, link.code, CAREGIVER_TG, "en", bot.clock.now())
        await caregiver_core.consent(session, link, "Carl", bot.clock.now())
        session.add(
            Patient(
                alias="ENR-0001",
                telegram_id=ENROLLING_TG,
                status=PatientStatus.ENROLLING.value,
                enrol_step="times",
                consent_at=bot.clock.now(),
                therapist_id=ben.id,
                created_at=bot.clock.now(),
            )
        )
        await session.commit()
    values = {
        "/patients/{id}": patient.id,
        "/alerts/{id}": alert.id,
        "/admin/staff/{id}": cleo.id,
        "/admin/staff/invites/{id}": 1,  # none in the seed: the admin's answer says so, after the access check
        "/templates/{id}": template.id,
        "/exercises/{id}": "clinic-1",  # none in the seed: the page's own 404 for staff, after the access check
        "/messages/{mid}": sent.message.id,
        "/caregivers/{cid}": link.id,
        "/app/session/{id}": 1,
        "/app/checkin/{id}": 1,
    }
    failures = []
    for method, pattern in sorted(MATRIX, key=lambda r: (r[1].startswith("/admin/staff/{id}/remove"), r)):
        if pattern == "/signout":
            continue  # below, last: it ends the session
        path = pattern.replace("{fmt}", "csv").replace("{n}", "1")
        for prefix, value in values.items():
            path = path.replace(prefix, re.sub(r"\{\w+\}", str(value), prefix))
        browser, token = await signed_in(bot, actor)
        async with browser:
            body = BODIES.get(path.rsplit("/", 1)[-1], {})
            async with browser.request(
                method, f"{web_url(bot)}{path}", data=body, headers={"X-CSRF-Token": token}, allow_redirects=False
            ) as response:
                status = response.status
        got = "401" if status == 401 else "403" if status == 403 else "ok" if status < 500 else str(status)
        want = expected(MATRIX[(method, pattern)], actor)
        if got != want:
            failures.append(f"{actor} {method} {path}: {status}, expected {want}")
    browser, token = await signed_in(bot, actor)
    async with (
        browser,
        browser.post(f"{web_url(bot)}/signout", headers={"X-CSRF-Token": token}, allow_redirects=False) as response,
    ):
        if ("401" if response.status == 401 else "ok") != expected("signed_in", actor):
            failures.append(f"{actor} POST /signout: {response.status}")
    assert failures == []
