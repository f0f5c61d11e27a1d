"""What an outside test of the staff web app found (2026-12-03), each fixed and held here.

- The German audit log labelled its start date "Quelle" (the library's "From" column shared its msgid).
- A reversed audit date range listed nothing and said nothing.
- The content check counted "1 programmes" ("1 Programme" in German).
- A used or unknown sign-in link showed a working Sign in button; only the press said it had expired.
- A template refused for an empty name was headed "The plan was not saved:".
- A discharged patient's page had an empty "Changes" section, and saving their plan promised them a
  message that is never sent.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
from pathlib import Path
from typing import Any

from factories import make_patient, make_staff
from sqlmodel import col, select
from webrig import WEB, client, csrf, dashboard_link, sign_in_link, web_url

from rehab_bot.models import LessonProgress, Patient, PatientStatus, Staff

# A clinic content folder with exactly one mistake (tests/data/one_problem).
ONE_PROBLEM = Path(__file__).resolve().parent.parent / "data" / "one_problem"


async def _signed_in(bot: Any, telegram_id: int, role: str = "therapist", lang: str = "en") -> Any:
    await make_staff(bot.db, telegram_id=telegram_id, role=role, language=lang)
    browser = client()
    response = await sign_in_link(browser, await dashboard_link(bot, telegram_id))
    assert response.status == 303, "signed in: on to the caseload"
    return browser


async def _get(browser: Any, url: str) -> tuple[int, str]:
    async with browser.get(url) as page:
        return page.status, html_lib.unescape(await page.text())


async def test_the_german_audit_filter_says_von_and_a_reversed_range_is_explained(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    async with await _signed_in(bot, 7401, "admin", "de") as browser:
        status, text = await _get(browser, f"{web_url(bot)}/admin/audit")
        assert status == 200 and '<label for="f-since">Von</label>' in text and "Quelle" not in text
        status, text = await _get(browser, f"{web_url(bot)}/admin/audit?since=2026-12-05&until=2026-12-01")
        assert status == 200 and "„Von“ liegt nach „Bis“" in text
        assert text.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>") == 0
        status, text = await _get(browser, f"{web_url(bot)}/exercises")
        assert status == 200 and '<th scope="col">Quelle</th>' in text


async def test_the_content_check_counts_in_the_singular_too(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    programmes = len(bot.services.content.programmes)
    async with await _signed_in(bot, 7402, "admin") as browser:
        status, text = await _get(browser, f"{web_url(bot)}/admin/content")
    assert status == 200
    shown = re.search(r'id="content-ok">Content OK: ([^<]*)\.</p>', text)
    assert shown is not None, text
    assert f"{programmes} programme{'' if programmes == 1 else 's'}," in shown.group(1)
    assert re.search(r"\b1 (exercises|programmes|texts|questionnaires)\b", shown.group(1)) is None
    assert shown.group(1) == bot.services.content.counted("en"), "the command line's words (Content.counted)"


async def test_one_content_problem_is_counted_in_the_singular(bot_factory: Any, tmp_path: Path) -> None:
    clinic = tmp_path / "clinic"
    clinic.mkdir()
    bot = await bot_factory(web=WEB, content={"dir": clinic})
    shutil.copy(ONE_PROBLEM / "exercises.toml", clinic)  # a mistake made after the start
    async with await _signed_in(bot, 7403, "admin", "de") as browser:
        status, text = await _get(browser, f"{web_url(bot)}/admin/content")
    assert status == 200
    assert '<p role="alert">1 Problem gefunden. Der Bot behält die Inhalte' in text and "bis es behoben ist" in text


async def test_a_used_or_unknown_sign_in_link_says_so_before_any_button(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await make_staff(bot.db, telegram_id=7403)
    link = await dashboard_link(bot, 7403)
    expired = "This sign-in link has expired or was used already."
    async with client() as browser:
        for token in ("garbage", ""):
            status, text = await _get(browser, f"{web_url(bot)}/signin?token={token}")
            assert (status, expired in text, ">Sign in</button>" in text) == (400, True, False), token
        status, text = await _get(browser, link)
        assert (status, expired in text, ">Sign in</button>" in text) == (200, False, True), "a fresh link works"
        assert (await sign_in_link(browser, link)).status == 303
    async with client() as other:
        status, text = await _get(other, link)
        assert (status, expired in text) == (400, True), "used once: said at once"


async def test_a_template_refused_is_headed_as_a_template_and_a_discharged_patient_is_promised_nothing(
    bot_factory: Any,
) -> None:
    bot = await bot_factory(web=WEB)
    async with await _signed_in(bot, 7404) as browser:
        async with bot.db.session() as session:
            doc = (await session.exec(select(Staff).where(col(Staff.telegram_id) == 7404))).one()
        patient, _ = await make_patient(
            bot.db, bot.clock, telegram_id=7190, therapist_id=doc.id, programme_id="lumbar-example"
        )
        base = f"{web_url(bot)}/patients/{patient.id}/programme"
        status, page = await _get(browser, base)
        form = {
            "csrf_token": csrf(page),
            "phases-0-id": "one",
            "phases-0-from_day": "0",
            "phases-0-title-en": "One",
            "phases-0-title-de": "Eins",
            "phases-0-change_note-en": "x",
            "phases-0-change_note-de": "x",
            "phases-0-sessions_per_day": "1",
            "phases-0-default_times": "09:00",
            "phases-0-sessions-0-items-0-exercise": "walking",
            "phases-0-sessions-0-items-0-reps": "12",
            "template_name": "",
        }
        async with browser.post(f"{base}/template", data=form) as refused:
            text = html_lib.unescape(await refused.text())
        assert refused.status == 422 and "The template was not saved:" in text and "The plan was not saved" not in text

        async with bot.db.session() as session:
            row = await session.get(Patient, patient.id)
            assert row is not None
            row.status = PatientStatus.DISCHARGED.value
            session.add(row)
            await session.commit()
        status, text = await _get(browser, f"{web_url(bot)}/patients/{patient.id}")
        assert status == 200 and 'id="care-ended"' in text
        form.pop("template_name")
        async with browser.post(f"{base}/save", data=form) as saved:  # on to the builder, saved
            text = html_lib.unescape(await saved.text())
        assert saved.status == 200 and "/programme?saved=1" in str(saved.url), text[:300]
        assert "This patient's care has ended: no reminders or messages are sent to them." in text
        assert "they get one message saying what changed" not in text


async def test_the_caseload_names_unanswered_safety_lessons_by_their_title(bot_factory: Any) -> None:
    """The German caseload read "Sicherheitslektionen unbeantwortet: infection-signs, when-to-call"."""
    bot = await bot_factory(web=WEB)
    async with await _signed_in(bot, 7405, lang="de") as browser:
        async with bot.db.session() as session:
            doc = (await session.exec(select(Staff).where(col(Staff.telegram_id) == 7405))).one()
        patient, _ = await make_patient(bot.db, bot.clock, telegram_id=7191, therapist_id=doc.id)
        async with bot.db.session() as session:
            for lesson_id in ("infection-signs", "when-to-call"):
                session.add(
                    LessonProgress(
                        patient_id=patient.id or 0, lesson_id=lesson_id, safety=True, delivered_at=bot.clock.now()
                    )
                )
            await session.commit()
        status, text = await _get(browser, f"{web_url(bot)}/caseload?scope=all")
    assert status == 200
    assert "Sicherheitslektionen unbeantwortet: Zeichen einer Wundinfektion, Wann Sie sofort Hilfe rufen" in text
    assert "when-to-call" not in text


async def test_a_caseload_address_with_a_choice_it_does_not_know_falls_back_to_the_defaults(bot_factory: Any) -> None:
    """A stale bookmark "?sort=bogus" got "Error 400 – The request could not be understood"."""
    bot = await bot_factory(web=WEB)
    async with await _signed_in(bot, 7406) as browser:
        for query in ("sort=bogus", "scope=everyone&page=-3", "page=abc&sort=pain&desc=y"):
            status, text = await _get(browser, f"{web_url(bot)}/caseload?{query}")
            assert status == 200 and 'id="caseload-count"' in text, query


async def test_the_german_outcomes_and_experiments_pages_speak_german_throughout(bot_factory: Any) -> None:
    """The page around them was German, the rows English: "Patients enrolled in the period", "Active in
    week 4", "suppressed (fewer than 5)", "Status: not running; decision point: nudge; ..."."""
    bot = await bot_factory(web=WEB)
    assert bot.services.content.experiments, "the built-in content has an experiment to report"
    async with await _signed_in(bot, 7407, "admin", "de") as browser:
        status, outcomes = await _get(browser, f"{web_url(bot)}/admin/outcomes")
        assert status == 200
        for german in ("Aufnahme", "Im Zeitraum aufgenommene Patient/innen", "Aktiv in Woche 4", "Warnungen je 100"):
            assert german in outcomes, german
        assert "unterdrückt (weniger als 5)" in outcomes and "Hinge Health (n = 10.264)" in outcomes
        for english in ("Patients enrolled", "Active in week", "suppressed", "Alerts per 100", "Median time"):
            assert english not in outcomes, english
        status, experiments = await _get(browser, f"{web_url(bot)}/admin/experiments")
        assert status == 200 and "Entscheidungspunkte: 0" in experiments and "Proximales Ergebnis" in experiments
        for english in ("Decision points", "Proximal outcome", "decision point", "Effect: not estimated"):
            assert english not in experiments, english
        async with browser.get(f"{web_url(bot)}/admin/outcomes.csv") as csv:
            assert "Patients enrolled in the period" in await csv.text(), "the CSV stays in English, as the command's"
