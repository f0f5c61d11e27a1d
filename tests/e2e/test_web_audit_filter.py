"""The audit log's filters typed by hand: a filter that cannot match says why and keeps what was typed.

An outside test found an alias longer than 64 characters answered with the bare "Bad request"
page; a date that is not one did the same. Now each lists nothing, says why above the table
(400 for a malformed filter, 200 for a well-formed one that matches nobody) and keeps the
filter as typed.
"""

from __future__ import annotations

import html
from typing import Any

from sqlmodel import col, select
from web_seed import ADMIN, seed_clinic
from webrig import WEB, client, init_data, sign_in_initdata, web_url

from rehab_bot.models import Staff

NO_ALIAS = "No patient has this alias."
NOT_DATES = "Enter the dates as YYYY-MM-DD."
NO_STAFF = "No staff member has this id."


async def _audit(bot: Any, params: dict[str, str]) -> tuple[int, str]:
    session = client()
    async with session:
        response = await sign_in_initdata(session, web_url(bot), init_data(ADMIN, bot.clock.now()))
        assert response.status == 200
        async with session.get(f"{web_url(bot)}/admin/audit", params=params) as page:
            return page.status, html.unescape(await page.text())


def _rows(text: str) -> int:
    body = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr>")


async def test_a_filter_that_cannot_match_says_why_and_keeps_what_was_typed(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=2, days=1)
    status, text = await _audit(bot, {})
    assert status == 200 and _rows(text) > 0, "the unfiltered log lists entries"

    long_alias = "LWS-" + "9" * 70
    status, text = await _audit(bot, {"patient": long_alias})
    assert (status, _rows(text)) == (400, 0)
    assert NO_ALIAS in text and f'value="{long_alias}"' in text

    status, text = await _audit(bot, {"since": "30.11.2026", "until": "yesterday"})
    assert (status, _rows(text)) == (400, 0)
    assert NOT_DATES in text and 'value="30.11.2026"' in text and 'value="yesterday"' in text

    for staff in ("99999", "1" * 13):
        status, text = await _audit(bot, {"staff": staff})
        assert (status, _rows(text)) == (200 if len(staff) <= 12 else 400, 0), staff
        assert NO_STAFF in text, staff


async def test_the_reason_is_in_the_admins_language(bot_factory: Any) -> None:
    bot = await bot_factory(web=WEB)
    await seed_clinic(bot.db, bot.clock.now(), patients=1, days=1)
    async with bot.db.session() as session:
        admin = (await session.exec(select(Staff).where(col(Staff.telegram_id) == ADMIN))).one()
        admin.language = "de"
        session.add(admin)
        await session.commit()
    status, text = await _audit(bot, {"since": "morgen"})
    assert status == 400
    assert "Geben Sie die Daten als JJJJ-MM-TT an." in text and NOT_DATES not in text
