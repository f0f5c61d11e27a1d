"""Turn a due delivery into the message the patient (or clinician) reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram.ext import Application

from rehab_bot.i18n import t
from rehab_bot.models import Kind
from rehab_bot.reminders import DueMessage
from rehab_bot.transport import OutgoingMessage


def render_due(
    app: Application[Any, Any, Any, Any, Any, Any],
) -> Callable[[DueMessage], Awaitable[OutgoingMessage | None]]:
    """A renderer bound to the running application."""

    async def render(message: DueMessage) -> OutgoingMessage | None:
        lang = message.language
        if message.body:
            return OutgoingMessage(message.body)
        if message.kind == Kind.SESSION.value:
            if message.late:
                text = t(lang, "Sorry, this reminder comes late: your {slot} session.", slot=message.slot)
            else:
                text = t(lang, "Time for your exercise session ({slot}).", slot=message.slot)
            return OutgoingMessage(text)
        if message.kind == Kind.CHECKIN.value:
            return OutgoingMessage(t(lang, "Time for your check-in."))
        if message.kind == Kind.NUDGE.value:
            return OutgoingMessage(t(lang, "Just checking in: have you done today's exercises?"))
        return OutgoingMessage(t(lang, "Time for your exercise session ({slot}).", slot=message.slot))

    return render
