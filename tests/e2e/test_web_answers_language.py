"""The patient page's check-in answers are in the staff member's language, like the rest of the page.

A German-speaking therapist read "How is your mood today? ... " and "Yes"/"No" in English on an
otherwise German page; caseload.answer_text now takes the reader's language (the chat's staff
side keeps English, its default).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlmodel import col, update
from web_seed import ADMIN, BEN, seed_clinic
from webrig import WEB, client, init_data, sign_in_initdata, web_url

from rehab_bot.models import CheckIn, Patient, ProgrammePlan, Staff


async def test_answers_on_the_patient_page_are_in_the_staff_members_language(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=1, days=2)  # English patient, Dr Ben's
    async with bot.db.session() as session:
        await session.exec(update(Staff).values(language="de"))
        await session.commit()
    mood_en = bot.app.bot_data["services"].content.questionnaires["mood"].items[0].text
    browser = client()
    async with browser:
        response = await sign_in_initdata(browser, web_url(bot), init_data(BEN, bot.clock.now(), lang="de"))
        assert response.status == 200
        async with browser.get(f"{web_url(bot)}/patients/{clinic.patient_ids[0]}") as page:
            html = await page.text()
    assert "Antworten" in html  # the page is German
    assert mood_en["de"].strip().splitlines()[0][:30] in html
    assert mood_en["en"].strip().splitlines()[0][:30] not in html


async def test_the_programme_on_the_patient_page_is_named_in_the_staff_members_language(bot_factory: Any) -> None:
    """'Programme: own plan v1 (from Example: first 12 weeks ...)' stood in English on a German page: the
    content's programme name was read in English and the own plan's words were not a msgid."""
    bot = await bot_factory(web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=1, days=2)
    content = bot.app.bot_data["services"].content
    async with bot.db.session() as session:
        await session.exec(update(Staff).values(language="de"))
        patient = await session.get(Patient, clinic.patient_ids[0])
        assert patient is not None
        names = content.programmes[patient.programme_id].name
        await session.commit()
    browser = client()
    async with browser:
        await sign_in_initdata(browser, web_url(bot), init_data(BEN, bot.clock.now(), lang="de"))
        async with browser.get(f"{web_url(bot)}/patients/{patient.id}") as page:
            before = await page.text()
        async with bot.db.session() as session:
            session.add(ProgrammePlan(patient_id=patient.id, body="{}", based_on=patient.programme_id, version=2))
            await session.commit()
        async with browser.get(f"{web_url(bot)}/patients/{patient.id}") as page:
            after = await page.text()
    assert f"Programm: {names['de']}</p>" in before and names["en"] not in before
    assert f"Programm: eigener Plan v2 (aus {names['de']})</p>" in after and "own plan" not in after


async def test_outcome_scores_on_a_german_patient_page_have_a_decimal_comma(bot_factory: Any) -> None:
    """'Letzter Wert 5.5 an Tag 42' read as English on a German page: the captions' numbers were formatted
    with a point whatever the page's language."""
    bot = await bot_factory(web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=1, days=45)
    async with bot.db.session() as session:
        await session.exec(update(Staff).values(language="de"))
        patient = await session.get(Patient, clinic.patient_ids[0])
        assert patient is not None and patient.surgery_date is not None
        for day, score in {1: 3.0, 14: 4.0, 42: 5.5}.items():
            session.add(
                CheckIn(
                    patient_id=patient.id or 0,
                    questionnaire_id="psfs",
                    status="complete",
                    score=score,
                    local_date=patient.surgery_date + timedelta(days=day),
                    completed_at=bot.clock.now() - timedelta(days=1),
                )
            )
        await session.commit()
    browser = client()
    async with browser:
        await sign_in_initdata(browser, web_url(bot), init_data(BEN, bot.clock.now(), lang="de"))
        async with browser.get(f"{web_url(bot)}/patients/{patient.id}") as page:
            html = await page.text()
    assert "Letzter Wert 5,5 an Tag 42: bedeutsame Verbesserung erreicht." in html


async def test_the_staff_page_names_each_members_language_in_words(bot_factory: Any) -> None:
    """The admin's staff table showed the bare codes 'de' and 'en' in its Language column."""
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=1, days=1)
    async with bot.db.session() as session:
        await session.exec(update(Staff).where(col(Staff.telegram_id) != BEN).values(language="de"))
        await session.commit()
    browser = client()
    async with browser:
        await sign_in_initdata(browser, web_url(bot), init_data(ADMIN, bot.clock.now(), lang="de"))
        async with browser.get(f"{web_url(bot)}/admin/staff") as page:
            html = await page.text()
    cells = re.findall(r'<tr data-staff="([^"]+)">.*?</td>\s*<td>([^<]*)</td>', html, re.S)
    languages = dict(cells)
    assert languages.pop("Dr Ben") == "Englisch" and languages and set(languages.values()) == {"Deutsch"}, cells
