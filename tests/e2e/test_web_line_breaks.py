"""A staff reply as long as the patient page's box allows, line breaks included, is sent.

Browsers count a line break as one character in a textarea's maxlength but send it as CR LF:
a reply of message.MAX_TEXT characters with line breaks arrives longer than that. The web form
reads each line break as one character, so nothing the therapist typed is refused and lost.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from web_seed import BEN, seed_clinic
from webrig import WEB, client, csrf, init_data, sign_in_initdata, web_url

from rehab_bot import message as message_core
from rehab_bot.models import CareMessage, Patient


async def test_a_reply_with_line_breaks_as_long_as_the_box_allows_is_sent(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    clinic = await seed_clinic(bot.db, bot.clock.now(), patients=1, days=1)  # LWS-0001 is Dr Ben's
    pid = clinic.patient_ids[0]
    async with bot.db.session() as session:
        patient = await session.get(Patient, pid)
        assert patient is not None
        sent = await message_core.send(session, patient, bot.config.clinic, text="Question", now=bot.clock.now())
        await session.commit()
    line = "Keep walking twice a day.\n"
    typed = (line * (message_core.MAX_TEXT // len(line) + 1))[: message_core.MAX_TEXT]
    browser = client()
    async with browser:
        response = await sign_in_initdata(browser, web_url(bot), init_data(BEN, bot.clock.now()))
        assert response.status == 200
        async with browser.get(f"{web_url(bot)}/patients/{pid}") as page:
            token = csrf(await page.text())
        async with browser.post(
            f"{web_url(bot)}/patients/{pid}/messages/{sent.message.id}/reply",
            data={"csrf_token": token, "text": typed.replace("\n", "\r\n")},  # as the browser sends it
        ) as response:
            html = await response.text()
    assert "Your reply is on its way to the patient." in html
    async with bot.db.session() as session:
        [reply] = (await session.exec(select(CareMessage).where(col(CareMessage.direction) == "out"))).all()
    assert reply.text == typed.strip()
