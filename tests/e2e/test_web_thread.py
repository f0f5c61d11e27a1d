"""The patient page's message thread and caregivers over HTTP (issue 18), on the fake Bot API.

A reply written in the dashboard is the chat's Reply: it reaches the patient in Telegram as a
reply to their message, labelled with the staff member's name and the clinic, and the patient's
Telegram answer continues the thread. Mark read is recorded once. A photo is served only to
staff who may see the patient, every view audited. A colleague (read-only) is refused every
change; the owner removes a caregiver and nothing more reaches them.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from factories import make_staff
from rig.telegram_server import FakeTelegram
from sqlmodel import col, select
from test_care import SENT, rows, run_jobs, text_of
from test_caregiver import join
from test_checkins import enrolled
from webrig import WEB, client, csrf, init_data, sign_in_initdata, web_url

from rehab_bot import caregiver as caregiver_core
from rehab_bot import message as message_core
from rehab_bot.config import photo_dir
from rehab_bot.models import AuditLog, Caregiver, Patient, Staff

THERAPIST, COLLEAGUE, PATIENT = 7111, 7112, 7211


async def signed_in(bot: Any, telegram_id: int) -> aiohttp.ClientSession:
    browser = client()
    response = await sign_in_initdata(browser, web_url(bot), init_data(telegram_id, bot.clock.now()))
    assert response.status == 200
    return browser


async def page_of(browser: aiohttp.ClientSession, bot: Any, patient: Patient) -> tuple[str, str]:
    async with browser.get(f"{web_url(bot)}/patients/{patient.id}") as page:
        assert page.status == 200
        html = await page.text()
    return html, csrf(html)


async def audited(bot: Any) -> list[tuple[str, str, str]]:
    async with bot.db.session() as session:
        found = (await session.exec(select(AuditLog).order_by(col(AuditLog.id)))).all()
    return [(a.action, a.actor, a.detail) for a in found]


@pytest.fixture
async def web_care_bot(bot_factory: Any, tmp_path: Path, backend: str) -> Any:
    bot = await bot_factory(
        backend, web=WEB, delivery={"per_chat_interval": 0.02}, care={"photo_dir": str(tmp_path / "photos")}
    )
    await make_staff(bot.db, telegram_id=COLLEAGUE, name="Dr Cleo")
    return bot


async def test_a_reply_from_the_dashboard_reaches_the_patient_threaded(web_care_bot: Any, tg: FakeTelegram) -> None:
    bot = web_care_bot
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    user = tg.user(PATIENT)
    sent = await user.send("My knee feels stiff after the exercises")
    original = sent["message"]["message_id"]
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    [incoming] = await rows(bot)

    async with await signed_in(bot, THERAPIST) as browser:
        html, token = await page_of(browser, bot, patient)
        assert "My knee feels stiff after the exercises" in html and "unread" in html
        assert f'action="/patients/{patient.id}/messages/{incoming.id}/reply"' in html
        # A reply without text is refused by the form; nothing is stored or sent.
        async with browser.post(
            f"{web_url(bot)}/patients/{patient.id}/messages/{incoming.id}/reply",
            data={"text": "  ", "csrf_token": token},
        ) as response:
            assert response.status == 200 and "Write a reply first." in await response.text()
        # Without the CSRF token: refused before the handler.
        async with browser.post(
            f"{web_url(bot)}/patients/{patient.id}/messages/{incoming.id}/reply", data={"text": "x"}
        ) as response:
            assert response.status == 403
        async with browser.post(
            f"{web_url(bot)}/patients/{patient.id}/messages/{incoming.id}/reply",
            data={"text": "That is normal in week 1. <b>Keep going</b> gently.", "csrf_token": token},
        ) as response:
            assert response.status == 200 and str(response.url).endswith(f"/patients/{patient.id}")
            html = await response.text()
        assert "Your reply is on its way to the patient." in html
        assert "&lt;b&gt;Keep going&lt;/b&gt;" in html and "<b>Keep going</b>" not in html

    await run_jobs(bot)
    [reply] = await user.wait_for(lambda m: "Keep going" in (m.text or ""))
    assert (reply.text or "").startswith("💬 Dr Test, Our clinic:")
    assert reply.reply_to_message_id == original, "a Telegram reply to the patient's message"

    # The patient answers the dashboard's reply with Telegram's reply: the thread goes on.
    answered = await user.send("Thanks, it is better today", reply_to=reply.message_id)
    await user.wait_for(lambda m: SENT in (m.text or "") and m.reply_to_message_id == answered["message"]["message_id"])
    messages = await rows(bot)
    assert [(m.direction, m.parent_id) for m in messages] == [
        ("in", None),
        ("out", messages[0].id),
        ("in", messages[1].id),
    ]
    assert messages[1].staff_id is not None and messages[1].chat_message_id == reply.message_id

    async with await signed_in(bot, THERAPIST) as browser:
        html, token = await page_of(browser, bot, patient)
        assert html.index("My knee feels stiff") < html.index("Keep going") < html.index("it is better today")
        async with browser.post(
            f"{web_url(bot)}/patients/{patient.id}/messages/{messages[2].id}/read", data={"csrf_token": token}
        ) as response:
            assert "Marked read." in await response.text()
    async with bot.db.session() as session:
        read = await session.get(type(messages[2]), messages[2].id)
        assert read is not None and read.read_at == bot.clock.now()
    done = await audited(bot)
    assert (message_core.REPLY, f"web:{THERAPIST}", f"message={messages[0].id} reply={messages[1].id}") in done
    assert (message_core.READ, f"web:{THERAPIST}", f"message={messages[2].id}") in done
    assert (
        sum(1 for a, actor, _ in done if a == message_core.VIEW_THREAD and actor == f"web:{THERAPIST}") == 5
    )  # each page shown


async def test_a_colleague_sees_the_thread_read_only_and_every_change_is_refused(
    web_care_bot: Any, tg: FakeTelegram
) -> None:
    bot = web_care_bot
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        sent = await message_core.send(session, row, bot.config.clinic, text="Is swelling normal?", now=bot.clock.now())
        await session.commit()
    link = await join(bot, patient, 7411, name="Maria")
    async with await signed_in(bot, COLLEAGUE) as browser:
        html, token = await page_of(browser, bot, patient)
        assert "Is swelling normal?" in html and "Maria" in html
        assert "/reply" not in html and "/read" not in html and "/remove" not in html
        for path in (
            f"messages/{sent.message.id}/reply",
            f"messages/{sent.message.id}/read",
            f"caregivers/{link.id}/remove",
        ):
            async with browser.post(
                f"{web_url(bot)}/patients/{patient.id}/{path}",
                data={"text": "forged", "csrf_token": token},
                allow_redirects=False,
            ) as response:
                assert response.status == 403, path
    [stored] = await rows(bot)
    assert stored.read_at is None and stored.answered_at is None
    async with bot.db.session() as session:
        kept = await session.get(Caregiver, link.id)
        assert kept is not None and kept.removed_at is None
    await run_jobs(bot)
    assert not [m for m in tg.user(PATIENT).messages if "forged" in text_of(m)]


async def test_a_photo_is_shown_only_to_staff_who_may_see_the_patient_and_audited(
    web_care_bot: Any, tg: FakeTelegram, tmp_path: Path
) -> None:
    bot = web_care_bot
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    other = await enrolled(bot, 7212, schedule=False)
    jpeg = b"\xff\xd8wound" + bytes(range(100))
    async with bot.db.session() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        name = message_core.store_photo(photo_dir(bot.config), jpeg, bot.config.care.photo_max_bytes)
        sent = await message_core.send(
            session, row, bot.config.clinic, text="", now=bot.clock.now(), photo_path=name, photo_bytes=len(jpeg)
        )
        await session.commit()
    path = tmp_path / "photos" / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    url = f"{web_url(bot)}/patients/{patient.id}/messages/{sent.message.id}/photo"

    async with client() as stranger, stranger.get(url, allow_redirects=False) as response:
        assert response.status == 401
    async with await signed_in(bot, PATIENT) as own_patient, own_patient.get(url, allow_redirects=False) as response:
        assert response.status == 403  # patients never see the dashboard, not even their own photo there
    async with await signed_in(bot, THERAPIST) as browser:
        html, _token = await page_of(browser, bot, patient)
        assert f'src="/patients/{patient.id}/messages/{sent.message.id}/photo"' in html
        async with browser.get(url) as response:
            assert response.status == 200 and await response.read() == jpeg
            assert response.headers["Content-Type"] == "image/jpeg"
            assert "no-store" in response.headers["Cache-Control"]
        # The same message under another patient's URL: not found.
        async with browser.get(url.replace(f"/patients/{patient.id}/", f"/patients/{other.id}/")) as response:
            assert response.status == 404
    async with await signed_in(bot, COLLEAGUE) as colleague, colleague.get(url) as response:
        assert response.status == 200  # a colleague may see (READ), not change
    views = [(actor, detail) for action, actor, detail in await audited(bot) if action == message_core.PHOTO_VIEW]
    assert views == [
        (f"web:{THERAPIST}", f"message={sent.message.id}"),
        (f"web:{COLLEAGUE}", f"message={sent.message.id}"),
    ]


async def test_the_owner_removes_a_caregiver_and_nothing_more_reaches_them(web_care_bot: Any, tg: FakeTelegram) -> None:
    bot = web_care_bot
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    link = await join(bot, patient, 7412, name="Maria")
    async with bot.db.session() as session:
        row = await session.get(Caregiver, link.id)
        assert row is not None
        row.reminders, row.weekly, row.emergencies = True, True, False
        session.add(row)
        await session.commit()
    async with await signed_in(bot, THERAPIST) as browser:
        html, token = await page_of(browser, bot, patient)
        listed = re.search(rf'data-caregiver="{link.id}">(.*?)</li>', html, re.S)
        assert listed is not None
        assert "Maria" in listed.group(1) and "session reminders, weekly progress" in listed.group(1)
        assert "emergency red flags" not in listed.group(1)
        async with browser.post(
            f"{web_url(bot)}/patients/{patient.id}/caregivers/{link.id}/remove", data={"csrf_token": token}
        ) as response:
            html = await response.text()
        assert "The caregiver is removed" in html and f'data-caregiver="{link.id}"' not in html
        # Removing again: the core says it is gone; no error page.
        async with browser.post(
            f"{web_url(bot)}/patients/{patient.id}/caregivers/{link.id}/remove", data={"csrf_token": token}
        ) as response:
            assert response.status == 200 and "no longer linked" in await response.text()
    async with bot.db.session() as session:
        assert await caregiver_core.active_link(session, 7412) is None
        gone = await session.get(Caregiver, link.id)
        assert gone is not None and gone.removed_at == bot.clock.now() and gone.telegram_id is None
        staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) == THERAPIST))).one()
    assert (caregiver_core.REMOVE, f"web:{THERAPIST}", f"caregiver={link.id}") in await audited(bot)
    assert staff.id is not None


async def test_removing_a_caregiver_who_deleted_their_own_data_says_so(web_care_bot: Any, tg: FakeTelegram) -> None:
    """The caregiver sent /delete after the page was drawn: their link row is gone. Remove caregiver answered
    'Error 404: There is no such page.'; it says the caregiver is no longer linked, on the patient's page."""
    bot = web_care_bot
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    link = await join(bot, patient, 7413, name="Maria")
    async with await signed_in(bot, THERAPIST) as browser:
        _html, token = await page_of(browser, bot, patient)
        async with bot.db.session() as session:
            row = await session.get(Caregiver, link.id)
            assert row is not None
            await caregiver_core.delete_own(session, row, bot.clock.now())
            await session.commit()
        async with browser.post(
            f"{web_url(bot)}/patients/{patient.id}/caregivers/{link.id}/remove", data={"csrf_token": token}
        ) as response:
            html = await response.text()
        assert response.status == 200 and "no longer linked" in html and f'data-caregiver="{link.id}"' not in html


