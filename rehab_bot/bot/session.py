"""Exercise session reminders and one-tap logging (Done, Partly, Skip, Snooze)."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from rehab_bot.i18n import t
from rehab_bot.reminders import DueMessage
from rehab_bot.transport import OutgoingMessage


async def render_reminder(
    app: Application[Any, Any, Any, Any, Any, Any], message: DueMessage
) -> OutgoingMessage | None:
    """The session reminder: placeholder until the session feature lands."""
    if message.late:
        return OutgoingMessage(
            t(message.language, "Sorry, this reminder comes late: your {slot} session.", slot=message.slot)
        )
    return OutgoingMessage(t(message.language, "Time for your exercise session ({slot}).", slot=message.slot))


async def render_nudge(app: Application[Any, Any, Any, Any, Any, Any], message: DueMessage) -> OutgoingMessage | None:
    """A gentle follow-up when a session got no answer."""
    return OutgoingMessage(t(message.language, "Just checking in: have you done today's exercises?"))


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Add the session handlers."""
