"""Two presses on one message within milliseconds: the first decides, the second is refused.

Telegram sends each press with the message as it looked when the person pressed, so both presses of a
quick double tap (or of two buttons tapped at once) carry the buttons of before the first press's
edit. Updates of one chat are handled in turn (rehab_bot/bot/updates.py); the second is now checked
against what the first press's edit left on the message (rehab_bot.transport.ShownButtons), and is
answered "This button is no longer active." Before, both took effect: a note saved twice, or a
message sent to the care team and saved as a note as well.
"""

from __future__ import annotations

from typing import Any

import pytest
from rig.telegram_server import FakeTelegram
from sqlmodel import select
from test_checkins import enrolled

from rehab_bot.models import CareMessage, Note

STALE = "This button is no longer active."
SEND, SAVE, NO = "✉️ Send to my care team", "Save as a note", "No, thanks"


async def _rows(bot: Any, table: Any) -> list[Any]:
    async with bot.db.session() as session:
        return list((await session.exec(select(table))).all())


@pytest.mark.parametrize(
    ("first", "second", "notes", "sent"),
    [(SAVE, SAVE, 1, 0), (SAVE, NO, 1, 0), (NO, SAVE, 0, 0), (SEND, SAVE, 0, 1), (SAVE, SEND, 1, 0)],
)
async def test_the_second_of_two_quick_presses_on_the_offer_is_refused(
    bot_factory: Any, tg: FakeTelegram, first: str, second: str, notes: int, sent: int
) -> None:
    bot = await bot_factory(delivery={"per_chat_interval": 0.02})
    await enrolled(bot, 4301, therapist=4391, schedule=False)
    user = tg.user(4301)
    await user.send("My left knee feels stiff in the mornings.")
    [offer] = await user.wait_for()
    assert offer.button_labels == [SEND, SAVE, NO]

    await user.press(first, offer)
    await user.press(second, offer)  # before the bot has handled the first: the same buttons are sent
    await tg.wait_until(lambda: len(user.callback_answers) == 2, what="both presses answered")
    assert [a.text for a in user.callback_answers][1] == STALE
    assert len(await _rows(bot, Note)) == notes
    assert len(await _rows(bot, CareMessage)) == sent
