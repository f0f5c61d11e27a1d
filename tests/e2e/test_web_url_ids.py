"""Ids in addresses from outside: any number of digits, beyond the 32-bit keys, another patient's.

Every route with an id answers a malformed or out-of-range one with the friendly 404 page,
never a 500, on both database backends (PostgreSQL's keys are 32-bit: 2**31 is out of range).
The programme builder of a patient who stopped is a 404, as their patient page is.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from web_seed import ADMIN, seed_clinic
from webrig import WEB, client, csrf, init_data, sign_in_initdata, web_url

from rehab_bot import patient as patient_core
from rehab_bot.models import Patient, PatientStatus

PATIENT_TG = 1_500_001  # LWS-0001 (web_seed)
HUGE = "9" * 5000  # more digits than Python's int() reads by default
BEYOND_INT32 = str(2**31)  # fits SQLite's 64-bit keys, not PostgreSQL's integer columns


async def _signed_in(bot: Any, telegram_id: int) -> tuple[Any, str]:
    session = client()
    response = await sign_in_initdata(session, web_url(bot), init_data(telegram_id, bot.clock.now()))
    assert response.status == 200
    async with session.get(f"{web_url(bot)}/signed-out") as page:
        token = csrf(await page.text())
    return session, token


async def test_staff_routes_answer_a_bad_id_with_a_404_page(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    base, pid = web_url(bot), clinic.patient_ids[0]
    browser, token = await _signed_in(bot, ADMIN)
    failures = []
    async with browser:
        for bad in (HUGE, BEYOND_INT32):
            gets = [f"/patients/{bad}", f"/patients/{bad}/programme", f"/patients/{pid}/messages/{bad}/photo"]
            posts = [
                f"/patients/{bad}/programme/preview",
                f"/patients/{pid}/messages/{bad}/read",
                f"/patients/{pid}/caregivers/{bad}/remove",
                f"/alerts/{bad}/ack",
                f"/alerts/{bad}/review",
                f"/templates/{bad}/delete",
                f"/admin/staff/{bad}/role",
            ]
            for method, path in [("GET", p) for p in gets] + [("POST", p) for p in posts]:
                async with browser.request(
                    method, base + path, headers={"X-CSRF-Token": token}, data={"role": "therapist"}
                ) as response:
                    if response.status != 404 or "There is no such page." not in await response.text():
                        failures.append(f"{method} {path[:60]}: {response.status}")
    assert failures == []


async def test_a_query_number_in_digits_of_another_script_is_no_server_error(bot_factory: Any) -> None:
    # "²".isdigit() is true but int("²") fails: the audit log's staff filter answered 500.
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=1, days=1)
    browser, _ = await _signed_in(bot, ADMIN)
    async with browser:
        for value in ("²", "١٢", "3²"):
            async with browser.get(f"{web_url(bot)}/admin/audit", params={"staff": value}) as response:
                assert response.status == 200, value


async def test_the_builder_of_a_patient_who_stopped_is_gone_like_their_page(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    pid = clinic.patient_ids[0]
    async with bot.db.session() as session:
        patient = await session.get(Patient, pid)
        assert patient is not None
        patient.status = PatientStatus.STOPPED.value  # e.g. the patient deleted their data
        session.add(patient)
        await session.commit()
    browser, token = await _signed_in(bot, ADMIN)
    async with browser:
        for method, path in [
            ("GET", f"/patients/{pid}"),
            ("GET", f"/patients/{pid}/programme"),
            ("POST", f"/patients/{pid}/programme/save"),
        ]:
            async with browser.request(method, web_url(bot) + path, headers={"X-CSRF-Token": token}) as response:
                assert response.status == 404, (method, path)


async def test_mini_app_routes_answer_a_bad_id_with_a_404_page(bot_factory: Any, backend: str) -> None:
    bot = await bot_factory(backend, web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    async with bot.db.session() as session:
        patient = (await session.exec(select(Patient).where(col(Patient.telegram_id) == PATIENT_TG))).one()
        assert patient.id is not None
    base = web_url(bot)
    browser, token = await _signed_in(bot, PATIENT_TG)
    failures = []
    async with browser:
        for bad in (HUGE, BEYOND_INT32):
            requests = [
                ("GET", f"/app/session/{bad}", {}),
                ("POST", f"/app/session/{bad}", {"outcome": "done"}),
                ("GET", f"/app/session/{bad}/media/1", {}),
                ("GET", f"/app/checkin/{bad}", {}),
                ("POST", f"/app/checkin/{bad}", {"checkin": "1", "item": "0", "value": "3"}),
            ]
            for method, path, body in requests:
                async with browser.request(method, base + path, data=body, headers={"X-CSRF-Token": token}) as response:
                    if response.status != 404:
                        failures.append(f"{method} {path[:60]}: {response.status}")
        # The answer form names its check-in too: out of range is refused as bad input, not a crash.
        async with browser.post(
            f"{base}/app/checkin/1",
            data={"checkin": BEYOND_INT32, "item": "0", "value": "3"},
            headers={"X-CSRF-Token": token},
        ) as response:
            if response.status >= 500:
                failures.append(f"POST /app/checkin/1 checkin={BEYOND_INT32}: {response.status}")
    assert failures == []


async def test_the_alert_of_a_patient_who_stopped_names_them_without_a_link_to_a_missing_page(
    bot_factory: Any,
) -> None:
    """An outside test: after the patient's /stop their "Messages stopped" alert linked to a 404 page."""
    bot = await bot_factory(web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    pid = clinic.patient_ids[0]
    async with bot.db.session() as session:
        patient = await session.get(Patient, pid)
        assert patient is not None
        await patient_core.stop(session, patient, bot.clock.now(), clinic=bot.config.clinic)
        await session.commit()
        alias = patient.alias
    browser, _ = await _signed_in(bot, ADMIN)
    async with browser, browser.get(f"{web_url(bot)}/alerts") as response:
        html = await response.text()
    assert response.status == 200
    assert f"{alias} <small>(stopped or deleted; no patient page)</small>" in html
    assert f'href="/patients/{pid}"' not in html
