"""Turn a due delivery into the message the patient (or clinician) reads.

Each kind belongs to a feature module, which renders it; this module only
routes. A renderer may return None when the message no longer applies (for
example a nudge for a session the patient already logged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from rehab_bot import experiment
from rehab_bot import session as session_core
from rehab_bot.bot import checkin, education, session, staff
from rehab_bot.bot.services import App, svc
from rehab_bot.i18n import t
from rehab_bot.models import Kind
from rehab_bot.reminders import DueMessage
from rehab_bot.transport import OutgoingMessage

KindRenderer = Callable[[App, DueMessage], Awaitable[OutgoingMessage | None]]


async def render_nudge(app: App, message: DueMessage) -> OutgoingMessage | None:
    """A nudge: the core makes a running experiment's draw first (and commits); the renderer only reads it."""
    services = svc(app)
    async with services.db.session() as db:
        delivery = services.config.delivery
        await experiment.draw_for_nudge(
            db,
            services.content,
            message,
            services.clock.now(),
            taper_weeks=delivery.taper_after_weeks,
            taper_adherence=delivery.taper_adherence,
        )
    return await session.render_nudge(app, message)


def render_due(
    app: App,
) -> Callable[[DueMessage], Awaitable[OutgoingMessage | None]]:
    """A renderer bound to the running application."""
    by_kind: dict[str, KindRenderer] = {
        Kind.SESSION.value: session.render_reminder,
        Kind.NUDGE.value: render_nudge,
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
) -> Callable[[Sequence[DueMessage]], Awaitable[dict[int, OutgoingMessage | None]]]:
    """A batch renderer bound to the running application: the kinds that send in bulk render per window."""

    async def render_many(messages: Sequence[DueMessage]) -> dict[int, OutgoingMessage | None]:
        # The core opens the sessions (and re-plans phases) first; the renderer only reads.
        services = svc(app)
        async with services.db.session() as db:
            reminders = await session_core.open_for_deliveries(
                db, services.content, [m for m in messages if not m.body], services.clock.now()
            )
        return await session.render_reminders(app, reminders)

    return render_many
