"""Check-in questionnaires, red flags and motivational messages in chat."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from rehab_bot.i18n import t
from rehab_bot.reminders import DueMessage
from rehab_bot.transport import OutgoingMessage


async def render_checkin(app: Application[Any, Any, Any, Any, Any, Any], message: DueMessage) -> OutgoingMessage | None:
    """A due check-in: placeholder until the check-in feature lands."""
    return OutgoingMessage(t(message.language, "Time for your check-in."))


async def render_motivation(
    app: Application[Any, Any, Any, Any, Any, Any], message: DueMessage
) -> OutgoingMessage | None:
    """A motivational message: placeholder until the motivation feature lands."""
    return None


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Add the check-in handlers."""