async def test_a_refused_reply_waits_in_its_box_as_typed(web_care_bot: Any, tg: FakeTelegram) -> None:
    """A reply the server refused was lost with the page; it now waits in its message's reply box,
    opened, once, beside the reason: here a reply too long (whole, past the cookie session's size,
    which once dropped the reason with the cookie) and one to a patient who can no longer be reached."""
    bot = web_care_bot
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    user = tg.user(PATIENT)
    await user.send("My knee feels stiff after the exercises")
    [offer] = await user.wait_for(lambda m: "care team" in (m.text or ""))
    await user.press("✉️ Send to my care team", offer)
    await user.wait_for(lambda m: m.edited and SENT in (m.text or ""))
    [incoming] = await rows(bot)
    long = ("Week two: " + "keep the knee soft & breathe out as you lift. " * 80).rstrip()  # 3,689 characters
    assert len(long) > message_core.MAX_TEXT
    async with await signed_in(bot, THERAPIST) as browser:
        _, token = await page_of(browser, bot, patient)
        async with browser.post(
            f"{web_url(bot)}/patients/{patient.id}/messages/{incoming.id}/reply",
            data={"text": long, "csrf_token": token},
        ) as response:
            html = await response.text()
        assert response.status == 200 and f"The reply is too long ({len(long)} characters" in html
        assert _kept(html) == (str(incoming.id), long.replace("&", "&amp;"))
    async with bot.db.session() as session:
        stored = await session.get(Patient, patient.id)
        assert stored is not None
        stored.telegram_id = None  # blocked the bot, or deleted their account, meanwhile
        session.add(stored)
        await session.commit()
    typed = "Please try the exercise with a pillow under the knee & tell me how it goes."
    async with await signed_in(bot, THERAPIST) as browser:
        _, token = await page_of(browser, bot, patient)
        async with browser.post(
            f"{web_url(bot)}/patients/{patient.id}/messages/{incoming.id}/reply",
            data={"text": typed, "csrf_token": token},
        ) as response:
            html = await response.text()
        assert f"{patient.alias} can no longer be reached through the bot." in html
        assert _kept(html) == (str(incoming.id), typed.replace("&", "&amp;"))
        again, _ = await page_of(browser, bot, patient)  # once: the next visit shows an empty box
        assert typed.replace("&", "&amp;") not in again and "<details open>" not in again
    assert len(await rows(bot)) == 1, "nothing was stored or sent"


def _kept(html: str) -> tuple[str, str] | None:
    """(message id, text) of the reply box shown opened with a kept reply, if any."""
    box = re.search(
        r'<details open>\s*<summary>Reply</summary>.*?<textarea id="reply-(\d+)"[^>]*>([^<]*)</textarea>', html, re.S
    )
    return (box.group(1), box.group(2)) if box else None
