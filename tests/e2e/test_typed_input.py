"""Odd typed input end to end: what phones and keyboards really send is read, or answered kindly.

Invisible marks (a zero-width space, a right-to-left mark), full-width digits and colons,
"13h" and "22 Uhr", a command on a line of its own: none of it may crash the bot,
lose what was typed, or be refused when the same words are accepted elsewhere.
"""

from __future__ import annotations

from typing import Any

from rig.telegram_server import FakeTelegram
from test_checkins import enrolled as checkin_patient
from test_checkins import rows

from rehab_bot.models import Note


async def test_a_note_on_the_line_after_note_keeps_its_first_word(bot: Any, tg: FakeTelegram) -> None:
    await checkin_patient(bot, 9101, schedule=False)
    user = tg.user(9101)
    for text in ("/note\nPain 6 since the walk", "/note\u00a0Brace rubs", "/note@rehab_test_bot\n\nCall me please"):
        user.mark_seen()
        await user.send(text)
        [reply] = await user.wait_for()
        assert "Saved as a note" in reply.text, text
    assert [n.text for n in await rows(bot, Note)] == ["Pain 6 since the walk", "Brace rubs", "Call me please"]
