"""The patient's messages in the Mini App (privacy mode, issue 18): write, photo upload, triage, replies.

With [privacy] health_data_in_chat = false the patient writes to the team in the Mini App; the
therapist is told in their staff chat as usual; the reply reaches the patient's chat only as a
neutral notice and is read in the Mini App. Crisis words run first (crisis text, clinic alerted,
nothing sent as a message); a file that is no photo or is too large is refused.
"""

from __future__ import annotations

import io
import re
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from rig.telegram_server import FakeTelegram
from sqlmodel import select
from test_care import rows, run_jobs, text_of
from test_checkins import enrolled
from webrig import client, csrf, init_data, miniapp_web, sign_in_initdata, web_url

from rehab_bot.bot import checkin as checkin_bot
from rehab_bot.models import Alert, Note

PATIENT, THERAPIST = 7291, 7191


def _jpeg() -> bytes:
    """A small real JPEG (the app re-encodes uploads without their metadata, so they must decode)."""
    out = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 120, 90)).save(out, "JPEG")
    return out.getvalue()


JPEG = _jpeg()


async def signed_in(bot: Any, telegram_id: int) -> aiohttp.ClientSession:
    browser = client()
    response = await sign_in_initdata(browser, web_url(bot), init_data(telegram_id, bot.clock.now()))
    assert response.status == 200
    return browser


async def post(browser: aiohttp.ClientSession, bot: Any, text: str, photo: bytes | None = None) -> str:
    async with browser.get(f"{web_url(bot)}/app/messages") as page:
        token = csrf(await page.text())
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("text", text)
    if photo is not None:
        form.add_field("photo", photo, filename="x.jpg", content_type="image/jpeg")
    async with browser.post(f"{web_url(bot)}/app/messages", data=form) as response:
        assert response.status == 200
        return await response.text()


