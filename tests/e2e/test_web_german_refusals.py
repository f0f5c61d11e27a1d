"""German staff read refusals and alert labels in German (issue: messages with numbers or names).

A refusal from the core (access.StaffError) carries its msgid and placeholders, so the web app
shows it in the staff member's language; an alert's severity and kind are shown as labels.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sqlmodel import select
from test_web_resubmit import builder_fields
from web_seed import BEN, seed_clinic
from webrig import WEB, client, csrf, init_data, sign_in_initdata, web_url

from rehab_bot import alert as alerts
from rehab_bot import message as message_core
from rehab_bot.models import Patient, Staff

TOO_LONG = {
    "en": "The reply is too long (4000 characters; at most 3500).",
    "de": "Die Antwort ist zu lang (4000 Zeichen; höchstens 3500).",
}
NOT_PAUSED = {"en": "LWS-0001 is discharged, not paused.", "de": "LWS-0001 ist entlassen, nicht pausiert."}
NOTHING = {
    "en": "LWS-0001 is discharged; there is nothing to pause.",
    "de": "LWS-0001 ist entlassen; es gibt nichts zu pausieren.",
}
LABELS = {
    "en": ("Emergency", "Red flag in a check-in", "Low", "Data deleted by the patient"),
    "de": ("Notfall", "Warnzeichen in einer Abfrage", "Niedrig", "Daten vom Patienten gelöscht"),
}


async def _clinic(bot: Any, lang: str) -> int:
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=1, days=1)  # LWS-0001 is Dr Ben's
    async with bot.db.session() as session:
        [ben] = (await session.exec(select(Staff).where(Staff.telegram_id == BEN))).all()
        ben.language = lang
        session.add(ben)
        await session.commit()
    return clinic.patient_ids[0]


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_refusals_with_numbers_and_names_are_in_the_staff_members_language(bot_factory: Any, lang: str) -> None:
    bot = await bot_factory(web=WEB)
    pid = await _clinic(bot, lang)
    async with bot.db.session() as session:
        patient = await session.get(Patient, pid)
        assert patient is not None
        sent = await message_core.send(session, patient, bot.config.clinic, text="Question", now=bot.clock.now())
        await session.commit()
    base = web_url(bot)
    async with client() as browser:
        assert (await sign_in_initdata(browser, base, init_data(BEN, bot.clock.now()))).status == 200
        async with browser.get(f"{base}/patients/{pid}") as page:
            token = csrf(await page.text())
        reply = f"{base}/patients/{pid}/messages/{sent.message.id}/reply"
        async with browser.post(reply, data={"csrf_token": token, "text": "x" * 4000}) as page:
            assert TOO_LONG[lang] in await page.text()
        async with bot.db.session() as session:
            row = await session.get(Patient, pid)
            assert row is not None
            row.status = "discharged"
            session.add(row)
            await session.commit()
        async with browser.post(f"{base}/patients/{pid}/resume", data={"csrf_token": token}) as page:
            assert NOT_PAUSED[lang] in await page.text()
        async with browser.post(f"{base}/patients/{pid}/pause", data={"csrf_token": token, "days": "7"}) as page:
            assert NOTHING[lang] in await page.text()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_alert_levels_and_kinds_are_shown_as_labels(bot_factory: Any, lang: str) -> None:
    bot = await bot_factory(web=WEB)
    pid = await _clinic(bot, lang)
    async with bot.db.session() as session:
        patient = await session.get(Patient, pid)
        assert patient is not None
        for kind, severity in (("red_flag", "emergency"), ("data_deleted", "low")):
            await alerts.raise_alert(
                session, patient, kind=kind, severity=severity, detail="", now=bot.clock.now(), clinic=bot.config.clinic
            )
        await session.commit()
    base = web_url(bot)
    async with client() as browser:
        assert (await sign_in_initdata(browser, base, init_data(BEN, bot.clock.now()))).status == 200
        for path in ("/alerts", f"/patients/{pid}"):
            async with browser.get(base + path) as page:
                html = await page.text()
            for label in LABELS[lang]:
                assert label in html, (path, label)
            for raw in (">emergency<", "red_flag ·", ">low<", "data_deleted ·"):
                assert raw not in html, (path, raw)


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("en", "Only photos (JPEG, PNG), GIFs and MP4 videos can be uploaded."),
        ("de", "Nur Fotos (JPEG, PNG), GIFs und MP4-Videos können hochgeladen werden."),
    ],
)
async def test_an_upload_the_library_refuses_is_explained_in_the_staff_members_language(
    bot_factory: Any, lang: str, said: str
) -> None:
    bot = await bot_factory(web=WEB)
    await _clinic(bot, lang)
    base = web_url(bot)
    async with client() as browser:
        assert (await sign_in_initdata(browser, base, init_data(BEN, bot.clock.now()))).status == 200
        async with browser.get(f"{base}/exercises/new") as page:
            token = csrf(await page.text())
        form = aiohttp.FormData()
        for key, value in {
            "csrf_token": token,
            "name-en": "Wall slide",
            "name-de": "Wandrutschen",
            "instructions-en": "Back to the wall, slide down a little.",
            "instructions-de": "Rücken an die Wand, etwas hinabgleiten.",
            "reps": "8",
        }.items():
            form.add_field(key, value)
        form.add_field("media", b"<svg onload=alert(1)>", filename="fake.jpg", content_type="image/jpeg")
        async with browser.post(f"{base}/exercises/new", data=form) as page:
            html = (await page.text()).replace("&#39;", "'")
            assert page.status == 422, html[-600:]
    assert said in html


@pytest.mark.parametrize(("lang", "said"), [("en", "There is no such page."), ("de", "Diese Seite gibt es nicht.")])
async def test_an_address_that_matches_no_page_answers_in_the_staff_members_language(
    bot_factory: Any, lang: str, said: str
) -> None:
    bot = await bot_factory(web=WEB)
    await _clinic(bot, lang)
    base = web_url(bot)
    async with client() as browser:
        assert (await sign_in_initdata(browser, base, init_data(BEN, bot.clock.now()))).status == 200
        async with browser.get(f"{base}/no-such-page") as page:
            html = await page.text()
            assert page.status == 404
    assert f'<html lang="{lang}"' in html and said in html
    assert 'href="/caseload"' in html, "the staff menu stays"


PYDANTIC_WORDS = ("Input should", "String should", "List should", "Extra inputs", "Field required")
OUT_OF_RANGE = {
    "en": (
        "Sets: must be at most 20",
        "Phase 1 «Weeks 1-2: gentle activation and walking» › Session 1 › Exercise 1 (Walking): "
        "Sets: must be at most 20",
    ),
    "de": (
        "Sätze: darf höchstens 20 sein",
        "Phase 1 „Woche 1-2: sanfte Aktivierung und Gehen“ › Einheit 1 › Übung 1 (Gehen): "
        "Sätze: darf höchstens 20 sein",
    ),
}


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_out_of_range_numbers_are_explained_in_the_staff_members_language(bot_factory: Any, lang: str) -> None:
    bot = await bot_factory(web=WEB)
    pid = await _clinic(bot, lang)
    base = web_url(bot)
    async with client() as browser:
        assert (await sign_in_initdata(browser, base, init_data(BEN, bot.clock.now()))).status == 200
        async with browser.get(f"{base}/exercises/new") as page:
            token = csrf(await page.text())
        exercise = {
            "csrf_token": token,
            "name-en": "Wall slide",
            "name-de": "Wandrutschen",
            "instructions-en": "Back to the wall, slide down a little.",
            "instructions-de": "Rücken an die Wand, etwas hinabgleiten.",
            "sets": "999",
        }
        async with browser.post(f"{base}/exercises/new", data=exercise) as page:
            form_html = (await page.text()).replace("&#39;", "'")
            assert page.status == 422, form_html[-600:]
        async with browser.get(f"{base}/patients/{pid}/programme") as page:
            fields = builder_fields(await page.text())
        fields["phases-0-sessions-0-items-0-sets"] = "99"
        async with browser.post(f"{base}/patients/{pid}/programme/preview", data=fields) as page:
            preview_html = (await page.text()).replace("&#39;", "'")
        async with browser.post(f"{base}/patients/{pid}/programme/save", data=fields) as page:
            save_html = (await page.text()).replace("&#39;", "'")
            assert page.status == 422
    on_form, on_builder = OUT_OF_RANGE[lang]
    assert on_form in form_html
    assert on_builder in preview_html and on_builder in save_html
    for html in (form_html, preview_html, save_html):
        assert not any(words in html for words in PYDANTIC_WORDS)
