"""The same form posted twice (a double click, a reload, a retried request) and stale forms, over HTTP.

A staff reply and a patient's message from the Mini App are sent once, however often the form
arrives, also when the two posts race each other; what the second post answers is what the
first did.
"""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from sqlmodel import col, select
from test_checkins import enrolled
from webrig import client, csrf, init_data, miniapp_web, sign_in_initdata, web_url

from rehab_bot.models import CareMessage, Delivery

THERAPIST, PATIENT = 7411, 7511


async def signed_in(bot: Any, telegram_id: int) -> aiohttp.ClientSession:
    browser = client()
    response = await sign_in_initdata(browser, web_url(bot), init_data(telegram_id, bot.clock.now()))
    assert response.status == 200
    return browser


async def token_of(browser: aiohttp.ClientSession, url: str) -> str:
    async with browser.get(url) as page:
        assert page.status == 200
        return csrf(await page.text())


async def messages(bot: Any) -> list[CareMessage]:
    async with bot.db.session() as session:
        return list((await session.exec(select(CareMessage).order_by(col(CareMessage.id)))).all())


async def deliveries(bot: Any, prefix: str) -> list[Delivery]:
    async with bot.db.session() as session:
        found = await session.exec(select(Delivery).where(col(Delivery.key).startswith(prefix)))
        return list(found.all())


@pytest.fixture
async def web_bot(bot_factory: Any, backend: str, tmp_path: Path) -> Any:
    return await bot_factory(
        backend,
        web=miniapp_web(),
        privacy={"health_data_in_chat": False},
        care={"photo_dir": str(tmp_path / "photos")},
    )


async def test_a_reply_posted_twice_reaches_the_patient_once(web_bot: Any) -> None:
    bot = web_bot
    patient = await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    async with bot.db.session() as session:
        asked = CareMessage(
            patient_id=patient.id, direction="in", text="Is the pain normal?", created_at=bot.clock.now()
        )
        session.add(asked)
        await session.commit()
        await session.refresh(asked)
    url = f"{web_url(bot)}/patients/{patient.id}/messages/{asked.id}/reply"
    async with await signed_in(bot, THERAPIST) as browser:
        token = await token_of(browser, f"{web_url(bot)}/patients/{patient.id}")

        async def post(text: str) -> str:
            async with browser.post(url, data={"text": text, "csrf_token": token}) as response:
                assert response.status == 200
                return await response.text()

        first = await post("Yes, in week 1 it is.")
        again = await post("  Yes, in week 1 it is.  ")  # the form again (back and resubmit)
        assert "Your reply is on its way to the patient." in first and "on its way" in again
        raced = await asyncio.gather(post("Keep going gently."), post("Keep going gently."))  # a double click
        assert all("on its way" in html for html in raced)
        await post("Yes, in week 1 it is.")  # later, again: still the one reply
    replies = [m for m in await messages(bot) if m.direction == "out"]
    assert [m.text for m in replies] == ["Yes, in week 1 it is.", "Keep going gently."]
    assert len(await deliveries(bot, "cm")) == 2, "one message in the patient's chat per reply"


async def test_a_mini_app_message_posted_twice_reaches_the_team_once(web_bot: Any, tmp_path: Path) -> None:
    bot = web_bot
    await enrolled(bot, PATIENT, therapist=THERAPIST, schedule=False)
    url = f"{web_url(bot)}/app/messages"
    photo = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 120, 90)).save(photo, "JPEG")
    async with await signed_in(bot, PATIENT) as browser:
        token = await token_of(browser, url)

        async def post(text: str, picture: bytes | None = None) -> str:
            form = aiohttp.FormData()
            form.add_field("csrf_token", token)
            form.add_field("text", text)
            if picture is not None:
                form.add_field("photo", picture, filename="x.jpg", content_type="image/jpeg")
            async with browser.post(url, data=form) as response:
                assert response.status == 200
                return await response.text()

        assert "Sent to your care team." in await post("The wound is red at the edge")
        assert "Sent to your care team." in await post("The wound is red at the edge")  # a reload
        raced = await asyncio.gather(post("It itches", photo.getvalue()), post("It itches", photo.getvalue()))
        assert all("Sent to your care team." in html for html in raced)
        bot.clock.advance(timedelta(minutes=11))
        await post("The wound is red at the edge")  # later: a new message, sent again
    sent = await messages(bot)
    assert [m.text for m in sent] == ["The wound is red at the edge", "It itches", "The wound is red at the edge"]
    assert len(list((tmp_path / "photos").iterdir())) == 1, "the photo posted twice is stored once"
    notices = await deliveries(bot, "cm")
    assert sorted({d.key.split(":")[0] for d in notices}) == sorted(f"cm{m.id}" for m in sent)
    assert len(notices) == 3, "the therapist is told once per message"