async def test_privacy_mode_messages_go_through_the_mini_app(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    bot = await bot_factory(
        web=miniapp_web(),
        privacy={"health_data_in_chat": False},
        delivery={"per_chat_interval": 0.02},
        care={"photo_dir": str(tmp_path / "photos"), "photo_max_bytes": 10_000},
    )
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    user, therapist = tg.user(PATIENT), tg.user(THERAPIST)
    async with await signed_in(bot, PATIENT) as browser:
        html = await post(browser, bot, "The wound looks red at the edge", JPEG)
        assert "Sent to your care team." in html and "The wound looks red at the edge" in html
        [stored] = await rows(bot)
        path = tmp_path / "photos" / stored.photo_path
        assert stored.direction == "in" and stored.photo_bytes == path.stat().st_size
        assert Image.open(path).size == (24, 16) and stat.S_IMODE(path.stat().st_mode) == 0o600

        # Not a photo; too large: refused, nothing stored.
        assert "is not a photo" in await post(browser, bot, "", b"GIF89a-not-allowed")
        assert "too large" in await post(browser, bot, "", b"\xff\xd8\xff" + b"x" * 20_000)
        assert "Write a message or add a photo." in await post(browser, bot, "   ")
        assert len(await rows(bot)) == 1

    await run_jobs(bot)
    [notice] = await therapist.wait_for(lambda m: patient.alias in text_of(m))
    # Privacy mode: the staff chat only learns that a message waits; no text, no photo, no reply from the chat.
    assert notice.method == "sendMessage" and "wound" not in text_of(notice).lower()
    assert notice.button_labels == ["✓ Mark read"]

    # The therapist replies from the dashboard (privacy mode: the chat only says that the team answered).
    async with await signed_in(bot, THERAPIST) as staff_browser:
        async with staff_browser.get(f"{web_url(bot)}/patients/{patient.id}") as page:
            token = csrf(await page.text())
        async with staff_browser.post(
            f"{web_url(bot)}/patients/{patient.id}/messages/{stored.id}/reply",
            data={"text": "Please send another photo tomorrow.", "csrf_token": token},
        ) as response:
            assert "Your reply is on its way to the patient." in await response.text()
    await run_jobs(bot)
    [told] = await user.wait_for(lambda m: "answered your message" in (m.text or ""))
    assert "another photo" not in (told.text or ""), "no health data in the chat"
    async with await signed_in(bot, PATIENT) as browser, browser.get(f"{web_url(bot)}/app/messages") as page:
        assert "Please send another photo tomorrow." in await page.text()


async def test_crisis_words_in_the_mini_app_alert_the_clinic_and_send_no_message(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    bot = await bot_factory(web=miniapp_web(), privacy={"health_data_in_chat": False})
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    async with await signed_in(bot, PATIENT) as browser:
        html = await post(browser, bot, "I want to kill myself")
    assert 'role="alert"' in html
    # The numbers to call are one tap away: tel: links, the number as written (they were plain text).
    assert '<a href="tel:112">112</a>' in html
    assert '<a href="tel:08001110111">0800 111 0 111</a>' in html and '<a href="tel:116123">116 123</a>' in html
    assert await rows(bot) == []
    async with bot.db.session() as session:
        [alert] = (await session.exec(select(Alert))).all()
    assert alert.kind == "crisis" and alert.severity == "emergency"


async def answer_question(browser: aiohttp.ClientSession, bot: Any, html: str, answer: str) -> tuple[int, str]:
    found = re.search(r'name="message" value="(\d+)"', html)
    assert found is not None, "no crisis question on the page"
    form = {"csrf_token": csrf(html), "message": found.group(1), "answer": answer}
    async with browser.post(f"{web_url(bot)}/app/messages/crisis", data=form) as response:
        return response.status, await response.text()


async def test_a_concern_word_in_the_mini_app_asks_the_crisis_question(bot_factory: Any, tg: FakeTelegram) -> None:
    bot = await bot_factory(web=miniapp_web(), privacy={"health_data_in_chat": False})
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    async with await signed_in(bot, PATIENT) as browser:
        html = await post(browser, bot, "I took an extra tablet last night")
        assert "Sent to your care team." in html and "Are you having thoughts of ending your life" in html
        assert '<p>If this is an emergency, call <a href="tel:112">112</a> (or your local' in html  # emergency_text
        [sent] = await rows(bot)  # the message went to the team either way
        # No: nothing more happens.
        status, page = await answer_question(browser, bot, html, "no")
        assert status == 200 and "Thank you for telling me." in page
        async with bot.db.session() as session:
            assert (await session.exec(select(Alert))).all() == []
        # Yes (asked again about a second message): a crisis, with the patient's words.
        html = await post(browser, bot, "I wrote letters to my kids today")
        status, page = await answer_question(browser, bot, html, "yes")
        assert status == 200 and 'role="alert"' in page and "112" in page
        async with bot.db.session() as session:
            [alert] = (await session.exec(select(Alert))).all()
            [note] = (await session.exec(select(Note))).all()
        assert (alert.kind, alert.severity) == ("crisis", "emergency")
        assert "The patient answered Yes to the crisis question" in alert.detail
        assert (note.text, note.crisis) == ("I wrote letters to my kids today", True)
        # Another patient's message, a staff reply or a forged answer: refused, nothing happens.
        form = {"csrf_token": csrf(html), "message": str(sent.id + 1000), "answer": "yes"}
        async with browser.post(f"{web_url(bot)}/app/messages/crisis", data=form) as response:
            assert response.status == 404
        form = {"csrf_token": csrf(html), "message": "²", "answer": "yes"}
        async with browser.post(f"{web_url(bot)}/app/messages/crisis", data=form) as response:
            assert response.status == 400
    async with bot.db.session() as session:
        assert len((await session.exec(select(Alert))).all()) == 1


async def test_a_crisis_question_left_unanswered_in_the_mini_app_alerts_the_care_team(
    bot_factory: Any, tg: FakeTelegram
) -> None:
    """Hazard H12 in the Mini App: the question below a sent message, left without Yes or No for [staff]
    crisis_question_minutes, raises one critical alert with the message; one answered No raises none."""
    bot = await bot_factory(web=miniapp_web(), privacy={"health_data_in_chat": False})
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    async with await signed_in(bot, PATIENT) as browser:
        html = await post(browser, bot, "I took an extra tablet last night")
        assert "Are you having thoughts of ending your life" in html
        status, _ = await answer_question(browser, bot, html, "no")
        assert status == 200
        html = await post(browser, bot, "I wrote letters to my kids today")
        assert "Are you having thoughts of ending your life" in html  # and left unanswered
    bot.clock.advance(timedelta(minutes=31))
    assert await checkin_bot.run_periodic(bot.app) == 1
    async with bot.db.session() as session:
        [alert] = (await session.exec(select(Alert))).all()
    assert (alert.kind, alert.severity) == ("crisis_question", "critical")
    assert "«I wrote letters to my kids today»" in alert.detail and "extra tablet" not in alert.detail
    await run_jobs(bot)
    # Privacy mode: the staff chat is told neutrally; the message is read on the dashboard.
    [told] = await tg.user(THERAPIST).wait_for(lambda m: "CRITICAL alert for" in (m.text or ""))
    assert "Open the dashboard to see it." in (told.text or "") and "letters" not in (told.text or "")


async def test_a_phone_sized_photo_fits_the_configured_limit(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    """[care] photo_max_bytes governs the Mini App too: a 1.5 MB photo (above the web app's 1 MiB form limit)
    is accepted with a 3 MB limit, and one above the limit is refused with the page's own message."""
    bot = await bot_factory(
        web=miniapp_web(),
        privacy={"health_data_in_chat": False},
        care={"photo_dir": str(tmp_path / "photos"), "photo_max_bytes": 3_000_000},
    )
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    photo = JPEG + b"\x00" * 1_500_000
    async with await signed_in(bot, PATIENT) as browser:
        assert "Sent to your care team." in await post(browser, bot, "", photo)
        assert "too large" in await post(browser, bot, "", JPEG + b"\x00" * 3_000_001)
    [stored] = await rows(bot)
    assert stored.photo_bytes == (tmp_path / "photos" / stored.photo_path).stat().st_size  # re-encoded: smaller


@pytest.mark.parametrize(
    ("lang", "said", "back"),
    [
        ("en", "This photo is too large (at most 0.01 MB). Please send a smaller one.", "Back to the page"),
        ("de", "Dieses Foto ist zu groß (höchstens 0.01 MB). Bitte senden Sie ein kleineres.", "Zurück zur Seite"),
    ],
)
async def test_a_body_over_the_request_limit_gets_a_friendly_page_in_the_patients_language(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path, lang: str, said: str, back: str
) -> None:
    """Over the app's request limit (here its 1 MiB floor) aiohttp refuses the body before the handler:
    the 413 is a page like the other error pages, translated, naming the photo limit, with a way back."""
    bot = await bot_factory(
        web=miniapp_web(),
        privacy={"health_data_in_chat": False},
        care={"photo_dir": str(tmp_path / "photos"), "photo_max_bytes": 10_000},
    )
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False, language=lang)
    async with await signed_in(bot, PATIENT) as browser:
        async with browser.get(f"{web_url(bot)}/app/messages") as page:
            token = csrf(await page.text())
        form = aiohttp.FormData()
        form.add_field("csrf_token", token)
        form.add_field("text", "My wound")
        form.add_field("photo", JPEG + b"\x00" * 1_500_000, filename="x.jpg", content_type="image/jpeg")
        async with browser.post(f"{web_url(bot)}/app/messages", data=form) as response:
            html = await response.text()
            assert response.status == 413
            assert response.content_type == "text/html"
    assert "Maximum request body size" not in html
    assert said in html.replace("&#39;", "'")
    assert f'<a href="/app/messages">{back}</a>' in html
    assert await rows(bot) == []


async def test_delete_my_data_in_the_mini_app_deletes_the_patients_photo_files(
    bot_factory: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    # "Delete my data" is the same as /delete: the photos the patient sent go from the disk too.
    bot = await bot_factory(
        web=miniapp_web(),
        privacy={"health_data_in_chat": False},
        care={"photo_dir": str(tmp_path / "photos"), "photo_max_bytes": 10_000},
    )
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    async with await signed_in(bot, PATIENT) as browser:
        await post(browser, bot, "The wound looks red at the edge", JPEG)
        [stored] = await rows(bot)
        assert (tmp_path / "photos" / stored.photo_path).exists()
        async with browser.get(f"{web_url(bot)}/app/delete") as page:
            token = csrf(await page.text())
        async with browser.post(f"{web_url(bot)}/app/delete", data={"csrf_token": token, "confirm": "yes"}) as done:
            assert done.status == 200 and "Your data has been deleted" in await done.text()
    assert await rows(bot) == []
    assert list((tmp_path / "photos").iterdir()) == [], "no photo of the patient is left on disk"
