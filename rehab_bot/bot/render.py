"""Turn a due delivery into the message the patient (or clinician) reads.

Each kind belongs to a feature module, which renders it; this module only
routes. A renderer may return None when the message no longer applies (for
example a nudge for a session the patient already logged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rehab_bot.bot import checkin, education, session, staff
from rehab_bot.bot.services import App
from rehab_bot.i18n import t
from rehab_bot.models import Kind
from rehab_bot.reminders import DueMessage
from rehab_bot.transport import OutgoingMessage

KindRenderer = Callable[[App, DueMessage], Awaitable[OutgoingMessage | None]]


def render_due(
    app: App,
) -> Callable[[DueMessage], Awaitable[OutgoingMessage | None]]:
    """A renderer bound to the running application."""
    by_kind: dict[str, KindRenderer] = {
        Kind.SESSION.value: session.render_reminder,
        Kind.NUDGE.value: session.render_nudge,
        Kind.CHECKIN.value: checkin.render_checkin,
        Kind.MOTIVATION.value: checkin.render_motivation,
        Kind.LESSON.value: education.render_lesson,
    }

    async def render(message: DueMessage) -> OutgoingMessage | None:
        if message.body:  # alerts and safety messages are written when raised
            return OutgoingMessage(message.body, staff.alert_buttons(message.kind, message.payload))
        renderer = by_kind.get(message.kind)
        if renderer is not None:
            return await renderer(app, message)
        return OutgoingMessage(t(message.language, "Time for your check-in."))

    return render


def render_due_many(
    app: App,
) -> Callable[[AsyncSession, Sequence[DueMessage], Mapping[int, Any]], Awaitable[dict[int, OutgoingMessage | None]]]:
    """A batch renderer bound to the running application: the kinds that send in bulk render per window.

    It runs in the claim's transaction (db), after the dispatcher opened the
    window's sessions (rehab_bot.session.window_opener); it only reads.
    """

    async def render_many(
        db: AsyncSession, messages: Sequence[DueMessage], opened: Mapping[int, Any]
    ) -> dict[int, OutgoingMessage | None]:
        return await session.render_reminders(app, db, opened)

    return render_many
